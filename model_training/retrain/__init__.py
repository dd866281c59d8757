"""Retraining from admin corrections (issue 6): a new model version next to the active one.

Fast path (`kind="fast"`, fast.py): the active version's network is reloaded from its
checkpoint, only images the embedding cache has never seen go through the backbone, and the
linear head is trained on embeddings starting from the active head (warm_head.py). Classes
admins added (with enough examples) are imprinted from their embeddings' mean.
Full path (`kind="full"`, full.py): `pipeline.train` on the base dataset plus the corrections.

Either way the candidate is written under a temporary folder name (staging.py), checked (it
loads with the production `Classifier`, torch/ONNX parity: graphs.py), scored against the
active model on a fixed validation set (the active version's base validation split plus a
held-back slice of the corrections: evaluation.py), and only then renamed into place (run.py).
The promotion gate decides; nothing here touches models/ACTIVE or the database (the trainer does).

Every module logs as "model_training.retrain": the trainer's log lines shown to admins name it.
"""

from model_training.promotion import RetrainError
from model_training.retrain.config import RetrainConfig
from model_training.retrain.embedding_cache import (
    embed_bounded,
    embedding_cache_key,
    stock_embedding_cache,
)
from model_training.retrain.examples import corrections_from_examples, hold_back
from model_training.retrain.graphs import HeadNotPatchable, patch_head
from model_training.retrain.run import retrain
from model_training.retrain.splits import SPLITS_FILE, load_base_splits
from model_training.retrain.staging import cleanup_temp_folders
from model_training.retrain.summary import RetrainResult
from model_training.retrain.warm_head import LabelledRows, WarmHeadConfig, fit_head, head_logits

__all__ = [
    "SPLITS_FILE",
    "HeadNotPatchable",
    "LabelledRows",
    "RetrainConfig",
    "RetrainError",
    "RetrainResult",
    "WarmHeadConfig",
    "cleanup_temp_folders",
    "corrections_from_examples",
    "embed_bounded",
    "embedding_cache_key",
    "fit_head",
    "head_logits",
    "hold_back",
    "load_base_splits",
    "patch_head",
    "retrain",
    "stock_embedding_cache",
]
