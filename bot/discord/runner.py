"""Running the Discord client until `stop`: login, gateway connection (discord.py reconnects
and resumes on its own), slash command sync, retrain reports and model follow-up."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.core.model_switch import follow_active_model
from bot.core.runtime import CoreRuntime
from bot.discord.app import DiscordConfig, MemeClient

log = logging.getLogger(__name__)


@contextlib.contextmanager
def discord_endpoints(api_url: str, gateway_url: str) -> Iterator[None]:
    """Point discord.py at `api_url` and `gateway_url` while inside, then restore them.

    The library keeps both as class attributes (its only hook); they differ from its own
    defaults only to reach a test stand-in, which one process never mixes with Discord.
    """
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = api_url.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


async def run(runtime: CoreRuntime, stop: asyncio.Event) -> None:
    """Serve Discord until `stop` is set; a failed login or a refused intent raises."""
    config = DiscordConfig.from_settings(runtime.settings)
    with discord_endpoints(config.api_url, config.gateway_url):
        client = MemeClient(runtime.service, config)
        unsubscribe = runtime.jobs.subscribe(
            functools.partial(client.handlers.on_job_finished, client)
        )
        follow = asyncio.create_task(follow_active_model(
            runtime.switcher, config.model_check_interval_s, stop, who="discord"
        ))
        try:
            async with client:
                await client.login(config.token)
                connection = asyncio.create_task(client.connect(reconnect=True))
                stopped = asyncio.create_task(stop.wait())
                await asyncio.wait({connection, stopped}, return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                if not connection.done():
                    await client.close()
                await connection  # raises what ended the connection, if anything did
        finally:
            unsubscribe()
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow
