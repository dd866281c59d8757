"""The promotion gate: a retrained candidate replaces the active model only if it is not worse
on the old classes and it learned the admins' corrections. Pure numbers, no torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class RetrainError(RuntimeError):
    """A retrain that cannot run (no dataset, unreadable active model) or failed its checks."""


@dataclass(frozen=True)
class GateConfig:
    # Old-class accuracy (base validation split) may drop by at most this much (1 point).
    tolerance: float = 0.01
    # Held-back corrections: the candidate must get at least this share right...
    corrections_floor: float = 0.6
    # ...and at least as many as the active model (minus this slack, for ties on tiny sets).
    corrections_slack: float = 0.0


@dataclass
class Scores:
    """One model on the fixed validation set."""

    old_accuracy: float | None  # base validation split (old classes only)
    old_n: int
    corrections_accuracy: float | None  # held-back corrections (or training ones, see below)
    corrections_n: int
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> {accuracy, n}
    test_accuracy: float | None = None  # base test split, for information only

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def decide(
    before: Scores,
    after: Scores,
    cfg: GateConfig = GateConfig(),
    *,
    corrections_total: int,
    corrections_are_training: bool = False,
) -> GateDecision:
    """Promote only if both rules hold; the reason always carries the numbers."""
    problems: list[str] = []
    if corrections_total == 0:
        return GateDecision(False, "no admin-labelled images to learn from: nothing to promote")
    if after.old_accuracy is not None and before.old_accuracy is not None:
        drop = before.old_accuracy - after.old_accuracy
        if drop > cfg.tolerance + 1e-9:
            problems.append(
                f"old-class accuracy fell from {_pct(before.old_accuracy)} to "
                f"{_pct(after.old_accuracy)} (n={after.old_n}; tolerance "
                f"{100 * cfg.tolerance:.1f} points)"
            )
    what = "training corrections" if corrections_are_training else "held-back corrections"
    if after.corrections_accuracy is None:
        problems.append(f"no {what} to check the candidate on")
    else:
        b = before.corrections_accuracy or 0.0
        a = after.corrections_accuracy
        if a + cfg.corrections_slack + 1e-9 < b:
            problems.append(
                f"{what}: candidate {_pct(a)} is below the active model's {_pct(b)} "
                f"(n={after.corrections_n})"
            )
        elif a + 1e-9 < cfg.corrections_floor:
            problems.append(
                f"{what}: candidate {_pct(a)} is below the floor {_pct(cfg.corrections_floor)} "
                f"(n={after.corrections_n}): it did not learn the corrections"
            )
    if problems:
        return GateDecision(False, "; ".join(problems))
    return GateDecision(
        True,
        f"old-class accuracy {_pct(before.old_accuracy)} -> {_pct(after.old_accuracy)} "
        f"(n={after.old_n}), {what} {_pct(before.corrections_accuracy)} -> "
        f"{_pct(after.corrections_accuracy)} (n={after.corrections_n})",
    )
