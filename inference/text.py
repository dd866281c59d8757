"""The meme's text as evidence: Tesseract OCR plus a small word model that travels with the model.

Many Doom/Animal Crossing memes are generic templates (a movie still, a tweet) whose only
game-specific content is the caption: "Blathers", "fossil", "DOOM Eternal", "demons". The image
model cannot read; the words move the doom-vs-animal_crossing choice. No torch, no sklearn:
the bot runs this.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

TEXT_FILE = "text.json"
_WORD = re.compile(r"[a-z]{3,}")
# OCR time grows with the pixel count; captions stay legible well below this.
MAX_OCR_SIDE = 1600


def words(text: str) -> set[str]:
    """The distinct lower-case words of 3+ letters (OCR noise is mostly shorter)."""
    return set(_WORD.findall(text.lower()))


def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


def read_text(image: Image.Image, *, timeout: float = 20.0) -> str:
    """Tesseract's reading of an RGB image ("" when it reads nothing, or fails: OCR is evidence,
    never a reason to drop a meme)."""
    img = image
    if max(img.size) > MAX_OCR_SIDE:
        img = img.copy()
        img.thumbnail((MAX_OCR_SIDE, MAX_OCR_SIDE))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    # One thread per Tesseract: its OpenMP threads spin on a small machine (measured on 2 cores:
    # 268 -> 141 ms an image, and 137 -> 73 ms with two images read at once).
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        out = subprocess.run(["tesseract", "stdin", "stdout", "--psm", "3"], input=buf.getvalue(),
                             capture_output=True, timeout=timeout, check=False, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("OCR failed: %s", exc)
        return ""
    if out.returncode != 0:
        log.warning(
            "OCR failed: tesseract exited %d: %s",
            out.returncode,
            out.stderr.decode(errors="replace")[-200:],
        )
        return ""
    return out.stdout.decode("utf-8", errors="replace")


@dataclass
class TextModel:
    """Per-word log-odds between two labels, from a logistic regression on OCR'd training memes.

    `evidence` is added to the positive label's post-temperature logit and taken from the
    negative one's (half each), so image and text combine as a product of experts.
    """

    negative: str
    positive: str
    weights: dict[str, float] = field(default_factory=dict)
    min_words: int = 2  # fewer readable words than this: no evidence (OCR noise on pictures)
    metrics: dict[str, float] = field(default_factory=dict)

    def evidence(self, text: str) -> float:
        found = words(text)
        if len(found) < self.min_words:
            return 0.0
        return float(sum(self.weights.get(w, 0.0) for w in found))

    def logit_shift(self, texts: list[str], labels: list[str], temperature: float) -> np.ndarray:
        """Per image, what to add to the raw logits (n x labels); zeros where there is no text."""
        shift = np.zeros((len(texts), len(labels)), np.float32)
        if self.positive not in labels or self.negative not in labels:
            return shift
        pos, neg = labels.index(self.positive), labels.index(self.negative)
        for i, t in enumerate(texts):
            e = self.evidence(t) * temperature / 2  # raw logits are divided by T later
            shift[i, pos], shift[i, neg] = e, -e
        return shift

    def save(self, folder: Path) -> None:
        data = {"negative": self.negative, "positive": self.positive, "min_words": self.min_words,
                "metrics": self.metrics, "weights": dict(sorted(self.weights.items()))}
        (Path(folder) / TEXT_FILE).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, folder: Path) -> TextModel | None:
        path = Path(folder) / TEXT_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(
            negative=data["negative"],
            positive=data["positive"],
            weights=dict(data["weights"]),
            min_words=int(data.get("min_words", 2)),
            metrics=dict(data.get("metrics", {})),
        )
