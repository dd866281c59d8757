"""Backups of everything the bot keeps: the database, the image blobs and the model versions,
with a manifest of every file's size and SHA-256 (issue 23).

SQLite is copied with its online backup API (a consistent snapshot while the bot writes; WAL
readers never block the writer), PostgreSQL with `pg_dump -Fc`. Blobs are copied after the
database snapshot: they are written before their row commits, so every row in the snapshot
finds its file. A backup is written into a hidden sibling folder and renamed into place when
complete, so a folder with a manifest is always a whole backup.

A restore checks every checksum before it touches anything, and never overwrites: an existing
SQLite file (with its WAL) and any blob or model file that differs are renamed aside with a
`.before-restore-<time>` suffix; PostgreSQL is restored into an empty database only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from storage.errors import StorageError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "database.sqlite"
PG_FILE = "database.pgdump"
BLOBS, MODELS = "blobs", "models"
AUTO_PREFIX = "pre-migration-"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian's clients; the newest dumps older servers
CHUNK = 1 << 20


class BackupError(StorageError):
    """A backup that cannot be taken or restored; the message says what and why."""


@dataclass(frozen=True)
class BackupFile:
    path: str  # relative to the backup folder, "/"-separated
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    backend: str  # "sqlite" | "postgresql"
    database: str  # the database file in the backup folder
    schema_revision: str | None
    app_version: str
    created_at: str
    files: tuple[BackupFile, ...]
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            files = tuple(BackupFile(**f) for f in raw.pop("files"))
            manifest = cls(files=files, **raw)
        except FileNotFoundError:
            raise BackupError(f"{folder} is not a memebot backup (no {MANIFEST})") from None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise BackupError(f"{path} is damaged: {exc}") from None
        if manifest.format != FORMAT:
            raise BackupError(f"{path}: backup format {manifest.format}, this memebot reads "
                              f"format {FORMAT}")
        return manifest


@dataclass(frozen=True)
class Place:
    """Where a bot's data lives: its database, blob folder and model folder."""

    url: str
    blob_root: Path
    model_dir: Path | None = None
    schema: str | None = None  # PostgreSQL schema (search_path), when not the default


@dataclass(frozen=True)
class RestoreReport:
    manifest: Manifest
    files_written: int
    files_unchanged: int
    moved_aside: tuple[Path, ...] = field(default_factory=tuple)


def app_version() -> str:
    try:
        return metadata.version("memebot")
    except metadata.PackageNotFoundError:
        return "unknown"


def _now_tag() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


