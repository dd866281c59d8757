"""One bot process: logging, the shared core, every adapter whose token is configured, and
(with `Settings.trainer == "subprocess"`, the default with SQLite) the supervised trainer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from bot.core.runtime import CoreRuntime, open_runtime
from bot.core.trainer_process import TrainerSupervisor
from bot.errors import ConfigError
from bot.logs import configure_logging
from bot.observability.health import HealthServer, start_health_server
from config.settings import Settings

log = logging.getLogger(__name__)

AdapterRunner = Callable[[CoreRuntime, asyncio.Event], Coroutine[Any, Any, None]]


def _secrets(settings: Settings) -> list[str]:
    tokens = (settings.telegram_token, settings.discord_token, settings.telegram_webhook_secret,
              settings.console_admin_token)
    return [t.get_secret_value() for t in tokens if t is not None]


def _adapters(settings: Settings) -> tuple[list[AdapterRunner], list[str]]:
    runners: list[AdapterRunner] = []
    origins: list[str] = []
    if settings.telegram_token is not None:
        from bot.telegram.runner import run as run_telegram

        runners.append(run_telegram)
        origins.append(settings.telegram_file_url)
    if settings.discord_token is not None:
        from bot.discord.media import download_origins
        from bot.discord.runner import run as run_discord

        runners.append(run_discord)
        origins.extend(download_origins(settings))
    if settings.console_enabled or (settings.console_enabled is None and not runners):
        from bot.console.runner import run as run_console

        runners.append(run_console)
    if not runners:
        raise ConfigError("no bot token configured and the console is off: set "
                          "MEMEBOT_TELEGRAM_TOKEN, MEMEBOT_DISCORD_TOKEN or "
                          "MEMEBOT_CONSOLE_ENABLED=true")
    return runners, origins


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop`), then finish queued work and close cleanly."""
    configure_logging(_secrets(settings), json_lines=settings.log_json)
    runners, origins = _adapters(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with open_runtime(settings, file_origins=origins) as runtime:
        health = await _health_server(runtime)  # a port in use fails here, before the rest
        # Started once storage is open (and migrated): the trainer never races the migration.
        trainer = _trainer_task(runtime, stop)
        tasks = [asyncio.create_task(run(runtime, stop)) for run in runners]
        try:
            # One adapter failing stops the others: a half-working bot is hard to notice.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if trainer is not None:  # SIGTERM, then kill: it never outlives the bot
                await asyncio.gather(trainer, return_exceptions=True)
            if health is not None:
                await health.close()


async def _health_server(runtime: CoreRuntime) -> HealthServer | None:
    settings = runtime.settings
    if settings.health_port is None:
        return None
    return await start_health_server(runtime.readiness, runtime.metrics, settings.health_host,
                                     settings.health_port)


def _trainer_task(runtime: CoreRuntime, stop: asyncio.Event) -> asyncio.Task[None] | None:
    settings = runtime.settings
    mode = settings.effective_trainer
    if mode != "subprocess":
        log.info("trainer: %s", "runs as its own service" if mode == "external"
                 else "off (/retrain jobs stay queued)")
        return None
    supervisor = TrainerSupervisor(settings, runtime.trainer, secrets=_secrets(settings))
    return asyncio.create_task(supervisor.run(stop), name="trainer-supervisor")
