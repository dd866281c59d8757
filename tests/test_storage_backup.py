"""`memebot db backup` / `restore` (issue 23): a backup taken while memes are being stored
restores to a database that passes its own integrity check with every post committed before
it; a damaged backup is refused untouched; nothing in the way is overwritten; a schema
migration is preceded by an automatic backup; PostgreSQL round trip with pg_dump/pg_restore."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.messages import Actor, ChatRef, ImagePost
from bot.core.outcomes import PostStatus
from bot.core.runtime import open_runtime
from storage import migrate
from storage.api import Storage
from storage.backup import (
    MANIFEST,
    BackupError,
    Manifest,
    Place,
    backup,
    migration_hook,
    prune,
    restore,
    verify,
)
from storage.db import Database
from tests.support.fakes import FakeClassifier, colour_image, fast_settings, png
from tests.support.storage import _pg as pg
from tests.support.storage import make_image

pytest_plugins = ["tests.support.storage"]

CHAT = ChatRef("telegram", "-100400")
ALICE = Actor("telegram", "7", "Alice")
_ids = itertools.count(1)
BURST = 40


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def restored_rows(db_file: Path) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """integrity_check's answer, and each post's message id -> its image (sha256, ext)."""
    con = sqlite3.connect(db_file)
    try:
        check = [row[0] for row in con.execute("PRAGMA integrity_check")]
        posts = {m: (sha, ext) for m, sha, ext in con.execute(
            "SELECT p.message_id, i.sha256, i.extension FROM posts p "
            "JOIN images i ON i.sha256 = p.image_sha256")}
    finally:
        con.close()
    return check, posts


async def test_a_backup_during_a_burst_restores_every_committed_post(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "live")
    place = Place(settings.effective_database_url, settings.data_dir / "blobs",
                  settings.model_dir)
    async with open_runtime(settings, file_origins=(), loader=FakeClassifier) as core:
        posts = [ImagePost(CHAT, f"b{next(_ids)}", ALICE, posted_at=datetime.now(UTC))
                 for _ in range(BURST)]
        tasks = [asyncio.create_task(core.service.handle_upload(
            post, png(colour_image((i * 5 % 256, 90, 40), stripe=i + 1))))
            for i, post in enumerate(posts)]
        async with asyncio.timeout(60):
            while sum(t.done() for t in tasks) < BURST // 4:  # some stored, more coming
                await asyncio.sleep(0.005)
        committed = {p.message_id for p, t in zip(posts, tasks, strict=True) if t.done()}
        assert len(committed) < BURST  # the backup runs while memes are still stored
        manifest = await backup(place, tmp_path / "backup")
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert all(o.status is PostStatus.labelled for o in outcomes)
    assert manifest.backend == "sqlite" and manifest.schema_revision == migrate.head_revision()
    assert (tmp_path / "backup" / MANIFEST).is_file()

    target = Place(sqlite_url(tmp_path / "new" / "memebot.db"), tmp_path / "new" / "blobs",
                   tmp_path / "new" / "models")
    report = await restore(tmp_path / "backup", target)
    assert report.moved_aside == ()
    check, restored = restored_rows(tmp_path / "new" / "memebot.db")
    assert check == ["ok"]
    assert committed <= set(restored) <= {p.message_id for p in posts}
    for sha, ext in restored.values():  # every restored post has its image
        assert (target.blob_root / sha[:2] / sha[2:4] / f"{sha}.{ext}").is_file()
    assert target.model_dir is not None and [p.name for p in target.model_dir.rglob("*.onnx")]
    storage = await Storage.open(target.url, target.blob_root)  # and the bot can open it
    try:
        assert (await storage.stats()).memes_seen == len(restored)
    finally:
        await storage.close()


@pytest.fixture
def seeded(tmp_path: Path) -> Place:
    """Three posts and a model version (sync: the CLI test runs `memebot` outside a loop)."""
    place = Place(sqlite_url(tmp_path / "var" / "memebot.db"), tmp_path / "var" / "blobs",
                  tmp_path / "models")
    (tmp_path / "models" / "v1").mkdir(parents=True)
    (tmp_path / "models" / "v1" / "model.onnx").write_bytes(b"weights")

    async def seed() -> None:
        storage = await Storage.open(place.url, place.blob_root)
        try:
            for i in range(3):
                await storage.add_post(platform="telegram", chat_id=1, message_id=i,
                                       author_id=1, image=make_image(i))
        finally:
            await storage.close()

    asyncio.run(seed())
    return place


async def test_a_damaged_backup_is_refused_and_nothing_is_touched(
    seeded: Place, tmp_path: Path
) -> None:
    await backup(seeded, tmp_path / "b")
    blob = next((tmp_path / "b" / "blobs").rglob("*.png"))
    blob.write_bytes(blob.read_bytes()[:-1] + b"X")
    target = Place(sqlite_url(tmp_path / "t" / "memebot.db"), tmp_path / "t" / "blobs")
    with pytest.raises(BackupError, match=r"damaged, nothing was restored: blobs/.*checksum"):
        await restore(tmp_path / "b", target)
    assert not (tmp_path / "t").exists()
    (tmp_path / "b" / MANIFEST).write_text("{not json")
    with pytest.raises(BackupError, match=r"manifest\.json is damaged"):
        verify(tmp_path / "b")
    with pytest.raises(BackupError, match="not a memebot backup"):
        verify(tmp_path)
    with pytest.raises(BackupError, match="not empty"):
        await backup(seeded, tmp_path / "b")


async def test_restore_moves_the_existing_database_and_files_aside(
    seeded: Place, tmp_path: Path
) -> None:
    await backup(seeded, tmp_path / "b")
    storage = await Storage.open(seeded.url, seeded.blob_root)  # a post after the backup
    try:
        await storage.add_post(platform="telegram", chat_id=1, message_id=99, author_id=1,
                               image=make_image(99))
    finally:
        await storage.close()
    (seeded.model_dir / "v1" / "model.onnx").write_bytes(b"changed since")  # type: ignore[operator]
    report = await restore(tmp_path / "b", seeded)
    db_file = tmp_path / "var" / "memebot.db"
    aside_db = [p for p in report.moved_aside if p.name.startswith("memebot.db.before-restore")]
    assert aside_db and aside_db[0].is_file()
    _check, now = restored_rows(db_file)
    _check, before = restored_rows(aside_db[0])
    assert set(now) == {"0", "1", "2"} and "99" in before  # the newer post kept aside
    model = seeded.model_dir / "v1" / "model.onnx"  # type: ignore[operator]
    assert model.read_bytes() == b"weights"
    assert any(p.read_bytes() == b"changed since" for p in report.moved_aside
               if p.name.startswith("model.onnx"))
    assert report.files_unchanged >= 3  # the blobs were there already


def test_cli_backup_and_restore(seeded: Place, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("MEMEBOT_DATABASE_URL", "MEMEBOT_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MEMEBOT_MODEL_DIR", str(tmp_path / "models"))
    assert main(["db", "backup", str(tmp_path / "cli-backup"), "--data-dir",
                 str(tmp_path / "var")]) == 0
    assert "backed up sqlite" in capsys.readouterr().out
    fresh = tmp_path / "fresh"
    assert main(["db", "restore", str(tmp_path / "cli-backup"), "--data-dir", str(fresh)]) == 0
    assert "restored sqlite" in capsys.readouterr().out
    assert restored_rows(fresh / "memebot.db")[0] == ["ok"]
    (tmp_path / "cli-backup" / "database.sqlite").write_bytes(b"garbage")
    assert main(["db", "restore", str(tmp_path / "cli-backup"), "--data-dir",
                 str(tmp_path / "other")]) == 1
    assert "is damaged" in capsys.readouterr().err


async def test_a_schema_migration_is_preceded_by_a_backup(tmp_path: Path) -> None:
    place = Place(sqlite_url(tmp_path / "memebot.db"), tmp_path / "blobs")
    db = Database.connect(place.url)
    try:
        await migrate.upgrade(db, "0002_post_caption")  # an older bot's database
    finally:
        await db.dispose()
    backups = tmp_path / "backups"
    storage = await Storage.open(place.url, place.blob_root,
                                 before_upgrade=migration_hook(place, backups, keep=2))
    await storage.close()
    [taken] = list(backups.iterdir())
    assert Manifest.read(taken).schema_revision == "0002_post_caption"
    assert taken.name.endswith(f"0002_post_caption-to-{migrate.head_revision()}")
    storage = await Storage.open(place.url, place.blob_root,  # at head: no new backup
                                 before_upgrade=migration_hook(place, backups, keep=2))
    await storage.close()
    assert len(list(backups.iterdir())) == 1
    for i in range(3):  # older automatic backups beyond `keep` are pruned
        shutil.copytree(taken, backups / f"pre-migration-0000{i}")
    prune(backups, 2)
    assert sorted(p.name for p in backups.iterdir()) == ["pre-migration-00002", taken.name]


@pytest.mark.postgres
async def test_postgres_round_trip(postgres_url: str, tmp_path: Path) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    new_db = f"memebot_restore_{uuid.uuid4().hex[:8]}"
    await pg(postgres_url, f'CREATE SCHEMA "{schema}"')
    await pg(postgres_url, f'CREATE DATABASE "{new_db}"')
    new_url = postgres_url.rsplit("/", 1)[0] + f"/{new_db}"
    try:
        place = Place(postgres_url, tmp_path / "blobs", None, schema=schema)
        storage = await Storage.open(postgres_url, place.blob_root, schema=schema)
        try:
            for i in range(3):
                await storage.add_post(platform="discord", chat_id=5, message_id=i,
                                       author_id=2, image=make_image(i + 10))
        finally:
            await storage.close()
        manifest = await backup(place, tmp_path / "pg-backup")
        assert manifest.backend == "postgresql" and manifest.database == "database.pgdump"
        assert manifest.schema_revision == migrate.head_revision()
        target = Place(new_url, tmp_path / "restored-blobs", schema=schema)
        await restore(tmp_path / "pg-backup", target)
        restored = await Storage.open(new_url, target.blob_root, schema=schema)
        try:
            assert (await restored.stats()).memes_seen == 3
            post = await restored.find_post("discord", 5, 2)
            assert post is not None and await asyncio.to_thread(
                (target.blob_root / post.image.sha256[:2]).is_dir)
        finally:
            await restored.close()
        with pytest.raises(BackupError, match="already holds a memebot database"):
            await restore(tmp_path / "pg-backup", target)
    finally:
        await pg(postgres_url, f'DROP SCHEMA "{schema}" CASCADE')
        await pg(postgres_url, f'DROP DATABASE IF EXISTS "{new_db}" WITH (FORCE)')


async def test_the_bot_backs_up_an_old_database_before_migrating_it(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path, backups_kept=1)
    db = Database.connect(settings.effective_database_url)
    try:
        await migrate.upgrade(db, "0003_reposts")  # the database of the previous release
    finally:
        await db.dispose()
    async with open_runtime(settings, file_origins=(), loader=FakeClassifier) as core:
        assert await core.storage.schema_revision() == migrate.head_revision()
    [taken] = list((settings.data_dir / "backups").iterdir())
    manifest = verify(taken)
    assert manifest.schema_revision == "0003_reposts"
    assert any(f.path.startswith("models/") for f in manifest.files)  # the model folder too
