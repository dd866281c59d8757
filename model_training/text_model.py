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
from inference.sentence import SentenceEncoder
from inference.text import TextMix, TextModel, read_text, words
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


ENCODER_C = 1.0  # the encoder head's regularisation (C 0.3-3 within noise on the shared memes)
FUSION_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
CV_FOLDS = 5


def _bow(docs: list[str], ys: np.ndarray, c: float) -> tuple[dict[str, float], int] | None:
    vec = CountVectorizer(min_df=MIN_DOCS, binary=True, token_pattern=r"[a-z]{3,}")
    try:
        x = vec.fit_transform(docs)
    except ValueError:  # no word on MIN_DOCS memes
        return None
    if len(set(ys.tolist())) < 2:
        return None
    clf = LogisticRegression(C=c, max_iter=5000).fit(x, ys)
    weights = {
        w: float(clf.coef_[0, i]) for w, i in vec.vocabulary_.items() if abs(clf.coef_[0, i]) > 1e-3
    }
    return weights, x.shape[0]


def _encoder_coef(emb: np.ndarray, ys: np.ndarray) -> list[float]:
    clf = LogisticRegression(C=ENCODER_C, max_iter=5000).fit(emb, ys)
    return [float(v) for v in clf.coef_[0]]


MIN_TEXT_MEMES = 20


def has_enough_text(texts: list[str], labels: list[str], games: list[str]) -> bool:
    """Whether the game memes carry enough readable words for a word model."""
    return sum(1 for t, y in zip(texts, labels, strict=True)
               if y in games and len(words(t)) >= 2) >= MIN_TEXT_MEMES


def fit_text_model(
    texts: list[str], labels: list[str], negative: str, positive: str, c: float = DEFAULT_C,
    *, encoder: SentenceEncoder | None = None, image_margin: np.ndarray | None = None,
) -> TextModel | None:
    """Logistic regressions between two labels on the memes' words: a bag of words and, with a
    sentence `encoder`, a head on its embeddings. Which speaks (bag of words, encoder, or the
    two averaged) and how loud against the image is chosen by 5-fold cross-validation: the
    doom-vs-AC accuracy of `image_margin` (each meme's out-of-fold image logit margin,
    positive minus negative, after temperature) plus the text's out-of-fold evidence; without
    image margins, of the text alone (weight 1). None when the memes carry too little
    readable text to learn from."""
    rows = [i for i, y in enumerate(labels) if y in (negative, positive)]
    docs = [" ".join(sorted(words(texts[i]))) for i in rows]
    ys = np.array([labels[i] == positive for i in rows])
    with_text = sum(1 for d in docs if len(d.split()) >= 2)
    if with_text < MIN_TEXT_MEMES or len(set(ys.tolist())) < 2:
        log.info("text model: only %d memes with readable text, not used", with_text)
        return None
    fitted = _bow(docs, ys, c)
    if fitted is None:
        return None
    weights, _ = fitted
    model = TextModel(
        negative=negative,
        positive=positive,
        weights=weights,
        metrics={"memes_with_text": with_text, "memes": len(docs), "vocabulary": len(weights)},
    )
    if encoder is not None:
        raw = [texts[i] for i in rows]
        emb = encoder.embed(raw)
        model.encoder, model.encoder_name = encoder, Path(encoder.folder).name
        model.encoder_coef = _encoder_coef(emb, ys)
        margin = image_margin[rows] if image_margin is not None else None
        model.mix, model.weight, table = _choose_mix(raw, docs, ys, emb, margin, c, model)
        model.metrics["fusion_cv"] = table
    model.metrics |= {"mix": model.mix, "weight": model.weight}
    log.info(
        "text model: %d words from %d of %d memes with readable text; %s, weight %.2f",
        len(weights), with_text, len(docs), model.mix, model.weight,
    )
    return model


def _choose_mix(
    raw: list[str], docs: list[str], ys: np.ndarray, emb: np.ndarray, margin: np.ndarray | None,
    c: float, final: TextModel,
) -> tuple[TextMix, float, dict[str, float]]:
    """Out-of-fold evidence of both heads, then the mix and weight with the best CV accuracy
    (ties: the smaller weight, then bag of words < average < encoder)."""
    from sklearn.model_selection import StratifiedKFold

    oof = {"bow": np.zeros(len(ys), np.float32), "encoder": np.zeros(len(ys), np.float32)}
    folds = StratifiedKFold(CV_FOLDS, shuffle=True, random_state=0)
    for tr, te in folds.split(emb, ys):
        fold = TextModel(final.negative, final.positive, min_words=final.min_words)
        fitted = _bow([docs[i] for i in tr], ys[tr], c)
        fold.weights = fitted[0] if fitted else {}
        fold.encoder_coef = _encoder_coef(emb[tr], ys[tr])
        part = [raw[i] for i in te]
        oof["bow"][te] = [fold.evidence(t) for t in part]
        oof["encoder"][te] = fold.encoder_evidence(part, emb[te])
    oof_mix: dict[str, np.ndarray] = {
        "bow": oof["bow"], "average": (oof["bow"] + oof["encoder"]) / 2, "encoder": oof["encoder"]}
    base = margin if margin is not None else np.zeros(len(ys), np.float32)
    grid: tuple[float, ...] = FUSION_WEIGHTS if margin is not None else (1.0,)
    mixes: tuple[TextMix, ...] = ("bow", "average", "encoder")
    table: dict[str, float] = {}
    best: tuple[float, TextMix, float] | None = None
    for mix in mixes:
        for w in grid:
            fused = base + w * oof_mix[mix]
            acc = float(np.mean((fused > 0) == ys))
            table[f"{mix}@{w}"] = acc
            if best is None or acc > best[0] + 1e-9:
                best = (acc, mix, w)
    assert best is not None
    return best[1], best[2], table
