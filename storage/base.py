"""What every part of `Storage` shares: the database, the blob store, the clock, and row
lookups that turn a missing id into NotFoundError."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.blobs import BlobStore
from storage.db import Database
from storage.errors import InvalidInputError, NotFoundError, UnknownLabelError
from storage.models import ImageRow, LabelRow, PostRow

Clock = Callable[[], datetime]
LOG_TAIL_CHARS = 8_000  # enough to show why a training run failed, small enough for a row


def utcnow() -> datetime:
    return datetime.now(UTC)


class StorageBase:
    """State shared by the parts of `Storage` (each part is a mixin of this class)."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        dataset_dir: Path | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self._blobs = blobs
        self._dataset_dir = dataset_dir
        self._clock = clock


def aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInputError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


async def get_row(session: AsyncSession, model: type[Any], key: object, what: str) -> Any:
    if isinstance(key, bool) or not isinstance(key, int) or not 0 < key < 2**63:
        raise InvalidInputError(f"{what} id must be a positive integer, got {key!r}")
    row = await session.get(model, key)
    if row is None:
        raise NotFoundError(f"{what} {key} does not exist")
    return row


async def require_labels(session: AsyncSession, names: Iterable[str]) -> None:
    names = set(names)
    found = set(await session.scalars(select(LabelRow.name).where(LabelRow.name.in_(names))))
    if unknown := sorted(names - found):
        raise UnknownLabelError(
            f"unknown label {', '.join(map(repr, unknown))}: an admin must add it first"
        )


async def poster_rows(session: AsyncSession, posts: Iterable[PostRow]) -> dict[str, ImageRow]:
    """The poster image rows of these posts' clips, by sha256 (one query; none for stills)."""
    wanted = {row.poster_sha256 for row in posts if row.poster_sha256}
    if not wanted:
        return {}
    found = await session.scalars(select(ImageRow).where(ImageRow.sha256.in_(wanted)))
    return {row.sha256: row for row in found}
