"""Uploaded files handed to the core's `MemeService.handle_post`.

The core fetches every image through a `Downloader`. The console's images arrive in the
request body instead, so the console gives its own `MemeService` (same storage, model, queue
and switcher as the chat adapters) an `UploadInbox`: a Downloader whose "URLs" are one-time
keys of uploads held in memory. Nothing here ever opens a file by a user-given name.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections import OrderedDict

from bot.core.downloads import Download, Downloader, DownloadError

SCHEME = "console-upload:"
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".jfif"}
)
MAX_NAME_CHARS = 120


class UploadInbox(Downloader):
    """`fetch("console-upload:<key>")` returns (once) the bytes `put` stored under the key."""

    def __init__(self, *, max_bytes: int) -> None:
        super().__init__((), max_bytes=max_bytes, timeout_s=1.0)
        self._pending: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        key = secrets.token_hex(16)
        self._pending[key] = data
        return SCHEME + key

    def discard(self, url: str) -> None:
        self._pending.pop(url.removeprefix(SCHEME), None)

    def check_url(self, url: str) -> None:
        if not url.startswith(SCHEME):
            raise DownloadError("the console only reads uploaded files")

    async def fetch(self, url: str) -> Download:
        self.check_url(url)
        data = self._pending.pop(url.removeprefix(SCHEME), None)
        if data is None:
            raise DownloadError("the upload is no longer available")
        self.check_size(len(data))
        return Download(data=data, sha256=hashlib.sha256(data).hexdigest())


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
