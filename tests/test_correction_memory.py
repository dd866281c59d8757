"""The correction memory's rule on plain vectors: closer to a corrected image than to the known
memes (by a margin), else nothing; without known memes only near copies count."""

from __future__ import annotations

import numpy as np

from inference.correction_memory import (
    MEMORY_MARGIN,
    MEMORY_MIN_COSINE,
    MEMORY_RANK,
    WORDS_RULE,
    CorrectionMemory,
)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_a_new_image_takes_the_label_of_a_close_correction_only() -> None:
    rng = np.random.default_rng(0)
    game, kind = _unit(rng.standard_normal(128)), _unit(rng.standard_normal(128))
    known = _unit(game + 0.05 * rng.standard_normal((50, 128)))  # the memes the model knows
    memory = CorrectionMemory("space", known=known)
    assert memory.nearest(kind) is None  # nothing corrected yet
    memory.remember("a" * 64, "genshin", _unit(kind + 0.03 * rng.standard_normal(128)))
    memory.remember("b" * 64, "other", _unit(-kind + 0.03 * rng.standard_normal(128)))
    close = _unit(kind + 0.03 * rng.standard_normal(128))
    match = memory.nearest(close)
    assert match is not None and match.label == "genshin" and match.sha256 == "a" * 64
    assert memory.nearest(_unit(game + 0.05 * rng.standard_normal(128))) is None  # a game meme
    # halfway between the corrected kind and the known memes: not clearly closer to either
    between = _unit(kind + game)
    sims = known @ between
    hit = memory.nearest(between)
    assert hit is None or hit.cosine >= np.sort(sims)[-5] + MEMORY_MARGIN
    # relabelled, then forgotten
    memory.remember("a" * 64, "pokemon", _unit(kind + 0.03 * rng.standard_normal(128)))
    relabelled = memory.nearest(close)
    assert relabelled is not None and relabelled.label == "pokemon" and len(memory) == 2
    memory.forget("a" * 64)
    assert memory.nearest(close) is None or memory.nearest(close).label != "pokemon"


def test_without_known_memes_only_near_copies_count() -> None:
    rng = np.random.default_rng(1)
    v = _unit(rng.standard_normal(256))  # any size: projected to the stored space
    memory = CorrectionMemory("space")
    memory.replace([("c" * 64, "genshin", v)])
    assert memory.nearest(_unit(v + 0.002 * rng.standard_normal(256))) is not None
    assert memory.nearest(_unit(v + 0.1 * rng.standard_normal(256))) is None


def test_the_margin_over_the_known_memes_decides() -> None:
    """Closer to the corrected image than to the MEMORY_RANK-th known meme by just over the
    margin: its label; by just under: nothing."""
    corrected, known_meme, rest = np.eye(128)[:3]
    known = np.stack([known_meme] * MEMORY_RANK)
    memory = CorrectionMemory("space", known=known)
    memory.remember("d" * 64, "other", corrected)
    to_corrected = MEMORY_MIN_COSINE + 0.1
    for delta, takes in ((0.005, True), (-0.005, False)):
        to_known = to_corrected - MEMORY_MARGIN - delta
        image = (to_corrected * corrected + to_known * known_meme
                 + np.sqrt(1 - to_corrected**2 - to_known**2) * rest)
        match = memory.nearest(image)
        assert (match is not None) is takes
        if match is not None:
            assert match.label == "other" and abs(match.cosine - to_corrected) < 1e-5


def test_the_words_rule_compares_sentence_vectors_as_they_are() -> None:
    """The words' memory (384-d sentence vectors, not projected): closer to a corrected meme's
    words than to the 3rd nearest known meme's, and at least 0.3."""
    rng = np.random.default_rng(1)
    game, kind = _unit(rng.standard_normal(384)), _unit(rng.standard_normal(384))
    known = _unit(game + 0.5 * rng.standard_normal((40, 384)) / np.sqrt(384))
    memory = CorrectionMemory("minilm", known=known, rule=WORDS_RULE)
    corrected = _unit(kind + 0.6 * game)
    memory.remember("c" * 64, "programming", corrected)
    near = _unit(kind + 0.6 * game + 0.2 * rng.standard_normal(384) / np.sqrt(384))
    match = memory.nearest(near)
    assert match is not None and match.label == "programming"
    np.testing.assert_allclose(match.cosine, float(corrected @ near), atol=1e-5)  # unprojected
    assert memory.nearest(_unit(game + 0.1 * kind)) is None  # closer to the known memes' words
    assert memory.nearest(_unit(rng.standard_normal(384))) is None  # unrelated: below 0.3


def test_a_sibling_memory_compares_with_the_same_known_memes() -> None:
    """A chat's own memory (bot/core/recall.py) is a sibling of the shared one: the same rule
    against the same known memes, its own remembered images."""
    rng = np.random.default_rng(3)
    game, kind = _unit(rng.standard_normal(128)), _unit(rng.standard_normal(128))
    known = _unit(game + 0.05 * rng.standard_normal((50, 128)))
    shared = CorrectionMemory("space", known=known)
    own = shared.sibling()
    assert (own.space, own.rule, len(own)) == (shared.space, shared.rule, 0)
    taught = _unit(kind + 0.03 * rng.standard_normal(128))
    own.remember("a" * 64, "genshin", taught)
    close = _unit(kind + 0.03 * rng.standard_normal(128))
    assert shared.nearest(close) is None  # the sibling's images are its own
    match = own.nearest(close)
    assert match is not None and match.label == "genshin"
    # halfway to the known memes: refused by the sibling as by a memory built with the bank
    alone = CorrectionMemory("space", known=known)
    alone.remember("a" * 64, "genshin", taught)
    for probe in (close, _unit(kind + game), _unit(kind + 1.5 * game), game):
        assert own.nearest(probe) == alone.nearest(probe)
