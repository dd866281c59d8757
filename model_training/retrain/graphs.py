"""The candidate's ONNX graphs: the active graph with a new head patched in, the export's parity
with torch, and whether its int8 graph may serve."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inference.classifier import Classifier
from inference.metadata import FP32_FILE, INT8_FILE
from model_training.export import Parity, quantize_int8
from model_training.network import MemeNet
from model_training.promotion import RetrainError

log = logging.getLogger(__package__)


class HeadNotPatchable(RuntimeError):
    """The graph's logits do not come from a plain fp32 Gemm on `embedding` (e.g. a quantized
    head)."""


def patch_head(src: Path, dst: Path, head: nn.Linear) -> Path:
    """Copy an exported graph with the head's weights replaced: same backbone, maybe more classes.

    The fast path changes only the linear head, so re-exporting (and re-quantizing) the
    backbone is wasted work: the head's Gemm initializers and the `logits` output shape are
    all that differ. Works on the fp32 graph and on an int8 graph whose head was kept fp32
    (`quantize_int8` excludes it). Raises HeadNotPatchable otherwise.
    """
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    wname, bname = _head_initializers(src, g)
    inits = {i.name: i for i in g.initializer}
    w = head.weight.detach().float().numpy()
    b = head.bias.detach().float().numpy()
    if tuple(inits[wname].dims)[1:] != w.shape[1:]:
        raise HeadNotPatchable(
            f"{src.name}: head input size {tuple(inits[wname].dims)} vs {w.shape}"
        )
    inits[wname].CopyFrom(numpy_helper.from_array(w, wname))
    inits[bname].CopyFrom(numpy_helper.from_array(b, bname))
    for info in list(g.output) + list(g.value_info):
        if info.name == "logits":
            dims = info.type.tensor_type.shape.dim
            if len(dims) == 2:
                dims[1].ClearField("dim_param")
                dims[1].dim_value = w.shape[0]
    tmp = dst.with_name(dst.name + ".tmp")
    onnx.save(m, str(tmp))
    onnx.checker.check_model(str(tmp))
    tmp.replace(dst)
    return dst


def _head_initializers(src: Path, g: Any) -> tuple[str, str]:
    """Names of the head Gemm's weight and bias, when they can be replaced in place."""
    import onnx
    from onnx import helper

    producer = {o: n for n in g.node for o in n.output}
    node = producer.get("logits")
    if node is None or node.op_type != "Gemm" or len(node.input) != 3:
        raise HeadNotPatchable(
            f"{src.name}: logits come from {getattr(node, 'op_type', None)}, not a Gemm"
        )
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if (
        attrs.get("transA", 0) != 0
        or attrs.get("transB", 0) != 1
        or attrs.get("alpha", 1.0) != 1.0
        or attrs.get("beta", 1.0) != 1.0
    ):
        raise HeadNotPatchable(f"{src.name}: unexpected head Gemm attributes {attrs}")
    inits = {i.name: i for i in g.initializer}
    wname, bname = node.input[1], node.input[2]
    if wname not in inits or bname not in inits:
        raise HeadNotPatchable(
            f"{src.name}: the head's weights are not plain initializers (quantized head?)"
        )
    if (
        inits[wname].data_type != onnx.TensorProto.FLOAT
        or sum(wname in n.input or bname in n.input for n in g.node) != 1
    ):
        raise HeadNotPatchable(f"{src.name}: the head's weights are not fp32 or are shared")
    return wname, bname


def verify_export(
    model: MemeNet,
    folder: Path,
    arrays: np.ndarray,
    tolerance: float,
    head_tolerance: float = 1e-4,
) -> dict[str, Any]:
    """The export loads with the production classifier and agrees with torch.

    Two checks: the whole network against torch (relative to the logits' size: float32 sums
    over the backbone differ in the last digits between runtimes), and the head alone, the
    part a fast retrain patches: ONNX logits against the ONNX embedding through the torch head
    in float64, within `head_tolerance` (absolute, for logits up to 10; relative beyond).
    """
    fp32 = Classifier(folder, precision="fp32")
    raw = fp32.run(arrays)
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(arrays))[0].numpy()
        w = model.head.weight.detach().double().numpy()
        b = model.head.bias.detach().double().numpy()
    if raw.logits.shape != torch_logits.shape:
        raise RetrainError(
            f"exported model has {raw.logits.shape[1]} outputs, torch {torch_logits.shape[1]}"
        )
    parity = Parity(
        max_abs_logit_diff=float(np.abs(torch_logits - raw.logits).max()),
        same_argmax=float((torch_logits.argmax(1) == raw.logits.argmax(1)).mean()),
        n=len(arrays),
    )
    scale = float(np.abs(torch_logits).max())
    head_diff = float(np.abs(raw.embedding.astype(np.float64) @ w.T + b - raw.logits).max())
    if parity.max_abs_logit_diff > tolerance * max(1.0, scale) or parity.same_argmax < 1.0:
        raise RetrainError(
            f"exported model disagrees with torch: {parity} (logit scale {scale:.1f})"
        )
    if head_diff > head_tolerance * max(1.0, scale / 10):
        raise RetrainError(
            f"exported head disagrees with torch: max |logit diff| {head_diff:.2e} "
            f"(logit scale {scale:.1f})"
        )
    return asdict(parity) | {"logit_scale": scale, "head_max_abs_logit_diff": head_diff}


def check_int8(folder: Path, calib: np.ndarray | None, check: np.ndarray) -> dict[str, Any]:
    """int8 next to the fp32 graph (quantized from `calib`, or already written), kept only if it
    agrees."""
    if calib is not None:
        quantize_int8(folder / FP32_FILE, folder / INT8_FILE, calib)
    fp32 = Classifier(folder, precision="fp32")
    int8 = Classifier(folder, precision="int8")
    a = [p.label for p in fp32.predict_arrays(check)]
    b = [p.label for p in int8.predict_arrays(check)]
    agree = float(np.mean([x == y for x, y in zip(a, b, strict=False)])) if a else 1.0
    if agree < 0.98:
        log.warning(
            "int8 model disagrees with fp32 (agreement %.3f on %d images): serving fp32",
            agree,
            len(a),
        )
        (folder / INT8_FILE).unlink()
    return {
        "int8_agreement": agree,
        "int8_check_images": len(a),
        "int8_kept": (folder / INT8_FILE).is_file(),
    }
