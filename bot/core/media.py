"""The one image-format policy: which files are images the bot reads, by declared MIME type, file
name or decoded format, whatever the platform (chat adapters, the console, storage)."""

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

IMAGE_MIME_TYPES = frozenset(m for f in FORMATS for m in f.mime_types)
IMAGE_EXTENSIONS = frozenset(e for f in FORMATS for e in f.file_extensions)
# Pillow format name -> the extension its blob is stored under.
STORED_EXTENSIONS = {p: f.extension for f in FORMATS for p in f.pillow}
READABLE = ", ".join(f.name for f in FORMATS[:-1]) + f" and {FORMATS[-1].name}"


def _mime(mime_type: str | None) -> str:
    return (mime_type or "").split(";")[0].strip().lower()


def _has_image_extension(file_name: str | None) -> bool:
    name = (file_name or "").lower()
    return any(name.endswith(ext) for ext in IMAGE_EXTENSIONS)


def is_readable_image(mime_type: str | None, file_name: str | None) -> bool:
    """A readable image by its declared type, or by its name when no type is given."""
    kind = _mime(mime_type)
    if kind and kind != "application/octet-stream":
        return kind in IMAGE_MIME_TYPES
    return _has_image_extension(file_name)


def is_other_image(mime_type: str | None) -> bool:
    """An image in a format the bot does not read (SVG, HEIC, ...): worth telling the poster,
    unlike a PDF or a text file, which are simply not memes."""
    kind = _mime(mime_type)
    return kind.startswith("image/") and kind not in IMAGE_MIME_TYPES


def claims_image(mime_type: str | None, file_name: str) -> bool:
    """An upload that says it is an image (by type or name); storage then proves it decodes.
    Unread image types pass too, so that their poster hears why they are refused."""
    kind = _mime(mime_type)
    if kind.startswith("image/"):
        return True
    return kind in ("", "application/octet-stream") and _has_image_extension(file_name)
