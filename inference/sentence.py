"""The sentence encoder the bot runs: all-MiniLM-L6-v2 as int8 ONNX, tokenized by `tokenizers`.

Exported once at training (model_training/sentence_encoder.py) into `<models>/encoders/NAME/`,
one copy on disk shared by every model version (23 MB, not 23 MB a version). No torch here.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from inference.errors import ModelError

ENCODER_NAME = "all-minilm-l6-v2"
ENCODER_FILE = "encoder.int8.onnx"
# The weights beside the graph, in a file of their own: onnxruntime maps it rather than copying
# it out of the parsed model (11 MB less resident). Encoders exported before keep them inside.
ENCODER_DATA_FILE = "encoder.int8.onnx.data"
TOKENIZER_FILE = "tokenizer.json"
ENCODERS = "encoders"
MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on 128-token texts and reads up to 256
EMBEDDING_DIM = 384


def encoder_dir(models_root: Path, name: str = ENCODER_NAME) -> Path:
    return Path(models_root) / ENCODERS / name


def find_encoder(model_folder: Path, name: str = ENCODER_NAME) -> Path:
    """The shared encoder beside a model version (`<models>/<version>` -> `<models>/encoders`)."""
    folder = encoder_dir(Path(model_folder).parent, name)
    if not (folder / ENCODER_FILE).is_file():
        raise ModelError(f"model {Path(model_folder).name} needs the sentence encoder {name}, "
                         f"missing from {folder}: `memebot train` exports it")
    return folder


class SentenceEncoder:
    """Unit-length 384-dimensional embeddings of texts; thread-safe."""

    def __init__(self, folder: Path, threads: int = 1) -> None:
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        try:
            self.tokenizer = Tokenizer.from_file(str(self.folder / TOKENIZER_FILE))
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.enable_cpu_mem_arena = False
            self.session = ort.InferenceSession(str(self.folder / ENCODER_FILE), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # tokenizers and onnxruntime raise their own untyped errors
            raise ModelError(f"cannot load the sentence encoder in {self.folder}: {exc}") from exc
        # The shipped tokenizer pads every text to 128 tokens; ours pads a batch to its longest.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self._lock = threading.Lock()  # `tokenizers` objects are not shared across threads

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            encoded = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encoded)
        ids = np.zeros((len(texts), width), np.int64)
        mask = np.zeros((len(texts), width), np.int64)
        for i, e in enumerate(encoded):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        return ids, mask

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), 384) float32; an empty text gets a zero vector."""
        out = np.zeros((len(texts), EMBEDDING_DIM), np.float32)
        todo = [i for i, t in enumerate(texts) if t.strip()]
        # similar lengths together: less padding
        todo.sort(key=lambda i: len(texts[i]))
        for start in range(0, len(todo), batch_size):
            rows = todo[start : start + batch_size]
            ids, mask = self.tokenize([texts[i] for i in rows])
            (emb,) = self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
            out[rows] = emb
        return out
