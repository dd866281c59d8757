"""Readiness: is each part the bot needs working right now? And the HTTP endpoint serving it
with liveness and the metrics (`/healthz`, `/readyz`, `/metrics`; MEMEBOT_HEALTH_PORT).

Each adapter says how to tell whether its platform is connected while it runs
(`Readiness.connected`); a platform the process serves but that is not connected (yet, or
any more) makes the bot not ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.core.classify_queue import ClassifyQueue
from bot.core.model_holder import ModelHolder
from bot.observability.metrics import BotMetrics
from storage.api import Storage

log = logging.getLogger(__name__)

DB_TIMEOUT_S = 5.0
PlatformProbe = Callable[[], bool]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _never_connected() -> bool:
    return False


class Readiness:
    def __init__(self, storage: Storage, models: ModelHolder, queue: ClassifyQueue, *,
                 queue_stall_s: float) -> None:
        self._storage = storage
        self._models = models
        self._queue = queue
        self._queue_stall_s = queue_stall_s
        self._platforms: dict[str, PlatformProbe] = {}

    def expect(self, platform: str) -> None:
        """This process serves `platform`: not ready until its adapter is connected."""
        self._platforms.setdefault(platform, _never_connected)

    def connected(self, platform: str, probe: PlatformProbe) -> Callable[[], None]:
        """While the adapter runs, `probe()` says whether it is connected; the returned
        function (called when it stops) makes the platform count as disconnected again."""
        self._platforms[platform] = probe

        def gone() -> None:
            self._platforms[platform] = _never_connected

        return gone

    async def checks(self) -> list[Check]:
        found = [await self._database(), self._model(), self._queue_check()]
        for platform, probe in sorted(self._platforms.items()):
            ok = probe()
            found.append(Check(platform, ok, "connected" if ok else "not connected"))
        return found

    async def _database(self) -> Check:
        try:
            revision = await asyncio.wait_for(self._storage.schema_revision(), DB_TIMEOUT_S)
        except Exception as exc:  # any failure to answer is "not reachable", with its reason
            return Check("database", False, f"not reachable: {type(exc).__name__}: {exc}")
        return Check("database", True, f"schema {revision}")

    def _model(self) -> Check:
        version = self._models.current.version
        return Check("model", bool(version), f"serving {version}")

    def _queue_check(self) -> Check:
        stalled = self._queue.stalled_s()
        pending = self._queue.pending
        if stalled > self._queue_stall_s:
            return Check("queue", False,
                         f"{pending} images waiting, no progress for {stalled:.0f} s")
        return Check("queue", True, f"{pending} images waiting")


def health_app(readiness: Readiness, metrics: BotMetrics) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readyz(_request: web.Request) -> web.Response:
        checks = await readiness.checks()
        ready = all(check.ok for check in checks)
        body = {"ready": ready, "checks": {c.name: asdict(c) for c in checks}}
        return web.json_response(body, status=200 if ready else 503)

    async def metrics_page(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    return app


@dataclass
class HealthServer:
    runner: web.AppRunner
    port: int

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_health_server(readiness: Readiness, metrics: BotMetrics, host: str,
                              port: int) -> HealthServer:
    """Serve the endpoints on `host:port` (port 0: any free port, see `HealthServer.port`)."""
    runner = web.AppRunner(health_app(readiness, metrics), access_log=None,
                           shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = next((a[1] for a in runner.addresses if isinstance(a, tuple) and len(a) >= 2), port)
    log.info("health and metrics on http://%s:%s/ (healthz, readyz, metrics)", host, bound)
    return HealthServer(runner, bound)
