"""Pictures for the report: matplotlib figures and memes as base64 data URIs, Grad-CAM heat maps."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image
from torch import nn

from inference.preprocess import PreprocessConfig, load_image, normalize, resize
from model_training.report.page import Figure

THUMB = 160


def png_uri(fig, dpi: int = 100) -> str:
    """A matplotlib figure as a PNG data URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure(fig, caption: str, name: str) -> Figure:
    return Figure(uri=png_uri(fig), caption=caption, name=name)


def image_uri(img: Image.Image, side: int = THUMB) -> str:
    """A small JPEG of a picture (memes would make the report tens of MB at full size)."""
    img = img.convert("RGB")
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail(path: Path, side: int = THUMB) -> str:
    return image_uri(load_image(Path(path)), side)


class _Logits(nn.Module):
    """MemeNet returns (logits, embedding); Grad-CAM wants the logits alone."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.model(x)[0]


def _target_layer(model: nn.Module) -> nn.Module:
    backbone = model.backbone  # type: ignore[attr-defined]
    for name in ("conv_head", "bn2"):  # EfficientNet family: the last feature map
        if hasattr(backbone, name):
            return getattr(backbone, name)
    blocks = getattr(backbone, "blocks", None) or getattr(backbone, "stages", None)
    if blocks is not None:
        return list(blocks)[-1]
    raise ValueError("no convolutional layer found for Grad-CAM")


def gradcam_uris(
    model: nn.Module, paths: list[Path], classes: list[int], cfg: PreprocessConfig
) -> list[str]:
    """Grad-CAM (the `grad-cam` package) of each image for the class the model chose, over the
    network's own input (the production preprocessing), as JPEG data URIs."""
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if not paths:
        return []
    wrapped = _Logits(model).eval()
    for p in wrapped.parameters():
        p.requires_grad_(True)  # gradients must reach the target layer
    pictures = [resize(load_image(Path(p), background=cfg.background), cfg) for p in paths]
    batch = torch.from_numpy(np.stack([normalize(img, cfg) for img in pictures]))
    out = []
    with GradCAM(model=wrapped, target_layers=[_target_layer(model)]) as cam:
        masks = cam(input_tensor=batch, targets=[ClassifierOutputTarget(c) for c in classes])
    for img, mask in zip(pictures, masks, strict=False):
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        out.append(image_uri(Image.fromarray(show_cam_on_image(rgb, mask, use_rgb=True))))
    for p in wrapped.parameters():
        p.requires_grad_(False)
    return out
