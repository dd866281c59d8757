"""Running the Discord client until `stop`: login, gateway connection (discord.py reconnects
and resumes on its own once connected), slash command sync and retrain reports. Discord being
unreachable is waited out here, so that in a process that also serves Telegram an outage of one
platform never takes the other down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from functools import partial

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.core.runtime import CoreRuntime
from bot.discord.app import DiscordConfig, MemeClient
from bot.errors import ConfigError

log = logging.getLogger(__name__)

# Discord (or the way there) is down: try again later. A refused token or intent is not
# among them: that needs a person, so it ends `memebot run` with the reason.
UNREACHABLE = (OSError, aiohttp.ClientError, TimeoutError, discord.GatewayNotFound,
               discord.DiscordServerError)
FIRST_RETRY_S, MAX_RETRY_S = 1.0, 60.0


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
    """Serve Discord until `stop` is set; a refused login or intent raises."""
    config = DiscordConfig.from_settings(runtime.settings)
    with discord_endpoints(config.api_url, config.gateway_url):
        delay = FIRST_RETRY_S
        while not stop.is_set():
            client = MemeClient(runtime.service, config)
            unsubscribe = runtime.jobs.subscribe(client.handlers.delivery.job_report)
            gone = runtime.readiness.connected("discord", partial(_connected, client))
            unregister = runtime.service.setup.register("discord", client.setup_probe)
            no_outbox = runtime.service.outboxes.register("discord", client.handlers.delivery.port)
            try:
                await _serve(client, config.token, stop)
                return
            except discord.LoginFailure:
                raise ConfigError("Discord refused the bot token (MEMEBOT_DISCORD_TOKEN): "
                                  "copy it again from the developer portal, Bot page") from None
            except discord.PrivilegedIntentsRequired:
                raise ConfigError("Discord refused the Message Content intent: enable it in "
                                  "the developer portal, Bot page, Privileged Gateway "
                                  "Intents") from None
            except UNREACHABLE as exc:
                log.warning("discord: cannot reach Discord (%s: %s); next try in %.0f s",
                            type(exc).__name__, exc, delay)
            finally:
                unregister()
                no_outbox()
                gone()
                unsubscribe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, MAX_RETRY_S)


def _connected(client: MemeClient) -> bool:
    """Ready, and every shard of this process has its gateway connection."""
    shards = client.shards.values()
    return client.is_ready() and not client.is_closed() and all(
        not shard.is_closed() for shard in shards)


async def _serve(client: MemeClient, token: str, stop: asyncio.Event) -> None:
    """One client's life: log in, stay connected until `stop`, close."""
    async with client:
        await client.login(token)
        connection = asyncio.create_task(client.connect(reconnect=True))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({connection, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not connection.done():
            await client.close()
        await connection  # raises what ended the connection, if anything did
