"""Discord catch-up (issue 23): the newest message seen per channel is remembered (in memory,
written to storage every few seconds and at close), and at start each known channel's history
since then is read, bounded by a window in hours and a cap per channel, and handled like new
messages. The redelivery guard (a message answered before is never answered again) makes
reading a message twice harmless; what is older than `quiet_after` is labelled quietly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import discord

from storage.api import Storage
from storage.errors import StorageError

log = logging.getLogger(__name__)

PLATFORM = "discord"
FLUSH_INTERVAL_S = 10.0


@dataclass(frozen=True)
class CatchUpLimits:
    window_hours: float  # 0: no catch-up
    per_channel: int


class ChannelCursors:
    """The newest message id seen per channel; `flush` stores the ones that moved."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._seen: dict[int, int] = {}
        self._stored: dict[int, int] = {}

    def seen(self, channel_id: int, message_id: int) -> None:
        if message_id > self._seen.get(channel_id, 0):
            self._seen[channel_id] = message_id

    async def flush(self) -> None:
        for channel_id, message_id in list(self._seen.items()):
            if self._stored.get(channel_id) == message_id:
                continue
            await self._storage.advance_channel_cursor(PLATFORM, str(channel_id), message_id)
            self._stored[channel_id] = message_id

    async def keep_flushing(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except (StorageError, OSError) as exc:  # next time; the guard covers a gap
                log.warning("discord: channel positions not saved: %s", exc)


async def catch_up(client: discord.Client, storage: Storage, limits: CatchUpLimits,
                   handle: Callable[[discord.Message], Awaitable[None]]) -> int:
    """Read what each known channel got since its last seen message; the messages handed to
    `handle`, oldest first. Returns how many were read."""
    if limits.window_hours <= 0 or limits.per_channel <= 0:
        return 0
    try:
        return await _catch_up(client, storage, limits, handle)
    except Exception as exc:  # the client closing under it, Discord, storage: serve on
        log.warning("discord: catch-up stopped: %s: %s", type(exc).__name__, exc)
        return 0


async def _catch_up(client: discord.Client, storage: Storage, limits: CatchUpLimits,
                    handle: Callable[[discord.Message], Awaitable[None]]) -> int:
    floor = discord.utils.time_snowflake(
        datetime.now(UTC) - timedelta(hours=limits.window_hours))
    read = 0
    for chat_id, last in (await storage.channel_cursors(PLATFORM)).items():
        channel = client.get_channel(int(chat_id))
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            continue  # gone, or a channel this shard does not serve
        after = discord.Object(id=max(int(last), floor))
        count = 0
        try:
            async for message in channel.history(after=after, limit=limits.per_channel,
                                                 oldest_first=True):
                count += 1
                await handle(message)
        except discord.HTTPException as exc:  # no Read Message History there (see /check)
            log.warning("discord: cannot read the history of #%s: %s", channel.name, exc)
        if count:
            log.info("discord: caught up %d messages in #%s%s", count, channel.name,
                     " (cap reached)" if count >= limits.per_channel else "")
        read += count
    return read
