"""Small generated images for tests and benchmarks: three visually distinct "classes", a 4th
style for a new class, odd encodings, and edited copies (reposts)."""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

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


def jpeg(label: str = "doom", seed: int = 0) -> bytes:
    """A generated meme of `label` as JPEG bytes (what a user posts)."""
    return encode(make_image(label, seed), "JPEG", quality=90)


def make_dataset(
    root: Path, per_class: int = 12, labels: tuple[str, ...] = ("doom", "animal_crossing", "other")
) -> Path:
    for label in labels:
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (96, 96) if label != "other" else (120 + i, 80 + 2 * i)
            image = make_image(label, i, size)
            (folder / f"{label}_{i}.jpg").write_bytes(encode(image, quality=90))
    return root


def make_genshin(seed: int, size: tuple[int, int] = (96, 96)) -> Image.Image:
    """A 4th style for a new class: yellow background, purple triangles."""
    rng = random.Random(f"genshin-{seed}")
    img = Image.new("RGB", size, (230 + rng.randint(-20, 20), 200 + rng.randint(-20, 20), 40))
    d = ImageDraw.Draw(img)
    for _ in range(4):
        x, y = rng.randint(0, size[0] - 30), rng.randint(0, size[1] - 30)
        s = rng.randint(15, 40)
        d.polygon([(x, y + s), (x + s // 2, y), (x + s, y + s)], fill=(120, 30, 160))
    return img


# ---------------------------------------------------------------- edited copies (reposts)

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:  # no DejaVu: Pillow's own scalable font
        return ImageFont.load_default(size)


def resized(img: Image.Image, factor: float) -> Image.Image:
    return img.resize((max(8, round(img.width * factor)), max(8, round(img.height * factor))),
                      Image.Resampling.LANCZOS)


def reencoded(img: Image.Image, fmt: str = "JPEG", quality: int = 40) -> Image.Image:
    return Image.open(io.BytesIO(encode(img.convert("RGB"), fmt, quality=quality))).convert("RGB")


def cropped(img: Image.Image, share: float, seed: int = 0) -> Image.Image:
    """Cut `share` of the width and of the height, split at random between the two sides."""
    rng = random.Random(seed)
    dx, dy = round(img.width * share), round(img.height * share)
    left, top = rng.randint(0, dx), rng.randint(0, dy)
    return img.crop((left, top, img.width - (dx - left), img.height - (dy - top)))


def with_caption_bar(img: Image.Image, text: str = "when the meme hits", share: float = 0.2
                     ) -> Image.Image:
    """A reposter's white caption bar with black text on top of the picture."""
    bar = max(12, round(img.height * share))
    out = Image.new("RGB", (img.width, img.height + bar), (255, 255, 255))
    out.paste(img.convert("RGB"), (0, bar))
    ImageDraw.Draw(out).text((img.width // 20, bar // 4), text, fill=(0, 0, 0),
                             font=_font(max(8, bar // 2)))
    return out


def with_meme_text(img: Image.Image, top: str, bottom: str) -> Image.Image:
    """Impact-style words over the picture: another meme made from the same template."""
    out = img.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    font = _font(max(8, img.height // 8))
    stroke = max(1, img.height // 80)
    for text, y in ((top, img.height // 30), (bottom, img.height - img.height // 6)):
        draw.text((img.width // 20, y), text.upper(), fill=(255, 255, 255), font=font,
                  stroke_width=stroke, stroke_fill=(0, 0, 0))
    return out
