"""Clips as frames (inference/clips.py): every moving format decodes to a few frames sampled
across the clip, blank and repeated frames are dropped, and every bad file gets a clear
MediaError; the one Classifier labels a clip from its frames."""

from __future__ import annotations

import gzip
import io
import json
import struct
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from bot.core.classify_queue import Classified, classify_decoded
from inference.classifier import Classifier
from inference.clips import ClipLimits, MediaError, MediaKind, choose_frames, load_media
from inference.errors import ImageError
from storage.clip_formats import sniff
from tests.support.clipgen import encode_clip, tgs_sticker

SIZE = (96, 64)


def scene(i: int, colour: tuple[int, int, int] = (200, 40, 30)) -> Image.Image:
    """A meme-like frame: a coloured picture with a bar that moves, different every frame."""
    arr = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    arr[:, :] = colour
    arr[:, :, 2] = np.linspace(0, 255, SIZE[0], dtype=np.uint8)[None, :]
    top = (i * 5) % (SIZE[1] - 12)
    arr[top:top + 12, :, 1] = 255
    return Image.fromarray(arr)


def flat(value: int) -> Image.Image:
    return Image.new("RGB", SIZE, (value, value, value))


def frames_with(fade_in: int = 0, end_card: int = 0, count: int = 12) -> list[Image.Image]:
    return [flat(0)] * fade_in + [scene(i) for i in range(count)] + [flat(255)] * end_card


