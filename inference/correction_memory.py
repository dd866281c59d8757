"""Admins' corrections that count at once: the embeddings of admin-labelled images, per label.

A retrain teaches the model, but only later, and a new kind needs many examples; meanwhile a
new image close enough to one an admin labelled takes that label. The vectors are the ones
repost detection already stores per post (inference/fingerprint.py: projected, float16), so
remembering costs no model run; they compare only within one embedding space.

Closeness is relative: a raw cosine says little (a Pokémon drawing and a Genshin icon sit as
close to each other as to many doom memes), so a new image takes a corrected image's label only
when it is closer to it, by MEMORY_MARGIN, than to its MEMORY_RANK-th nearest known game meme
(the model's OOD bank, the memes it was trained on). The margin was chosen leave-one-kind-out
with benchmarks/bench_memory_rules.py: the most of a held-out kind caught after 20 corrections
while the other kinds keep >= 95% of their doom/AC test memes (0.04 was chosen in 3 of 4
folds and caught more than 0.06 on every kind; a kNN vote over corrected and known memes did
not beat it).

The same rule compares the words the bot read (the sentence encoder's vectors of OCR +
caption) with the training memes' words (the model's text bank): WORDS_RULE, chosen by the
same benchmark on every fold (closer than the 3rd nearest known meme's words, cosine >= 0.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from inference.fingerprint import project
from inference.ood import l2_normalize

MEMORY_MIN_COSINE = 0.5  # never closer than this: not the same kind of image
MEMORY_MARGIN = 0.04
MEMORY_RANK = 5
# Without a bank of known memes to compare with (a model without the knn OOD score), only a
# near copy of a corrected image takes its label.
MEMORY_COPY_COSINE = 0.9


@dataclass(frozen=True)
class MemoryRule:
    """When a new vector takes a remembered label; `projected`: the vectors are the stored
    image space's (inference/fingerprint.py project), else compared as they are."""

    min_cosine: float = MEMORY_MIN_COSINE
    margin: float = MEMORY_MARGIN
    rank: int = MEMORY_RANK
    copy_cosine: float = MEMORY_COPY_COSINE
    projected: bool = True


IMAGE_RULE = MemoryRule()
WORDS_RULE = MemoryRule(min_cosine=0.3, margin=0.0, rank=3, projected=False)


@dataclass(frozen=True)
class Remembered:
    """What a new image matched: the label an admin gave a close image, and how close."""

    label: str
    cosine: float
    sha256: str


class CorrectionMemory:
    """Labelled vectors of one embedding space; `nearest` is a matrix product (a few thousand
    corrections take well under a millisecond)."""

    def __init__(self, space: str | None, known: np.ndarray | None = None,
                 rule: MemoryRule = IMAGE_RULE) -> None:
        """`space`: the embedding space of the vectors (inference/fingerprint.py);
        `known`: embeddings of the memes the model was trained on (any dimension)."""
        self.space = space
        self.rule = rule
        self._known = self._unit(known) if known is not None and len(known) else None
        self._labels: list[str] = []
        self._keys: list[str] = []
        self._rows: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def sibling(self) -> CorrectionMemory:
        """An empty memory of the same space and rule that shares this one's known memes (one
        copy of the bank, however many memories compare with it)."""
        other = CorrectionMemory(self.space, rule=self.rule)
        other._known = self._known
        return other

    def remember(self, sha256: str, label: str, vector: np.ndarray) -> None:
        """Add or relabel one image (the latest admin decision about an image wins)."""
        unit = self._unit(vector)[0]
        if sha256 in self._keys:
            i = self._keys.index(sha256)
            self._labels[i], self._rows[i] = label, unit
        else:
            self._keys.append(sha256)
            self._labels.append(label)
            self._rows.append(unit)
        self._matrix = None

    def forget(self, sha256: str) -> None:
        if sha256 in self._keys:
            i = self._keys.index(sha256)
            del self._keys[i], self._labels[i], self._rows[i]
            self._matrix = None

    def replace(self, items: Iterable[tuple[str, str, np.ndarray]]) -> None:
        """Rebuild from (sha256, label, vector) rows."""
        self._keys, self._labels, self._rows, self._matrix = [], [], [], None
        for sha256, label, vector in items:
            self.remember(sha256, label, vector)

    def nearest(self, vector: np.ndarray) -> Remembered | None:
        """The closest remembered image when it is within the threshold, else None."""
        if not self._rows:
            return None
        if self._matrix is None:
            self._matrix = np.stack(self._rows)
        unit = self._unit(vector)[0]
        sims = self._matrix @ unit
        i = int(np.argmax(sims))
        best = float(sims[i])
        rule = self.rule
        if self._known is None:
            return Remembered(self._labels[i], best, self._keys[i]) if (
                best >= rule.copy_cosine) else None
        if best < rule.min_cosine:
            return None
        known = self._known @ unit
        rank = min(rule.rank, len(known))
        kth = float(np.partition(known, len(known) - rank)[len(known) - rank])
        if best < kth + rule.margin:
            return None
        return Remembered(self._labels[i], best, self._keys[i])

    def _unit(self, vectors: np.ndarray) -> np.ndarray:
        """Model embeddings (any size) or stored ones, as unit rows of the compared space."""
        rows = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        return project(rows) if self.rule.projected else l2_normalize(rows)
