"""The audit log of admin actions (corrections, undos, reviews, trust, retrains, rollbacks,
label changes; adapters add settings, holds and deletes): written beside the change it records,
in the same transaction where storage makes the change, and read newest first or per post."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import astuple, fields
from datetime import datetime
from pathlib import Path
from typing import TypedDict, Unpack

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.base import StorageBase
from storage.errors import InvalidInputError
from storage.models import AuditRow
from storage.records import AuditEntry
from storage.validation import check_id, check_platform

ACTION_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_VALUE = 128
MAX_DETAIL = 2_000
AUDIT_FILE = "audit-log.csv"  # written by `memebot db export` beside the label folders
EXPORT_PAGE = 5_000
# The actor of what the bot does by itself: a chat's rule applied (an off-topic meme held or
# deleted), a platform's event followed (a chat's new id).
BOT_ACTOR = "memebot"


def _value(value: object, what: str) -> str | None:
    if value is None:
        return None
    text = str(value)
    if len(text) > MAX_VALUE:
        raise InvalidInputError(f"{what} must be at most {MAX_VALUE} characters")
    return text


class AuditAbout(TypedDict, total=False):
    """What an audited action concerns, each part optional: the chat and post, and what
    changed from what to what."""

    platform: str | None
    chat_id: str | int | None
    post_id: int | None
    from_value: object
    to_value: object
    detail: str | None


def audit_row(action: str, *, actor_id: str | int, at: object,
              **about: Unpack[AuditAbout]) -> AuditRow:
    """A checked row (raises InvalidInputError before anything is written)."""
    platform, chat_id = about.get("platform"), about.get("chat_id")
    post_id, detail = about.get("post_id"), about.get("detail")
    if not isinstance(action, str) or not ACTION_RE.fullmatch(action):
        raise InvalidInputError(f"audit action must be 1-32 lowercase letters, got {action!r}")
    if post_id is not None and (isinstance(post_id, bool) or not isinstance(post_id, int)):
        raise InvalidInputError("post id must be an integer")
    if detail is not None and len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 1] + "…"
    return AuditRow(
        created_at=at,
        actor_id=check_id(actor_id, "actor id"),
        action=action,
        platform=check_platform(platform) if platform is not None else None,
        chat_id=check_id(chat_id, "chat id") if chat_id is not None else None,
        post_id=post_id,
        from_value=_value(about.get("from_value"), "from value"),
        to_value=_value(about.get("to_value"), "to value"),
        detail=detail,
    )


def audit_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id, created_at=row.created_at, actor_id=row.actor_id, action=row.action,
        platform=row.platform, chat_id=row.chat_id, post_id=row.post_id,
        from_value=row.from_value, to_value=row.to_value, detail=row.detail,
    )


async def add_audit(session: AsyncSession, row: AuditRow) -> AuditEntry:
    session.add(row)
    await session.flush()
    return audit_entry(row)


class AuditAPI(StorageBase):
    async def record_audit(self, action: str, *, actor_id: str | int,
                           **about: Unpack[AuditAbout]) -> AuditEntry:
        """Log one admin action: `action` is a short lowercase name (`AuditAction` lists the
        ones this code writes), `actor_id` "platform:user_id", the chat and post it concerns
        if any, and what changed from what to what (e.g. a setting's old and new value)."""
        row = audit_row(action, actor_id=actor_id, at=self._clock(), **about)
        async with self._db.write() as session:
            return await add_audit(session, row)

    async def audit_log(
        self,
        *,
        action: str | None = None,
        platform: str | None = None,
        chat_id: str | int | None = None,
        post_id: int | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        """Newest first; `before_id` pages back (the smallest id of the previous page)."""
        if not 1 <= limit <= 10_000:
            raise InvalidInputError("limit must be 1-10000")
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if action is not None:
            stmt = stmt.where(AuditRow.action == action)
        if platform is not None:
            stmt = stmt.where(AuditRow.platform == check_platform(platform))
        if chat_id is not None:
            stmt = stmt.where(AuditRow.chat_id == check_id(chat_id, "chat id"))
        if post_id is not None:
            stmt = stmt.where(AuditRow.post_id == post_id)
        if before_id is not None:
            stmt = stmt.where(AuditRow.id < before_id)
        async with self._db.read() as session:
            return [audit_entry(row) for row in await session.scalars(stmt)]

    async def post_history(self, post_id: int) -> list[AuditEntry]:
        """What admins did to one post (who, when, from, to), oldest first."""
        async with self._db.read() as session:
            rows = await session.scalars(
                select(AuditRow).where(AuditRow.post_id == post_id).order_by(AuditRow.id)
            )
            return [audit_entry(row) for row in rows]

    async def export_audit(self, folder: Path) -> Path:
        """Write the whole log, oldest first, as `<folder>/audit-log.csv` (replaced whole)."""
        entries: list[AuditEntry] = []
        before: int | None = None
        while page := await self.audit_log(limit=EXPORT_PAGE, before_id=before):
            entries.extend(page)
            before = page[-1].id
        entries.reverse()
        return await asyncio.to_thread(_write_csv, entries, Path(folder) / AUDIT_FILE)


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value


def _write_csv(entries: Sequence[AuditEntry], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow([f.name for f in fields(AuditEntry)])
            for entry in entries:
                writer.writerow([_cell(value) for value in astuple(entry)])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
