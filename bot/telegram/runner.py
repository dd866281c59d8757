"""Running the Telegram Application: long polling by default, a webhook when configured."""

from __future__ import annotations

import asyncio
import hmac
import logging
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
    gone = runtime.readiness.connected("telegram", partial(
        _connected, application, webhook=bool(settings.telegram_webhook_url)))
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
                await _serve(application, settings, stop)
            finally:
                unregister()
                unsubscribe()
                no_outbox()
            await application.stop()
    finally:
        gone()


def _connected(application: TelegramApplication, *, webhook: bool) -> bool:
    """Receiving updates: serving the webhook, or polling (PTB retries failed polls itself)."""
    updater = application.updater
    return application.running and (webhook or (updater is not None and updater.running))


async def _set_commands(application: TelegramApplication) -> None:
    try:
        await application.bot.set_my_commands(bot_commands())
    except TelegramError as exc:  # the menu is a convenience: the commands work without it
        log.warning("telegram: command menu not set: %s", exc)


async def _serve(application: TelegramApplication, settings: Settings, stop: asyncio.Event) -> None:
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
        await updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        log.info("telegram: polling for updates")
        await stop.wait()
        await updater.stop()
