"""The one image-format policy: which files are images the bot reads, by declared MIME type or
file name, whatever the platform (chat adapters, the console). The table of formats itself lives
in `storage.image_formats`, so that storage, which stores only these, needs nothing of the bot.
"""

from __future__ import annotations

from storage.image_formats import FORMATS

IMAGE_MIME_TYPES = frozenset(m for f in FORMATS for m in f.mime_types)
IMAGE_EXTENSIONS = frozenset(e for f in FORMATS for e in f.file_extensions)
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
