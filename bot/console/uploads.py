"""Helpers for uploaded files, which the console hands to `MemeService.handle_upload`:
display names and the names of recent uploads (which files are images: `bot.core.media`).

Nothing here ever opens a file by a user-given name.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict

MAX_NAME_CHARS = 120


def display_file_name(raw: str | None) -> str:
    """A file name fit for display only: no directories, no control characters, bounded.

    It is never used as a path, and the page inserts it as text (never as HTML).
    """
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if len(name) > MAX_NAME_CHARS:
        name = name[: MAX_NAME_CHARS - 1] + "…"
    return name or "upload"


class NameMemory:
    """The file name each console post was uploaded under (in memory, most recent N)."""

    def __init__(self, capacity: int = 5000) -> None:
        self._capacity = capacity
        self._names: OrderedDict[int, str] = OrderedDict()

    def remember(self, post_id: int, name: str) -> None:
        self._names[post_id] = name
        self._names.move_to_end(post_id)
        while len(self._names) > self._capacity:
            self._names.popitem(last=False)

    def get(self, post_id: int) -> str | None:
        return self._names.get(post_id)
