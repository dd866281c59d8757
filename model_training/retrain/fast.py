"""The fast path (`kind="fast"`): the active network with a new linear head trained on cached
embeddings, recalibrated, and patched into copies of the active ONNX graphs."""

from __future__ import annotations

import logging
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from torch import nn

from inference.metadata import FP32_FILE, INT8_FILE, OOD_FILE, ModelMeta
from inference.text import TEXT_FILE
from model_training.calibrate import Calibration, calibrate
from model_training.data import Sample
from model_training.dataset import batch_arrays
from model_training.export import export_onnx
from model_training.head import out_of_fold_logits
from model_training.pipeline import OOF_MIN_MEMES, TrainConfig, save_checkpoint
from model_training.retrain.context import RetrainContext
from model_training.retrain.examples import cap_per_class
from model_training.retrain.graphs import HeadNotPatchable, check_int8, patch_head, verify_export
from model_training.retrain.splits import dataset_fingerprint
from model_training.retrain.warm_head import LabelledRows, fit_head, head_logits, limit_new_classes

log = logging.getLogger(__package__)

# Metadata of the active version that still describes the candidate (same backbone).
INHERITED_TRAINING = ("backbone", "input_size", "finetune_epochs", "checkpoint", "seed")


@dataclass
class HeadData:
    """The head's training and validation rows (cached embeddings) and the samples behind them."""

    train_samples: list[Sample]
    val_samples: list[Sample]
    train: LabelledRows
    val: LabelledRows


def build_fast(ctx: RetrainContext) -> Path:
    """Write the candidate into ctx.staging and return that folder."""
    active_head = ctx.model.head
    with ctx.timings.timed("head"):
        data = head_data(ctx)
        head, hist = fit_head(
            active_head, len(ctx.old_labels), data.train, data.val, len(ctx.labels), ctx.cfg.head
        )
    log.info(
        "head: %d epochs, val acc %.4f", len(hist), hist[-1]["val_acc"] if hist else float("nan")
    )
    ctx.model.head = head
    ctx.model.eval()
    # Temperature and OOD, refitted on the new head (the pipeline's own routine).
    with ctx.timings.timed("calibrate"):
        cal = _calibrate(ctx, data, head, active_head)
    rng = random.Random(ctx.cfg.seed)
    with ctx.timings.timed("export"):
        meta = _export(ctx, data, head, cal, rng)
    _add_int8(ctx, meta, data, head, rng)
    meta.save(ctx.staging)
    return ctx.staging


def head_data(ctx: RetrainContext) -> HeadData:
    cfg, corr = ctx.cfg, ctx.corrections
    idx = {lab: i for i, lab in enumerate(ctx.labels)}
    weighted = [s for s in corr.train for _ in range(cfg.correction_weight)]
    train_samples = cap_per_class(ctx.base_train, weighted, cfg.max_per_class, cfg.seed)
    val_samples = ctx.base_val + corr.held_back
    x_tr = ctx.cache.get([s.sha256 for s in train_samples])
    y_tr = np.array([idx[s.label] for s in train_samples])
    x_va = ctx.cache.get([s.sha256 for s in val_samples]) if val_samples else x_tr[:0]
    y_va = np.array([idx[s.label] for s in val_samples], dtype=np.int64)
    return HeadData(train_samples, val_samples, LabelledRows(x_tr, y_tr), LabelledRows(x_va, y_va))


def _calibrate(
    ctx: RetrainContext, data: HeadData, head: nn.Linear, active_head: nn.Linear
) -> Calibration:
    labels, idx = ctx.labels, {lab: i for i, lab in enumerate(ctx.labels)}
    bank = cap_per_class(
        ctx.base_train,
        ctx.corrections.train,
        ctx.cfg.ood_bank_max // max(len(labels), 1),
        ctx.cfg.seed,
    )
    x_bank = ctx.cache.get([s.sha256 for s in bank])
    calib_val = data.val_samples if data.val_samples else bank
    x_cal = ctx.cache.get([s.sha256 for s in calib_val])
    extra = _out_of_fold_games(ctx, data, head, active_head)
    defaults = TrainConfig(data_dir=Path("."))
    return calibrate(
        labels,
        ctx.meta.reject_label,
        np.array([idx[s.label] for s in bank]),
        x_bank,
        np.array([idx[s.label] for s in calib_val]),
        head_logits(head, x_cal),
        x_cal,
        defaults.ood_methods,
        defaults.keep_in_distribution,
        defaults.ood_method,
        extra,
    )


