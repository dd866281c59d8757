"""ONNX export (fp32 reference + static int8) and a validator that re-checks an export.

The validator runs the exported file through the production inference path (`Classifier`)
and compares with torch on the same preprocessed arrays, as timm's ONNX validator does.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from inference.classifier import Classifier
from model_training.network import MemeNet

log = logging.getLogger(__name__)

OPSET = 17


def export_onnx(model: MemeNet, path: Path, input_size: int, opset: int = OPSET) -> Path:
    """fp32 ONNX with a dynamic batch axis; outputs `logits` and `embedding`."""
    model = model.eval()
    dummy = torch.zeros(1, 3, input_size, input_size)
    tmp = path.with_name(path.name + ".tmp")
    torch.onnx.export(
        model,
        (dummy,),
        str(tmp),
        input_names=["input"],
        output_names=["logits", "embedding"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )
    onnx.checker.check_model(str(tmp))
    tmp.replace(path)
    return path


class _Reader(CalibrationDataReader):
    def __init__(self, arrays: np.ndarray, batch: int = 1) -> None:
        self._batches = iter([arrays[i : i + batch] for i in range(0, len(arrays), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"input": batch}


# The first convolutions (stem and the first blocks, at 112 and 56 px) hold most of the int8
# error: on Lite0's validation memes, keeping the first 7 in fp32 moves same-argmax from 97.9%
# to 99.1% and embedding cosine from 0.991 to 0.997, at ~1 ms (batch 1, 2 threads); 6 gave
# 98.8%, 9 no better than 7.
FP32_LEADING_CONVS = 7


@contextlib.contextmanager
def quantizer_quiet() -> Iterator[None]:
    """onnxruntime's quantizers log on the root logger (an INFO line per adjusted channel or
    skipped MatMul, a WARNING advising pre-processing) and their calibrator prints its progress
    to stdout: none of it belongs in `memebot train`'s own output."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


def quantize_int8(fp32_path: Path, int8_path: Path, calibration: np.ndarray,
                  fp32_leading_convs: int = FP32_LEADING_CONVS) -> Path:
    """Static QDQ int8, per-channel weights, activations calibrated on training images; fp32 head
    and first convolutions."""
    with quantizer_quiet():
        return _quantize(fp32_path, int8_path, calibration, fp32_leading_convs)


def _quantize(
    fp32_path: Path, int8_path: Path, calibration: np.ndarray, fp32_leading_convs: int
) -> Path:
    with tempfile.TemporaryDirectory() as tmpdir:
        prep = Path(tmpdir) / "prep.onnx"
        quant_pre_process(str(fp32_path), str(prep), skip_symbolic_shape=True)
        # The head stays fp32: a fast retrain patches its weights into a copy of this graph
        # (a quantized head's logits would also be clipped to the old classes' range).
        graph = onnx.load(str(prep)).graph
        head = [
            n.name for n in graph.node if "logits" in n.output and n.op_type in ("Gemm", "MatMul")
        ]
        leading = [n.name for n in graph.node if n.op_type == "Conv"][:fp32_leading_convs]
        tmp = int8_path.with_name(int8_path.name + ".tmp")
        quantize_static(
            str(prep),
            str(tmp),
            _Reader(calibration.astype(np.float32)),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"CalibPercentile": 99.99},
            nodes_to_exclude=head + _shape_arithmetic(graph) + leading,
        )
        tmp.replace(int8_path)
    return int8_path


def _shape_arithmetic(graph: onnx.GraphProto) -> list[str]:
    """Nodes off the image's data path: the "same" padding of tf_ backbones is computed at run
    time from the input's shape (Shape -> Sub/Mul/Add/Ceil... -> Pad). Quantizing that
    arithmetic like an activation rounds the pad sizes and shifts every strided conv: measured
    on Lite0, embedding cosine to fp32 0.944 and same argmax 91.6% with it, 0.991 and 97.9%
    without (validation memes)."""
    data = {i.name for i in graph.input}
    off: list[str] = []
    for node in graph.node:  # ONNX graphs are topologically sorted
        if node.op_type != "Shape" and any(i in data for i in node.input):
            data.update(node.output)
        else:
            off.append(node.name)
    return off


@dataclass(frozen=True)
class Parity:
    max_abs_logit_diff: float
    same_argmax: float
    n: int


@torch.no_grad()
def check_parity(model: MemeNet, classifier: Classifier, arrays: np.ndarray) -> Parity:
    """Compare torch and the exported model on identical preprocessed inputs."""
    model.eval()
    torch_logits = model(torch.from_numpy(arrays))[0].numpy()
    onnx_logits = classifier.run(arrays).logits
    return Parity(
        max_abs_logit_diff=float(np.abs(torch_logits - onnx_logits).max()),
        same_argmax=float((torch_logits.argmax(1) == onnx_logits.argmax(1)).mean()),
        n=len(arrays),
    )
