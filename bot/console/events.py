"""Live updates for open pages: a fan-out of JSON events, streamed as server-sent events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

QUEUE_SIZE = 256


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[str | None]] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> asyncio.Queue[str | None]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self._subscribers.discard(queue)

    def publish(self, event: str, data: Any) -> None:
        message = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                # A stalled page: drop it; EventSource reconnects and reloads the feed.
                self._subscribers.discard(queue)
                queue.get_nowait()
                queue.put_nowait(None)

    def close(self) -> None:
        """End every stream (shutdown): each subscriber receives None."""
        for queue in list(self._subscribers):
            while queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
        self._subscribers.clear()
