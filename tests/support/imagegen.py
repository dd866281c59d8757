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


def stretched(img: Image.Image, width: float, height: float) -> Image.Image:
    """Resized by other factors across and down (another aspect ratio)."""
    return img.resize((max(8, round(img.width * width)), max(8, round(img.height * height))),
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


# ------------------------------------------- hard distinct pairs (issue 24): not reposts

WORDS = ("doom", "guy", "when", "you", "isabelle", "rip", "and", "tear", "villagers", "me",
         "the", "demons", "turnip", "prices", "nook", "miles", "bfg", "slayer", "island", "hell")
UIS = {  # background, bar, text, accent: a dark Reddit-like and a dark YouTube-like comment UI
    "reddit": ((26, 26, 27), (39, 39, 41), (215, 218, 220), (255, 69, 0)),
    "youtube": ((15, 15, 15), (33, 33, 33), (241, 241, 241), (255, 0, 0)),
}


def words(seed: int, n: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def scene(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A busy picture (many overlapping shapes), with keypoints enough to align copies."""
    rng = random.Random(f"scene-{seed}")
    img = Image.new("RGB", size, tuple(rng.randint(0, 255) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x, y = rng.randint(0, size[0]), rng.randint(0, size[1])
        w, h = rng.randint(10, size[0] // 4), rng.randint(10, size[1] // 4)
        fill = tuple(rng.randint(0, 255) for _ in range(3))
        if rng.random() < 0.5:
            draw.rectangle((x, y, x + w, y + h), fill=fill)
        else:
            draw.ellipse((x, y, x + w, y + h), fill=fill)
    return img


def text_screenshot(ui: str, seed: int) -> Image.Image:
    """A screenshot of a text post in one app's dark UI: the same chrome, other words."""
    bg, bar, fg, accent = UIS[ui]
    rng = random.Random(seed)
    img = Image.new("RGB", (640, 420), bg)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 640, 48), fill=bar)
    draw.ellipse((12, 8, 44, 40), fill=accent)
    small, body = _font(16), _font(20)
    draw.text((56, 14), f"u/{words(seed, 1)}{rng.randint(1, 999)} · {rng.randint(1, 23)}h",
              fill=fg, font=small)
    y = 70
    for _ in range(rng.randint(5, 8)):
        draw.text((24, y), words(rng.randint(0, 10**6), rng.randint(4, 9)), fill=fg, font=body)
        y += 40
    draw.text((24, 390), f"▲ {rng.randint(1, 9999)}   reply   share", fill=accent, font=small)
    return img


def menu_state(base: Image.Image, seed: int, highlight: int) -> Image.Image:
    """A game screenshot with its menu open: another item highlighted, other entries."""
    img = base.convert("RGB").resize((640, 480))
    draw = ImageDraw.Draw(img)
    draw.rectangle((20, 40, 260, 440), fill=(20, 24, 40))
    font = _font(22)
    rng = random.Random(seed)
    for k in range(7):
        top = 60 + k * 54
        if k == highlight:
            draw.rectangle((28, top - 6, 252, top + 34), fill=(230, 200, 60))
        name = words(rng.randint(0, 10**6), 2)
        draw.text((40, top), name, fill=(0, 0, 0) if k == highlight else (230, 230, 230),
                  font=font)
    return img
