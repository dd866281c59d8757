"""Out-of-distribution scores on a model's logits or embedding; higher means less like the
memes it knows.

Pure numpy so the bot scores images exactly as training calibrated them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.metadata import OODMethod


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    out: np.ndarray = (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]
    return out


def l2_normalize(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return out


@dataclass
class OODScorer:
    """Fitted state of one method; saved as ood.npz next to the model."""

    method: OODMethod
    k: int = 10
    bank: np.ndarray | None = None  # knn: L2-normalised in-distribution embeddings
    means: np.ndarray | None = None  # mahalanobis: class means (C, D)
    precision: np.ndarray | None = None  # mahalanobis: shared inverse covariance (D, D)
    logit_index: list[int] = field(default_factory=list)  # energy, p_other: the game labels' logits
    # A combination ("a+b"): (mean, std) of each part on in-distribution validation images, so
    # the parts are averaged on one scale.
    norm: np.ndarray | None = None

    @property
    def part_names(self) -> list[str]:
        return self.method.split("+")

    def _energy(self, logits: np.ndarray) -> np.ndarray:
        sel = logits[:, self.logit_index] if self.logit_index else logits
        return (-_logsumexp(sel.astype(np.float64))).astype(np.float32)

    def _knn(self, embedding: np.ndarray) -> np.ndarray:
        assert self.bank is not None
        sims = l2_normalize(embedding.astype(np.float32)) @ self.bank.T
        k = min(self.k, self.bank.shape[0])
        kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1]
        return (1.0 - kth).astype(np.float32)

    def _p_other(self, logits: np.ndarray) -> np.ndarray:
        """log P(other) - log P(best game): the head's own belief that this is no game meme.
        Ranked alone it held better than energy or kNN on kinds of image never trained on
        (leave-one-source-out, benchmarks/bench_model.py)."""
        games = self.logit_index or list(range(logits.shape[1]))
        rest = [i for i in range(logits.shape[1]) if i not in games]
        if not rest:
            return np.zeros(len(logits), np.float32)
        z = logits.astype(np.float64)
        lp = z - _logsumexp(z)[:, None]
        return np.asarray(lp[:, rest].max(axis=1) - lp[:, games].max(axis=1), np.float32)

    def _part(self, name: str, logits: np.ndarray, embedding: np.ndarray) -> np.ndarray:
        if name == "energy":
            return self._energy(logits)
        if name == "knn":
            return self._knn(embedding)
        if name == "p_other":
            return self._p_other(logits)
        raise ValueError(f"unknown OOD method {self.method!r}")

    def parts(self, logits: np.ndarray, embedding: np.ndarray) -> np.ndarray:
        """A combination's raw scores, one column per part (for fitting `norm`)."""
        return np.stack([self._part(n, logits, embedding) for n in self.part_names], axis=1)

    def score(self, logits: np.ndarray, embedding: np.ndarray) -> np.ndarray:
        if self.method == "none":
            return np.zeros(len(logits), np.float32)
        if "+" in self.method:
            z = self.parts(logits, embedding)
            if self.norm is not None:
                z = (z - self.norm[:, 0]) / self.norm[:, 1]
            return np.asarray(z.mean(axis=1), np.float32)
        if self.method in ("energy", "knn", "p_other"):
            return self._part(self.method, logits, embedding)
        if self.method == "mahalanobis":
            assert self.means is not None and self.precision is not None
            diffs = embedding[:, None, :].astype(np.float64) - self.means[None]
            d = np.einsum("ncd,de,nce->nc", diffs, self.precision, diffs)
            return np.asarray(d.min(axis=1), np.float32)
        raise ValueError(f"unknown OOD method {self.method!r}")

    def save(self, path: Path) -> None:
        arrays = {"method": np.array(self.method), "k": np.array(self.k)}
        if self.bank is not None:
            arrays["bank"] = self.bank.astype(np.float16)
        if self.means is not None:
            arrays["means"] = self.means
        if self.precision is not None:
            arrays["precision"] = self.precision
        if self.norm is not None:
            arrays["norm"] = self.norm
        arrays["logit_index"] = np.asarray(self.logit_index, np.int64)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, allow_pickle=False, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> OODScorer:
        if not path.is_file():
            return cls(method="none")
        with np.load(path) as z:
            return cls(
                method=str(z["method"]),  # type: ignore[arg-type]
                k=int(z["k"]),
                bank=z["bank"].astype(np.float32) if "bank" in z else None,
                means=z.get("means"),
                precision=z.get("precision"),
                logit_index=[int(i) for i in z["logit_index"]],
                norm=z.get("norm"),
            )
