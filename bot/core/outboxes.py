"""The outbox of each platform this process runs, so that one adapter's page can act in
another's chats (the console's desk allows a meme held from Telegram: the Telegram adapter
re-posts it). Adapters register theirs while they run."""

from __future__ import annotations

from collections.abc import Callable

from bot.core.messages import Outbox


class Outboxes:
    def __init__(self) -> None:
        self._by_platform: dict[str, Outbox] = {}

    def register(self, platform: str, outbox: Outbox) -> Callable[[], None]:
        """Returns the call that takes it back (the adapter stopped)."""
        self._by_platform[platform] = outbox

        def unregister() -> None:
            if self._by_platform.get(platform) is outbox:
                del self._by_platform[platform]

        return unregister

    def get(self, platform: str) -> Outbox | None:
        return self._by_platform.get(platform)
