"""Fits the word model of inference/text.py on OCR'd training memes; OCR is cached per sha256."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from inference.preprocess import load_image
from inference.text import TextModel, read_text, words
from model_training.data import Sample

log = logging.getLogger(__name__)

# Doom-vs-AC with the image head alone vs plus words (5-fold grouped CV on the shared memes,
# frozen Lite0): 87.9% -> 89.4% with C=1; C 0.3-3 within 0.3 pt.
DEFAULT_C = 1.0
MIN_DOCS = 2  # a word must appear on this many training memes


class OcrCache:
    """sha256 -> Tesseract's text, one JSON file (OCR costs ~0.14 s of CPU an image)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / "ocr.json"
        self._texts: dict[str, str] = (
            json.loads(self.path.read_text()) if self.path.is_file() else {}
        )

    def get(self, sha256: str) -> str | None:
        return self._texts.get(sha256)

    def read(self, samples: list[Sample], *, workers: int = 2, progress: bool = True) -> list[str]:
        todo = [s for s in {s.sha256: s for s in samples}.values() if s.sha256 not in self._texts]
        if todo:

            def one(s: Sample) -> tuple[str, str]:
                try:
                    return s.sha256, read_text(load_image(s.path))
                except Exception as exc:  # an unreadable file is left out of the scan already
                    log.warning("OCR skipped %s: %s", s.path, exc)
                    return s.sha256, ""

            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                for sha, text in tqdm(
                    pool.map(one, todo),
                    total=len(todo),
                    desc="reading text (OCR)",
                    unit="img",
                    disable=not progress,
                ):
                    self._texts[sha] = text
            self.save()
        return [self._texts[s.sha256] for s in samples]

    def lookup(self, samples: list[Sample]) -> Callable[[object], str | None]:
        """For `Classifier(text_lookup=...)`: the cached reading of these samples' files, None
        for anything else (read live)."""
        by_path = {str(s.path): s.sha256 for s in samples}
        return lambda source: self.get(by_path.get(str(source), ""))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self._texts))
        tmp.replace(self.path)


def fit_text_model(
    texts: list[str], labels: list[str], negative: str, positive: str, c: float = DEFAULT_C
) -> TextModel | None:
    """Binary words -> logistic regression between two labels; None when the memes carry too
    little readable text to learn from."""
    docs = [
        " ".join(sorted(words(t)))
        for t, y in zip(texts, labels, strict=False)
        if y in (negative, positive)
    ]
    ys = np.array([y == positive for y in labels if y in (negative, positive)])
    with_text = sum(1 for d in docs if len(d.split()) >= 2)
    if with_text < 20 or len(set(ys.tolist())) < 2:
        log.info("text model: only %d memes with readable text, not used", with_text)
        return None
    vec = CountVectorizer(min_df=MIN_DOCS, binary=True, token_pattern=r"[a-z]{3,}")
    try:
        x = vec.fit_transform(docs)
    except ValueError:  # no word on MIN_DOCS memes
        return None
    clf = LogisticRegression(C=c, max_iter=5000).fit(x, ys)
    weights = {
        w: float(clf.coef_[0, i]) for w, i in vec.vocabulary_.items() if abs(clf.coef_[0, i]) > 1e-3
    }
    model = TextModel(
        negative=negative,
        positive=positive,
        weights=weights,
        metrics={"memes_with_text": with_text, "memes": len(docs), "vocabulary": len(weights)},
    )
    log.info(
        "text model: %d words from %d of %d memes with readable text",
        len(weights),
        with_text,
        len(docs),
    )
    return model
