"""The one media policy: which files the bot reads, by declared MIME type or file name, whatever
the platform (chat adapters, the console): still images and clips (videos, GIFs, animated
stickers). The tables of formats live in `storage.image_formats` and `storage.clip_formats`, so
that storage, which stores only these, needs nothing of the bot. Whether a GIF, WebP or PNG moves
is learnt from its bytes when it is decoded (`inference.clips`).
"""

from __future__ import annotations

from storage import clip_formats
from storage.image_formats import FORMATS

IMAGE_MIME_TYPES = frozenset(m for f in FORMATS for m in f.mime_types)
IMAGE_EXTENSIONS = frozenset(e for f in FORMATS for e in f.file_extensions)
CLIP_MIME_TYPES = frozenset(m for f in clip_formats.FORMATS for m in f.mime_types)
CLIP_EXTENSIONS = frozenset(e for f in clip_formats.FORMATS for e in f.file_extensions)
READABLE = ", ".join(f.name for f in FORMATS[:-1]) + f" and {FORMATS[-1].name}"
READABLE_CLIPS = ", ".join(f.name for f in clip_formats.FORMATS[:-1]) + (
    f" and {clip_formats.FORMATS[-1].name}"
)


def _mime(mime_type: str | None) -> str:
    return (mime_type or "").split(";")[0].strip().lower()


def _has_image_extension(file_name: str | None) -> bool:
    name = (file_name or "").lower()
    return any(name.endswith(ext) for ext in IMAGE_EXTENSIONS)


def _has_clip_extension(file_name: str | None) -> bool:
    name = (file_name or "").lower()
    return any(name.endswith(ext) for ext in CLIP_EXTENSIONS)


def is_readable_image(mime_type: str | None, file_name: str | None) -> bool:
    """A readable image by its declared type, or by its name when no type is given."""
    kind = _mime(mime_type)
    if kind and kind != "application/octet-stream":
        return kind in IMAGE_MIME_TYPES
    return _has_image_extension(file_name)


def is_readable_clip(mime_type: str | None, file_name: str | None) -> bool:
    """A video or animated sticker the bot reads (MP4, MOV, WebM, TGS), by declared type, or
    by name when no type is given. GIF, WebP and APNG are images by type (and clips by
    content)."""
    kind = _mime(mime_type)
    if kind and kind != "application/octet-stream":
        return kind in CLIP_MIME_TYPES
    return _has_clip_extension(file_name)


def is_readable_media(mime_type: str | None, file_name: str | None) -> bool:
    """Anything the bot labels: a readable image or clip (what adapters pass to the service)."""
    return is_readable_image(mime_type, file_name) or is_readable_clip(mime_type, file_name)


def is_other_image(mime_type: str | None) -> bool:
    """An image in a format the bot does not read (SVG, HEIC, ...): worth telling the poster,
    unlike a PDF or a text file, which are simply not memes."""
    kind = _mime(mime_type)
    return kind.startswith("image/") and kind not in IMAGE_MIME_TYPES


def is_other_video(mime_type: str | None) -> bool:
    """A video in a container the bot does not read (AVI, MPEG-TS, ...): worth telling the
    poster."""
    kind = _mime(mime_type)
    return kind.startswith("video/") and kind not in CLIP_MIME_TYPES


def claims_image(mime_type: str | None, file_name: str) -> bool:
    """An upload that says it is an image (by type or name); storage then proves it decodes.
    Unread image types pass too, so that their poster hears why they are refused."""
    kind = _mime(mime_type)
    if kind.startswith("image/"):
        return True
    return kind in ("", "application/octet-stream") and _has_image_extension(file_name)


def claims_media(mime_type: str | None, file_name: str) -> bool:
    """An upload that says it is an image or a clip (by type or name); decoding proves it."""
    kind = _mime(mime_type)
    if kind.startswith("video/") or kind in CLIP_MIME_TYPES:
        return True
    if kind in ("", "application/octet-stream") and _has_clip_extension(file_name):
        return True
    return claims_image(mime_type, file_name)
