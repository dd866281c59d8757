"""What the console shows of a stored post: its picture (a still, a GIF, or a clip's poster
frame) and, for a clip a browser can play, the clip itself; and the Content-Type each stored
blob is served with (`/img/<sha256>`)."""

from __future__ import annotations

from typing import Any

from storage import clip_formats, image_formats
from storage.records import Post

# Stored blob extension -> the type it is served as.
MEDIA_TYPES: dict[str, str] = {
    **{f.extension: f.mime_types[0] for f in image_formats.FORMATS},
    **{f.extension: f.mime_types[0] for f in clip_formats.FORMATS},
}
# Clips a browser plays in a <video> (a TGS sticker is shown by its poster frame only).
PLAYABLE = frozenset({"mp4", "mov", "webm"})
STILL_EXTENSIONS = frozenset(f.extension for f in image_formats.FORMATS)


def blob_url(sha256: str) -> str:
    return f"/img/{sha256}"


def media_json(post: Post) -> dict[str, Any]:
    """The card's picture (`image`, with its size) and, for a playable clip, `video` (its URL)
    with `video_type`; `media_kind` says what was posted (still, animation, video, sticker)."""
    image = post.image
    shown = image if image.extension in STILL_EXTENSIONS else post.picture
    playable = image.extension in PLAYABLE
    return {
        "image": blob_url(shown.sha256),
        "width": shown.width,
        "height": shown.height,
        "media_kind": post.media_kind,
        "video": blob_url(image.sha256) if playable else None,
        "video_type": MEDIA_TYPES[image.extension] if playable else None,
        "duration_s": post.duration_s,
    }
