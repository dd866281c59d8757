"""The moving formats memebot reads and stores, beside `storage.image_formats` (the pictures,
of which animated GIF, WebP and APNG are clips by content): one table for storage, the chat
adapters and the console (`bot.core.media` asks it which posts are clips)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClipFormat:
    name: str  # as people know it
    container: str  # what `sniff` calls it
    extension: str  # what a stored blob is named with
    mime_types: tuple[str, ...]
    file_extensions: tuple[str, ...]


FORMATS: tuple[ClipFormat, ...] = (
    ClipFormat("MP4", "mp4", "mp4", ("video/mp4", "video/x-m4v", "video/3gpp"),
               (".mp4", ".m4v", ".3gp")),
    ClipFormat("MOV", "mp4", "mov", ("video/quicktime",), (".mov", ".qt")),
    ClipFormat("WebM", "webm", "webm", ("video/webm", "video/x-matroska"), (".webm", ".mkv")),
    # Telegram's animated stickers: gzipped Lottie JSON.
    ClipFormat("TGS", "tgs", "tgs", ("application/x-tgsticker",), (".tgs",)),
)

# `sniff`'s container name -> the extension its blob is stored under (MOV is stored as MP4:
# one container family, whose bytes say which brand they are).
STORED_EXTENSIONS = {f.container: f.extension for f in FORMATS if f.name != "MOV"}


def sniff(data: bytes) -> str | None:
    """The container a file's first bytes announce, among the formats that may move (picture
    formats too: whether one moves is learnt when it is opened)."""
    head = data[:64]
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"  # Matroska, of which WebM is a profile
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mp4"  # ISO base media: MP4, MOV, M4V, 3GP
    if head.startswith(b"\x1f\x8b"):
        return "tgs"  # gzip: a Telegram animated sticker (its JSON is checked when read)
    return None
