"""Measured properties of each meme (size, brightness, colourfulness, a colour histogram) that the
mistake grouping and the trivial baselines use; cached per sha256 beside the embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from model_training.data import Sample

BINS = 4  # per RGB channel: a 64-bin colour histogram
STATS_FILE = "image-stats.npz"
# columns: width, height, mean brightness (0-255), mean saturation (0-1), then the histogram
N_SCALARS = 4


@dataclass
class ImageStats:
    width: np.ndarray
    height: np.ndarray
    brightness: np.ndarray
    saturation: np.ndarray
    histogram: np.ndarray  # (n, BINS**3), sums to 1 per row

    def size_brightness(self) -> np.ndarray:
        """The features of the "size/brightness alone" baseline."""
        w, h = self.width.astype(np.float64), self.height.astype(np.float64)
        return np.stack(
            [np.log(w), np.log(h), np.log(w / h), self.brightness, self.saturation], axis=1
        )


def _measure(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        width, height = img.size
        img.draft("RGB", (128, 128))  # JPEG decodes at 1/8 scale: the statistics barely move
        small = img.convert("RGB")
    small.thumbnail((128, 128))
    rgb = np.asarray(small, dtype=np.float32)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float32)
    idx = (rgb // (256 // BINS)).astype(np.int64)
    hist = np.bincount(
        ((idx[..., 0] * BINS + idx[..., 1]) * BINS + idx[..., 2]).ravel(), minlength=BINS**3
    ).astype(np.float64)
    hist /= max(hist.sum(), 1.0)
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    return np.concatenate([[width, height, luma.mean(), hsv[..., 1].mean() / 255.0], hist])


def measure(samples: list[Sample], cache_dir: Path) -> ImageStats:
    path = Path(cache_dir) / STATS_FILE
    known: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as z:
            known = dict(zip(z["sha256"].tolist(), z["rows"], strict=False))
    fresh = False
    for s in samples:
        if s.sha256 not in known:
            known[s.sha256] = _measure(s.path)
            fresh = True
    if fresh:
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(known)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, sha256=np.array(keys), rows=np.stack([known[k] for k in keys]))
        tmp.replace(path)
    rows = (
        np.stack([known[s.sha256] for s in samples])
        if samples
        else np.zeros((0, N_SCALARS + BINS**3))
    )
    return ImageStats(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], rows[:, N_SCALARS:])
