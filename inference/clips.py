"""Any posted file, still or moving, as a short list of RGB frames worth classifying.

API for adapters (bot/telegram, bot/discord, bot/console):
- Pass the file's bytes as they are (MP4/H.264, MOV, WebM VP8/VP9, GIF, animated WebP, APNG,
  Telegram TGS stickers, or any still image) to the unchanged `MemeService.handle_post` /
  `handle_upload`; what the file is comes from its bytes, not from its name. Which posts to pass
  is decided by `bot.core.media.is_readable_media(mime_type, file_name)` (the formats table:
  `storage.image_formats` for pictures, `storage.clip_formats` for the moving ones).
- A bad clip comes back as `PostOutcome(status=PostStatus.unreadable, reason=...)`, with the
  reply worded by `bot.core.formatting`; over the size limit: `PostStatus.too_large`. The
  reasons are `MediaError`s raised here (damaged or truncated file, sound only, no frame
  decodes, frames too large, too long, too many frames, too slow to decode).
- A labelled clip's `PostOutcome.post` carries `media_kind` ("still", "animation", "video",
  "sticker"), `duration_s`, `frames_used` and its poster frame (a JPEG blob).

How frames are chosen: frames are decoded one at a time (PyAV for video containers, GIF and
APNG; Pillow for animated WebP, which FFmpeg cannot decode; rlottie for TGS), downscaled at once,
and at most `2 * frames` evenly spaced candidates are kept (the spacing doubles as the clip
goes on, so its length need not be known). Near-uniform candidates (black or white fades,
blank end cards) and near-duplicates are dropped, and up to `frames` evenly spaced ones remain.
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from inference.errors import ImageError
from inference.preprocess import DEFAULT_MAX_PIXELS, load_image, open_image
from storage.clip_formats import sniff

log = logging.getLogger(__name__)

# A frame is blank (a fade, an end card) when this share of its 32x32 grey thumbnail is
# within UNIFORM_TOLERANCE grey levels of its median.
UNIFORM_SHARE = 0.97
UNIFORM_TOLERANCE = 12
# Two kept frames are the same picture when their 16x16 grey thumbnails differ by less than
# this many grey levels on average.
DUPLICATE_DIFF = 3.0
# At most this many kept frames per second of clip: a 1 s loop is not looked at 8 times.
FRAMES_PER_SECOND = 2.0
# Clips longer than this skip the frames no other frame refers to (B-frames).
SKIM_AFTER_S = 4.0
# A TGS is a gzipped JSON of a few kB; anything that inflates past this is refused.
MAX_TGS_JSON = 8 * 2**20


class MediaKind(StrEnum):
    still = "still"
    animation = "animation"  # animated GIF/WebP/APNG, or a video without sound (Telegram GIFs)
    video = "video"  # a video with a sound track
    sticker = "sticker"  # an animated Telegram (TGS, Lottie) sticker


class MediaError(ImageError):
    """A file that is no classifiable clip; the message is the reason, worded for its poster."""


@dataclass(frozen=True)
class ClipLimits:
    """Bounds on one clip's decode (from `config.settings`)."""

    max_bytes: int = 20 * 2**20  # Telegram's getFile stops at 20 MB
    max_pixels: int = 4096 * 4096  # per frame, checked in the header before decoding
    max_duration_s: float = 600.0
    max_frames: int = 50_000  # frames in the file (header or counted while decoding)
    decode_timeout_s: float = 20.0
    frames: int = 8  # frames classified at most
    frame_side: int = 768  # frames are downscaled to this longest side as they are decoded


@dataclass(frozen=True)
class Media:
    """What a file showed: one frame for a still, up to `ClipLimits.frames` for a clip."""

    kind: MediaKind
    frames: tuple[Image.Image, ...]  # RGB, in time order
    times_s: tuple[float, ...]
    duration_s: float | None  # None for a still
    container: str  # "jpeg", "png", "gif", "webp", "mp4", "webm", "tgs", ...
    width: int  # of the file's frames, before any downscaling
    height: int
    decoded_frames: int = 1

    @property
    def is_clip(self) -> bool:
        return self.kind is not MediaKind.still

    @property
    def poster(self) -> Image.Image:
        """The frame shown for the clip (console card, admin log, thumbnails)."""
        return self.frames[0]


