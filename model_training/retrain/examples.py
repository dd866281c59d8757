"""The admins' corrections as training samples: read from storage, split into training and
held-back parts, and the per-class cap on the head's training rows."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from model_training.data import Sample

log = logging.getLogger(__package__)


def corrections_from_examples(examples: Iterable[Any]) -> tuple[list[Sample], list[str]]:
    """storage TrainingExample (or anything with sha256/path/label) -> Samples; missing blobs
    skipped."""
    out, missing = [], []
    for e in examples:
        path = Path(e.path)
        if not path.is_file():
            missing.append(str(path))
            continue
        out.append(
            Sample(
                path=path,
                label=e.label,
                sha256=e.sha256,
                phash=0,
                source=f"admin-{getattr(e, 'source', 'correction')}",
            )
        )
    if missing:
        log.warning(
            "%d admin-labelled image(s) have no blob on disk and are left out", len(missing)
        )
    return out, missing


def hold_back(
    corrections: list[Sample], fraction: float, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """Per label, a stable slice of the corrections (by a seeded hash of sha256) for validation."""
    by_label: dict[str, list[Sample]] = {}
    for s in corrections:
        by_label.setdefault(s.label, []).append(s)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in sorted(by_label):
        group = sorted(
            by_label[label], key=lambda s: hashlib.sha256(f"{seed}:{s.sha256}".encode()).hexdigest()
        )
        n = len(group)
        k = int(np.floor(fraction * n + 0.5))
        if fraction > 0 and n >= 3:
            k = max(k, 1)
        k = min(k, n - 1) if n > 1 else 0
        val += group[:k]
        train += group[k:]
    return train, val


def cap_per_class(
    samples: list[Sample], priority: list[Sample], max_per_class: int, seed: int
) -> list[Sample]:
    """At most `max_per_class` rows per label; corrections (priority) are kept first."""
    rng = random.Random(seed)
    out = []
    labels = sorted({s.label for s in samples} | {s.label for s in priority})
    for label in labels:
        pri = [s for s in priority if s.label == label]
        rest = [s for s in samples if s.label == label]
        room = max(max_per_class - len(pri), 0)
        if len(rest) > room:
            rest = rng.sample(rest, room)
        out += pri[:max_per_class] + rest
    return out
