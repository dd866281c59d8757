"""Small generated images for tests: three visually distinct "classes" and odd encodings."""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageDraw

CLASS_STYLE = {
    "doom": ((150, 20, 10), "rect"),
    "animal_crossing": ((120, 220, 140), "ellipse"),
    "other": ((40, 60, 230), "line"),
}


def make_image(label: str, seed: int, size: tuple[int, int] = (96, 96)) -> Image.Image:
    rng = random.Random(f"{label}-{seed}")
    colour, shape = CLASS_STYLE[label]
    bg = tuple(max(0, min(255, c + rng.randint(-30, 30))) for c in colour)
    img = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = rng.randint(0, size[0] // 2), rng.randint(0, size[1] // 2)
        x1, y1 = x0 + rng.randint(10, size[0] // 2), y0 + rng.randint(10, size[1] // 2)
        fill = tuple(255 - c for c in colour)
        if shape == "rect":
            d.rectangle((x0, y0, x1, y1), fill=fill)
        elif shape == "ellipse":
            d.ellipse((x0, y0, x1, y1), fill=fill)
        else:
            d.line((x0, y0, x1, y1), fill=fill, width=5)
    return img


def encode(img: Image.Image, fmt: str = "JPEG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def make_dataset(root: Path, per_class: int = 12, labels: tuple[str, ...] = ("doom", "animal_crossing", "other")) -> Path:
    for label in labels:
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (96, 96) if label != "other" else (120 + i, 80 + 2 * i)
            (folder / f"{label}_{i}.jpg").write_bytes(encode(make_image(label, i, size), quality=90))
    return root
