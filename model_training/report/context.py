"""Everything the report's sections read, loaded once: the model version (its torch checkpoint,
meta.json, splits.json, history), the base dataset split exactly as it was trained, the model's
own embeddings (cached), the memes' cached OCR text and the production decisions on each split."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from inference.classifier import RawOutput
from inference.metadata import OOD_FILE, ModelMeta
from inference.ood import OODScorer
from inference.text import TextModel, tesseract_available
from model_training.data import Sample, class_root, manifest_sources
from model_training.embeddings import EmbeddingCache
from model_training.evaluate import EvalItem, items_from_outputs
from model_training.network import MemeNet
from model_training.pipeline import load_checkpoint
from model_training.report.errors import ReportError
from model_training.retrain import (
    SPLITS_FILE,
    embed_bounded,
    embedding_cache_key,
    head_logits,
    load_base_splits,
    stock_embedding_cache,
)
from model_training.text_model import OcrCache

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test", "holdout")


@dataclass(frozen=True)
class ReportOptions:
    """What the report computes. The defaults are the full report; after a retrain the trainer
    cuts the costly parts (`quick`) and the report says so."""

    permutations: int = 200  # label-permutation refits of the head (the issue asks >= 200)
    gradcam: bool = True
    mistakes: int = 12  # gallery size
    examples: int = 6  # "neither game": caught / missed examples shown
    leave_one_source_out: bool = True
    learning_curve: bool = True
    seed: int = 0
    note: str = ""  # why parts were cut, shown at the top of the report
    progress: bool = False

    @classmethod
    def quick(cls, why: str) -> ReportOptions:
        return cls(permutations=50, gradcam=False, leave_one_source_out=False, note=why)


@dataclass
class Part:
    """One split: samples, the model's embeddings and logits, OCR text, decisions."""

    samples: list[Sample]
    x: np.ndarray
    logits: np.ndarray
    texts: list[str]
    items: list[EvalItem]  # image + words (what the bot says)
    items_image: list[EvalItem]  # the image alone

    @property
    def y(self) -> np.ndarray:
        return np.array([it.label for it in self.items])


@dataclass
class ReportData:
    folder: Path
    meta: ModelMeta
    model: MemeNet
    ood: OODScorer
    text_model: TextModel | None
    dataset_dir: Path
    cache_dir: Path
    parts: dict[str, Part]
    sources: dict[str, str]  # sha256 -> MANIFEST source (else the label)
    history: list[dict[str, Any]]
    history_of: str  # the version whose training curves these are
    splits_file: dict[str, Any]
    cache: EmbeddingCache
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)  # headline numbers (report.json)

    @property
    def labels(self) -> list[str]:
        return list(self.meta.labels)

    @property
    def reject(self) -> str:
        return self.meta.reject_label

    @property
    def games(self) -> list[str]:
        return [lab for lab in self.labels if lab != self.reject]

    @property
    def head(self) -> nn.Linear:
        return self.model.head

    def y_index(self, part: str) -> np.ndarray:
        samples = self.parts[part].samples
        return np.array([self.labels.index(s.label) for s in samples], dtype=np.int64)

    def decide(
        self,
        samples: list[Sample],
        logits: np.ndarray,
        x: np.ndarray,
        texts: list[str] | None = None,
    ) -> list[EvalItem]:
        """The production decision rule (temperature, P(other) and OOD thresholds, words)."""
        raw = RawOutput(logits=logits.astype(np.float32), embedding=x.astype(np.float32))
        if texts is not None and self.text_model is not None:
            raw.extra["text_shift"] = self.text_model.logit_shift(
                texts, self.labels, self.meta.temperature
            )
        return items_from_outputs(samples, raw, self.meta, self.ood)


