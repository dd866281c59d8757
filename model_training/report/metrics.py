"""Section "How good is it?": accuracy with its Wilson interval, per-class P/R/F1, confusion
matrix, training curves, calibration before and after temperature scaling, image vs image+words."""

from __future__ import annotations

import numpy as np

from inference.classifier import softmax
from inference.metrics import expected_calibration_error
from model_training.evaluate import (
    compute_metrics,
    confusion_figure,
    reliability_figure,
    training_curves_figure,
)
from model_training.report.context import ReportData
from model_training.report.figures import figure
from model_training.report.page import Paragraph, Section, Table


def pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}%"


def calibration(data: ReportData, part: str = "test") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(confidence, correct) of the head's own 3-way choice, before (T=1) and after scaling."""
    p = data.parts[part]
    y = data.y_index(part)
    out = {}
    for name, t in (
        ("before (T = 1)", 1.0),
        (f"after (T = {data.meta.temperature:.2f})", data.meta.temperature),
    ):
        probs = softmax(p.logits, t)
        out[name] = (
            probs.max(axis=1).astype(np.float64),
            (probs.argmax(axis=1) == y).astype(np.float64),
        )
    return out


def build(data: ReportData) -> Section:
    sec = Section("metrics", "How good is it? Metrics on the held-out test split")
    test = data.parts["test"]
    m = compute_metrics(test.items, data.labels, data.reject)
    mi = compute_metrics(test.items_image, data.labels, data.reject)
    if not m.get("n"):
        sec.blocks.append(Paragraph("The test split is empty: no metrics.", "note"))
        return sec
    lo, hi = m["accuracy_ci95"]
    sec.blocks.append(
        Paragraph(
            f"{m['n']} test memes the model never trained on. Accuracy {pct(m['accuracy'])} "
            f"(Wilson 95% interval {pct(lo)} to {pct(hi)}): the interval is where the true "
            "accuracy on "
            f"memes like these lies, given only {m['n']} examples."
        )
    )
    rows = [
        [lab, pct(v["precision"]), pct(v["recall"]), f"{v['f1']:.3f}", str(v["support"])]
        for lab, v in m["per_class"].items()
    ]
    sec.blocks.append(
        Table(
            ["class", "precision", "recall", "F1", "test memes"],
            rows,
            "precision: of the memes given this label, how many had it; recall: of the memes "
            "with this label, how many got it",
        )
    )
    sec.blocks.append(
        figure(
            confusion_figure(
                np.array(m["confusion_matrix"]),
                data.labels,
                f"test accuracy {pct(m['accuracy'])} (n={m['n']})",
            ),
            "Confusion matrix: rows are the true class, columns what the model said.",
            "confusion_matrix",
        )
    )
    if data.history:
        whose = (
            ""
            if data.history_of == data.meta.version
            else (
                f" of the base version {data.history_of} (a fast retrain fits only the head, in "
                "one L-BFGS solve)"
            )
        )
        sec.blocks.append(
            figure(
                training_curves_figure(data.history),
                f"Training curves{whose}: loss and validation accuracy per epoch.",
                "training_curves",
            )
        )
    else:
        sec.blocks.append(
            Paragraph(
                "This version has no training history (a fast retrain fits the head "
                "in one L-BFGS solve, not in epochs).",
                "note",
            )
        )
    curves = calibration(data)
    eces = {k: expected_calibration_error(c, ok) for k, (c, ok) in curves.items()}
    sec.blocks.append(
        figure(
            reliability_figure(curves, "reliability on the test split"),
            "Reliability: when the model says 80%, is it right 80% of the time? "
            + "; ".join(f"ECE {k}: {v:.3f}" for k, v in eces.items()),
            "reliability",
        )
    )
    sec.blocks.append(
        Table(
            ["", "ECE (expected calibration error)"],
            [[k, f"{v:.3f}"] for k, v in eces.items()]
            + [["the bot's decisions (thresholds, words)", f"{m['ece']:.3f}"]],
            "Temperature scaling divides the logits by one number fitted on validation memes: "
            "it changes how sure the model sounds, never which class it picks.",
        )
    )
    rows = [
        ["3-class accuracy", pct(mi.get("accuracy")), pct(m.get("accuracy"))],
        ["doom vs Animal Crossing", pct(mi.get("game_accuracy")), pct(m.get("game_accuracy"))],
        ["game memes kept (not called other)", pct(mi.get("games_kept")), pct(m.get("games_kept"))],
    ]
    if data.text_model is None:
        sec.blocks.append(
            Paragraph(
                "This model has no word model (trained with --no-text, without Tesseract, "
                "or on memes with too little readable text): image and image + words "
                "are the same.",
                "note",
            )
        )
    sec.blocks.append(
        Table(
            ["on the test split", "image alone", "image + words (served)"],
            rows,
            "Words read by OCR only move the choice between the two games.",
        )
    )
    sec.blocks.append(
        Paragraph(
            f"Binomial test against always answering the majority class "
            f"({pct(m['majority_baseline'])}): p = {m['p_value_vs_majority']:.2g}."
        )
    )
    data.summary["accuracy"] = m["accuracy"]
    data.summary["accuracy_ci95"] = m["accuracy_ci95"]
    data.summary["game_accuracy"] = m.get("game_accuracy")
    data.summary["game_accuracy_image"] = mi.get("game_accuracy")
    data.summary["ece"] = eces
    return sec
