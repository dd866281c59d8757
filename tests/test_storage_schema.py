"""Migrations match the models; SQLite runs with WAL, foreign keys and a busy timeout; the
blob store verifies images before storing them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from storage import BlobError, InvalidInputError
from storage.api import Storage
from storage.blobs import BlobStore, inspect_image
from storage.migrate import head_revision
from storage.models import Base
from tests.support.storage import make_image, make_noisy_jpeg

pytest_plugins = ["tests.support.storage"]  # fixtures: open_storage, storage, clock


async def test_migrated_schema_matches_models(storage: Storage) -> None:
    def diff(sync_conn):
        return compare_metadata(MigrationContext.configure(sync_conn), Base.metadata)

    async with storage._db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []
    # get_current_head raises when two migrations fork from one parent: one line of history
    assert head_revision() is not None and await storage.schema_revision() == head_revision()


async def test_reopening_does_not_migrate_again(open_storage) -> None:
    first = await open_storage()
    await first.add_label("genshin", added_by=1)
    second = await open_storage()
    assert {lb.name for lb in await second.list_labels()} >= {"genshin", "doom"}


async def test_start_up_logs_migrations_but_not_alembic_chatter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="alembic")
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    first = await Storage.open(url, tmp_path / "blobs")
    await first.close()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]
    assert any(m.startswith("Running upgrade") for m in messages)  # a real migration is news
    # one line a revision, without its docstring
    assert all("\n" not in m and "," not in m for m in messages if m.startswith("Running"))
    caplog.clear()
    again = await Storage.open(url, tmp_path / "blobs")
    await again.close()
    # every start: silence
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    storage = await Storage.open(f"sqlite+aiosqlite:///{tmp_path / 'db' / 'x.db'}", tmp_path)
    try:
        async with storage._db.engine.connect() as conn:
            values = [
                (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
        assert values == ["wal", 1, 30000]
    finally:
        await storage.close()


@pytest.mark.parametrize(
    "url",
    ["sqlite:///x.db", "postgresql://u@h/db", "mysql+aiomysql://u@h/db"],
)
async def test_sync_or_unknown_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        await Storage.open(url, tmp_path)


def test_inspect_image_formats() -> None:
    png = inspect_image(make_image(1, size=(20, 10)))
    assert (png.format, png.extension, png.width, png.height) == ("PNG", "png", 20, 10)
    jpeg = inspect_image(make_noisy_jpeg())
    assert (jpeg.format, jpeg.extension) == ("JPEG", "jpg")
    gif = inspect_image(make_image(1, fmt="GIF"))
    assert gif.extension == "gif"
    for bad in (b"", b"GIF89a", make_noisy_jpeg()[:-2000], b"\x89PNG\r\n\x1a\n" + b"\0" * 50):
        with pytest.raises(BlobError):
            inspect_image(bad)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("truncated jpeg", "it is truncated"), ("unrecognised blob", "its format is not recognised")],
)
def test_undecodable_image_message_is_a_clear_sentence(
    kind: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The message reaches chat users: Pillow's text (which can hold `<... object at 0x...>`)
    # goes to the debug log only.
    data = make_noisy_jpeg()[:1500] if kind == "truncated jpeg" else b"\x00\x01 not a picture"
    with caplog.at_level("DEBUG", logger="storage.blobs"), pytest.raises(BlobError) as caught:
        inspect_image(data)
    message = str(caught.value)
    assert message == f"the file is not a complete image ({reason})"
    assert "object at 0x" not in message and "<" not in message
    assert caplog.records and caplog.records[-1].levelname == "DEBUG"


def test_blob_store_put_is_atomic_and_deduplicated(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = make_image(4)
    info = inspect_image(data)
    path = store.put(data, info)
    assert path == store.path_for(hashlib.sha256(data).hexdigest(), "png")
    assert store.put(data, info) == path
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_alembic_env_runs_with_its_own_async_engine(tmp_path: Path) -> None:
    """The `alembic` command line path of env.py (no shared connection) on an async URL."""
    import asyncio

    from alembic import command

    from storage.migrate import alembic_config

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    command.upgrade(alembic_config(url), "head")

    async def revision() -> str | None:
        storage = await Storage.open(url, tmp_path / "blobs", upgrade=False)
        try:
            return await storage.schema_revision()
        finally:
            await storage.close()

    assert asyncio.run(revision()) == head_revision()
