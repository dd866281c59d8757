"""The exported network: backbone -> embedding -> linear head; outputs logits and embedding."""

from __future__ import annotations

import torch
from torch import nn


class MemeNet(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.backbone = backbone
        # timm backbones have num_features; nn.Module's type does not declare it.
        self.embedding_dim = int(getattr(backbone, "num_features"))  # noqa: B009
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.embedding_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.backbone(x)
        return self.head(self.dropout(embedding)), embedding


def trainable_top(model: MemeNet, blocks: int) -> list[nn.Parameter]:
    """Freeze the backbone except its last `blocks` stages (plus the final conv); return what
    trains."""
    for p in model.backbone.parameters():
        p.requires_grad = False
    stages = list(getattr(model.backbone, "blocks", []))
    modules: list[nn.Module] = stages[len(stages) - blocks :] if blocks > 0 else []
    for name in ("conv_head", "bn2"):
        if blocks > 0 and hasattr(model.backbone, name):
            modules.append(getattr(model.backbone, name))
    if blocks >= len(stages):
        modules = [model.backbone]
    for m in modules:
        for p in m.parameters():
            p.requires_grad = True
    return [p for p in model.parameters() if p.requires_grad]
