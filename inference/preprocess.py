"""Turn whatever a user posts into the tensor the model expects.

This is the only preprocessing in the project: the bot, `memebot predict`, evaluation and the
training-time validation pass all call `load_image` then `to_array`, so a model is always
measured on exactly what it will see in production.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inference.errors import ImageError

ResizePolicy = Literal["squash", "letterbox", "center_crop"]
ImageSource = bytes | bytearray | memoryview | str | Path | Image.Image

# A 12k x 12k image is ~430 MB as RGB; memes are far smaller. Refuse before decoding.
DEFAULT_MAX_PIXELS = 40_000_000


log = logging.getLogger(__name__)

@dataclass(frozen=True)
class PreprocessConfig:
    """Travels with the model (in its metadata) so that nothing downstream can disagree."""

    input_size: int = 224
    # The Kaggle Doom/AC images were squashed to 300x300 from their originals, so squashing a
    # real post of any aspect ratio reproduces what the model was trained on; letterboxing
    # would add bars that only non-square images have (a shortcut the data offers).
    resize: ResizePolicy = "squash"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # Transparent pixels are composited on one fixed colour for every class, never left as
    # whatever RGB they store (transparency is a class shortcut in the data).
    background: tuple[int, int, int] = (255, 255, 255)
    interpolation: Literal["bilinear", "bicubic"] = "bicubic"
    max_pixels: int = field(default=DEFAULT_MAX_PIXELS)


_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def load_image(
    source: ImageSource,
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode any still or animated image into an upright 8-bit RGB picture.

    Raises ImageError with a readable reason for empty, corrupt, truncated, non-image and
    oversized (decompression bomb) inputs.
    """
    img = source if isinstance(source, Image.Image) else open_image(source, max_pixels)
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)  # the first frame of an animated GIF/WebP/APNG
        img.load()
        img = ImageOps.exif_transpose(img) or img
        return _to_rgb(img, background)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        log.debug("image does not decode: %s", exc)  # Pillow's words: not for a chat user
        raise ImageError("corrupt or truncated image") from exc


def open_image(source: bytes | bytearray | memoryview | str | Path,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open (not yet decode) an image, refusing empty, unknown and oversized ones (ImageError)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    else:
        data = bytes(source)
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageError("not an image (unknown or unsupported format)") from exc
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        log.debug("decompression bomb refused: %s", exc)
        raise ImageError("image too large to decode safely") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        log.debug("image header does not parse: %s", exc)
        raise ImageError("corrupt image") from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError("image has no pixels")
    if width * height > max_pixels:
        raise ImageError(
            f"image too large: {width}x{height} pixels (limit {max_pixels:,} pixels)"
        )
    return img


def _to_rgb(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 0.0
        scale = 255.0 / (65535.0 if mode.startswith("I;16") or hi > 255 else max(hi, 1.0))
        img = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), "L")
        mode = "L"
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa") or (mode == "L" and "transparency" in img.info):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        canvas = Image.new("RGB", img.size, background)
        canvas.paste(img, mask=img.getchannel("A"))
        return canvas
    if img.mode != "RGB":
        img = img.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV
    return img


def resize(img: Image.Image, cfg: PreprocessConfig) -> Image.Image:
    size = cfg.input_size
    resample = _RESAMPLE[cfg.interpolation]
    if cfg.resize == "squash":
        return img.resize((size, size), resample)
    if cfg.resize == "center_crop":
        return ImageOps.fit(img, (size, size), resample)
    if cfg.resize == "letterbox":
        return ImageOps.pad(img, (size, size), resample, color=cfg.background)
    raise ValueError(f"unknown resize policy {cfg.resize!r}")


def normalize(img: Image.Image, cfg: PreprocessConfig) -> np.ndarray:
    """RGB picture of the model's size -> float32 CHW array, normalised."""
    arr: np.ndarray = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(cfg.mean, np.float32)) / np.asarray(cfg.std, np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def to_array(source: ImageSource, cfg: PreprocessConfig) -> np.ndarray:
    """The full pipeline for one image: decode, resize, normalise."""
    img = load_image(source, background=cfg.background, max_pixels=cfg.max_pixels)
    return normalize(resize(img, cfg), cfg)
