"""Helpers for uploaded files, which the console hands to `MemeService.handle_upload`:
display names, the image-type check, and the names of recent uploads.

Nothing here ever opens a file by a user-given name.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".jfif"}
)
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


def looks_like_image(content_type: str | None, file_name: str) -> bool:
    """The declared type or the extension must claim an image; storage then proves it decodes."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind.startswith("image/"):
        return True
    if kind not in ("", "application/octet-stream"):
        return False
    dot = file_name.rfind(".")
    return dot >= 0 and file_name[dot:].lower() in IMAGE_EXTENSIONS


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
