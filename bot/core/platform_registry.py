"""What each platform this process runs has registered while it runs (its outbox, so that the
console's desk can act in Telegram's chats; its setup probe, for /check). Adapters register
at start and take it back when they stop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PlatformRegistry(Generic[T]):
    def __init__(self) -> None:
        self._by_platform: dict[str, T] = {}

    def register(self, platform: str, item: T) -> Callable[[], None]:
        """Returns the call that takes it back (the adapter stopped)."""
        self._by_platform[platform] = item

        def unregister() -> None:
            if self._by_platform.get(platform) is item:
                del self._by_platform[platform]

        return unregister

    def get(self, platform: str) -> T | None:
        return self._by_platform.get(platform)