POSTER_QUALITY = 85


@dataclass(frozen=True)
class MediaFacts:
    """What is recorded about a post's media beside its label."""

    kind: MediaKind
    duration_s: float | None = None
    frames_used: int = 1
    container: str = ""  # `storage.clip_formats.sniff`'s name for a clip's file
    width: int = 0
    height: int = 0
    # A clip's poster frame as JPEG; None for a still (it is its own poster).
    poster: bytes | None = field(default=None, repr=False)


def facts(media: Media, frames_used: int | None = None) -> MediaFacts:
    """The facts to store for decoded media; encodes a clip's poster frame."""
    if not media.is_clip:
        return MediaFacts(MediaKind.still)
    buf = io.BytesIO()
    media.poster.save(buf, format="JPEG", quality=POSTER_QUALITY)
    used = len(media.frames) if frames_used is None else frames_used
    return MediaFacts(media.kind, media.duration_s, used, media.container, media.width,
                      media.height, buf.getvalue())


# ------------------------------------------------------------------------------ recognising


def _is_animated(img: Image.Image) -> bool:
    try:
        return bool(getattr(img, "is_animated", False))
    except (OSError, SyntaxError, ValueError, EOFError):
        return False  # a damaged second frame: the still path reads the first, or says why


def _animated_picture(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _is_animated(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False  # the still path gives the reason


def is_moving(data: bytes) -> bool:
    """True for a file decoded as a clip: a video container, a TGS, or a picture format that
    holds more than one frame."""
    container = sniff(data)
    if container in ("gif", "png", "webp"):
        return _animated_picture(data)
    return container is not None


# ------------------------------------------------------------------------------ sampling


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds
        self._seconds = seconds

    def check(self) -> None:
        if time.monotonic() > self._end:
            raise MediaError(f"the clip takes too long to decode (over {self._seconds:g} s)")


class _Sampler:
    """Keeps at most `capacity` evenly spaced frames of a stream of unknown length: every
    `stride`-th frame, the stride doubling (and every other kept frame going) when full."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(2, capacity)
        self.stride = 1
        self.seen = 0
        self.kept: list[tuple[float, Image.Image]] = []

    def offer(self, t: float, make: Callable[[], Image.Image]) -> None:
        """`make` converts the frame, called only for a frame that is kept."""
        if self.seen % self.stride == 0:
            self.kept.append((t, make()))
            if len(self.kept) > self.capacity:
                self.kept = self.kept[::2]
                self.stride *= 2
        self.seen += 1


def _grey(img: Image.Image, side: int) -> np.ndarray:
    small = img.convert("L").resize((side, side), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32)


def is_uniform(img: Image.Image) -> bool:
    """A blank frame: one colour nearly everywhere (a fade, a black intro, an end card)."""
    grey = _grey(img, 32)
    share = float((np.abs(grey - np.median(grey)) <= UNIFORM_TOLERANCE).mean())
    return share >= UNIFORM_SHARE


def choose_frames(
    candidates: list[tuple[float, Image.Image]], count: int
) -> list[tuple[float, Image.Image]]:
    """Up to `count` evenly spaced frames, without blank frames and near-duplicates; a clip
    that is blank throughout keeps its most varied frame."""
    if not candidates:
        return []
    shown = [c for c in candidates if not is_uniform(c[1])]
    if not shown:
        return [max(candidates, key=lambda c: float(_grey(c[1], 32).std()))]
    distinct: list[tuple[float, Image.Image]] = []
    last: np.ndarray | None = None
    for t, img in shown:
        thumb = _grey(img, 16)
        if last is None or float(np.abs(thumb - last).mean()) >= DUPLICATE_DIFF:
            distinct.append((t, img))
            last = thumb
    if len(distinct) <= count:
        return distinct
    picks = np.linspace(0, len(distinct) - 1, count).round().astype(int)
    return [distinct[i] for i in sorted(set(picks.tolist()))]


def frames_for(duration_s: float | None, limit: int) -> int:
    """How many frames a clip of this length is worth (fewer for short clips)."""
    if duration_s is None or duration_s <= 0:
        return limit
    return max(1, min(limit, math.ceil(duration_s * FRAMES_PER_SECOND)))


def _fit(width: int, height: int, side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _flatten(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    if img.mode == "RGB":
        return img
    rgba = img.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, background)
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def _check_size(width: int, height: int, limits: ClipLimits) -> None:
    if width <= 0 or height <= 0:
        raise MediaError("the clip's frames have no pixels")
    if width * height > limits.max_pixels:
        raise MediaError(f"the clip's frames are too large ({width}x{height} pixels)")


def _check_length(duration_s: float | None, frame_count: int | None, limits: ClipLimits) -> None:
    if duration_s is not None and duration_s > limits.max_duration_s:
        raise MediaError(
            f"the clip is too long ({duration_s:,.0f} s; the limit is {limits.max_duration_s:g} s)"
        )
    if frame_count is not None and frame_count > limits.max_frames:
        raise MediaError(f"the clip has too many frames ({frame_count:,})")


# ------------------------------------------------------------------------------ decoders


@dataclass
class _Decoded:
    candidates: list[tuple[float, Image.Image]]
    duration_s: float | None
    width: int
    height: int
    decoded: int
    has_sound: bool = False


def _decode_av(data: bytes, limits: ClipLimits, background: tuple[int, int, int],
               deadline: _Deadline) -> _Decoded:
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        log.debug("container does not open: %r", exc)
        raise MediaError("the file is damaged or not a clip") from exc
    with container:
        if not container.streams.video:
            if container.streams.audio:
                raise MediaError("the file is sound only, with no picture")
            raise MediaError("the file holds no video")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        _check_size(width, height, limits)
        duration: float | None = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        _check_length(duration, stream.frames or None, limits)
        stream.thread_type = "AUTO"
        if duration is not None and duration > SKIM_AFTER_S:
            # Frames nothing else refers to need not be decoded: a long clip has frames to
            # spare, and this halves the decoding of a 10 s H.264 clip (its B-frames).
            stream.codec_context.skip_frame = "NONREF"
        sampler = _Sampler(2 * frames_for(duration, limits.frames))
        decoded = 0
        try:
            for frame in container.decode(stream):
                deadline.check()
                decoded += 1
                if decoded > limits.max_frames:
                    raise MediaError(f"the clip has too many frames (over {limits.max_frames:,})")
                if frame.width * frame.height > limits.max_pixels:
                    _check_size(frame.width, frame.height, limits)
                t = float(frame.time) if frame.time is not None else decoded - 1.0

                def convert(frame: av.VideoFrame = frame) -> Image.Image:
                    alpha = any(c.is_alpha for c in frame.format.components)
                    fitted = _fit(frame.width, frame.height, limits.frame_side)
                    out = frame.reformat(width=fitted[0], height=fitted[1],
                                         format="rgba" if alpha else "rgb24")
                    mode = "RGBA" if alpha else "RGB"
                    return _flatten(Image.fromarray(out.to_ndarray(), mode), background)

                sampler.offer(t, convert)
        except MediaError:
            raise
        except (av.FFmpegError, ValueError, OSError) as exc:
            # A truncated or partly damaged clip: what decoded before the damage still counts
            # (ValueError: a frame whose pixel format cannot be converted).
            log.debug("decoding stopped after %d frames: %r", decoded, exc)
            if not sampler.kept:
                raise MediaError("the clip is damaged (no frame decodes)") from exc
        if not sampler.kept:
            raise MediaError("no frame of the clip decodes")
        if duration is None or duration <= 0:
            duration = sampler.kept[-1][0] if len(sampler.kept) > 1 else None
        return _Decoded(sampler.kept, duration, width, height, decoded,
                        has_sound=bool(container.streams.audio))


def _decode_webp(img: Image.Image, limits: ClipLimits, background: tuple[int, int, int],
                 deadline: _Deadline) -> _Decoded:
    """Animated WebP, which FFmpeg's WebP decoder does not read, through Pillow."""
    with img:
        width, height = img.size
        _check_size(width, height, limits)
        count = int(getattr(img, "n_frames", 1))
        _check_length(None, count, limits)
        sampler = _Sampler(2 * limits.frames)
        t = 0.0
        try:
            for i in range(count):
                deadline.check()
                img.seek(i)

                def convert(img: Image.Image = img) -> Image.Image:
                    frame = img.convert("RGBA")
                    frame.thumbnail(_fit(width, height, limits.frame_side))
                    return _flatten(frame, background)

                sampler.offer(t, convert)
                t += float(img.info.get("duration", 100) or 100) / 1000
        except MediaError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            log.debug("animated WebP stopped at frame %d: %r", sampler.seen, exc)
        if not sampler.kept:
            raise MediaError("no frame of the clip decodes")
        _check_length(t, None, limits)
        return _Decoded(sampler.kept, t, width, height, sampler.seen)


def _tgs_json(data: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(data, MAX_TGS_JSON)
    except zlib.error as exc:
        raise MediaError("the sticker is damaged") from exc
    if inflater.unconsumed_tail:
        raise MediaError("the sticker is too large once unpacked")
    return text


def _decode_tgs(data: bytes, limits: ClipLimits, background: tuple[int, int, int],
                deadline: _Deadline) -> _Decoded:
    from rlottie_python import LottieAnimation  # loads a native library: only when needed

    text = _tgs_json(data)
    try:
        doc = json.loads(text)
        width, height = int(doc["w"]), int(doc["h"])
        rate = float(doc["fr"])
        first, last = float(doc["ip"]), float(doc["op"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MediaError("the file is not an animated sticker (Lottie)") from exc
    _check_size(width, height, limits)
    frame_count = max(0, math.floor(last - first))
    if frame_count == 0:
        raise MediaError("the sticker has no frames")
    if rate <= 0:
        raise MediaError("the sticker has no frame rate")
    duration = frame_count / rate
    _check_length(duration, frame_count, limits)
    try:
        animation = LottieAnimation.from_data(json.dumps(doc))
    except (OSError, ValueError) as exc:
        raise MediaError("the sticker does not render") from exc
    try:
        total = int(animation.lottie_animation_get_totalframe())
        if total <= 0:
            raise MediaError("the sticker has no frames")
        size = _fit(width, height, min(limits.frame_side, 512))
        wanted = 2 * frames_for(duration, limits.frames)
        positions = sorted({int(p) for p in np.linspace(0, total - 1, min(total, wanted))})
        candidates = []
        for pos in positions:
            deadline.check()
            frame = animation.render_pillow_frame(frame_num=pos, width=size[0], height=size[1])
            candidates.append((pos / rate, _flatten(frame, background)))
    finally:
        animation.lottie_animation_destroy()
    return _Decoded(candidates, duration, width, height, len(candidates))


# ------------------------------------------------------------------------------ entry point


def load_media(
    data: bytes,
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    limits: ClipLimits | None = None,
) -> Media:
    """A still (one frame, exactly as `load_image` decodes it) or a clip's chosen frames.

    Raises ImageError for a bad still and MediaError (an ImageError) for a bad clip.
    """
    limits = limits or ClipLimits()
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise MediaError(f"the file is too large ({len(data) / 2**20:.1f} MB; "
                         f"the limit is {limits.max_bytes / 2**20:g} MB)")
    container = sniff(data)
    picture: Image.Image | None = None
    if container in (None, "gif", "png", "webp"):
        picture = open_image(data, max_pixels)  # opened once: the still path decodes it
        # Only GIF, APNG and WebP move: a phone's MPO JPEG or a TIFF has pages, not frames.
        if container is None or not _is_animated(picture):
            img = load_image(picture, background=background, max_pixels=max_pixels)
            return Media(MediaKind.still, (img,), (0.0,), None, (picture.format or "").lower(),
                         img.width, img.height)
    assert container is not None
    deadline = _Deadline(limits.decode_timeout_s)
    if container == "webp" and picture is not None:
        out = _decode_webp(picture, limits, background, deadline)
    elif container == "tgs":
        out = _decode_tgs(data, limits, background, deadline)
    else:
        out = _decode_av(data, limits, background, deadline)
    chosen = choose_frames(out.candidates, frames_for(out.duration_s, limits.frames))
    kind = (MediaKind.sticker if container == "tgs"
            else MediaKind.video if out.has_sound else MediaKind.animation)
    return Media(
        kind=kind,
        frames=tuple(img for _, img in chosen),
        times_s=tuple(t for t, _ in chosen),
        duration_s=out.duration_s,
        container=container,
        width=out.width,
        height=out.height,
        decoded_frames=out.decoded,
    )

