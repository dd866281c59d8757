"""The promotion gate: a retrained candidate replaces the active model only if it is not worse
on the old classes and it learned the admins' corrections. Pure numbers, no torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from math import comb
from typing import Any


class RetrainError(RuntimeError):
    """A retrain that cannot run (no dataset, unreadable active model) or failed its checks."""


@dataclass(frozen=True)
class GateConfig:
    # Old-class accuracy (base validation split) may drop by this much (1 point) in any case...
    tolerance: float = 0.01
    # ...and by up to max_drop when the drop is indistinguishable from noise: on the same images,
    # the memes the candidate lost and those it gained are compared with an exact sign test
    # (McNemar's test), and a drop is real when p < alpha. A retrain moves borderline memes both
    # ways (recalibrated temperature and thresholds, a new kNN bank), so on a few hundred
    # validation memes a 1-point net loss is often 9 lost and 5 gained: no evidence of forgetting.
    max_drop: float = 0.03
    alpha: float = 0.05
    # Held-back corrections: never worse than the active model (minus this slack, for ties on
    # tiny sets)...
    corrections_slack: float = 0.0
    # ...and while the active model gets fewer than this share of them right, the candidate must
    # get more of them right than it does: it learned something from the corrections.
    corrections_floor: float = 0.6


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
class Paired:
    """How two models differ on the same images: right before and wrong after, and the reverse."""

    lost: int
    gained: int

    @classmethod
    def of(cls, before_right: Sequence[bool], after_right: Sequence[bool]) -> Paired:
        if len(before_right) != len(after_right):
            raise ValueError("paired comparison needs the same images for both models")
        lost = sum(1 for b, a in zip(before_right, after_right, strict=False) if b and not a)
        gained = sum(1 for b, a in zip(before_right, after_right, strict=False) if a and not b)
        return cls(lost, gained)

    def p_worse(self) -> float:
        """One-sided exact sign test: P(at least `lost` of the changed images go the wrong way
        if a change were equally likely to go either way)."""
        n = self.lost + self.gained
        if n == 0:
            return 1.0
        return sum(comb(n, k) for k in range(self.lost, n + 1)) / 2**n

    def to_dict(self) -> dict[str, Any]:
        return {"lost": self.lost, "gained": self.gained, "p_worse": self.p_worse()}


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def old_class_problem(
    before: Scores, after: Scores, cfg: GateConfig, change: Paired | None
) -> str | None:
    """Why the candidate's old-class accuracy forbids promotion (None when it does not)."""
    if after.old_accuracy is None or before.old_accuracy is None:
        return None
    drop = before.old_accuracy - after.old_accuracy
    if drop <= cfg.tolerance + 1e-9:
        return None
    fell = (
        f"old-class accuracy fell from {_pct(before.old_accuracy)} to {_pct(after.old_accuracy)} "
        f"(n={after.old_n}"
    )
    if drop > cfg.max_drop + 1e-9:
        return f"{fell}; more than {100 * cfg.max_drop:.1f} points)"
    if change is None:
        return f"{fell}; tolerance {100 * cfg.tolerance:.1f} points)"
    p = change.p_worse()
    if p < cfg.alpha:
        return (
            f"{fell}; {change.lost} memes lost vs {change.gained} gained, sign test p={p:.3f} < "
            f"{cfg.alpha}: "
            f"forgetting, not noise)"
        )
    return None


def _old_class_note(before: Scores, after: Scores, change: Paired | None) -> str:
    text = (
        f"old-class accuracy {_pct(before.old_accuracy)} -> {_pct(after.old_accuracy)} "
        f"(n={after.old_n}"
    )
    if change is not None and (change.lost or change.gained):
        text += f"; {change.lost} lost, {change.gained} gained, sign test p={change.p_worse():.2f}"
    return text + ")"


def decide(
    before: Scores,
    after: Scores,
    cfg: GateConfig = GateConfig(),
    *,
    corrections_total: int,
    corrections_are_training: bool = False,
    old_change: Paired | None = None,
) -> GateDecision:
    """Promote only if both rules hold; the reason always carries the numbers."""
    problems: list[str] = []
    if corrections_total == 0:
        return GateDecision(False, "no admin-labelled images to learn from: nothing to promote")
    old = old_class_problem(before, after, cfg, old_change)
    if old:
        problems.append(old)
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
        elif b + 1e-9 < cfg.corrections_floor and a <= b + 1e-9:
            problems.append(
                f"{what}: candidate {_pct(a)}, no better than the active model's {_pct(b)} "
                f"(n={after.corrections_n}): it did not learn the corrections"
            )
    if problems:
        return GateDecision(False, "; ".join(problems))
    return GateDecision(
        True,
        f"{_old_class_note(before, after, old_change)}, {what} "
        f"{_pct(before.corrections_accuracy)} -> "
        f"{_pct(after.corrections_accuracy)} (n={after.corrections_n})",
    )
