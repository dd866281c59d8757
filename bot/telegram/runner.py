"""Running the Telegram Application: long polling by default, a webhook when configured."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from functools import partial
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.error import TelegramError

from bot.core.runtime import CoreRuntime
from bot.core.setup_check import log_start_check
from bot.telegram.app import (
    ALLOWED_UPDATES,
    TelegramApplication,
    TelegramConfig,
    bot_commands,
    build,
)
from bot.telegram.setup_check import TelegramSetupProbe
from config.settings import Settings

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
POLL_ERROR_GRACE_S = 60.0  # PTB waits up to 30 s between failed polls


def webhook_app(application: TelegramApplication, path: str, secret: str | None) -> web.Application:
    """An aiohttp app that feeds POSTed updates into PTB's queue (PTB's own webhook server
    needs tornado, which the bot does not otherwise use)."""

    async def receive(request: web.Request) -> web.Response:
        if secret is not None and not hmac.compare_digest(
            request.headers.get(SECRET_HEADER, ""), secret
        ):
            return web.Response(status=403)
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=400)
        await application.update_queue.put(Update.de_json(data, application.bot))
        return web.Response()

    app = web.Application()
    app.router.add_post(path, receive)
    return app


async def run(runtime: CoreRuntime, stop: asyncio.Event) -> None:
    """Serve Telegram until `stop` is set."""
    settings = runtime.settings
    config = TelegramConfig.from_settings(settings)
    application, handlers = build(runtime.service, config)
    polls = PollHealth()
    gone = runtime.readiness.connected("telegram", partial(
        _connected, application, polls, webhook=bool(settings.telegram_webhook_url)))
    try:
        async with application:
            await application.start()
            await _set_commands(application)
            probe = TelegramSetupProbe(application.bot)
            unregister = runtime.service.setup.register("telegram", probe)
            await log_start_check("telegram", probe, runtime.service)
            unsubscribe = runtime.jobs.subscribe(handlers.delivery.job_report)
            no_outbox = runtime.service.outboxes.register("telegram", handlers.delivery.port)
            try:
                await _serve(application, settings, stop, polls)
            finally:
                unregister()
                unsubscribe()
                no_outbox()
            await application.stop()
    finally:
        gone()


class PollHealth:
    """PTB retries a failed getUpdates forever and stays "running": a poll that failed within
    the last `grace_s` seconds is what says Telegram is out of reach."""

    def __init__(self, grace_s: float = POLL_ERROR_GRACE_S) -> None:
        self._grace_s = grace_s
        self._failed_at: float | None = None

    def failed(self, exc: TelegramError) -> None:  # PTB's error_callback: not a coroutine
        self._failed_at = time.monotonic()
        log.warning("telegram: polling failed (%s: %s); retrying", type(exc).__name__, exc)

    @property
    def ok(self) -> bool:
        return self._failed_at is None or time.monotonic() - self._failed_at > self._grace_s


def _connected(application: TelegramApplication, polls: PollHealth, *, webhook: bool) -> bool:
    """Receiving updates: serving the webhook, or polling without recent failures."""
    updater = application.updater
    polling = updater is not None and updater.running and polls.ok
    return application.running and (webhook or polling)


async def _set_commands(application: TelegramApplication) -> None:
    try:
        await application.bot.set_my_commands(bot_commands())
    except TelegramError as exc:  # the menu is a convenience: the commands work without it
        log.warning("telegram: command menu not set: %s", exc)


async def _serve(application: TelegramApplication, settings: Settings, stop: asyncio.Event,
                 polls: PollHealth) -> None:
    """Receive updates (webhook or long polling) until `stop` is set."""
    if settings.telegram_webhook_url:
        secret = settings.telegram_webhook_secret
        secret_text = secret.get_secret_value() if secret else None
        path = urlsplit(settings.telegram_webhook_url).path or "/"
        runner = web.AppRunner(webhook_app(application, path, secret_text))
        await runner.setup()
        site = web.TCPSite(
            runner, settings.telegram_webhook_listen, settings.telegram_webhook_port
        )
        await site.start()
        await application.bot.set_webhook(
            settings.telegram_webhook_url,
            allowed_updates=ALLOWED_UPDATES,
            secret_token=secret_text,
        )
        log.info("telegram: webhook on port %s", settings.telegram_webhook_port)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
    else:
        updater = application.updater
        if updater is None:  # the builder makes one unless told not to
            raise RuntimeError("telegram: the application has no updater to poll with")
        await updater.start_polling(allowed_updates=ALLOWED_UPDATES,
                                    error_callback=polls.failed)
        log.info("telegram: polling for updates")
        await stop.wait()
        await updater.stop()
