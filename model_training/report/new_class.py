"""Section "A new class": for a version that added a class at a retrain, per-class accuracy
before and after (forgetting), the promotion gate's paired test, and the new class's learning
curve (the retrain's head refitted with more and more of its examples, on cached embeddings)."""

from __future__ import annotations

import numpy as np

from model_training.pipeline import load_checkpoint
from model_training.report.context import ReportData, ReportOptions
from model_training.report.figures import figure
from model_training.report.metrics import pct
from model_training.report.page import Paragraph, Section, Table
from model_training.retrain import LabelledRows, WarmHeadConfig, fit_head, head_logits

STEPS = (1, 5, 20, 100)
# The curve's refits stop earlier than a retrain's solve (300): the points are for the shape.
CURVE_ITERATIONS = 100


def learning_curve(data: ReportData, label: str) -> list[tuple[int, float, float]]:
    """(examples, held-back accuracy of the new class, old-class validation accuracy) per step."""
    base = data.folder.parent / str(data.meta.training.get("retrained_from", ""))
    labels_of = data.splits_file.get("corrections_labels", {})
    train_sha = [s for s in data.splits_file.get("corrections_train", []) if s in labels_of]
    held_sha = [s for s in data.splits_file.get("corrections_val", []) if labels_of.get(s) == label]
    if not (base / "checkpoint.pt").is_file() or not held_sha:
        return []
    model, old_labels, _ = load_checkpoint(base)
    idx = {lab: i for i, lab in enumerate(data.labels)}
    own = [s for s in train_sha if labels_of[s] == label]
    rest = [s for s in train_sha if labels_of[s] != label and labels_of[s] in idx]
    tr = data.parts["train"]
    x_base, y_base = tr.x, data.y_index("train")
    x_rest = data.cache.get(rest) if rest else x_base[:0]
    y_rest = np.array([idx[labels_of[s]] for s in rest], dtype=np.int64)
    x_own = data.cache.get(own)
    x_held = data.cache.get(held_sha)
    val = data.parts["val"]
    old_val = np.array([s.label in old_labels for s in val.samples])
    y_val = data.y_index("val")
    out = []
    for k in [n for n in STEPS if n < len(own)] + [len(own)]:
        x = np.concatenate([x_base, x_rest, x_own[:k]])
        y = np.concatenate([y_base, y_rest, np.full(k, idx[label])])
        head, _ = fit_head(
            model.head,
            len(old_labels),
            LabelledRows(x, y),
            LabelledRows(val.x, y_val),
            len(data.labels),
            WarmHeadConfig(max_iter=CURVE_ITERATIONS),
        )
        new_acc = float((head_logits(head, x_held).argmax(axis=1) == idx[label]).mean())
        old_acc = (
            float((head_logits(head, val.x[old_val]).argmax(axis=1) == y_val[old_val]).mean())
            if old_val.any()
            else float("nan")
        )
        out.append((k, new_acc, old_acc))
    return out


def _curve_figure(label: str, curve: list[tuple[int, float, float]]):
    from model_training.evaluate import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ks = [c[0] for c in curve]
    ax.plot(ks, [c[1] for c in curve], "o-", label=f"{label}: held-back examples")
    ax.plot(ks, [c[2] for c in curve], "s--", label="old classes: validation memes")
    ax.set_xscale("log")
    ax.set_xlabel(f"{label} examples the head learned from")
    ax.set_ylabel("accuracy (head's choice)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def build(data: ReportData, options: ReportOptions) -> Section:
    sec = Section("new_class", "A new class")
    rt = data.meta.metrics.get("retrain") or {}
    new = rt.get("new_labels") or {}
    if not new:
        how = (
            f"It was retrained from {rt.get('base_version')} without adding a class."
            if rt
            else "It was trained from the base dataset, not retrained."
        )
        sec.blocks.append(
            Paragraph(
                f"No class was added in this version. {how} When admins add a label "
                "(/addlabel) and /retrain learns it, this section shows the per-class "
                "accuracy before and after, the promotion gate's paired test and the "
                "new class's learning curve.",
                "note",
            )
        )
        return sec
    sec.blocks.append(
        Paragraph(
            "Added at a retrain of "
            + str(rt.get("base_version"))
            + ": "
            + ", ".join(f"{k} ({v} examples)" for k, v in new.items())
            + ". Only the linear head was retrained, on cached embeddings: the old classes' rows "
              "started "
            "where they were and the new row from its examples' mean, so nothing was trained "
            "from scratch."
        )
    )
    before, after = rt.get("before", {}), rt.get("after", {})
    rows = []
    for label in sorted(set(before.get("per_class", {})) | set(after.get("per_class", {}))):
        b = before.get("per_class", {}).get(label, {})
        a = after.get("per_class", {}).get(label, {})
        delta = "" if not b or not a else f"{100 * (a['accuracy'] - b['accuracy']):+.1f} pt"
        rows.append(
            [
                label,
                str(int(a.get("n", b.get("n", 0)))),
                pct(b.get("accuracy")),
                pct(a.get("accuracy")),
                delta,
            ]
        )
    sec.blocks.append(
        Table(
            ["class", "validation memes", "before", "after", "change"],
            rows,
            "Per-class accuracy on the fixed validation set (base validation split plus "
            "held-back corrections), before and after: a drop on an old class is forgetting.",
        )
    )
    ch = rt.get("old_change") or {}
    sec.blocks.append(
        Table(
            ["old-class memes lost", "gained", "sign test p (worse)", "gate"],
            [
                [
                    str(ch.get("lost", "")),
                    str(ch.get("gained", "")),
                    f"{ch['p_worse']:.3g}" if "p_worse" in ch else "",
                    ("promoted: " if rt.get("promoted") else "kept: ") + str(rt.get("reason", "")),
                ]
            ],
            "The promotion gate's paired test (model_training/promotion.py): on the same "
            "validation memes, old-class memes the candidate got wrong that the active model "
            "got right (lost) vs the reverse (gained), exact one-sided sign test.",
        )
    )
    data.summary["new_class"] = {"labels": new, "old_change": ch, "promoted": rt.get("promoted")}
    if not options.learning_curve:
        sec.blocks.append(Paragraph(f"The learning curve was left out. {options.note}", "note"))
        return sec
    for label in new:
        curve = learning_curve(data, label)
        if not curve:
            sec.blocks.append(
                Paragraph(
                    f"No learning curve for {label}: its corrections' labels or held-back "
                    "examples were not recorded with this version, or the base version is gone.",
                    "note",
                )
            )
            continue
        sec.blocks.append(
            figure(
                _curve_figure(label, curve),
                f"Learning curve of {label}: the retrain's head refitted from the base version "
                f"with 1 to {curve[-1][0]} of its examples; accuracy on its held-back examples and "
                "on the old classes' validation memes.",
                f"learning_curve_{label}",
            )
        )
        data.summary.setdefault("learning_curves", {})[label] = curve
    return sec
