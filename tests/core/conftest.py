"""The fast layer: the real core (storage on SQLite, queue, repost detection, service, delivery)
around a fake classifier and an in-memory port; no torch, no model file, no chat platform."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.delivery import Delivery
from bot.core.runtime import CoreRuntime, open_runtime
from tests.support.fakes import FakeClassifier, MemoryPort, fast_settings


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[CoreRuntime]:
    async with open_runtime(fast_settings(tmp_path), file_origins=(),
                            loader=FakeClassifier) as runtime:
        yield runtime


@pytest.fixture
def port() -> MemoryPort:
    return MemoryPort()


@pytest.fixture
def delivery(port: MemoryPort) -> Delivery:
    return Delivery(port, admin_chat="-999")
