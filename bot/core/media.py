"""Which files are images the bot reads, by MIME type or file name, whatever the platform."""

from __future__ import annotations

IMAGE_MIME_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"})
READABLE = "JPEG, PNG, WebP and GIF"


def is_readable_image(mime_type: str | None, file_name: str | None) -> bool:
    """A JPEG/PNG/WebP/GIF by its declared type, or by its name when no type is given."""
    if mime_type:
        return mime_type.split(";")[0].strip().lower() in IMAGE_MIME_TYPES
    name = (file_name or "").lower()
    return any(name.endswith(ext) for ext in IMAGE_EXTENSIONS)


def is_other_image(mime_type: str | None) -> bool:
    """An image in a format the bot does not read (SVG, TIFF, HEIC, ...): worth telling the
    poster, unlike a PDF or a text file, which are simply not memes."""
    kind = (mime_type or "").split(";")[0].strip().lower()
    return kind.startswith("image/") and kind not in IMAGE_MIME_TYPES
