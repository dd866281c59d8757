"""Training-time augmentation for memes, aimed at the shortcuts the data offers.

Colour jitter fights "Doom is darker"; random JPEG re-encoding and rescaling fight "every
Doom/AC file shares one quantisation table at 300x300"; random backgrounds for transparent
images fight "transparent means Genshin". Crops stay mild because memes carry their meaning
in text near the edges.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image, ImageEnhance, ImageOps


@dataclass(frozen=True)
class AugmentConfig:
    crop_scale: tuple[float, float] = (0.75, 1.0)
    crop_ratio: tuple[float, float] = (0.8, 1.25)
    hflip: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    jpeg_p: float = 0.5
    jpeg_quality: tuple[int, int] = (30, 95)
    rescale_p: float = 0.3
    rescale_range: tuple[float, float] = (0.35, 0.9)


def random_background(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def augment(
    img: Image.Image, rng: random.Random, cfg: AugmentConfig = AugmentConfig()
) -> Image.Image:
    """One random view of an RGB picture (same size class, any aspect)."""
    w, h = img.size
    area = w * h * rng.uniform(*cfg.crop_scale)
    ratio = rng.uniform(*cfg.crop_ratio)
    cw = max(1, min(w, round((area * ratio) ** 0.5)))
    ch = max(1, min(h, round((area / ratio) ** 0.5)))
    x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
    img = img.crop((x0, y0, x0 + cw, y0 + ch))
    if rng.random() < cfg.hflip:
        img = ImageOps.mirror(img)
    for enhancer, amount in (
        (ImageEnhance.Brightness, cfg.brightness),
        (ImageEnhance.Contrast, cfg.contrast),
        (ImageEnhance.Color, cfg.saturation),
    ):
        if amount:
            img = enhancer(img).enhance(rng.uniform(1 - amount, 1 + amount))
    if rng.random() < cfg.rescale_p:
        f = rng.uniform(*cfg.rescale_range)
        small = img.resize(
            (max(8, int(img.width * f)), max(8, int(img.height * f))), Image.Resampling.BILINEAR
        )
        img = small.resize(img.size, Image.Resampling.BILINEAR)
    if rng.random() < cfg.jpeg_p:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(*cfg.jpeg_quality))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img
