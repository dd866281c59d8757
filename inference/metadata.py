"""The metadata file that travels next to every exported ONNX model (meta.json)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from inference.errors import ModelError
from inference.preprocess import PreprocessConfig

META_FILE = "meta.json"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
OOD_FILE = "ood.npz"
DEFAULT_UNSURE_BELOW = 0.738  # model 20261203-093741-e017b8, on its 335 validation memes
REPORT_FILE = "report.html"  # written by `memebot report` beside the model; the console serves it

OODMethod = Literal[
    "energy",
    "knn",
    "mahalanobis",
    "p_other",
    "energy+knn",
    "p_other+energy",
    "p_other+energy+knn",
    "none",
]


class OODConfig(BaseModel):
    method: OODMethod = "none"
    threshold: float = float("inf")
    # A game meme is called "other" when P(other) reaches this (calibrated on validation) ...
    other_threshold: float = 0.5
    k: int = 10
    # Sorted OOD scores of in-distribution validation memes: a score's rank among them is the
    # confidence that an image is unlike the memes the model knows.
    reference_scores: list[float] = Field(default_factory=list)


class ModelMeta(BaseModel):
    version: str
    labels: list[str]
    reject_label: str = "other"
    preprocess: dict[str, Any]
    temperature: float = 1.0
    # A game label shown with a lower confidence reads "not sure: maybe ..." (chosen on the
    # validation split at training, model_training/calibrate.py `choose_unsure_below`; the
    # default is what it chose for the first model to carry none).
    unsure_below: float = DEFAULT_UNSURE_BELOW
    ood: OODConfig = Field(default_factory=OODConfig)
    backbone: str
    embedding_dim: int
    opset: int = 17
    dataset_fingerprint: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    memebot_version: str = "0.1.0"

    def is_unsure(self, label: str, confidence: float) -> bool:
        """A game label shown with less confidence than validation answers that were guesses
        ("other" is only ever said with a calibrated margin)."""
        return label != self.reject_label and confidence < self.unsure_below

    def preprocess_config(self) -> PreprocessConfig:
        cfg = dict(self.preprocess)
        for key in ("mean", "std", "background"):
            if key in cfg:
                cfg[key] = tuple(cfg[key])
        return PreprocessConfig(**cfg)

    @staticmethod
    def preprocess_dict(cfg: PreprocessConfig) -> dict[str, Any]:
        return asdict(cfg)

    def save(self, folder: Path) -> Path:
        path = folder / META_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.model_dump(mode="json"), indent=2, allow_nan=True))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, folder: Path) -> ModelMeta:
        path = folder / META_FILE
        try:
            return cls.model_validate_json(path.read_text())
        except FileNotFoundError as exc:
            raise ModelError(f"no model metadata at {path}") from exc
        except ValueError as exc:
            raise ModelError(f"unreadable model metadata {path}: {exc}") from exc


ACTIVE_POINTER = "ACTIVE"


def resolve_model_dir(path: Path) -> Path:
    """Accept a model folder itself, or a folder of versions (its ACTIVE file, else the newest)."""
    path = Path(path)
    if (path / META_FILE).is_file():
        return path
    if not path.is_dir():
        raise ModelError(f"model folder {path} does not exist: train one with `memebot train`")
    pointer = path / ACTIVE_POINTER
    if pointer.is_file():
        target = path / pointer.read_text().strip()
        if (target / META_FILE).is_file():
            return target
    versions = sorted(
        (p for p in path.iterdir() if (p / META_FILE).is_file()),
        key=lambda p: ModelMeta.load(p).created_at,
    )
    if not versions:
        raise ModelError(f"no model in {path}: train one with `memebot train`")
    return versions[-1]


def file_sha256(path: Path) -> str:
    """sha256 of a (model) file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
