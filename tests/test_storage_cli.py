"""`memebot db upgrade|stats|gc|export|import`, run through bot.cli.main."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest

from bot.cli import main
from inference.clip_records import read_clip
from inference.clips import ClipLimits
from storage.api import Storage
from storage.records import Post
from tests.support.clipgen import clip
from tests.support.storage import make_image


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Options pointing the CLI at a fresh SQLite database; no .env or MEMEBOT_ vars leak in."""
    monkeypatch.chdir(tmp_path)
    for var in ("MEMEBOT_DATABASE_URL", "MEMEBOT_DATA_DIR", "MEMEBOT_DATASET_DIR"):
        monkeypatch.delenv(var, raising=False)
    return ["--data-dir", str(tmp_path / "var")]


def _seed(data_dir: Path) -> None:
    async def run() -> None:
        storage = await Storage.open(
            f"sqlite+aiosqlite:///{data_dir / 'memebot.db'}", data_dir / "blobs"
        )
        try:
            for i, label in enumerate(["doom", "other"]):
                post = await storage.add_post(
                    platform="telegram", chat_id=1, message_id=i, author_id=1, image=make_image(i)
                )
                await storage.record_prediction(
                    post.id, model_version="v1", label="doom", confidence=0.7,
                    probabilities={"doom": 0.7}, latency_ms=1.0,
                )
                await storage.record_correction(post.id, admin_id=1, label=label, approved=True)
        finally:
            await storage.close()

    asyncio.run(run())


def test_upgrade_creates_database(cli_env: list[str], tmp_path: Path, capsys) -> None:
    assert main(["db", "upgrade", *cli_env]) == 0
    from storage.migrate import head_revision

    assert f"revision {head_revision()}" in capsys.readouterr().out
    assert (tmp_path / "var" / "memebot.db").is_file()


def test_stats(cli_env: list[str], tmp_path: Path, capsys) -> None:
    _seed(tmp_path / "var")
    assert main(["db", "stats", *cli_env]) == 0
    out = capsys.readouterr().out
    assert "memes seen:     2 (2 unique images)" in out
    assert main(["db", "stats", "--json", *cli_env]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["labelled_per_label"] == {"doom": 1, "other": 1}
    assert stats["predicted_per_label"] == {"doom": 2}


def test_database_url_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'elsewhere.db'}"
    assert main(["db", "upgrade", "--database-url", url, "--data-dir", str(tmp_path)]) == 0
    assert (tmp_path / "elsewhere.db").is_file()


def test_gc(cli_env: list[str], tmp_path: Path, capsys) -> None:
    _seed(tmp_path / "var")
    orphan = tmp_path / "var" / "blobs" / "ff" / "ff" / ("f" * 64 + ".png")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(make_image(9))
    assert main(["db", "gc", *cli_env]) == 0  # default grace period keeps the fresh file
    assert orphan.exists()
    assert main(["db", "gc", "--min-age-seconds", "0", *cli_env]) == 0
    assert not orphan.exists()
    assert "removed 1 orphan blobs" in capsys.readouterr().out
    assert len(list((tmp_path / "var" / "blobs").rglob("*.png"))) == 2


def test_export_then_import(cli_env: list[str], tmp_path: Path, capsys) -> None:
    _seed(tmp_path / "var")
    export = tmp_path / "export"
    assert main(["db", "export", str(export), *cli_env]) == 0
    assert sorted(p.parent.name for p in export.rglob("*.png")) == ["doom", "other"]
    with (export / "audit-log.csv").open(newline="") as log:  # the admins' decisions beside
        rows = list(csv.DictReader(log))
    assert [(r["action"], r["actor_id"], r["from_value"], r["to_value"]) for r in rows] == [
        ("correction", "1", "doom", "doom"), ("correction", "1", "doom", "other")]
    other = ["--data-dir", str(tmp_path / "other")]
    assert main(["db", "import", str(export), "--admin-id", "telegram:5", *other]) == 0
    assert "imported 2 images" in capsys.readouterr().out
    assert main(["db", "stats", "--json", *other]) == 0
    assert json.loads(capsys.readouterr().out)["labelled_per_label"] == {"doom": 1, "other": 1}


def test_export_then_import_keeps_clips(cli_env: list[str], tmp_path: Path, capsys) -> None:
    data = clip("doom", "mp4")
    media = read_clip(data, ClipLimits())
    assert media is not None

    async def seed() -> None:
        storage = await Storage.open(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'memebot.db'}",
                                     tmp_path / "var" / "blobs")
        try:
            post = await storage.add_post(platform="telegram", chat_id=1, message_id=1,
                                          author_id=1, image=data, media=media)
            await storage.record_correction(post.id, admin_id=1, label="doom", approved=True)
        finally:
            await storage.close()

    asyncio.run(seed())
    export = tmp_path / "export"
    assert main(["db", "export", str(export), *cli_env]) == 0
    assert [p.suffix for p in export.rglob("*.mp4")] == [".mp4"]
    other = ["--data-dir", str(tmp_path / "other")]
    assert main(["db", "import", str(export), *other]) == 0
    assert "imported 1 images" in capsys.readouterr().out

    async def imported() -> Post | None:
        storage = await Storage.open(f"sqlite+aiosqlite:///{tmp_path / 'other' / 'memebot.db'}",
                                     tmp_path / "other" / "blobs")
        try:
            sha256 = next(export.rglob("*.mp4")).stem
            return await storage.find_post("import", "import", sha256)
        finally:
            await storage.close()

    post = asyncio.run(imported())
    assert post is not None and post.media_kind == "animation" and post.poster is not None
    assert post.image.extension == "mp4" and post.image.path.read_bytes() == data


def test_errors_are_one_line(cli_env: list[str], tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad"
    (bad / "doom").mkdir(parents=True)
    (bad / "doom" / "x.png").write_bytes(b"not an image")
    assert main(["db", "import", str(bad), *cli_env]) == 1
    err = capsys.readouterr().err
    assert err.startswith("memebot: error:") and "not a complete image" in err
    assert "Traceback" not in err
    unreachable = "postgresql+asyncpg://u:p@127.0.0.1:1/none"
    assert main(["db", "stats", "--database-url", unreachable, *cli_env]) == 1
    assert "cannot open the database" in capsys.readouterr().err


def test_purge_chat(cli_env: list[str], tmp_path: Path, capsys) -> None:
    _seed(tmp_path / "var")
    blobs = list((tmp_path / "var" / "blobs").rglob("*.png"))
    assert len(blobs) == 2
    assert main(["db", "purge-chat", "telegram", "1", *cli_env]) == 0
    assert "purged telegram chat 1: 2 posts and 2 images deleted" in capsys.readouterr().out
    assert not any(path.exists() for path in blobs)
    assert main(["db", "stats", "--json", *cli_env]) == 0
    assert json.loads(capsys.readouterr().out)["memes_seen"] == 0
