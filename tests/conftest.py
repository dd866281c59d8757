"""Shared test fixtures: fail on library ERROR logs; paths to the shared data; PostgreSQL URL."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_error_logs(request: pytest.FixtureRequest):
    """PTB, discord.py and aiohttp only LOG handler exceptions: make any ERROR log fail the test.

    A test that provokes an error on purpose marks itself `@pytest.mark.allow_error_logs`.
    """
    collector = _ErrorCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    yield collector
    root.removeHandler(collector)
    if request.node.get_closest_marker("allow_error_logs"):
        return
    if collector.records:
        lines = [f"{r.name}: {r.getMessage()}" for r in collector.records]
        pytest.fail("ERROR logged during the test:\n" + "\n".join(lines), pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_error_logs: the test expects ERROR logs")


@pytest.fixture(scope="session")
def shared_memes() -> Path:
    path = SHARED_DATA / "memes"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a reachable PostgreSQL server, or skip with the reason."""
    url = os.environ.get(
        "MEMEBOT_TEST_POSTGRES_URL",
        "postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/memebot_test",
    )
    import asyncio

    async def _probe() -> None:
        import asyncpg

        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncio.wait_for(asyncpg.connect(dsn), timeout=3)
        await conn.close()

    try:
        asyncio.run(_probe())
    except Exception as exc:  # any failure to connect means: no server here
        pytest.skip(f"PostgreSQL not reachable at {url.split('@')[-1]}: {exc!r}")
    return url


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model version trained by the real pipeline on generated images (needs torch).

    Small input size and one fine-tuning epoch keep it to seconds; returns the models folder
    (with its ACTIVE pointer), usable as MEMEBOT_MODEL_DIR.
    """
    pytest.importorskip("torch")
    from model_training.pipeline import TrainConfig, train
    from tests.imagegen import make_dataset

    root = tmp_path_factory.mktemp("tiny")
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


@pytest.fixture(scope="session")
def report_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of two real versions for the model report and the notebook: a head-only model
    trained on generated memes, a third of whose "doom" images are drawn in Animal Crossing's
    style (so the test split surely holds mistakes), and a fast retrain of it that adds a
    "genshin" class from 20 admin corrections. ACTIVE points at the retrain."""
    pytest.importorskip("torch")
    import hashlib

    from inference.metadata import ACTIVE_POINTER
    from model_training.data import Sample
    from model_training.pipeline import TrainConfig, train
    from model_training.promotion import GateConfig
    from model_training.retrain import RetrainConfig, retrain
    from tests.imagegen import encode, make_dataset, make_image
    from tests.test_retrain import make_genshin

    root = tmp_path_factory.mktemp("report")
    data = make_dataset(root / "data", per_class=16)
    for i in range(0, 16, 3):  # mislabelled: the model cannot get these right
        (data / "doom" / f"doom_{i}.jpg").write_bytes(encode(make_image("animal_crossing", 500 + i), quality=90))
    models, cache = root / "models", root / "cache"
    base = train(TrainConfig(data_dir=data, model_dir=models, cache_dir=cache, input_size=64, finetune_epochs=0,
                             test_fraction=0.3, progress=False, threads=2, int8=False)).model_path
    corrections = []
    for i in range(20):
        path = root / "genshin" / f"g{i}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(encode(make_genshin(i), "PNG"))
        corrections.append(Sample(path, "genshin", hashlib.sha256(path.read_bytes()).hexdigest(), 0, "admin"))
    result = retrain(base, corrections, RetrainConfig(model_dir=models, dataset_dir=data, cache_dir=cache, threads=2,
                                                      int8=False, gate=GateConfig(tolerance=0.3, max_drop=0.3)))
    (models / ACTIVE_POINTER).write_text(result.version + "\n")
    return models


# Two decisive words per game: a caption or an OCR reading with them moves doom <-> AC.
DECISIVE_WORDS = {"slayer": 30.0, "demons": 30.0, "nook": -30.0, "villager": -30.0}


@pytest.fixture
def worded_model(tiny_model: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model's folder whose active version has a word model."""
    import shutil

    from inference.metadata import resolve_model_dir
    from inference.text import TextModel

    out = tmp_path / "worded-models"
    shutil.copytree(tiny_model, out)
    TextModel(negative="animal_crossing", positive="doom", weights=dict(DECISIVE_WORDS)).save(resolve_model_dir(out))
    return out


def game_meme(model_dir: Path) -> bytes:
    """A generated JPEG that this model, on the image alone, calls one of the games (words can
    only move a meme between games, so a test of words needs one)."""
    from inference.classifier import Classifier, Prediction
    from tests.imagegen import encode, make_image

    clf = Classifier(model_dir, read_text=False)
    for seed in range(40):
        data = encode(make_image("doom" if seed % 2 else "animal_crossing", seed), "JPEG", quality=90)
        pred = clf.predict([data])[0]
        if isinstance(pred, Prediction) and pred.label != "other":
            return data
    raise AssertionError("the tiny model calls none of 40 generated game memes a game")
