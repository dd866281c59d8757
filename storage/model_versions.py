"""Model versions: candidates registered by the trainer, exactly one active, rollback."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import convert
from storage.base import LOG_TAIL_CHARS, StorageBase
from storage.errors import ConflictError, InvalidInputError, NotFoundError, StateError
from storage.models import ModelVersionRow
from storage.records import ModelStatus, ModelVersion
from storage.validation import check_sha256, check_version


class ModelVersionsAPI(StorageBase):
    # ------------------------------------------------------------------------ model versions

    async def register_model_version(
        self,
        version: str,
        *,
        path: str | Path,
        sha256: str,
        metadata: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        """Add a candidate version; registering the same version and bytes again is a no-op."""
        version = check_version(version)
        sha256 = check_sha256(sha256)
        path_text = str(path)
        if not 1 <= len(path_text) <= 1024:
            raise InvalidInputError("model path must be 1-1024 characters")
        meta = dict(metadata or {})
        async with self._db.write() as session:
            existing = await session.scalar(
                select(ModelVersionRow).where(ModelVersionRow.version == version)
            )
            if existing is not None:
                if existing.sha256 != sha256:
                    raise ConflictError(
                        f"model version {version!r} is already registered with other bytes"
                    )
                return convert.model_version(existing)
            row = ModelVersionRow(
                version=version,
                path=path_text,
                sha256=sha256,
                metadata_=meta,
                status=ModelStatus.candidate.value,
                created_at=self._clock(),
                promoted_at=None,
            )
            session.add(row)
            await session.flush()
            return convert.model_version(row)

    async def activate_model_version(self, version: str) -> ModelVersion:
        """Make `version` the one active version; the previous active one becomes retired."""
        version = check_version(version)
        async with self._db.write() as session:
            await self._db.serialize(session, "model_versions.activate")
            row = await _model_row(session, version)
            if row.status == ModelStatus.failed.value:
                raise StateError(f"model version {version!r} failed and cannot be activated")
            if row.status != ModelStatus.active.value:
                await session.execute(
                    update(ModelVersionRow)
                    .where(ModelVersionRow.status == ModelStatus.active.value)
                    .values(status=ModelStatus.retired.value)
                )
                row.status = ModelStatus.active.value
                row.promoted_at = self._clock()
                await session.flush()
            return convert.model_version(row)

    async def mark_model_version_failed(self, version: str, *, reason: str = "") -> ModelVersion:
        version = check_version(version)
        async with self._db.write() as session:
            row = await _model_row(session, version)
            if row.status == ModelStatus.active.value:
                raise StateError(f"model version {version!r} is active; activate another first")
            row.status = ModelStatus.failed.value
            if reason:
                row.metadata_ = {**row.metadata_, "failure": reason[:LOG_TAIL_CHARS]}
            await session.flush()
            return convert.model_version(row)

    async def active_model_version(self) -> ModelVersion | None:
        async with self._db.read() as session:
            row = await session.scalar(
                select(ModelVersionRow).where(ModelVersionRow.status == ModelStatus.active.value)
            )
            return convert.model_version(row) if row else None

    async def get_model_version(self, version: str) -> ModelVersion:
        version = check_version(version)
        async with self._db.read() as session:
            return convert.model_version(await _model_row(session, version))

    async def list_model_versions(self) -> list[ModelVersion]:
        async with self._db.read() as session:
            rows = await session.scalars(select(ModelVersionRow).order_by(ModelVersionRow.id))
            return [convert.model_version(r) for r in rows]


async def _model_row(session: AsyncSession, version: str) -> ModelVersionRow:
    row = await session.scalar(select(ModelVersionRow).where(ModelVersionRow.version == version))
    if row is None:
        raise NotFoundError(f"model version {version!r} is not registered")
    return row
