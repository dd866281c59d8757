"""Synthetic outliers made from the training memes themselves (outlier exposure).

A game meme cut into shuffled patches, blended with another, or seen through a crop at the wrong
scale keeps the colours and textures of the games but none of their content; trained as
"other", such images teach the head that colour and texture alone do not make a game meme.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from inference.preprocess import load_image

KINDS = ("patch_shuffle", "blend", "wrong_scale_crop")


@dataclass(frozen=True)
class Outlier:
    image: Image.Image
    kind: str
    sha256: str  # of the recipe: the embedding cache key


def _patch_shuffle(img: Image.Image, rng: random.Random, grid: int = 4) -> Image.Image:
    img = img.resize((224, 224))
    step = 224 // grid
    tiles = [
        img.crop((x, y, x + step, y + step))
        for y in range(0, 224, step)
        for x in range(0, 224, step)
    ]
    rng.shuffle(tiles)
    out = Image.new("RGB", (step * grid, step * grid))
    for i, tile in enumerate(tiles):
        out.paste(tile, ((i % grid) * step, (i // grid) * step))
    return out


def _blend(a: Image.Image, b: Image.Image, rng: random.Random) -> Image.Image:
    return Image.blend(a.resize((224, 224)), b.resize((224, 224)), rng.uniform(0.35, 0.65))


def _wrong_scale_crop(img: Image.Image, rng: random.Random) -> Image.Image:
    w, h = img.size
    side = max(8, int(min(w, h) * rng.uniform(0.12, 0.25)))
    x, y = rng.randint(0, w - side), rng.randint(0, h - side)
    return img.crop((x, y, x + side, y + side)).resize((224, 224), Image.Resampling.BICUBIC)


def make_outliers(paths: list, n: int, seed: int = 0) -> Iterator[Outlier]:
    """n synthetic outliers from these meme files, the three kinds in turn; reproducible."""
    rng = random.Random(seed)
    paths = sorted(map(str, paths))
    if len(paths) < 2:
        raise ValueError("synthetic outliers need at least two memes")
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        a, b = rng.sample(paths, 2)
        img = load_image(a)
        if kind == "patch_shuffle":
            out = _patch_shuffle(img, rng)
        elif kind == "blend":
            out = _blend(img, load_image(b), rng)
        else:
            out = _wrong_scale_crop(img, rng)
        recipe = f"{kind}:{a}:{b}:{seed}:{i}".encode()
        yield Outlier(out.convert("RGB"), kind, hashlib.sha256(recipe).hexdigest())


def outlier_embeddings(
    backbone, outliers: list[Outlier], cfg, cache, batch_size: int = 32
) -> np.ndarray:
    """The backbone's embeddings of the outliers, through the memes' EmbeddingCache (by recipe)."""
    import torch

    from inference.preprocess import to_array

    todo = [o for o in outliers if o.sha256 not in cache]
    backbone.eval()
    for i in range(0, len(todo), batch_size):
        chunk = todo[i : i + batch_size]
        with torch.no_grad():
            vectors = backbone(
                torch.from_numpy(np.stack([to_array(o.image, cfg) for o in chunk]))
            ).numpy()
        cache.put([o.sha256 for o in chunk], vectors)
    if todo:
        cache.save()
    return cache.get([o.sha256 for o in outliers]).astype(np.float32)
