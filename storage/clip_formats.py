"""The moving formats memebot reads and stores, beside `storage.image_formats` (the pictures,
of which animated GIF, WebP and APNG are clips by content): one table for storage, the chat
adapters and the console (`bot.core.media` asks it which posts are clips)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClipFormat:
    name: str  # as people know it
    container: str  # what `inference.clips.sniff` calls it
    extension: str  # what a stored blob is named with
    mime_types: tuple[str, ...]
    file_extensions: tuple[str, ...]


FORMATS: tuple[ClipFormat, ...] = (
    ClipFormat("MP4", "mp4", "mp4", ("video/mp4", "video/x-m4v", "video/3gpp"),
               (".mp4", ".m4v", ".3gp")),
    ClipFormat("MOV", "mov", "mov", ("video/quicktime",), (".mov", ".qt")),
    ClipFormat("WebM", "webm", "webm", ("video/webm", "video/x-matroska"), (".webm", ".mkv")),
    # Telegram's animated stickers: gzipped Lottie JSON.
    ClipFormat("TGS", "tgs", "tgs", ("application/x-tgsticker",), (".tgs",)),
)

# `inference.clips.sniff`'s container name -> the extension its blob is stored under (MOV and
# MP4 share one container family; their bytes say which brand they are).
STORED_EXTENSIONS = {f.container: f.extension for f in FORMATS}
