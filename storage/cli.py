"""`memebot db ...`: upgrade, stats, gc, export, import. SQLAlchemy loads only when run."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from storage.errors import StorageError

if TYPE_CHECKING:
    from config.settings import Settings
    from storage.api import Storage
    from storage.backup import Place

ERRORS: tuple[type[BaseException], ...] = (StorageError,)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser(
        "db", help="database: migrate, stats, clean up, export/import labels"
    )

    def show_help(_args: argparse.Namespace) -> int:
        db.print_help()
        return 2

    db.set_defaults(func=show_help)
    sub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND")

    def add(
        name: str, help_text: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("--database-url", help="SQLAlchemy URL (default: MEMEBOT_DATABASE_URL "
                            "or SQLite in the data dir)")
        parser.add_argument("--data-dir", type=Path, help="data folder with blobs/ (default: "
                            "MEMEBOT_DATA_DIR)")
        parser.set_defaults(func=func)
        return parser

    add("upgrade", "create or upgrade the database schema to the newest revision", _upgrade)
    stats = add("stats", "counts of memes, labels, corrections; the active model", _stats)
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    gc = add("gc", "delete image files that no database row refers to", _gc)
    gc.add_argument("--min-age-seconds", type=float, default=3600.0,
                    help="keep files younger than this: a running bot may be about to commit "
                    "their row (default: 3600)")
    export = add("export", "write the admin-labelled images as FOLDER/<label>/<sha256>.<ext> "
                           "and the audit log as FOLDER/audit-log.csv",
                 _export)
    export.add_argument("folder", type=Path)
    imp = add("import", "label every image of an ImageFolder tree FOLDER/<label>/*", _import)
    imp.add_argument("folder", type=Path)
    imp.add_argument("--admin-id", default="import", help="recorded as the correcting admin")
    imp.add_argument("--no-create-labels", action="store_true",
                     help="fail on label folders that are not known labels")
    backup = add("backup", "copy the database (a consistent snapshot, also while the bot runs), "
                 "image blobs and model versions into the new folder DIR, with a manifest of "
                 "checksums", _backup)
    backup.add_argument("folder", type=Path, metavar="DIR")
    restore = add("restore", "restore the backup in DIR after checking its checksums (stop the "
                  "bot first); an existing SQLite database and differing files are moved "
                  "aside, PostgreSQL is restored into an empty database only", _restore)
    restore.add_argument("folder", type=Path, metavar="DIR")
    purge = add("purge-chat", "delete everything kept about one chat: its memes, captions, "
                "names, the images only it showed, its settings", _purge_chat)
    purge.add_argument("platform", help="telegram, discord or console")
    purge.add_argument("chat_id")


def _upgrade(args: argparse.Namespace) -> int:
    async def run(storage: Storage) -> None:
        print(f"database {storage.url} is at revision {await storage.schema_revision()}")

    return _run(args, run)


def _stats(args: argparse.Namespace) -> int:
    async def run(storage: Storage) -> None:
        stats = await storage.stats()
        if args.json:
            print(json.dumps(asdict(stats), indent=2, sort_keys=True))
            return
        print(f"database:       {storage.url}")
        print(f"memes seen:     {stats.memes_seen} ({stats.unique_images} unique images)")
        print(f"active model:   {stats.active_model or '-'}")
        print(f"corrections:    {stats.corrections}   confirmations: {stats.confirmations}")
        print(f"retrain jobs:   {stats.queued_jobs} queued, {stats.running_jobs} running")
        labels = sorted(set(stats.predicted_per_label) | set(stats.labelled_per_label))
        print(f"{'label':<24}{'predicted':>10}{'labelled':>10}")
        for label in labels:
            print(f"{label:<24}{stats.predicted_per_label.get(label, 0):>10}"
                  f"{stats.labelled_per_label.get(label, 0):>10}")

    return _run(args, run)


def _gc(args: argparse.Namespace) -> int:
    async def run(storage: Storage) -> None:
        report = await storage.gc_orphan_blobs(timedelta(seconds=max(args.min_age_seconds, 0.0)))
        print(f"removed {report.removed_blobs} orphan blobs and {report.removed_temp_files} temp "
              f"files ({report.freed_bytes} bytes); kept {report.kept_blobs}")

    return _run(args, run)


def _export(args: argparse.Namespace) -> int:
    async def run(storage: Storage) -> None:
        report = await storage.export_labelled(args.folder)
        per_label = ", ".join(f"{k}: {v}" for k, v in report.per_label.items())
        per_label = per_label or "nothing labelled"
        print(f"exported to {report.folder}: {report.written} written, {report.unchanged} "
              f"unchanged ({per_label})")
        audit = await storage.export_audit(args.folder)
        print(f"audit log: {audit}")

    return _run(args, run)


def _import(args: argparse.Namespace) -> int:
    from functools import partial

    from config.settings import Settings
    from inference.clip_records import clip_limits, read_clip

    # The clips an export holds are decoded as the bot decodes them (their poster and facts).
    reader = partial(read_clip, limits=clip_limits(Settings()))

    async def run(storage: Storage) -> None:
        report = await storage.import_labelled(
            args.folder, admin_id=args.admin_id, create_labels=not args.no_create_labels,
            read_clip=reader,
        )
        added = f"; new labels: {', '.join(report.labels_added)}" if report.labels_added else ""
        print(f"imported {report.images} images from {report.folder}: {report.relabelled} "
              f"labelled, {report.unchanged} already had that label{added}")

    return _run(args, run)


def _place(args: argparse.Namespace) -> tuple[Settings, Place]:
    from config.settings import Settings
    from storage.backup import Place
    from storage.db import default_sqlite_url

    settings = Settings()
    data_dir = args.data_dir or settings.data_dir
    url = args.database_url or settings.database_url or default_sqlite_url(data_dir)
    return settings, Place(url, data_dir / "blobs", settings.model_dir)


def _purge_chat(args: argparse.Namespace) -> int:
    async def run(storage: Storage) -> None:
        removed = await storage.purge_chat(args.platform, args.chat_id)
        print(f"purged {args.platform} chat {args.chat_id}: {removed.posts} posts and "
              f"{removed.images} images deleted")

    return _run(args, run)


def _backup(args: argparse.Namespace) -> int:
    from storage.backup import backup

    _settings, place = _place(args)
    manifest = asyncio.run(backup(place, args.folder))
    size = sum(f.size for f in manifest.files)
    print(f"backed up {manifest.backend} (schema {manifest.schema_revision}) to {args.folder}: "
          f"{len(manifest.files)} files, {size:,} bytes")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from storage.backup import restore

    _settings, place = _place(args)
    report = asyncio.run(restore(args.folder, place))
    print(f"restored {report.manifest.backend} (schema {report.manifest.schema_revision}, "
          f"taken {report.manifest.created_at}): {report.files_written} files written, "
          f"{report.files_unchanged} already there")
    for path in report.moved_aside:
        print(f"  moved aside: {path}")
    return 0


def _run(args: argparse.Namespace, body: Callable[[Storage], Awaitable[None]]) -> int:
    from storage.api import Storage
    from storage.backup import migration_hook

    settings, place = _place(args)
    url, data_dir = place.url, place.blob_root.parent
    hook = migration_hook(place, data_dir / "backups", settings.backups_kept)

    async def main() -> None:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            storage = await Storage.open(url, data_dir / "blobs", dataset_dir=settings.dataset_dir,
                                         before_upgrade=hook)
        except (OSError, SQLAlchemyError) as exc:
            # Unreachable server, bad password, unwritable folder: a message, not a traceback.
            raise StorageError(f"cannot open the database: {exc}") from exc
        try:
            await body(storage)
        finally:
            await storage.close()

    asyncio.run(main())
    return 0
