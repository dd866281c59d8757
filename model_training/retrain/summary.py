"""What a retrain hands back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model_training.promotion import Scores


@dataclass
class RetrainResult:
    """What the bot posts to the admin chat (`summary()`) and stores with the model version."""

    version: str
    path: Path
    kind: str
    promoted: bool
    reason: str
    base_version: str
    labels: list[str]
    new_labels: dict[str, int]  # added class -> examples
    skipped_labels: dict[str, int]  # label with too few examples -> examples
    corrections_train: int
    corrections_heldback: int
    corrections_per_label: dict[str, int]
    before: Scores
    after: Scores
    embedded_images: int  # images that went through the backbone this time
    seconds: float
    min_examples_new_label: int = 5
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["summary"] = self.summary()
        return d

    def summary(self) -> str:
        head = (
            "PROMOTED: now serving"
            if self.promoted
            else "kept as candidate (still serving " + self.base_version + ")"
        )
        lines = [f"Retrain ({self.kind}) -> model {self.version}: {head}"]
        per = ", ".join(f"{k} {v}" for k, v in sorted(self.corrections_per_label.items()))
        lines.append(
            f"Corrections used: {self.corrections_train + self.corrections_heldback} "
            f"({self.corrections_train} trained on, {self.corrections_heldback} held back to check)"
            + (f"; per label: {per}" if per else "")
        )
        if self.new_labels:
            lines.append(
                "New classes: "
                + ", ".join(f"{k} ({v} examples)" for k, v in self.new_labels.items())
            )
        if self.skipped_labels:
            lines.append(
                f"Left out (fewer than {self.min_examples_new_label} examples): "
                + ", ".join(f"{k} ({v})" for k, v in self.skipped_labels.items())
            )
        lines += self._score_lines()
        lines.append(("Why: " if not self.promoted else "Gate: ") + self.reason)
        if hint := self._next_step():
            lines.append("Next: " + hint)
        lines.append(f"Took {self.seconds:.0f} s ({self.embedded_images} new images embedded)")
        return "\n".join(lines)

    def _score_lines(self) -> list[str]:
        b, a = self.before, self.after
        lines = [
            f"Old classes (base validation, n={a.old_n}): {_pct(b.old_accuracy)} -> "
            f"{_pct(a.old_accuracy)}" + _delta(b.old_accuracy, a.old_accuracy),
            f"Held-back corrections (n={a.corrections_n}): {_pct(b.corrections_accuracy)} -> "
            f"{_pct(a.corrections_accuracy)}"
            + _delta(b.corrections_accuracy, a.corrections_accuracy),
        ]
        changes = []
        for label, row in a.per_class.items():
            old = b.per_class.get(label, {}).get("accuracy")
            changes.append(f"{label} {_pct(old)} -> {_pct(row['accuracy'])} (n={int(row['n'])})")
        if changes:
            lines.append("Per class: " + "; ".join(changes))
        return lines

    def _next_step(self) -> str | None:
        """What admins can do about a refusal (the gate's reason says what went wrong)."""
        if self.promoted:
            return None
        if "old-class accuracy fell" in self.reason and self.new_labels:
            few = ", ".join(f"{k} has {v}" for k, v in self.new_labels.items())
            return (
                f"the new class takes memes of the old ones ({few} examples): label more of its "
                "images, correct the memes it takes, then /retrain"
            )
        if "did not learn" in self.reason or "below the active model" in self.reason:
            return (
                "more corrections of the kind it gets wrong help; check they are labelled right, "
                "then /retrain"
            )
        return None


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _delta(a: float | None, b: float | None) -> str:
    return "" if a is None or b is None else f" ({100 * (b - a):+.1f} pt)"
