"""Evaluate an exported model on labelled images through the production inference path (no
torch)."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inference.classifier import Classifier, Prediction, PredictionError, RawOutput, decide
from inference.metadata import ModelMeta
from inference.metrics import (
    binomial_sf,
    confusion_matrix,
    expected_calibration_error,
    fpr_at_tpr,
    per_class,
    roc_auc,
    wilson_interval,
)
from inference.ood import OODScorer

log = logging.getLogger(__name__)


@dataclass
class EvalItem:
    path: Path
    label: str
    prediction: Prediction


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    items: list[EvalItem] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)


def predict_files(
    classifier: Classifier,
    files: list[tuple[Path, str]],
    progress: bool = True,
    captions: dict[Path, str] | None = None,
) -> EvalResult:
    """`captions`: resolved path -> the words posted with the image (a MANIFEST.csv's column)."""
    from tqdm import tqdm

    result = EvalResult(metrics={})
    bar = tqdm(total=len(files), desc="evaluating", unit="img", disable=not progress)
    for i in range(0, len(files), 32):
        chunk = files[i : i + 32]
        posted = [captions.get(p.resolve()) for p, _ in chunk] if captions else None
        for (path, label), media in zip(
            chunk, classifier.predict_media([p for p, _ in chunk], captions=posted), strict=False
        ):
            pred = media.result  # a clip is judged from its frames, as the bot judges it
            if isinstance(pred, PredictionError):
                result.failures.append((path, pred.error))
            else:
                result.items.append(EvalItem(path, label, pred))
        bar.update(len(chunk))
    bar.close()
    return result


def compute_metrics(
    items: list[EvalItem], labels: list[str], reject_label: str = "other"
) -> dict[str, Any]:
    """All the numbers `memebot evaluate` reports, for images whose true label the model knows."""
    known = [it for it in items if it.label in labels]
    idx = {lab: i for i, lab in enumerate(labels)}
    y = np.array([idx[it.label] for it in known], dtype=np.int64)
    pred = np.array([idx[it.prediction.label] for it in known], dtype=np.int64)
    conf = np.array([it.prediction.confidence for it in known])
    n, correct = len(known), int((y == pred).sum())
    out: dict[str, Any] = {"n": n, "labels": labels}
    if n == 0:
        return out
    lo, hi = wilson_interval(correct, n)
    cm = confusion_matrix(y, pred, len(labels))
    majority = float(np.bincount(y, minlength=len(labels)).max() / n)
    out |= {
        "accuracy": correct / n,
        "accuracy_ci95": [lo, hi],
        "per_class": per_class(cm, labels),
        "confusion_matrix": cm.tolist(),
        "ece": expected_calibration_error(conf, (y == pred).astype(np.float64)),
        "majority_baseline": majority,
        "p_value_vs_majority": binomial_sf(correct, n, majority),
    }
    games = [lab for lab in labels if lab != reject_label]
    game_items = [it for it in known if it.label in games]
    if game_items:
        # Which game, ignoring the "other" option: the doom-vs-AC accuracy of the issue.
        g_true = np.array([games.index(it.label) for it in game_items])
        g_pred = np.array(
            [int(np.argmax([it.prediction.probabilities[g] for g in games])) for it in game_items]
        )
        g_ok = int((g_true == g_pred).sum())
        kept = sum(it.prediction.label != reject_label for it in game_items)
        out |= {
            "game_accuracy": g_ok / len(game_items),
            "game_accuracy_ci95": list(wilson_interval(g_ok, len(game_items))),
            "games_kept": kept / len(game_items),
            "n_games": len(game_items),
        }
    ood_items = [it for it in items if it.label == reject_label or it.label not in labels]
    if game_items and ood_items:
        s_in = np.array([it.prediction.ood_score for it in game_items])
        s_out = np.array([it.prediction.ood_score for it in ood_items])
        # "other" evidence: OOD score, or the classifier's own "other" probability when it says so.
        r_in = np.array([_otherness(it, reject_label) for it in game_items])
        r_out = np.array([_otherness(it, reject_label) for it in ood_items])
        out |= {
            "ood_auroc": roc_auc(s_out, s_in),
            "ood_fpr_at_95tpr": fpr_at_tpr(s_in, s_out),
            "other_auroc": roc_auc(r_out, r_in),
            "other_fpr_at_95tpr": fpr_at_tpr(r_in, r_out),
            "other_recall": float(
                np.mean([it.prediction.label == reject_label for it in ood_items])
            ),
            "n_other": len(ood_items),
        }
    return out


def _otherness(item: EvalItem, reject_label: str) -> float:
    """One number per image ranking how strongly the model calls it "other" (for AUROC)."""
    p = item.prediction
    game_prob = 1.0 - p.probabilities.get(reject_label, 0.0)
    return (1.0 - game_prob) + (1.0 if p.is_ood else 0.0) + 1e-3 * p.ood_score


def save_report(result: EvalResult, out_dir: Path, labels: list[str]) -> Path:
    """metrics.json plus confusion-matrix, reliability and OOD-score plots."""
    out_dir.mkdir(parents=True, exist_ok=True)
    m = result.metrics
    m["failures"] = [{"path": str(p), "error": e} for p, e in result.failures]
    (out_dir / "metrics.json").write_text(json.dumps(m, indent=2))
    _plots(result, out_dir, labels)
    return out_dir / "metrics.json"


# --------------------------------------------------------------------------- reusable pieces
# The model report (model_training/report/) and the notebook draw the same figures from the
# same items: one home for each.


def items_from_outputs(
    samples: Sequence[Any], raw: RawOutput, meta: ModelMeta, ood: OODScorer
) -> list[EvalItem]:
    """What the production decision rule says given a model's raw outputs (logits, embeddings,
    optional text shift) for samples with `.path` and `.label`: evaluation on cached embeddings."""
    if not len(samples):
        return []
    preds = decide(raw, meta, ood)
    return [EvalItem(s.path, s.label, p) for s, p in zip(samples, preds, strict=False)]


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean confidence, accuracy and count per confidence bin (empty bins left out)."""
    edges = np.linspace(0, 1, bins + 1)
    xs, ys, ns = [], [], []
    for lo, hi in itertools.pairwise(edges):
        sel = (confidence > lo) & (confidence <= hi)
        if sel.any():
            xs.append(float(confidence[sel].mean()))
            ys.append(float(correct[sel].mean()))
            ns.append(int(sel.sum()))
    return np.array(xs), np.array(ys), np.array(ns)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(cm: np.ndarray, labels: list[str], title: str = ""):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4 + len(labels) * 0.5, 3.5 + len(labels) * 0.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def reliability_figure(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "reliability"
):
    """One line per name: (confidence, correct) binned; the diagonal is perfect calibration."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    for name, (conf, ok) in curves.items():
        xs, ys, _ = reliability_bins(conf, ok)
        ax.plot(xs, ys, "o-", label=name)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def score_histogram_figure(
    groups: dict[str, np.ndarray],
    threshold: float | None = None,
    xlabel: str = "OOD score (higher = less like known memes)",
    title: str = "",
):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    finite = [v[np.isfinite(v)] for v in groups.values() if len(v)]
    allv = np.concatenate(finite) if finite else np.zeros(1)
    bins = np.linspace(float(allv.min()), float(allv.max()) + 1e-6, 41)
    for name, scores in groups.items():
        if len(scores):
            ax.hist(scores, bins=bins, alpha=0.5, label=f"{name} (n={len(scores)})", density=True)
    if threshold is not None and np.isfinite(threshold):
        ax.axvline(threshold, color="black", linestyle="--", label="threshold")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_curves_figure(history: list[dict[str, Any]]):
    """Loss and validation accuracy per epoch, one line per training phase (head, fine-tune)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for phase in sorted({r.get("phase", "") for r in history}):
        rows = [r for r in history if r.get("phase", "") == phase]
        ep = [r["epoch"] for r in rows]
        axes[0].plot(ep, [r["train_loss"] for r in rows], label=f"{phase} train")
        axes[0].plot(ep, [r["val_loss"] for r in rows], "--", label=f"{phase} val")
        axes[1].plot(ep, [r["val_acc"] for r in rows], label=f"{phase} val acc")
    axes[0].set_title("loss")
    axes[1].set_title("validation accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    return fig


def _plots(result: EvalResult, out_dir: Path, labels: list[str]) -> None:
    plt = _pyplot()
    m = result.metrics
    if "confusion_matrix" in m:
        fig = confusion_figure(
            np.array(m["confusion_matrix"]), labels, f"accuracy {m['accuracy']:.3f} (n={m['n']})"
        )
        fig.savefig(out_dir / "confusion_matrix.png", dpi=120)
        plt.close(fig)
    items = [it for it in result.items if it.label in labels]
    if items:
        conf = np.array([it.prediction.confidence for it in items])
        ok = np.array([it.prediction.label == it.label for it in items], dtype=float)
        fig = reliability_figure(
            {"model": (conf, ok)}, f"reliability (ECE {m.get('ece', float('nan')):.3f})"
        )
        fig.savefig(out_dir / "reliability.png", dpi=120)
        plt.close(fig)
    groups = {
        label: np.array([it.prediction.ood_score for it in result.items if it.label == label])
        for label in sorted({it.label for it in result.items})
    }
    fig = score_histogram_figure(groups)
    fig.savefig(out_dir / "ood_scores.png", dpi=120)
    plt.close(fig)


def evaluate_folder(
    model_path: Path,
    data_dir: Path,
    out_dir: Path | None = None,
    progress: bool = True,
    with_captions: bool = True,
) -> EvalResult:
    """Every labelled image of data_dir through the serving Classifier; a MANIFEST.csv with a
    `caption` column supplies the words posted with each image (as a chat would)."""
    from inference.captions import dataset_captions
    from model_training.data import class_root, list_labelled

    clf = Classifier(model_path)
    captions = dataset_captions(class_root(data_dir) / "MANIFEST.csv") if with_captions else None
    result = predict_files(clf, list_labelled(data_dir), progress=progress, captions=captions)
    result.metrics = compute_metrics(result.items, clf.labels, clf.meta.reject_label)
    result.metrics["model_version"] = clf.version
    result.metrics["model_file"] = clf.onnx_file.name
    result.metrics["captions_used"] = sum(1 for c in (captions or {}).values() if c)
    if out_dir is not None:
        save_report(result, out_dir, clf.labels)
    return result
