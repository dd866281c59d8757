"""The image formats memebot reads and stores (one table for storage, the chat adapters and the
console: `bot.core.media` asks it which posts are images)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    name: str  # as people know it
    pillow: tuple[str, ...]  # Pillow's format names for it
    extension: str  # what a stored blob is named with
    mime_types: tuple[str, ...]
    file_extensions: tuple[str, ...]


FORMATS: tuple[ImageFormat, ...] = (
    # MPO: the multi-picture JPEG that phones write.
    ImageFormat("JPEG", ("JPEG", "MPO"), "jpg", ("image/jpeg", "image/pjpeg"),
                (".jpg", ".jpeg", ".jfif")),
    ImageFormat("PNG", ("PNG",), "png", ("image/png", "image/apng"), (".png", ".apng")),
    ImageFormat("WebP", ("WEBP",), "webp", ("image/webp",), (".webp",)),
    ImageFormat("GIF", ("GIF",), "gif", ("image/gif",), (".gif",)),
    ImageFormat("BMP", ("BMP",), "bmp", ("image/bmp", "image/x-ms-bmp"), (".bmp",)),
    ImageFormat("TIFF", ("TIFF",), "tiff", ("image/tiff",), (".tif", ".tiff")),
)

# Pillow format name -> the extension its blob is stored under.
STORED_EXTENSIONS = {p: f.extension for f in FORMATS for p in f.pillow}