def dataset_of(folder: Path, meta: ModelMeta, explicit: Path | None) -> Path:
    """The base dataset: given, else recorded by training (following a retrain to its base)."""
    if explicit is not None:
        return Path(explicit)
    seen: set[str] = set()
    m: ModelMeta | None = meta
    while m is not None and m.version not in seen:
        seen.add(m.version)
        if m.training.get("data_dir"):
            return Path(m.training["data_dir"])
        base = m.training.get("retrained_from")
        parent = folder.parent / str(base) if base else None
        m = (
            ModelMeta.load(parent)
            if parent is not None and (parent / "meta.json").is_file()
            else None
        )
    raise ReportError(
        f"{folder.name} does not record its dataset: pass --data DIR (or set MEMEBOT_DATASET_DIR)"
    )


def _texts(
    samples: list[Sample], text_model: TextModel | None, ocr: OcrCache | None, progress: bool
) -> list[str]:
    """The memes' words: cached OCR; read now only when the model reads text and Tesseract is
    here."""
    if ocr is None:
        return [""] * len(samples)
    if text_model is not None and tesseract_available():
        return ocr.read(samples, progress=progress)
    return [ocr.get(s.sha256) or "" for s in samples]


def load(
    folder: Path,
    dataset_dir: Path | None,
    cache_dir: Path,
    options: ReportOptions = ReportOptions(),
) -> ReportData:
    import time

    t0 = time.perf_counter()
    folder = Path(folder)
    meta = ModelMeta.load(folder)
    if not (folder / "checkpoint.pt").is_file():
        raise ReportError(
            f"{folder} has no checkpoint.pt (the torch weights the report's Grad-CAM and "
            "refits need): train the model again with `memebot train`"
        )
    data_dir = dataset_of(folder, meta, dataset_dir)
    if not data_dir.is_dir():
        raise ReportError(f"dataset folder {data_dir} does not exist: pass --data DIR")
    model, labels, _ = load_checkpoint(folder)
    splits = load_base_splits(data_dir, folder, meta, cache_dir)
    root = class_root(data_dir)
    by_rel = manifest_sources(root)
    sources = {}
    for part in PARTS:
        for s in getattr(splits, part):
            try:
                rel = Path(s.path).resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                rel = ""
            sources[s.sha256] = by_rel.get(rel, s.label)
    cache = EmbeddingCache(cache_dir, embedding_cache_key(meta, model.backbone))
    everything = [s for part in PARTS for s in getattr(splits, part)]
    embed_bounded(
        model.backbone,
        everything,
        meta.preprocess_config(),
        cache,
        fallback=stock_embedding_cache(meta, cache_dir),
        progress=options.progress,
    )
    text_model = TextModel.load(folder)
    ocr = (
        OcrCache(cache_dir)
        if (Path(cache_dir) / "ocr.json").is_file() or text_model is not None
        else None
    )
    history, history_of = [], meta.version
    for candidate in (folder, folder.parent / str(meta.training.get("retrained_from", ""))):
        if (candidate / "history.json").is_file():  # a fast retrain has none: its base's curves
            history, history_of = (
                json.loads((candidate / "history.json").read_text()),
                candidate.name,
            )
            break
    splits_file = (
        json.loads((folder / SPLITS_FILE).read_text()) if (folder / SPLITS_FILE).is_file() else {}
    )
    data = ReportData(
        folder=folder,
        meta=meta,
        model=model,
        ood=OODScorer.load(folder / OOD_FILE),
        text_model=text_model,
        dataset_dir=data_dir,
        cache_dir=Path(cache_dir),
        parts={},
        sources=sources,
        history=history,
        history_of=history_of,
        splits_file=splits_file,
        cache=cache,
    )
    for part in PARTS:
        samples = [s for s in getattr(splits, part) if s.label in labels or part == "holdout"]
        x = (
            cache.get([s.sha256 for s in samples])
            if samples
            else np.zeros((0, meta.embedding_dim), np.float32)
        )
        logits = head_logits(model.head, x) if samples else np.zeros((0, len(labels)), np.float32)
        texts = _texts(samples, text_model, ocr, options.progress)
        data.parts[part] = Part(
            samples,
            x,
            logits,
            texts,
            data.decide(samples, logits, x, texts),
            data.decide(samples, logits, x),
        )
    data.timings["load"] = time.perf_counter() - t0
    return data
