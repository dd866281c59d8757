"""The candidate against the active model on the fixed validation set (the active version's base
validation split plus the held-back corrections), through the production decision rule; the
promotion gate decides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from inference.classifier import Classifier, RawOutput
from inference.text import tesseract_available
from model_training.data import Sample
from model_training.evaluate import EvalItem, items_from_outputs
from model_training.promotion import GateDecision, Paired, Scores, decide
from model_training.retrain.context import RetrainContext
from model_training.retrain.warm_head import head_logits, head_of
from model_training.text_model import OcrCache


@dataclass
class Comparison:
    before: Scores  # the active model
    after: Scores  # the candidate
    old_change: Paired  # old-class validation memes the candidate lost and gained
    gate: GateDecision


@dataclass
class _Judged:
    """A model as the gate sees it. With `head`, its backbone is the active one, so the cached
    embeddings are its own and no image is read again."""

    clf: Classifier
    head: nn.Linear | None

    def items(self, samples: list[Sample], x: np.ndarray | None) -> list[EvalItem]:
        if not samples:
            return []
        if self.head is not None and x is not None:
            raw = RawOutput(
                logits=head_logits(self.head, x).astype(np.float32), embedding=x.astype(np.float32)
            )
            return items_from_outputs(samples, raw, self.clf.meta, self.clf.ood)
        preds = self.clf.predict([s.path for s in samples], batch_size=32)
        return [
            EvalItem(s.path, s.label, p)
            for s, p in zip(samples, preds, strict=False)
            if not hasattr(p, "error")
        ]


def compare(ctx: RetrainContext, candidate: Path, active_head: nn.Linear) -> Comparison:
    """Score both models; `active_head` is the active model's head (the fast path replaced
    ctx.model's)."""
    # The full path scores through `predict` (its backbone changed): memes the pipeline has
    # just read are not read again for each model. The fast path scores cached embeddings.
    corr = ctx.corrections
    known_text = None
    if ctx.cfg.kind == "full" and tesseract_available():
        known_text = OcrCache(ctx.cfg.cache_dir).lookup(
            ctx.base_val + corr.held_back + ctx.base_test
        )
    active = _Judged(Classifier(ctx.active, precision="fp32", text_lookup=known_text), active_head)
    cand = _Judged(
        Classifier(candidate, precision="fp32", text_lookup=known_text),
        head_of(candidate) if ctx.cfg.kind == "fast" else None,
    )
    parts = (ctx.base_val, corr.held_back, ctx.base_test)
    x_val, x_held, x_test = (ctx.cache.get([s.sha256 for s in p]) if p else None for p in parts)
    val_before, val_after = active.items(ctx.base_val, x_val), cand.items(ctx.base_val, x_val)
    before = score(
        val_before,
        active.items(corr.held_back, x_held),
        active.items(ctx.base_test, x_test),
        ctx.old_labels,
    )
    after = score(
        val_after,
        cand.items(corr.held_back, x_held),
        cand.items(ctx.base_test, x_test),
        ctx.old_labels,
    )
    old_change = _paired(val_before, val_after, ctx.old_labels)
    as_training = not corr.held_back and bool(corr.train)
    if as_training:  # too few corrections to hold any back: check on what it trained on
        x_train = ctx.cache.get([s.sha256 for s in corr.train])
        for scores, model in ((before, active), (after, cand)):
            items = model.items(corr.train, x_train)
            scores.corrections_accuracy, scores.corrections_n = _accuracy(items), len(items)
    gate = decide(
        before,
        after,
        ctx.cfg.gate,
        corrections_total=len(corr.used),
        corrections_are_training=as_training,
        old_change=old_change,
    )
    return Comparison(before, after, old_change, gate)


def score(
    base_val: list[EvalItem], held: list[EvalItem], test: list[EvalItem], old_labels: list[str]
) -> Scores:
    old_items = [it for it in base_val if it.label in old_labels]
    per_class: dict[str, dict[str, float]] = {}
    for label in sorted({it.label for it in base_val + held}):
        rows = [it for it in base_val + held if it.label == label]
        per_class[label] = {"accuracy": float(_accuracy(rows) or 0.0), "n": len(rows)}
    return Scores(
        old_accuracy=_accuracy(old_items),
        old_n=len(old_items),
        corrections_accuracy=_accuracy(held),
        corrections_n=len(held),
        per_class=per_class,
        test_accuracy=_accuracy(test),
    )


def _accuracy(items: list[EvalItem]) -> float | None:
    return float(np.mean([it.prediction.label == it.label for it in items])) if items else None


def _paired(before: list[EvalItem], after: list[EvalItem], old_labels: list[str]) -> Paired:
    """Old-class memes the candidate lost and gained against the active model (same images)."""
    pairs = [
        (b.prediction.label == b.label, a.prediction.label == a.label)
        for b, a in zip(before, after, strict=False)
        if b.label in old_labels
    ]
    return Paired.of([b for b, _ in pairs], [a for _, a in pairs])
