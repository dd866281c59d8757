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
from typing import Any, Literal

import numpy as np
from PIL import Image

from inference.errors import ModelError
from inference.sentence import EMBEDDING_DIM, SentenceEncoder, find_encoder

log = logging.getLogger(__name__)

TEXT_FILE = "text.json"
# The training doom/AC memes' sentence vectors (float16), what the correction memory's words
# are compared with (bot/core/recall.py); a model trained before it has no words' memory.
TEXT_BANK_FILE = "text_bank.npz"
# Fewer words than this say too little to compare (benchmarks/bench_memory_rules.py).
VECTOR_MIN_WORDS = 3
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


TextMix = Literal["bow", "encoder", "average"]


@dataclass
class TextModel:
    """The words' evidence between two labels, from logistic regressions on training memes'
    OCR words and captions: per-word log-odds (a bag of words), and/or a linear head on the
    sentence encoder's embedding (inference/sentence.py), which also weighs words it never saw.

    `mix` says which speaks (chosen by cross-validation at training: the encoder, the bag of
    words, or the two averaged) and `weight` how loud against the image (also by CV).
    `evidence` is added to the positive label's post-temperature logit and taken from the
    negative one's (half each), so image and text combine as a product of experts.
    """

    negative: str
    positive: str
    weights: dict[str, float] = field(default_factory=dict)
    min_words: int = 2  # fewer readable words than this: no evidence (OCR noise on pictures)
    metrics: dict[str, Any] = field(default_factory=dict)
    mix: TextMix = "bow"
    weight: float = 1.0
    encoder_name: str | None = None
    encoder_coef: list[float] = field(default_factory=list)
    encoder: SentenceEncoder | None = field(default=None, repr=False, compare=False)
    bank: np.ndarray | None = field(default=None, repr=False, compare=False)

    def sentence_vectors(self, texts: list[str]) -> np.ndarray | None:
        """The encoder's embedding of each text with enough words for the head or the
        correction memory (zero rows elsewhere); None without a loaded encoder."""
        if self.encoder is None:
            return None
        least = min(self.min_words, VECTOR_MIN_WORDS)
        return self.encoder.embed([t if len(words(t)) >= least else "" for t in texts])

    def evidence(self, text: str) -> float:
        """The bag of words' log-odds of one text (0 with too few words)."""
        found = words(text)
        if len(found) < self.min_words:
            return 0.0
        return float(sum(self.weights.get(w, 0.0) for w in found))

    def encoder_evidence(self, texts: list[str], embeddings: np.ndarray | None = None
                         ) -> np.ndarray:
        """The encoder head's log-odds per text (0 with too few words); `embeddings` when the
        caller already has them (training's cross-validation)."""
        out = np.zeros(len(texts), np.float32)
        keep = [i for i, t in enumerate(texts) if len(words(t)) >= self.min_words]
        if not keep or not self.encoder_coef:
            return out
        if embeddings is None:
            if self.encoder is None:
                raise ModelError("this word model needs its sentence encoder loaded")
            emb = self.encoder.embed([texts[i] for i in keep])
        else:
            emb = embeddings[keep]
        out[keep] = emb @ np.asarray(self.encoder_coef, np.float32)
        return out

    def evidences(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """What the words say for each text, scaled by the fusion weight."""
        bow = np.array([self.evidence(t) for t in texts], np.float32)
        if self.mix == "bow":
            return self.weight * bow
        enc = self.encoder_evidence(texts, embeddings)
        return self.weight * (enc if self.mix == "encoder" else (bow + enc) / 2)

    def logit_shift(self, texts: list[str], labels: list[str], temperature: float,
                    embeddings: np.ndarray | None = None) -> np.ndarray:
        """Per image, what to add to the raw logits (n x labels); zeros where there is no text.
        `embeddings`: `sentence_vectors(texts)` when the caller keeps them."""
        shift = np.zeros((len(texts), len(labels)), np.float32)
        if self.positive not in labels or self.negative not in labels:
            return shift
        pos, neg = labels.index(self.positive), labels.index(self.negative)
        e = self.evidences(texts, embeddings) * temperature / 2  # raw logits are divided by T later
        shift[:, pos], shift[:, neg] = e, -e
        return shift

    def save(self, folder: Path) -> None:
        data = {"negative": self.negative, "positive": self.positive, "min_words": self.min_words,
                "mix": self.mix, "weight": self.weight, "encoder": self.encoder_name,
                "encoder_coef": self.encoder_coef,
                "metrics": self.metrics, "weights": dict(sorted(self.weights.items()))}
        (Path(folder) / TEXT_FILE).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, folder: Path) -> TextModel | None:
        path = Path(folder) / TEXT_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        model = cls(
            negative=data["negative"],
            positive=data["positive"],
            weights=dict(data["weights"]),
            min_words=int(data.get("min_words", 2)),
            metrics=dict(data.get("metrics", {})),
            mix=data.get("mix", "bow"),
            weight=float(data.get("weight", 1.0)),
            encoder_name=data.get("encoder"),
            encoder_coef=[float(v) for v in data.get("encoder_coef", [])],
        )
        bank = Path(folder) / TEXT_BANK_FILE
        if model.encoder_name and (model.mix != "bow" or bank.is_file()):
            model.encoder = SentenceEncoder(find_encoder(Path(folder), model.encoder_name))
        if bank.is_file():
            with np.load(bank, allow_pickle=False) as data:
                model.bank = data["text_bank"].astype(np.float32)
        return model


def vector_of(text: str, vectors: np.ndarray | None, row: int) -> np.ndarray | None:
    """A meme's words' vector as the correction memory compares it: None with too few words."""
    if vectors is None or len(words(text)) < VECTOR_MIN_WORDS:
        return None
    return np.asarray(vectors[row], np.float32)


def save_text_bank(folder: Path, texts: list[str], encoder: SentenceEncoder) -> int:
    """The vectors of the texts with enough words, as TEXT_BANK_FILE; how many."""
    kept = [t for t in texts if len(words(t)) >= VECTOR_MIN_WORDS]
    vectors = encoder.embed(kept) if kept else np.zeros((0, EMBEDDING_DIM), np.float32)
    np.savez_compressed(Path(folder) / TEXT_BANK_FILE, allow_pickle=False,
                        text_bank=vectors.astype(np.float16))
    return len(kept)
