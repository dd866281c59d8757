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

from inference.clips import ClipLimits, is_moving, load_media
from inference.errors import ImageError
from model_training.data import Sample

log = logging.getLogger(__package__)


CLIP_TRAIN_FRAMES = 4  # frames of a corrected clip that become training rows


def clip_frame_files(path: Path, sha256: str, frames_dir: Path) -> list[Path]:
    """A clip's chosen frames (as the bot chose them) as PNG files under `frames_dir/<sha256>`,
    written once; [] for a file that is no clip."""
    folder = frames_dir / sha256
    done = folder / "done"
    if done.is_file():
        return sorted(folder.glob("*.png"))
    data = path.read_bytes()
    if not is_moving(data):
        return []
    try:
        media = load_media(data, limits=ClipLimits(frames=CLIP_TRAIN_FRAMES))
    except ImageError as exc:
        log.warning("corrected clip %s left out: %s", sha256[:12], exc)
        return []
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(media.frames):
        frame.save(folder / f"{i:02d}.png")
    done.touch()
    return sorted(folder.glob("*.png"))


def corrections_from_examples(
    examples: Iterable[Any], frames_dir: Path | None = None
) -> tuple[list[Sample], list[str]]:
    """storage TrainingExample (or anything with sha256/path/label) -> Samples; missing blobs
    skipped. With `frames_dir`, a corrected clip becomes a few of its frames (one sample each,
    held back or kept together: `group` is the clip's sha256)."""
    out, missing = [], []
    for e in examples:
        path = Path(e.path)
        if not path.is_file():
            missing.append(str(path))
            continue
        source = f"admin-{getattr(e, 'source', 'correction')}"
        frames = clip_frame_files(path, e.sha256, frames_dir) if frames_dir else []
        for frame in frames:
            digest = hashlib.sha256(frame.read_bytes()).hexdigest()
            out.append(Sample(path=frame, label=e.label, sha256=digest, phash=0, source=source,
                              group=e.sha256))
        if not frames:
            out.append(Sample(path=path, label=e.label, sha256=e.sha256, phash=0, source=source))
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
        # The frames of one clip stay on one side (a group each; a still is its own group).
        groups: dict[str, list[Sample]] = {}
        for s in by_label[label]:
            groups.setdefault(s.group or s.sha256, []).append(s)
        order = sorted(groups, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
        n = len(order)
        k = int(np.floor(fraction * n + 0.5))
        if fraction > 0 and n >= 3:
            k = max(k, 1)
        k = min(k, n - 1) if n > 1 else 0
        val += [s for g in order[:k] for s in groups[g]]
        train += [s for g in order[k:] for s in groups[g]]
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
