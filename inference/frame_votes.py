"""One verdict from a clip's frames: how per-frame model outputs combine, and which frames are
worth reading (OCR).

The rule chosen (benchmarks/bench_media.py, README "Clips") is the mean of the frames'
calibrated log-probabilities: a product of experts, so a frame that is sure of a game outweighs
frames that hesitate, while "other" still needs the clip as a whole to lean that way. The OOD
score of a clip is the median of its frames' scores: one odd frame (a title card) does not make
a clip unlike memes, and one ordinary frame does not make an odd clip ordinary.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

Rule = Literal["mean_logprob", "mean_prob", "first"]
RULES: tuple[Rule, ...] = ("mean_logprob", "mean_prob", "first")
OCR_FRAMES = 2  # frames read for text: the ones that look most like they hold words
TEXT_EDGE = 40  # grey-level step between neighbouring pixels that counts as a letter's edge


def _log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits.astype(np.float64) / max(temperature, 1e-6)
    z -= z.max(axis=1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return out


def combine(logits: np.ndarray, embedding: np.ndarray, scores: np.ndarray, temperature: float,
            rule: Rule = "mean_logprob") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frames' (logits, embeddings, OOD scores) as one row each: logits whose calibrated
    probabilities are the clip's, the mean embedding, the clip's OOD score."""
    if len(logits) == 0:
        raise ValueError("no frames to combine")
    log_p = _log_softmax(logits, temperature)
    if rule == "mean_logprob":
        combined = log_p.mean(axis=0)
    elif rule == "mean_prob":
        combined = np.log(np.exp(log_p).mean(axis=0) + 1e-12)
    elif rule == "first":
        combined = log_p[0]
    else:
        raise ValueError(f"unknown rule {rule!r}")
    # Multiplying by T undoes the division `decide` applies: softmax(out / T) is the clip's.
    clip_logits = (combined * temperature)[None, :].astype(np.float32)
    mean = embedding[:1] if rule == "first" else embedding.mean(axis=0, keepdims=True)
    score = scores[:1] if rule == "first" else np.median(scores, keepdims=True)
    return clip_logits, mean.astype(np.float32), np.asarray(score, np.float32)


def text_score(img: Image.Image) -> float:
    """How much a frame looks like it holds writing: the share of sharp horizontal steps in
    its grey picture (letters are dense in them; photos and flat cards are not)."""
    grey = img.convert("L")
    grey.thumbnail((320, 320))
    arr = np.asarray(grey, dtype=np.int16)
    if arr.shape[1] < 2:
        return 0.0
    return float((np.abs(np.diff(arr, axis=1)) >= TEXT_EDGE).mean())


def frames_to_read(frames: list[Image.Image], count: int = OCR_FRAMES) -> list[int]:
    """Indices of the frames with the most writing, in time order."""
    ranked = sorted(range(len(frames)), key=lambda i: -text_score(frames[i]))
    return sorted(ranked[:count])
