"""What the platform stand-ins (telegram_standin.py, discord_standin.py) share: an
aiohttp app on 127.0.0.1 that records calls it does not implement (failing `stop()`), and a
condition that waiters re-check after every change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web


class StandInServer:
    def __init__(self, port: int = 0) -> None:
        self.port = port  # 0: any free one
        self.unexpected: list[str] = []
        self.downloads = 0  # files served by `serve_file`
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self.unexpected:
            raise AssertionError("stand-in got unimplemented calls: " + ", ".join(self.unexpected))

    def serve_file(self, data: bytes | None) -> web.Response:
        """A file download (counted in `downloads`), or 404 for None."""
        if data is None:
            return web.Response(status=404)
        self.downloads += 1
        return web.Response(body=data, content_type="application/octet-stream")

    async def changed(self) -> None:
        """Wake the waiters: something they may wait for happened."""
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Wait until `predicate()` is truthy (re-checked after every change)."""
        async def until() -> Any:
            async with self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value

        return await asyncio.wait_for(until(), timeout)
