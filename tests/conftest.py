"""Shared test fixtures: fail on library ERROR logs; the shared data; PostgreSQL URL; tiny models
(built by tests/support/models.py). Helpers to import live in tests/support/, not here."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

# Before anything imports them: pytest rewrites the asserts of tests/support/ (helpers and
# fixtures moved there from test modules keep their detailed assertion messages), and
# tests.support.storage, loaded with `pytest_plugins` after test modules imported it, must be.
pytest.register_assert_rewrite("tests.support")

from tests.support.models import copy_with_word_model, train_report_models, train_tiny_model  # noqa: E402
from tests.support.paths import SHARED_DATA  # noqa: E402

# Fixtures that several test modules request. Of all conftests, pytest reads `pytest_plugins`
# only in this top-level one; a plugin's fixtures are visible to every test:
# console: `runtime`, `console`, `client`, `admin` (test_console_api.py, test_console_reposts.py);
# telegram_bot: `server`, `bot` (test_telegram_bot.py, test_telegram_reposts.py).
# test_discord_bot.py defines its own `server` and `bot`, which override these in that module.
pytest_plugins = ["tests.support.console", "tests.support.telegram_bot"]


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
    return train_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def report_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of two real versions for the model report and the notebook: a head-only model
    trained on generated memes, a third of whose "doom" images are drawn in Animal Crossing's
    style (so the test split surely holds mistakes), and a fast retrain of it that adds a
    "genshin" class from 20 admin corrections. ACTIVE points at the retrain."""
    pytest.importorskip("torch")
    return train_report_models(tmp_path_factory.mktemp("report"))


@pytest.fixture
def worded_model(tiny_model: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model's folder whose active version has a word model."""
    return copy_with_word_model(tiny_model, tmp_path / "worded-models")
