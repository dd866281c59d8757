"""What every step of a retrain works from: the active version (network, metadata, base split),
the corrections split for training and checking, and the embedding cache filled for all of them."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from inference.metadata import ModelMeta
from inference.preprocess import PreprocessConfig
from model_training.data import Sample, Splits
from model_training.embeddings import EmbeddingCache
from model_training.network import MemeNet
from model_training.pipeline import load_checkpoint
from model_training.promotion import RetrainError
from model_training.retrain.config import RetrainConfig
from model_training.retrain.embedding_cache import (
    embed_bounded,
    embedding_cache_key,
    stock_embedding_cache,
)
from model_training.retrain.examples import hold_back
from model_training.retrain.splits import dataset_fingerprint, load_base_splits
from model_training.retrain.staging import new_version, staging_folder

log = logging.getLogger(__package__)


@dataclass
class Timings:
    """Seconds per step, reported with the result."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[step] = round(time.perf_counter() - started, 2)


@dataclass
class Corrections:
    used: list[Sample]  # one per picture, of labels the candidate knows
    train: list[Sample]
    held_back: list[Sample]  # scored, never trained on
    new_labels: dict[str, int]  # added class -> examples
    skipped: dict[str, int]  # label with too few examples -> examples


@dataclass
class RetrainContext:
    cfg: RetrainConfig
    dataset_dir: Path
    active: Path
    meta: ModelMeta
    model: MemeNet
    old_labels: list[str]
    base: Splits  # as the active version was trained; the candidate inherits it
    # The base parts without the pictures the corrections relabel.
    base_train: list[Sample]
    base_val: list[Sample]
    base_test: list[Sample]
    corrections: Corrections
    cache: EmbeddingCache  # holds every sample above
    embedded: int  # images that went through the backbone this time
    version: str
    timings: Timings

    @property
    def labels(self) -> list[str]:
        return self.old_labels + list(self.corrections.new_labels)

    @property
    def pre(self) -> PreprocessConfig:
        return self.meta.preprocess_config()

    @property
    def staging(self) -> Path:
        return staging_folder(self.cfg.model_dir, self.version)


def prepare(
    active: Path, corrections: Sequence[Sample], cfg: RetrainConfig, timings: Timings
) -> RetrainContext:
    """Load the active version, split the corrections and embed every image the retrain reads."""
    if cfg.kind not in ("fast", "full"):
        raise RetrainError(f"unknown retrain kind {cfg.kind!r}: use fast or full")
    if cfg.dataset_dir is None:
        raise RetrainError(
            "no base dataset: set MEMEBOT_DATASET_DIR (the class folders the model was trained on)"
        )
    dataset_dir = Path(cfg.dataset_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    with timings.timed("load"):
        meta = ModelMeta.load(active)
        model, old_labels, _ = load_checkpoint(active)
        if old_labels != list(meta.labels):
            raise RetrainError(
                f"{active} checkpoint labels {old_labels} differ from meta.json {meta.labels}"
            )
        base = load_base_splits(dataset_dir, active, meta, cfg.cache_dir)
    with timings.timed("embed"):
        corr = split_corrections(corrections, old_labels, cfg)
        # Corrections win over the base dataset's folder label for the same picture.
        corrected = {s.sha256 for s in corrections}
        base_train, base_val, base_test = (
            [s for s in part if s.sha256 not in corrected]
            for part in (base.train, base.val, base.test)
        )
        cache = EmbeddingCache(cfg.cache_dir, embedding_cache_key(meta, model.backbone))
        everything = base_train + base_val + base_test + corr.used
        embedded = embed_bounded(
            model.backbone,
            everything,
            meta.preprocess_config(),
            cache,
            chunk=cfg.embed_chunk,
            fallback=stock_embedding_cache(meta, cfg.cache_dir),
            progress=cfg.progress,
        )
    log.info("embeddings: %d images, %d new", len(everything), embedded)
    fingerprint = dataset_fingerprint(base_train + corr.train, base_val + corr.held_back)
    return RetrainContext(
        cfg=cfg,
        dataset_dir=dataset_dir,
        active=active,
        meta=meta,
        model=model,
        old_labels=old_labels,
        base=base,
        base_train=base_train,
        base_val=base_val,
        base_test=base_test,
        corrections=corr,
        cache=cache,
        embedded=embedded,
        version=new_version(cfg.kind, fingerprint),
        timings=timings,
    )


def split_corrections(
    corrections: Sequence[Sample], old_labels: list[str], cfg: RetrainConfig
) -> Corrections:
    """One correction per picture; a new label becomes a class only with enough examples."""
    corr = list({s.sha256: s for s in corrections}.values())
    counts = Counter(s.label for s in corr)
    new_labels = {
        lab: n
        for lab, n in sorted(counts.items())
        if lab not in old_labels and n >= cfg.min_examples_new_label
    }
    skipped = {
        lab: n
        for lab, n in sorted(counts.items())
        if lab not in old_labels and n < cfg.min_examples_new_label
    }
    if skipped:
        log.info(
            "labels left out (fewer than %d examples): %s", cfg.min_examples_new_label, skipped
        )
    labels = old_labels + list(new_labels)
    corr = [s for s in corr if s.label in labels]
    train, val = hold_back(corr, cfg.holdback_fraction, cfg.seed)
    log.info(
        "corrections: %d for training, %d held back; new classes %s",
        len(train),
        len(val),
        new_labels,
    )
    return Corrections(
        used=corr, train=train, held_back=val, new_labels=new_labels, skipped=skipped
    )
