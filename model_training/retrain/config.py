"""What a retrain is asked to do: `RetrainConfig`, filled in by the trainer from the job and
the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from model_training.promotion import GateConfig
from model_training.retrain.warm_head import WarmHeadConfig


@dataclass
class RetrainConfig:
    model_dir: Path
    dataset_dir: Path | None
    cache_dir: Path = Path("var/cache")
    kind: str = "fast"  # "fast" (head on cached embeddings) or "full" (pipeline.train)
    min_examples_new_label: int = 5
    holdback_fraction: float = 0.2  # of each label's corrections, kept for validation
    seed: int = 0
    gate: GateConfig = field(default_factory=GateConfig)
    # The fast path's head; the full path trains its own through pipeline.train.
    head: WarmHeadConfig = field(default_factory=WarmHeadConfig)
    correction_weight: int = 2  # each training correction counts this many times
    max_per_class: int = 4000  # base + corrections rows per class in the head's training set
    ood_bank_max: int = 20000  # in-distribution rows the OOD scorer keeps
    int8: bool = True
    int8_check_images: int = 64
    parity_tolerance: float = 1e-3
    embed_chunk: int = 512  # images embedded between cache saves (a kill loses at most this)
    finetune_epochs: int = 4  # full path only
    threads: int | None = None
    progress: bool = False
