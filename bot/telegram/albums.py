"""Telegram albums: the messages of one `media_group_id` arrive as separate updates, one per
item, with nothing saying how many will follow. They are gathered until none has come for a
short window (or the album is full) and then handed on together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from telegram import Message

MAX_ITEMS = 10  # Telegram's largest album
AlbumHandler = Callable[[list[Message]], Awaitable[None]]


@dataclass
class _Gathering:
    items: list[Message]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class AlbumCollector:
    """`add` each album message (from its own update handler); the first one's call waits
    until `window_s` passes without another item of the same album (at most MAX_ITEMS
    windows), then calls `handle` with the items in message order. The others return at once."""

    def __init__(self, window_s: float, handle: AlbumHandler) -> None:
        self.window_s = window_s
        self.handle = handle
        self._open: dict[tuple[int, str], _Gathering] = {}

    async def add(self, message: Message) -> None:
        key = (message.chat_id, str(message.media_group_id))
        gathering = self._open.get(key)
        if gathering is not None:
            if message.message_id not in {m.message_id for m in gathering.items}:
                gathering.items.append(message)  # a redelivered update adds nothing
            gathering.arrived.set()
            return
        gathering = _Gathering([message])
        self._open[key] = gathering
        try:
            for _ in range(MAX_ITEMS):  # bounded even if redeliveries keep it awake
                if len(gathering.items) >= MAX_ITEMS:
                    break
                gathering.arrived.clear()
                try:
                    await asyncio.wait_for(gathering.arrived.wait(), self.window_s)
                except TimeoutError:
                    break
        finally:
            del self._open[key]
        await self.handle(sorted(gathering.items, key=lambda m: m.message_id))
