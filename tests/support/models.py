"""Tiny real models for tests, trained by the real pipeline on generated images (need torch),
and helpers about models. The conftest fixtures (`tiny_model`, `report_models`,
`worded_model`) call the builders here."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tests.support.imagegen import encode, make_dataset, make_genshin, make_image

# Two decisive words per game: a caption or an OCR reading with them moves doom <-> AC.
DECISIVE_WORDS = {"slayer": 30.0, "demons": 30.0, "nook": -30.0, "villager": -30.0}


def train_tiny_model(root: Path) -> Path:
    """A real model version trained on generated images under `root`.

    Small input size and one fine-tuning epoch keep it to seconds; returns the models folder
    (with its ACTIVE pointer), usable as MEMEBOT_MODEL_DIR.
    """
    from model_training.pipeline import TrainConfig, train

    data = make_dataset(root / "data", per_class=14)
    cfg = TrainConfig(
        data_dir=data,
        model_dir=root / "models",
        cache_dir=root / "cache",
        input_size=64,
        finetune_epochs=1,
        batch_size=16,
        progress=False,
        threads=2,
    )
    train(cfg)
    return root / "models"


def train_report_models(root: Path) -> Path:
    """A folder of two real versions under `root` for the model report and the notebook: a
    head-only model trained on generated memes, a third of whose "doom" images are drawn in
    Animal Crossing's style (so the test split surely holds mistakes), and a fast retrain of it
    that adds a "genshin" class from 20 admin corrections. ACTIVE points at the retrain."""
    from inference.metadata import ACTIVE_POINTER
    from model_training.data import Sample
    from model_training.pipeline import TrainConfig, train
    from model_training.promotion import GateConfig
    from model_training.retrain import RetrainConfig, retrain

    data = make_dataset(root / "data", per_class=16)
    for i in range(0, 16, 3):  # mislabelled: the model cannot get these right
        (data / "doom" / f"doom_{i}.jpg").write_bytes(
            encode(make_image("animal_crossing", 500 + i), quality=90)
        )
    models, cache = root / "models", root / "cache"
    base = train(TrainConfig(data_dir=data, model_dir=models, cache_dir=cache, input_size=64,
                             finetune_epochs=0, test_fraction=0.3, progress=False, threads=2,
                             int8=False)).model_path
    corrections = []
    for i in range(20):
        path = root / "genshin" / f"g{i}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(encode(make_genshin(i), "PNG"))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        corrections.append(Sample(path, "genshin", digest, 0, "admin"))
    config = RetrainConfig(model_dir=models, dataset_dir=data, cache_dir=cache, threads=2,
                           int8=False, gate=GateConfig(tolerance=0.3, max_drop=0.3))
    result = retrain(base, corrections, config)
    (models / ACTIVE_POINTER).write_text(result.version + "\n")
    return models


def copy_with_word_model(models: Path, out: Path) -> Path:
    """A copy of the folder of versions `models` at `out` whose active version has a word
    model (DECISIVE_WORDS)."""
    from inference.metadata import resolve_model_dir
    from inference.text import TextModel

    shutil.copytree(models, out)
    TextModel(
        negative="animal_crossing", positive="doom", weights=dict(DECISIVE_WORDS)
    ).save(resolve_model_dir(out))
    return out


def game_meme(model_dir: Path) -> bytes:
    """A generated JPEG that this model, on the image alone, calls one of the games (words can
    only move a meme between games, so a test of words needs one)."""
    from inference.classifier import Classifier, Prediction

    clf = Classifier(model_dir, read_text=False)
    for seed in range(40):
        label = "doom" if seed % 2 else "animal_crossing"
        data = encode(make_image(label, seed), "JPEG", quality=90)
        pred = clf.predict([data])[0]
        if isinstance(pred, Prediction) and pred.label != "other":
            return data
    raise AssertionError("the tiny model calls none of 40 generated game memes a game")
