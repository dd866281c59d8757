"""Discord catch-up (issue 23): the newest message seen per channel is remembered (in memory,
written to storage every few seconds and at close), and at start each known channel's history
since then is read, bounded by a window in hours and a cap per channel, and handled like new
messages. A channel with no saved position (the first start after an upgrade, a channel the
bot never saw a message in) is read back over the window too. The redelivery guard (a message
answered before is never answered again) makes reading a message twice harmless; what is older
than `quiet_after` is labelled quietly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
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
        self._first_live: dict[int, int] = {}

    def seen(self, channel_id: int, message_id: int, *, live: bool = False) -> None:
        """`live`: the gateway delivered it (rather than a read of the history)."""
        if live and message_id < self._first_live.get(channel_id, message_id + 1):
            self._first_live[channel_id] = message_id
        if message_id > self._seen.get(channel_id, 0):
            self._seen[channel_id] = message_id

    def first_live(self, channel_id: int) -> int | None:
        """The oldest message the gateway delivered in the channel since this start: catch-up
        reads the history up to it, what follows arrived live."""
        return self._first_live.get(channel_id)

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
                   handle: Callable[[discord.Message], Awaitable[None]],
                   cursors: ChannelCursors | None = None,
                   stop: asyncio.Event | None = None) -> int:
    """Read what each channel got since its last seen message up to the start (or the first
    message the gateway delivered there, per `cursors`); the messages handed to `handle`,
    oldest first. A channel with no saved position whose whole window was read is recorded in
    `cursors` as read up to the start, so the next start does not read it again. `stop` ends
    it between two messages (never inside a database write). Returns how many messages were
    read."""
    if limits.window_hours <= 0 or limits.per_channel <= 0:
        return 0
    try:
        return await _catch_up(client, storage, limits, handle, cursors, stop or asyncio.Event())
    except Exception as exc:  # the client closing under it, Discord, storage: serve on
        log.warning("discord: catch-up stopped: %s: %s", type(exc).__name__, exc)
        return 0


async def _catch_up(client: discord.Client, storage: Storage, limits: CatchUpLimits,
                    handle: Callable[[discord.Message], Awaitable[None]],
                    cursors: ChannelCursors | None, stop: asyncio.Event) -> int:
    now = datetime.now(UTC)
    started = discord.utils.time_snowflake(now)
    floor = discord.utils.time_snowflake(now - timedelta(hours=limits.window_hours))
    last_seen: dict[int, int | None] = {
        int(chat_id): int(last) for chat_id, last in
        (await storage.channel_cursors(PLATFORM)).items()}
    for readable in _readable_channels(client):
        last_seen.setdefault(readable.id, None)  # never seen: the window is all there is
    read = 0
    for channel_id, last in last_seen.items():
        if stop.is_set():
            break
        channel = client.get_channel(channel_id)
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            continue  # gone, or a channel this shard does not serve
        after = discord.Object(id=max(last or 0, floor))
        first_live = cursors.first_live(channel_id) if cursors is not None else None
        # Up to the start only: what is posted since arrives through the gateway.
        before = discord.Object(id=min(started, first_live or started))
        count, complete = 0, True
        try:
            async for message in channel.history(after=after, before=before,
                                                 limit=limits.per_channel, oldest_first=True):
                if stop.is_set():
                    complete = False
                    break
                count += 1
                await handle(message)
        except discord.HTTPException as exc:  # no Read Message History there (see /check)
            log.warning("discord: cannot read the history of #%s: %s", channel.name, exc)
            complete = False
        if last is None and complete and count < limits.per_channel and cursors is not None:
            cursors.seen(channel_id, started)
        if count:
            log.info("discord: caught up %d messages in #%s%s", count, channel.name,
                     " (cap reached)" if count >= limits.per_channel else "")
        read += count
    return read


def _readable_channels(client: discord.Client) -> Iterator[discord.TextChannel | discord.Thread]:
    """The text channels and active threads of the bot's guilds whose history it may read."""
    for guild in client.guilds:
        me = guild.me
        channels: list[discord.TextChannel | discord.Thread] = [*guild.text_channels,
                                                                 *guild.threads]
        for channel in channels:
            if me is None or channel.permissions_for(me).read_message_history:
                yield channel
