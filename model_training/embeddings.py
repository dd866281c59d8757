"""Frozen-backbone embeddings, cached per (image sha256, backbone) so each image is embedded
once."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from inference.preprocess import PreprocessConfig
from model_training.data import Sample
from model_training.dataset import batch_arrays

log = logging.getLogger(__name__)


class EmbeddingCache:
    """One .npz per backbone+preprocessing key, holding sha256 -> float16 embedding."""

    def __init__(self, folder: Path, key: str) -> None:
        self.path = Path(folder) / f"embeddings-{key}.npz"
        self._vectors: dict[str, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path) as z:
                self._vectors = dict(zip(z["sha256"].tolist(), z["vectors"], strict=False))

    def __contains__(self, sha256: str) -> bool:
        return sha256 in self._vectors

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, sha256s: list[str]) -> np.ndarray:
        return np.stack([self._vectors[s] for s in sha256s]).astype(np.float32)

    def put(self, sha256s: list[str], vectors: np.ndarray) -> None:
        for s, v in zip(sha256s, vectors, strict=False):
            self._vectors[s] = v.astype(np.float16)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        keys = sorted(self._vectors)
        vectors = (
            np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, 0), np.float16)
        )
        np.savez(tmp, sha256=np.array(keys), vectors=vectors)
        tmp.replace(self.path)


def cache_key(backbone_name: str, cfg: PreprocessConfig) -> str:
    return f"{backbone_name}-{cfg.input_size}-{cfg.resize}-{cfg.interpolation}"


@torch.no_grad()
def embed(
    backbone: nn.Module,
    samples: list[Sample],
    cfg: PreprocessConfig,
    cache: EmbeddingCache | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> np.ndarray:
    """Embeddings for samples (rows in order), computing only those not already cached."""
    todo = [
        s
        for s in dict((s.sha256, s) for s in samples).values()
        if not cache or s.sha256 not in cache
    ]
    fresh: dict[str, np.ndarray] = {}
    if todo:
        backbone.eval()
        bar = tqdm(total=len(todo), desc="embedding images", unit="img", disable=not progress)
        for i in range(0, len(todo), batch_size):
            chunk = todo[i : i + batch_size]
            vectors = backbone(torch.from_numpy(batch_arrays(chunk, cfg))).numpy()
            for s, v in zip(chunk, vectors, strict=False):
                fresh[s.sha256] = v
            bar.update(len(chunk))
        bar.close()
        if cache is not None:
            cache.put(list(fresh), np.stack(list(fresh.values())))
            cache.save()
    rows = []
    for s in samples:
        rows.append(fresh[s.sha256] if s.sha256 in fresh else cache.get([s.sha256])[0])  # type: ignore[union-attr]
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
