"""A decoded clip as storage records it (`storage.intake.ClipMedia`): shared by the bot, which
decodes clips to label them, and `memebot db import`, which decodes an exported tree's clips to
store them again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inference.clips import ClipLimits, MediaFacts, MediaKind, facts, is_moving, load_media
from inference.errors import ImageError
from storage.errors import BlobError
from storage.intake import ClipMedia

if TYPE_CHECKING:
    from config.settings import Settings


def clip_limits(settings: Settings) -> ClipLimits:
    """The bounds on one clip's decode, from the settings."""
    return ClipLimits(max_bytes=settings.max_download_bytes, max_pixels=settings.clip_max_pixels,
                      max_duration_s=settings.clip_max_duration_s,
                      decode_timeout_s=settings.clip_decode_timeout_s,
                      frames=settings.clip_frames)


def clip_media(media: MediaFacts, posted_as: str | None = None) -> ClipMedia | None:
    """What storage records of a clip (None for a still). A clip the platform posted as a
    sticker (Telegram's WebM stickers) is recorded as one; its bytes only say it is a video."""
    if media.poster is None:
        return None
    kind = MediaKind.sticker if posted_as == "sticker" else media.kind
    return ClipMedia(kind.value, media.container, media.width, media.height,
                     media.duration_s, media.frames_used, media.poster)


def read_clip(data: bytes, limits: ClipLimits) -> ClipMedia | None:
    """Decode a file that moves into what storage records of it (None for a still picture);
    blocking, run it in a thread. Raises BlobError for a clip that does not decode."""
    if not is_moving(data):
        return None
    try:
        return clip_media(facts(load_media(data, limits=limits)))
    except ImageError as exc:
        raise BlobError(f"the clip does not decode ({exc})") from exc
