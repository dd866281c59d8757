"""The full path (`kind="full"`): `pipeline.train` on the base dataset plus the training
corrections, written into the staging folder."""

from __future__ import annotations

from pathlib import Path

from inference.metadata import ModelMeta
from inference.preprocess import load_image
from model_training.data import Sample, _phash
from model_training.pipeline import TrainConfig, train
from model_training.retrain.context import RetrainContext


def build_full(ctx: RetrainContext) -> Path:
    """Train the candidate; returns its folder (inside ctx.staging, named by the pipeline)."""
    cfg, meta = ctx.cfg, ctx.meta
    with ctx.timings.timed("full_train"):
        extra = [
            Sample(s.path, s.label, s.sha256, _phash(load_image(s.path)), s.source, s.group)
            for s in ctx.corrections.train
        ]
        result = train(
            TrainConfig(
                data_dir=ctx.dataset_dir,
                model_dir=ctx.staging,
                cache_dir=cfg.cache_dir,
                backbone=meta.backbone,
                input_size=meta.preprocess_config().input_size,
                finetune_epochs=cfg.finetune_epochs,
                seed=cfg.seed,
                holdout_source=meta.training.get("holdout_source"),
                reject_label=meta.reject_label,
                int8=cfg.int8,
                activate=False,
                progress=cfg.progress,
                threads=cfg.threads,
                extra_samples=extra,
            )
        )
    candidate = ModelMeta.load(result.model_path)
    candidate.training["retrained_from"] = meta.version
    candidate.training["kind"] = "full"
    candidate.save(result.model_path)
    return result.model_path
