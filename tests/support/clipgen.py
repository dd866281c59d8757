"""Tiny clips generated with PyAV for tests and benchmarks: MP4 (H.264), WebM (VP9), MOV, GIF,
animated WebP, and a Telegram TGS sticker (gzipped Lottie JSON); the frames are the
`imagegen` memes of a class, drifting a little from frame to frame."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Sequence

import av
from PIL import Image

from tests.support.imagegen import make_image

# container format, video codec, pixel format
CONTAINERS = {
    "mp4": ("mp4", "libx264", "yuv420p"),
    "webm": ("webm", "libvpx-vp9", "yuv420p"),
    "mov": ("mov", "libx264", "yuv420p"),
}
MIME_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "mov": "video/quicktime",
              "gif": "image/gif", "webp": "image/webp", "tgs": "application/x-tgsticker"}


def clip_frames(label: str, seed: int = 0, count: int = 6, size: tuple[int, int] = (96, 96)
                ) -> list[Image.Image]:
    """`count` frames of one meme of `label`, panned a pixel or two per frame."""
    base = make_image(label, seed, (size[0] + 2 * count, size[1] + 2 * count))
    return [base.crop((i, i, i + size[0], i + size[1])) for i in range(count)]


def encode_clip(frames: Sequence[Image.Image], kind: str = "mp4", fps: int = 6) -> bytes:
    """The frames as a clip of `kind`: mp4, webm, mov (PyAV), gif or webp (animated, Pillow)."""
    if kind in ("gif", "webp"):
        buf = io.BytesIO()
        first, *rest = [f.convert("RGB") for f in frames]
        first.save(buf, kind.upper(), save_all=True, append_images=rest,
                   duration=1000 // fps, loop=0)
        return buf.getvalue()
    container_format, codec, pix_fmt = CONTAINERS[kind]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = pix_fmt
        for image in frames:
            frame = av.VideoFrame.from_image(image.convert("RGB"))
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))  # flush the encoder
    return buf.getvalue()


def clip(label: str, kind: str = "mp4", seed: int = 0, count: int = 6) -> bytes:
    """A small clip of a meme of `label` in the format `kind`."""
    return encode_clip(clip_frames(label, seed, count), kind)


def tgs_sticker(colour: tuple[int, int, int] = (150, 20, 10), frames: int = 30) -> bytes:
    """A Telegram animated sticker: gzipped Lottie JSON (512x512, a square that moves)."""
    rgb = [c / 255 for c in colour]
    square = {
        "ty": 4, "nm": "square", "ip": 0, "op": frames, "st": 0, "sr": 1, "ind": 1,
        "ks": {"o": {"a": 0, "k": 100}, "r": {"a": 0, "k": 0}, "a": {"a": 0, "k": [0, 0]},
               "s": {"a": 0, "k": [100, 100]},
               "p": {"a": 1, "k": [{"t": 0, "s": [156, 256], "e": [356, 256],
                                    "i": {"x": [0.5], "y": [0.5]},
                                    "o": {"x": [0.5], "y": [0.5]}},
                                   {"t": frames, "s": [356, 256]}]}},
        "shapes": [{"ty": "gr", "it": [
            {"ty": "rc", "p": {"a": 0, "k": [0, 0]}, "s": {"a": 0, "k": [200, 200]},
             "r": {"a": 0, "k": 0}},
            {"ty": "fl", "c": {"a": 0, "k": [*rgb, 1]}, "o": {"a": 0, "k": 100}},
            {"ty": "tr", "p": {"a": 0, "k": [0, 0]}, "a": {"a": 0, "k": [0, 0]},
             "s": {"a": 0, "k": [100, 100]}, "r": {"a": 0, "k": 0},
             "o": {"a": 0, "k": 100}},
        ]}],
    }
    lottie = {"v": "5.5.2", "fr": 30, "ip": 0, "op": frames, "w": 512, "h": 512,
              "nm": "sticker", "ddd": 0, "assets": [], "layers": [square], "tgs": 1}
    return gzip.compress(json.dumps(lottie).encode())
