"""Reading memes' text: Tesseract, the word model, and how words move the doom-vs-AC choice."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from inference.classifier import Classifier, Prediction, RawOutput, decide
from inference.metadata import ModelMeta, OODConfig, resolve_model_dir
from inference.text import (
    TEXT_BANK_FILE,
    TEXT_FILE,
    TextModel,
    read_text,
    tesseract_available,
    words,
)
from tests.support.imagegen import make_dataset, make_image

needs_tesseract = pytest.mark.skipif(not tesseract_available(),
                                     reason="tesseract-ocr is not installed")


def _caption(text: str, size: tuple[int, int] = (640, 200)) -> Image.Image:
    img = Image.new("RGB", size, (255, 255, 255))
    ImageDraw.Draw(img).text((20, 60), text, fill=(0, 0, 0), font=ImageFont.load_default(size=48))
    return img


def test_words_are_lowercase_and_three_letters_or_more() -> None:
    assert words("RIP and TEAR, 2 b-o-t IMP!!\nDoom") == {"rip", "and", "tear", "imp", "doom"}
    assert words("") == set()


def test_word_model_evidence_shift_and_round_trip(tmp_path: Path) -> None:
    tm = TextModel(negative="animal_crossing", positive="doom",
                   weights={"doom": 2.0, "island": -1.5, "the": 0.1})
    assert tm.evidence("DOOM on the island") == pytest.approx(0.6)
    assert tm.evidence("doom") == 0.0  # one word: too little to count as text
    labels = ["animal_crossing", "doom", "other"]
    shift = tm.logit_shift(["doom the doom", "a picture"], labels, temperature=0.5)
    assert shift[0].tolist() == pytest.approx([-0.525, 0.525, 0.0])  # (2.0 + 0.1) * 0.5 / 2
    assert shift[1].tolist() == [0.0, 0.0, 0.0]
    assert not tm.logit_shift(["doom the doom"], ["a", "b"], 1.0).any()  # labels it does not know
    tm.save(tmp_path)
    again = TextModel.load(tmp_path)
    assert again == tm
    assert TextModel.load(tmp_path / "nowhere") is None


def _meta() -> ModelMeta:
    from inference.preprocess import PreprocessConfig

    return ModelMeta(version="t", labels=["animal_crossing", "doom", "other"], temperature=1.0,
                     preprocess=ModelMeta.preprocess_dict(PreprocessConfig()), backbone="t",
                     embedding_dim=4,
                     ood=OODConfig(method="energy", threshold=100.0, other_threshold=0.6))


class _NoOOD:
    def score(self, logits: np.ndarray, embedding: np.ndarray) -> np.ndarray:
        return np.zeros(len(logits))


def test_words_move_the_game_choice_but_never_other() -> None:
    logits = np.array([[1.0, 0.8, -2.0],    # a borderline AC meme
                       [0.0, 0.0, 3.0]],    # clearly other: P(other) ~ 0.9
                      np.float32)
    raw = RawOutput(logits, np.zeros((2, 4), np.float32))
    plain = decide(raw, _meta(), _NoOOD())  # type: ignore[arg-type]
    assert [p.label for p in plain] == ["animal_crossing", "other"]
    raw.extra["text_shift"] = np.array([[-0.5, 0.5, 0.0], [-5.0, 5.0, 0.0]], np.float32)
    read = decide(raw, _meta(), _NoOOD())  # type: ignore[arg-type]
    assert [p.label for p in read] == ["doom", "other"]
    assert read[0].probabilities["doom"] > plain[0].probabilities["doom"]
    assert read[0].confidence == pytest.approx(read[0].probabilities["doom"])


@needs_tesseract
def test_tesseract_reads_a_caption() -> None:
    text = read_text(_caption("RIP AND TEAR DEMONS"))
    assert {"rip", "tear", "demons"} <= words(text), text
    assert read_text(Image.new("RGB", (64, 64), (200, 30, 30))).strip() == ""


def test_fit_text_model_learns_game_words() -> None:
    pytest.importorskip("sklearn")
    from model_training.text_model import fit_text_model

    texts = (["doom demons slayer shotgun"] * 15 + ["island villager nook bells"] * 15
             + ["a cat photo here"] * 5)
    labels = ["doom"] * 15 + ["animal_crossing"] * 15 + ["other"] * 5
    tm = fit_text_model(texts, labels, "animal_crossing", "doom")
    assert tm is not None
    assert tm.weights["demons"] > 0 > tm.weights["villager"]
    assert "cat" not in tm.weights  # only the two game labels' memes are learned from
    assert tm.metrics["memes_with_text"] == 30
    assert fit_text_model(["doom"] * 40, ["doom"] * 20 + ["animal_crossing"] * 20,
                          "animal_crossing", "doom") is None


def test_classifier_adds_words_only_when_the_model_has_them(
    tiny_model: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "v"
    shutil.copytree(resolve_model_dir(tiny_model), folder)
    images = ([make_image("animal_crossing", 900 + i) for i in range(4)]
              + [make_image("doom", 950 + i) for i in range(4)])
    assert not (folder / TEXT_FILE).exists()  # generated pictures carry no text to learn from
    TextModel(negative="animal_crossing", positive="doom",
              weights={"doom": 20.0, "demons": 20.0, "island": -20.0, "villager": -20.0}
              ).save(folder)
    said: dict[str, str] = {}
    asked: list[object] = []

    def lookup(src: object) -> str:
        asked.append(src)
        return said["text"]

    as_doom = Classifier(folder, text_lookup=lookup)
    said["text"] = "doom demons"
    doom = as_doom.predict(images)
    said["text"] = "island villager"
    ac = as_doom.predict(images)
    image_only = Classifier(folder, read_text=False).predict(images)
    # only memes the image calls a game are read (twice: once per text above)
    assert len(asked) == 2 * sum(
        isinstance(p, Prediction) and p.label != "other" for p in image_only
    ) > 0
    for plain, d, a in zip(image_only, doom, ac, strict=True):
        assert (isinstance(plain, Prediction) and isinstance(d, Prediction)
                and isinstance(a, Prediction))
        if plain.label == "other":
            assert d.label == a.label == "other"
        else:
            assert (d.label, a.label) == ("doom", "animal_crossing")


@needs_tesseract
def test_training_fits_and_ships_the_word_model(tmp_path: Path) -> None:
    """The pipeline reads every meme once (cached), fits the words on the training split, and
    evaluates through the same Classifier with the cached readings."""
    from model_training.pipeline import TrainConfig, train

    data = make_dataset(tmp_path / "data", per_class=30)
    said = {"doom": "doom demons slayer shotgun", "animal_crossing": "island villager nook bells",
            "other": ""}
    cache = tmp_path / "cache"
    cache.mkdir()
    ocr = {hashlib.sha256(p.read_bytes()).hexdigest(): said[p.parent.name]
           for p in data.rglob("*.jpg")}
    (cache / "ocr.json").write_text(json.dumps(ocr))  # what Tesseract would have read
    # the posts' titles: words Tesseract never read, learned beside the OCR words
    titles = {"doom": "praise the marine", "animal_crossing": "blathers the owl", "other": ""}
    (data / "MANIFEST.csv").write_text("path,label,caption\n" + "".join(
        f"{p.relative_to(data)},{p.parent.name},{titles[p.parent.name]}\n"
        for p in sorted(data.rglob("*.jpg"))))
    result = train(TrainConfig(data_dir=data, model_dir=tmp_path / "models", cache_dir=cache,
                               input_size=64, int8=False, progress=False, threads=2))
    tm = TextModel.load(result.model_path)
    assert tm is not None and (tm.negative, tm.positive) == ("animal_crossing", "doom")
    assert tm.weights["slayer"] > 0 > tm.weights["nook"]
    assert tm.weights["marine"] > 0 > tm.weights["blathers"]
    assert 0 < tm.metrics["training_captions"] <= len(list(data.rglob("*.jpg")))
    assert result.meta.metrics["text"]["memes_with_text"] >= 20
    assert result.meta.metrics["test"]["game_accuracy"] == 1.0
    # the training doom/AC memes' words, as the correction memory compares them
    assert tm.encoder_name is not None and tm.encoder is not None and tm.bank is not None
    games_trained = sum(1 for s in result.splits.train if s.label != "other")
    assert tm.bank.shape[1] == 384 and tm.metrics["text_bank"] == len(tm.bank) == games_trained
    with np.load(result.model_path / TEXT_BANK_FILE) as saved:
        assert saved["text_bank"].dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(tm.bank, axis=1), 1.0, atol=1e-2)
    # a prediction carries its words' vector (the one the word model used) when it has words
    read = Classifier(result.model_path, text_lookup=lambda src: "doom demons slayer shotgun")
    [worded] = read.predict([make_image("doom", 990)], captions=["praise the marine"])
    [bare] = Classifier(result.model_path, text_lookup=lambda src: "").predict(
        [make_image("doom", 990)])
    assert isinstance(worded, Prediction) and isinstance(bare, Prediction)
    assert worded.label == "doom" and worded.text_embedding is not None
    assert float(np.max(tm.bank @ worded.text_embedding)) > 0.9  # the doom memes' words
    assert bare.text_embedding is None
    no_text = train(TrainConfig(data_dir=data, model_dir=tmp_path / "m2", cache_dir=cache,
                                input_size=64, int8=False, progress=False, threads=2,
                                read_text=False))
    assert not (no_text.model_path / TEXT_FILE).exists() and "text" not in no_text.meta.metrics