# ------------------------------------------------------------------------------- files


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(root: Path) -> Iterator[Path]:
    """Regular files under `root`, skipping half-written temp files (".tmp-*")."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and not path.name.startswith(".tmp-"):
            yield path


def _copy_tree(src: Path, dst: Path) -> None:
    for path in _walk(src):
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _describe(folder: Path) -> tuple[BackupFile, ...]:
    return tuple(
        BackupFile(path.relative_to(folder).as_posix(), path.stat().st_size, sha256_file(path))
        for path in _walk(folder) if path.name != MANIFEST
    )


def _fsync_tree(folder: Path) -> None:
    for path in [*_walk(folder), folder]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def verify(folder: Path) -> Manifest:
    """The manifest, once every file it lists is there with its size and checksum."""
    manifest = Manifest.read(folder)
    problems = []
    for entry in manifest.files:
        path = folder / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing")
        elif path.stat().st_size != entry.size:
            problems.append(f"{entry.path}: {path.stat().st_size} bytes, expected {entry.size}")
        elif sha256_file(path) != entry.sha256:
            problems.append(f"{entry.path}: checksum differs")
    if not any(e.path == manifest.database for e in manifest.files):
        problems.append(f"{manifest.database}: not listed in the manifest")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                           if len(problems) > 5 else "")
        raise BackupError(f"the backup in {folder} is damaged, nothing was restored: {shown}")
    return manifest


# ------------------------------------------------------------------------------ SQLite


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError(f"cannot back up the SQLite database {url.database!r}: not a file")
    return Path(url.database).expanduser()


def _integrity(path: Path) -> None:
    con = sqlite3.connect(path)
    try:
        result = [row[0] for row in con.execute("PRAGMA integrity_check")]
    finally:
        con.close()
    if result != ["ok"]:
        raise BackupError(f"{path} fails its integrity check: {'; '.join(result[:5])}")


def _sqlite_revision(path: Path) -> str | None:
    con = sqlite3.connect(path)
    try:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        con.close()
    return str(row[0]) if row else None


def _sqlite_backup(source: Path, target: Path) -> str | None:
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # one step: a consistent snapshot, the writer is never blocked (WAL)
        dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()
    _integrity(target)
    return _sqlite_revision(target)


def _sqlite_restore(dump: Path, target: Path, tag: str) -> list[Path]:
    """Put the backup's file at `target`, moving an existing database (and WAL) aside."""
    moved = []
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # together: a WAL holds committed pages of its file
        existing = Path(f"{target}{suffix}")
        if existing.exists():
            aside = Path(f"{target}.before-restore-{tag}{suffix}")
            existing.rename(aside)
            moved.append(aside)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-restore-", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(dump, tmp)
        _integrity(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return moved


# -------------------------------------------------------------------------- PostgreSQL


def pg_tool(name: str) -> str:
    """`pg_dump` or `pg_restore`: the newest Debian cluster's client, else the one on PATH."""
    versions = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    for folder in reversed(versions):
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client (Debian: "
                          "apt-get install postgresql-client)")
    return found


def _pg_command(url: URL) -> tuple[list[str], dict[str, str]]:
    """libpq connection options, with the password in the environment (not on the command
    line, where `ps` would show it)."""
    args = ["--dbname", url.database or "postgres"]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{what} failed: {result.stderr.strip()[-2000:]}")


async def _pg_revision(url: str, schema: str | None) -> str | None:
    from storage import migrate
    from storage.db import Database

    db = Database.connect(url, schema=schema)
    try:
        return await migrate.current_revision(db)
    finally:
        await db.dispose()


def _pg_backup(url: URL, schema: str | None, target: Path) -> None:
    conn, env = _pg_command(url)
    command = [pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
               "--file", str(target), *conn]
    if schema:
        command += ["--schema", schema]
    _run(command, env, "pg_dump")


def _pg_restore(dump: Path, url: URL) -> None:
    conn, env = _pg_command(url)
    _run([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
          "--single-transaction", *conn, str(dump)], env, "pg_restore")


# ---------------------------------------------------------------------------- backup


async def backup(place: Place, folder: Path) -> Manifest:
    """Back up `place` into `folder` (new or empty); the manifest written last."""
    folder = folder.expanduser().resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"{folder} exists and is not empty: back up into a new folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        url = make_url(place.url)
        backend = url.get_backend_name()
        if backend == "sqlite":
            database = SQLITE_FILE
            revision = await asyncio.to_thread(_sqlite_backup, _sqlite_path(url), work / database)
        elif backend == "postgresql":
            database = PG_FILE
            revision = await _pg_revision(place.url, place.schema)
            await asyncio.to_thread(_pg_backup, url, place.schema, work / database)
        else:
            raise BackupError(f"cannot back up a {backend} database")
        # After the snapshot: every row in it finds its blob (blobs are written first).
        await asyncio.to_thread(_copy_tree, place.blob_root, work / BLOBS)
        if place.model_dir is not None:
            await asyncio.to_thread(_copy_tree, place.model_dir, work / MODELS)
        manifest = Manifest(
            backend=backend, database=database, schema_revision=revision,
            app_version=app_version(), created_at=datetime.now(UTC).isoformat(),
            files=await asyncio.to_thread(_describe, work),
        )
        (work / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        await asyncio.to_thread(_fsync_tree, work)
        if folder.exists():
            folder.rmdir()
        work.rename(folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("backup of %s in %s: %d files", make_url(place.url).render_as_string(
        hide_password=True), folder, len(manifest.files))
    return manifest


# --------------------------------------------------------------------------- restore


def _restore_files(folder: Path, manifest: Manifest, prefix: str, target: Path | None,
                   tag: str) -> tuple[int, int, list[Path]]:
    """Copy the backup's files under `prefix` into `target`: missing ones written, equal ones
    kept, different ones moved aside first."""
    written = unchanged = 0
    moved: list[Path] = []
    if target is None:
        return written, unchanged, moved
    for entry in manifest.files:
        if not entry.path.startswith(f"{prefix}/"):
            continue
        dest = target / entry.path[len(prefix) + 1:]
        if dest.is_file():
            if dest.stat().st_size == entry.size and sha256_file(dest) == entry.sha256:
                unchanged += 1
                continue
            aside = dest.with_name(f"{dest.name}.before-restore-{tag}")
            dest.rename(aside)
            moved.append(aside)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-restore-", dir=dest.parent)
        os.close(fd)
        try:
            shutil.copy2(folder / entry.path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written += 1
    return written, unchanged, moved


async def _pg_is_empty(url: str, schema: str | None) -> bool:
    return await _pg_revision(url, schema) is None


async def restore(folder: Path, place: Place) -> RestoreReport:
    """Restore the backup in `folder` to `place`, after checking every checksum."""
    folder = folder.expanduser().resolve()
    manifest = await asyncio.to_thread(verify, folder)
    url = make_url(place.url)
    backend = url.get_backend_name()
    if backend != manifest.backend:
        raise BackupError(f"the backup holds a {manifest.backend} database; the target "
                          f"{url.render_as_string(hide_password=True)} is {backend}")
    tag = _now_tag()
    moved: list[Path] = []
    if backend == "postgresql" and not await _pg_is_empty(place.url, place.schema):
        raise BackupError(
            f"{url.render_as_string(hide_password=True)} already holds a memebot database: "
            "restore into a new, empty database (createdb) and point MEMEBOT_DATABASE_URL at it")
    dump = folder / manifest.database
    if backend == "sqlite":
        moved += await asyncio.to_thread(_sqlite_restore, dump, _sqlite_path(url), tag)
    else:
        await asyncio.to_thread(_pg_restore, dump, url)
    written, unchanged = 1, 0
    for prefix, target in ((BLOBS, place.blob_root), (MODELS, place.model_dir)):
        w, u, m = await asyncio.to_thread(_restore_files, folder, manifest, prefix, target, tag)
        written, unchanged = written + w, unchanged + u
        moved += m
    return RestoreReport(manifest, written, unchanged, tuple(moved))


# ------------------------------------------------------------- before a schema migration


async def backup_before_migration(place: Place, backups_dir: Path, *, current: str,
                                  head: str, keep: int) -> Path:
    """A backup named for the migration about to run; only the newest `keep` are kept."""
    folder = backups_dir / f"{AUTO_PREFIX}{_now_tag()}-{current}-to-{head}"
    await backup(place, folder)
    log.warning("database at %s is migrated to %s: backup first in %s", current, head, folder)
    prune(backups_dir, keep)
    return folder


def migration_hook(place: Place, backups_dir: Path, keep: int
                   ) -> Callable[[str, str], Awaitable[object]] | None:
    """`Storage.open(before_upgrade=...)`: back up before a migration (None when keep is 0)."""
    if keep <= 0:
        return None

    async def before_upgrade(current: str, head: str) -> Path:
        return await backup_before_migration(place, backups_dir, current=current, head=head,
                                             keep=keep)

    return before_upgrade


def prune(backups_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` automatic backups (the names sort by time)."""
    automatic = sorted(p for p in backups_dir.glob(f"{AUTO_PREFIX}*") if p.is_dir())
    doomed = automatic[:-keep] if keep > 0 else automatic
    for path in doomed:
        shutil.rmtree(path)
    return doomed