def _out_of_fold_games(
    ctx: RetrainContext, data: HeadData, head: nn.Linear, active_head: nn.Linear
) -> np.ndarray | None:
    """Out-of-fold logits of the training game memes: they steady the P(other) threshold (as in
    training). On the way, new classes' biases are lowered to their budget of old-class memes."""
    n_old, n_classes, cfg = len(ctx.old_labels), len(ctx.labels), ctx.cfg.head
    games = [i for i, lab in enumerate(ctx.labels) if lab != ctx.meta.reject_label]
    x_tr, y_tr = data.train.x, data.train.y
    if int(np.isin(y_tr, games).sum()) < OOF_MIN_MEMES:
        return None
    oof = out_of_fold_logits(
        x_tr,
        lambda rows: fit_head(
            active_head, n_old, LabelledRows(x_tr[rows], y_tr[rows]), data.val, n_classes, cfg
        )[0],
        ctx.cfg.seed,
    )
    if n_classes > n_old and cfg.new_class_fp_budget:
        oof = limit_new_classes(head, oof, y_tr, n_old, games, cfg.new_class_fp_budget)
    return oof[np.isin(y_tr, games)]


def _export(
    ctx: RetrainContext, data: HeadData, head: nn.Linear, cal: Calibration, rng: random.Random
) -> ModelMeta:
    """The fp32 graph, checkpoint, OOD scorer, word model and metadata, checked against torch."""
    active, tmp = ctx.active, ctx.staging
    tmp.mkdir(parents=True, exist_ok=False)
    # Only the head changed: patch it into a copy of the active graph (exporting the backbone
    # again took ~40 s on Lite0); an active model without a patchable graph is re-exported.
    how = "patched"
    try:
        patch_head(active / FP32_FILE, tmp / FP32_FILE, head)
    except (HeadNotPatchable, OSError) as exc:
        log.info("exporting the whole network (%s)", exc)
        export_onnx(ctx.model, tmp / FP32_FILE, ctx.pre.input_size)
        how = "exported"
    save_checkpoint(ctx.model, ctx.labels, ctx.meta.backbone, tmp)
    cal.scorer.save(tmp / OOD_FILE)
    if (active / TEXT_FILE).is_file():  # the word model is kept; `/retrain full` fits it again
        shutil.copy2(active / TEXT_FILE, tmp / TEXT_FILE)
    meta = _candidate_meta(ctx, data, cal)
    meta.save(tmp)
    val = data.val_samples
    check = batch_arrays(
        rng.sample(val, min(32, len(val))) if val else data.train_samples[:8], ctx.pre
    )
    meta.metrics["parity_fp32"] = verify_export(ctx.model, tmp, check, ctx.cfg.parity_tolerance) | {
        "graph": how
    }
    return meta


def _candidate_meta(ctx: RetrainContext, data: HeadData, cal: Calibration) -> ModelMeta:
    meta, cfg, corr_train = ctx.meta, ctx.cfg, ctx.corrections.train
    return ModelMeta(
        version=ctx.version,
        labels=ctx.labels,
        reject_label=meta.reject_label,
        preprocess=dict(meta.preprocess),
        temperature=cal.temperature,
        unsure_below=meta.unsure_below,  # a head retrain keeps the calibration's character
        ood=cal.ood,
        backbone=meta.backbone,
        embedding_dim=meta.embedding_dim,
        opset=meta.opset,
        dataset_fingerprint=dataset_fingerprint(ctx.base_train + corr_train, data.val_samples),
        training={
            **{k: v for k, v in meta.training.items() if k in INHERITED_TRAINING},
            "retrained_from": meta.version,
            "kind": "fast",
            "head": asdict(cfg.head),
            "correction_weight": cfg.correction_weight,
            "n_train": len(data.train_samples),
            "n_val": len(data.val_samples),
            "n_extra": len(corr_train),
            "ood_val_auroc": cal.val_auroc,
            "embedding_cache_key": ctx.cache.path.name,
        },
    )


def _add_int8(
    ctx: RetrainContext, meta: ModelMeta, data: HeadData, head: nn.Linear, rng: random.Random
) -> None:
    """The int8 graph: the active one with the head patched in, kept only if it agrees with fp32."""
    if not ctx.cfg.int8:
        return
    if not (ctx.active / INT8_FILE).is_file():
        # The active version serves fp32 (its int8 failed the accuracy check, or int8 was off):
        # the backbone is the same, so its quantization would fail the same way.
        meta.metrics |= {"int8_kept": False, "int8_reason": f"{ctx.meta.version} has no int8 graph"}
        return
    with ctx.timings.timed("int8"):
        uniq = list({s.sha256: s for s in data.train_samples}.values())
        pool = data.val_samples if data.val_samples else uniq
        check = batch_arrays(rng.sample(pool, min(ctx.cfg.int8_check_images, len(pool))), ctx.pre)
        calib = None
        try:
            patch_head(ctx.active / INT8_FILE, ctx.staging / INT8_FILE, head)
            meta.metrics["int8_graph"] = "patched"
        except (HeadNotPatchable, OSError) as exc:  # an int8 graph from before the head stayed fp32
            log.info("quantizing the whole network again (%s)", exc)
            calib = batch_arrays(rng.sample(uniq, min(64, len(uniq))), ctx.pre)
            meta.metrics["int8_graph"] = "quantized"
        meta.metrics |= check_int8(ctx.staging, calib, check)
