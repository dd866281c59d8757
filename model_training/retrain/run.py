"""`retrain()`: the steps of a retrain in order; the candidate published under its final name."""

from __future__ import annotations

import copy
import logging
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from inference.metadata import ModelMeta
from model_training.data import Sample
from model_training.retrain.config import RetrainConfig
from model_training.retrain.context import RetrainContext, Timings, prepare
from model_training.retrain.evaluation import Comparison, compare
from model_training.retrain.fast import build_fast
from model_training.retrain.full import build_full
from model_training.retrain.splits import write_splits
from model_training.retrain.staging import swap_in
from model_training.retrain.summary import RetrainResult

log = logging.getLogger(__package__)


def retrain(active: Path, corrections: Sequence[Sample], cfg: RetrainConfig) -> RetrainResult:
    """Train, export, verify and score a candidate; it is renamed into cfg.model_dir/<version>."""
    started = time.perf_counter()
    timings = Timings()
    ctx = prepare(Path(active), corrections, cfg, timings)
    active_head = copy.deepcopy(ctx.model.head)  # the fast path replaces model.head
    try:
        folder = build_full(ctx) if cfg.kind == "full" else build_fast(ctx)
        with timings.timed("score"):
            comparison = compare(ctx, folder, active_head)
        candidate = _publish(ctx, folder, comparison)
        shutil.rmtree(ctx.staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(ctx.staging, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    timings.seconds["total"] = round(seconds, 2)
    log.info(
        "retrain finished in %.1f s (%s): %s", seconds, timings.seconds, comparison.gate.reason
    )
    return _result(ctx, candidate, comparison, seconds)


def _publish(ctx: RetrainContext, folder: Path, comparison: Comparison) -> ModelMeta:
    """Record the comparison in the candidate's metadata, then rename it into place."""
    corr, gate = ctx.corrections, comparison.gate
    meta = ModelMeta.load(folder)
    meta.metrics["retrain"] = {
        "base_version": ctx.meta.version,
        "kind": ctx.cfg.kind,
        "promoted": gate.promote,
        "reason": gate.reason,
        "before": comparison.before.to_dict(),
        "after": comparison.after.to_dict(),
        "old_change": comparison.old_change.to_dict(),
        "new_labels": corr.new_labels,
        "skipped_labels": corr.skipped,
        "corrections_train": len(corr.train),
        "corrections_heldback": len(corr.held_back),
    }
    meta.save(folder)
    write_splits(folder, ctx.base, corr.train, corr.held_back)
    swap_in(
        folder, Path(ctx.cfg.model_dir) / meta.version
    )  # the full path wrote into tmp/<its version>
    return meta


def _result(
    ctx: RetrainContext, candidate: ModelMeta, comparison: Comparison, seconds: float
) -> RetrainResult:
    corr, cfg = ctx.corrections, ctx.cfg
    return RetrainResult(
        version=candidate.version,
        path=Path(cfg.model_dir) / candidate.version,
        kind=cfg.kind,
        promoted=comparison.gate.promote,
        reason=comparison.gate.reason,
        base_version=ctx.meta.version,
        labels=list(candidate.labels),
        new_labels=corr.new_labels,
        skipped_labels=corr.skipped,
        corrections_train=len(corr.train),
        corrections_heldback=len(corr.held_back),
        corrections_per_label=dict(sorted(Counter(s.label for s in corr.used).items())),
        before=comparison.before,
        after=comparison.after,
        embedded_images=ctx.embedded,
        seconds=seconds,
        min_examples_new_label=cfg.min_examples_new_label,
        timings=ctx.timings.seconds,
    )
