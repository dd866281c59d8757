"""`Storage`: the typed API the bot and the trainer use. No sessions or ORM objects leak out.

Every method validates its input before it opens a transaction, and every write runs in one
transaction, so a raised `StorageError` always leaves the database as it was. The methods
live in one module per subject; this class only combines them and manages the connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from storage import migrate
from storage.audit import AuditAPI
from storage.base import Clock, utcnow
from storage.blobs import BlobStore
from storage.chat_moves import ChatMovesAPI
from storage.chats import ChatSettingsAPI
from storage.db import Database
from storage.holds import HoldsAPI
from storage.intake import IntakeAPI
from storage.jobs import RetrainJobsAPI
from storage.lifecycle import LifecycleAPI
from storage.model_versions import ModelVersionsAPI
from storage.reposts import RepostsAPI
from storage.review import CorrectionReviewAPI
from storage.transfer_api import TransferAPI
from storage.trust import TrustAPI

# Called with the current and the newest schema revision before a migration changes them.
UpgradeHook = Callable[[str, str], Awaitable[object]]


class Storage(
    TransferAPI, ModelVersionsAPI, RetrainJobsAPI, ChatSettingsAPI, ChatMovesAPI, HoldsAPI,
    RepostsAPI, IntakeAPI, TrustAPI, CorrectionReviewAPI, AuditAPI, LifecycleAPI,
):
    """Posts, predictions, corrections, labels, model versions, retrain jobs, chat settings,
    repost fingerprints and marks, forwarded copies, held off-topic posts, chat id moves,
    trusted chats, the review of corrections and the audit log.

    Open with `await Storage.open(url, blob_root)`; close with `await storage.close()` or use
    it as `async with`.
    """

    # ----------------------------------------------------------------------------- lifecycle

    @classmethod
    async def open(
        cls,
        url: str,
        blob_root: Path,
        *,
        dataset_dir: Path | None = None,
        schema: str | None = None,
        upgrade: bool = True,
        clock: Clock = utcnow,
        before_upgrade: UpgradeHook | None = None,
        **engine_kwargs: Any,
    ) -> Storage:
        """Connect, and (by default) upgrade the schema to the newest revision.

        `before_upgrade(current, head)` runs first when an existing schema is about to change
        (the automatic backup, `storage.backup.backup_before_migration`)."""
        db = Database.connect(url, schema=schema, **engine_kwargs)
        try:
            if upgrade:
                current, head = await migrate.current_revision(db), migrate.head_revision()
                if before_upgrade is not None and current is not None and current != head:
                    await before_upgrade(current, head or "head")
                await migrate.upgrade(db)
        except BaseException:
            await db.dispose()
            raise
        return cls(db, BlobStore(blob_root), dataset_dir=dataset_dir, clock=clock)

    async def close(self) -> None:
        await self._db.dispose()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def backend(self) -> str:
        return self._db.engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with any password hidden (safe to log)."""
        return make_url(self._db.engine.url).render_as_string(hide_password=True)

    @property
    def blob_root(self) -> Path:
        return self._blobs.root

    async def schema_revision(self) -> str | None:
        return await migrate.current_revision(self._db)


__all__ = ["Storage", "utcnow"]
