"""Storage fixtures shared by the tests/test_storage_*.py modules (they load it with
`pytest_plugins = ["tests.support.storage"]`): a fresh Storage on SQLite (tmp_path) and on
PostgreSQL (a unique schema per test, dropped afterwards), a hand-moved clock, and small
Pillow-made images.

Not a tests/storage/ folder with a conftest: a folder named like the `storage` package would
shadow it as a namespace package on sys.path. (This module is only ever imported as
`tests.support.storage`, so its `from storage.api import ...` is the real package.)
"""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from storage.api import Storage


class FakeClock:
    """A clock the test moves by hand (stale-job detection without sleeping)."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)  # strictly increasing, like a real clock
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def make_image(seed: int, fmt: str = "PNG", size: tuple[int, int] = (16, 16)) -> bytes:
    """A small image whose bytes differ for every seed."""
    img = Image.new("RGB", size, (seed % 256, (seed // 256) % 256, (seed * 7) % 256))
    img.putpixel((0, 0), ((seed * 13) % 256, 1, 2))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def make_noisy_jpeg(seed: int = 0, size: tuple[int, int] = (64, 64)) -> bytes:
    """A JPEG with enough entropy that cutting it in half removes real pixel data."""
    rng = random.Random(seed)
    noise = bytes(rng.randrange(256) for _ in range(size[0] * size[1] * 3))
    img = Image.frombytes("RGB", size, noise)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()


OpenStorage = Callable[..., Awaitable[Storage]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL of this test's backend (sync: `postgres_url` probes with asyncio.run)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'memebot.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def open_storage(backend_url: str, tmp_path: Path) -> AsyncIterator[OpenStorage]:
    """`await open_storage(**kw)` -> a Storage on this test's backend; closed at teardown.

    Several calls share one database, like several bot processes would.
    """
    opened: list[Storage] = []
    url = backend_url
    schema: str | None = None
    if url.startswith("postgresql"):
        schema = f"t_{uuid.uuid4().hex[:12]}"
        await _pg(url, f'CREATE SCHEMA "{schema}"')

    async def _open(**kwargs: Any) -> Storage:
        kwargs.setdefault("blob_root", tmp_path / "blobs")
        storage = await Storage.open(url, schema=schema, **kwargs)
        opened.append(storage)
        return storage

    _open.url = url  # type: ignore[attr-defined]
    _open.schema = schema  # type: ignore[attr-defined]
    try:
        yield _open
    finally:
        for storage in opened:
            await storage.close()
        if schema is not None:
            await _pg(url, f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def storage(open_storage: OpenStorage, clock: FakeClock) -> Storage:
    return await open_storage(clock=clock)


async def _pg(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