def apng(frames: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


def audio_only() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        samples = np.zeros((1, 8000), np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        container.mux(stream.encode(None))
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["mp4", "webm", "mov", "gif", "webp"])
def test_every_moving_format_decodes_to_frames_across_the_clip(kind: str) -> None:
    data = encode_clip(frames_with(count=18), kind, fps=6)
    media = load_media(data, limits=ClipLimits(frames=6))
    assert media.is_clip and media.kind is MediaKind.animation  # no sound track
    assert 2 <= len(media.frames) <= 6
    assert media.duration_s is not None and 2.5 <= media.duration_s <= 3.1
    assert media.times_s[0] < 0.6 and media.times_s[-1] > 2.0  # the whole clip, not its start
    assert all(f.mode == "RGB" and f.size == SIZE for f in media.frames)


def test_apng_and_tgs_decode_too() -> None:
    media = load_media(apng(frames_with(count=8)))
    assert media.kind is MediaKind.animation and media.container == "png"
    assert len(media.frames) >= 2
    sticker = load_media(tgs_sticker(frames=30))
    assert sticker.kind is MediaKind.sticker and sticker.container == "tgs"
    assert sticker.duration_s == pytest.approx(1.0)
    assert sticker.frames[0].mode == "RGB" and sticker.frames[0].size == (512, 512)


def test_a_still_stays_a_still_and_a_one_frame_gif_too() -> None:
    for fmt in ("PNG", "GIF", "WEBP"):
        buf = io.BytesIO()
        scene(0).save(buf, fmt)
        media = load_media(buf.getvalue())
        assert media.kind is MediaKind.still and len(media.frames) == 1
        assert media.duration_s is None


@pytest.mark.parametrize("kind", ["mp4", "webm", "gif"])
def test_black_fade_in_and_blank_end_card_are_not_looked_at(kind: str) -> None:
    data = encode_clip(frames_with(fade_in=6, end_card=6, count=12), kind, fps=6)
    media = load_media(data, limits=ClipLimits(frames=8))
    assert media.frames, "the clip's content is kept"
    for frame in media.frames:
        grey = np.asarray(frame.convert("L"), np.float32)
        assert grey.std() > 20, "no blank frame among the chosen ones"
    assert media.poster is media.frames[0]  # the poster is no black frame either


def test_a_still_clip_is_looked_at_once() -> None:
    media = load_media(encode_clip([scene(3)] * 12, "mp4"), limits=ClipLimits(frames=8))
    assert len(media.frames) == 1


def test_a_clip_blank_throughout_keeps_one_frame() -> None:
    chosen = choose_frames([(0.0, flat(0)), (0.5, flat(10)), (1.0, flat(255))], 4)
    assert len(chosen) == 1


def test_short_clips_get_fewer_frames() -> None:
    media = load_media(encode_clip(frames_with(count=3), "mp4", fps=6), limits=ClipLimits(frames=8))
    assert len(media.frames) <= 2  # 0.5 s: one frame per half second


def test_sampling_keeps_few_frames_of_a_long_clip() -> None:
    media = load_media(encode_clip(frames_with(count=120), "webm", fps=24),
                       limits=ClipLimits(frames=4))
    assert 40 <= media.decoded_frames <= 120 and len(media.frames) == 4
    assert media.times_s[-1] - media.times_s[0] > 2.5  # spread over the 5 s


# ---------------------------------------------------------------------------- bad files


def test_a_truncated_clip_is_read_as_far_as_it_goes_or_refused() -> None:
    data = encode_clip(frames_with(count=30), "mp4")
    with pytest.raises(MediaError, match=r"damaged|decode"):
        load_media(data[: len(data) // 3])
    webm = encode_clip(frames_with(count=30), "webm")
    media = load_media(webm[: int(len(webm) * 0.7)])  # Matroska streams: the start plays
    assert media.frames


@pytest.mark.parametrize("data, reason", [
    (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "damaged"),
    (b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 4, "damaged"),
    (b"\x1f\x8b" + b"\x00" * 50, "sticker"),
    (gzip.compress(b"not json"), "not an animated sticker"),
    (gzip.compress(json.dumps({"v": "5", "fr": 30, "ip": 0, "op": 0, "w": 64, "h": 64,
                               "layers": []}).encode()), "no frames"),
])
def test_corrupt_files_get_a_clear_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MediaError, match=reason):
        load_media(data)


def test_sound_only_is_refused() -> None:
    data = audio_only()
    assert sniff(data) == "mp4"
    with pytest.raises(MediaError, match="sound only"):
        load_media(data)


def test_huge_frames_in_a_header_are_refused_before_decoding() -> None:
    data = encode_clip(frames_with(count=4), "webm")
    with pytest.raises(MediaError, match="too large"):
        load_media(data, limits=ClipLimits(max_pixels=80 * 60))
    # A TGS header announcing a 100000 x 100000 canvas: refused before rendering.
    bomb = gzip.compress(json.dumps({"v": "5", "fr": 30, "ip": 0, "op": 30, "w": 100_000,
                                     "h": 100_000, "layers": []}).encode())
    with pytest.raises(MediaError, match="too large"):
        load_media(bomb)


def test_a_gif_header_with_huge_dimensions_is_refused() -> None:
    data = bytearray(encode_clip(frames_with(count=4), "gif"))
    data[6:10] = struct.pack("<HH", 65535, 65535)  # the logical screen of the header
    with pytest.raises(ImageError, match="too large"):
        load_media(bytes(data))


def test_absurd_lengths_and_frame_counts_are_refused() -> None:
    data = encode_clip(frames_with(count=30), "mp4", fps=6)
    with pytest.raises(MediaError, match="too long"):
        load_media(data, limits=ClipLimits(max_duration_s=2))
    with pytest.raises(MediaError, match="too many frames"):
        load_media(data, limits=ClipLimits(max_frames=10))
    sticker = gzip.compress(json.dumps({"v": "5", "fr": 1, "ip": 0, "op": 10**7, "w": 64,
                                        "h": 64, "layers": []}).encode())
    with pytest.raises(MediaError, match="too long"):
        load_media(sticker)


def test_a_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b'{"w": 1, "h": 1, "x": "' + b"a" * (20 * 2**20) + b'"}')
    with pytest.raises(MediaError, match="too large once unpacked"):
        load_media(bomb)


def test_oversize_files_and_slow_decodes_are_refused() -> None:
    data = encode_clip(frames_with(count=30), "mp4")
    with pytest.raises(MediaError, match="too large"):
        load_media(data, limits=ClipLimits(max_bytes=len(data) - 1))
    with pytest.raises(MediaError, match="too long to decode"):
        load_media(data, limits=ClipLimits(decode_timeout_s=1e-9))


# ------------------------------------------------------------------------ classification


def test_the_classifier_labels_a_clip_from_its_frames(tiny_model: Path) -> None:
    classifier = Classifier(tiny_model, read_text=False)
    clip = encode_clip(frames_with(fade_in=3, count=12), "mp4")
    buf = io.BytesIO()
    scene(0).save(buf, "PNG")
    results = classify_decoded(classifier, [clip, buf.getvalue(), audio_only()],
                               [None, None, None], ClipLimits(frames=4))
    moving, still, bad = results
    assert isinstance(moving, Classified) and isinstance(still, Classified)
    assert moving.media.kind is MediaKind.animation and moving.media.frames_used >= 2
    assert moving.media.duration_s == pytest.approx(2.5, abs=0.2)
    assert moving.media.poster is not None and moving.media.poster[:2] == b"\xff\xd8"  # JPEG
    assert moving.prediction.label in classifier.labels
    assert sum(moving.prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert moving.hashes is not None
    assert still.media.kind is MediaKind.still and still.media.poster is None
    assert isinstance(bad, MediaError) and "sound only" in str(bad)


def test_one_frame_clip_is_labelled_like_its_still(tiny_model: Path) -> None:
    """Combining one frame changes nothing: a clip of a single picture gets the still's
    probabilities."""
    classifier = Classifier(tiny_model, read_text=False)
    picture = scene(2)
    clip = classifier.predict_clip([picture])
    still = classifier.predict_one(picture)
    assert clip.prediction.label == still.label
    for label, p in still.probabilities.items():
        assert clip.prediction.probabilities[label] == pytest.approx(p, abs=1e-4)
    assert clip.prediction.ood_score == pytest.approx(still.ood_score, abs=1e-4)


def test_a_slow_animated_webp_is_cut_off_too() -> None:
    data = encode_clip(frames_with(count=12), "webp")
    with pytest.raises(MediaError, match="too long to decode"):
        load_media(data, limits=ClipLimits(decode_timeout_s=1e-9))


def test_a_clip_whose_frames_do_not_decode_is_refused() -> None:
    """The container opens and says how long it is, but its picture data is zeros."""
    data = bytearray(encode_clip(frames_with(count=12), "mp4"))
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4:at], "big")
    data[at + 4:at - 4 + size] = bytes(size - 8)
    with pytest.raises(MediaError, match="no frame decodes"):
        load_media(bytes(data))


def test_pictures_with_pages_are_stills() -> None:
    """A multi-page TIFF (like a phone's MPO JPEG) has pages, not frames: its first is read."""
    buf = io.BytesIO()
    scene(0).save(buf, "TIFF", save_all=True, append_images=[scene(5)])
    media = load_media(buf.getvalue())
    assert media.kind is MediaKind.still and media.container == "tiff"
