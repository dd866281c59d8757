"""Embeddings of the active version's backbone, cached by its weights: only images the cache has
never seen go through the backbone."""

from __future__ import annotations

import hashlib
from pathlib import Path

from torch import nn

from inference.metadata import ModelMeta
from inference.preprocess import PreprocessConfig
from model_training.data import Sample
from model_training.embeddings import EmbeddingCache, cache_key, embed


def backbone_fingerprint(backbone: nn.Module) -> str:
    """Identifies the backbone weights (a fine-tuned backbone embeds differently)."""
    h = hashlib.sha256()
    for name, tensor in sorted(backbone.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def embedding_cache_key(meta: ModelMeta, backbone: nn.Module) -> str:
    return cache_key(meta.backbone, meta.preprocess_config()) + "-" + backbone_fingerprint(backbone)


def stock_embedding_cache(meta: ModelMeta, cache_dir: Path) -> EmbeddingCache | None:
    """The pipeline's cache of stock-backbone embeddings when they are this model's own."""
    tr = meta.training
    if tr.get("finetune_epochs") == 0 and not tr.get("checkpoint") and not tr.get("retrained_from"):
        # A head-only model keeps the stock weights: the pipeline's own cache holds the same
        # vectors.
        return EmbeddingCache(cache_dir, cache_key(meta.backbone, meta.preprocess_config()))
    return None


def embed_bounded(
    backbone: nn.Module,
    samples: list[Sample],
    pre: PreprocessConfig,
    cache: EmbeddingCache,
    *,
    chunk: int = 512,
    fallback: EmbeddingCache | None = None,
    progress: bool = False,
) -> int:
    """Put every sample's embedding in the cache; new images go through the backbone in chunks
    saved as they go (bounded memory; a killed trainer resumes). Returns how many were new."""
    seen: set[str] = set()
    todo = []
    for s in samples:
        if s.sha256 in seen or s.sha256 in cache:
            continue
        seen.add(s.sha256)
        if fallback is not None and s.sha256 in fallback:
            cache.put([s.sha256], fallback.get([s.sha256]))
            continue
        todo.append(s)
    for i in range(0, len(todo), chunk):
        embed(backbone, todo[i : i + chunk], pre, cache, progress=progress)  # saves the cache
    if not todo and fallback is not None and seen:
        cache.save()
    return len(todo)
