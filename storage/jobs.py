"""Retrain jobs: a queue that bot processes fill and separate trainer processes claim."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import convert
from storage.base import LOG_TAIL_CHARS, StorageBase, get_row
from storage.errors import InvalidInputError, StateError
from storage.models import CorrectionRow, RetrainJobRow
from storage.records import EnqueuedJob, JobStatus, RetrainJob
from storage.validation import check_id, check_platform, check_short_text, check_version


class RetrainJobsAPI(StorageBase):
    # ---------------------------------------------------------------------------- retrain jobs

    async def enqueue_retrain(self, requested_by: str | int, kind: str = "full") -> EnqueuedJob:
        """Queue a retrain, or join the queued/running job of the same kind."""
        who = check_id(requested_by, "requested_by")
        kind = check_platform(kind)  # same shape as a platform name
        async with self._db.write() as session:
            await self._db.serialize(session, "retrain_jobs.enqueue")
            open_job = await session.scalar(
                select(RetrainJobRow).where(
                    RetrainJobRow.kind == kind,
                    RetrainJobRow.status.in_([JobStatus.queued.value, JobStatus.running.value]),
                )
            )
            if open_job is not None:
                return EnqueuedJob(job=convert.job(open_job), created=False)
            row = RetrainJobRow(
                kind=kind,
                requested_by=who,
                status=JobStatus.queued.value,
                created_at=self._clock(),
                log_tail="",
            )
            session.add(row)
            await session.flush()
            return EnqueuedJob(job=convert.job(row), created=True)

    async def claim_next_job(
        self, worker: str, kinds: Iterable[str] | None = None
    ) -> RetrainJob | None:
        """Atomically move the oldest queued job to running for `worker`; None if none queued.

        PostgreSQL: FOR UPDATE SKIP LOCKED lets several trainers claim different jobs without
        waiting on each other. SQLite: BEGIN IMMEDIATE already makes this the only writer.
        """
        worker = check_short_text(worker, "worker", 128)
        stmt = (
            select(RetrainJobRow)
            .where(RetrainJobRow.status == JobStatus.queued.value)
            .order_by(RetrainJobRow.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if kinds is not None:
            stmt = stmt.where(RetrainJobRow.kind.in_([check_platform(k) for k in kinds]))
        async with self._db.write() as session:
            row = await session.scalar(stmt)
            if row is None:
                return None
            now = self._clock()
            row.status = JobStatus.running.value
            row.worker = worker
            row.started_at = now
            row.heartbeat_at = now
            await session.flush()
            return convert.job(row)

    async def heartbeat_job(self, job_id: int, *, log_tail: str | None = None) -> RetrainJob:
        """A running trainer says it is alive (and optionally what it printed last)."""
        async with self._db.write() as session:
            row = await _running_job(session, job_id)
            row.heartbeat_at = self._clock()
            if log_tail is not None:
                row.log_tail = log_tail[-LOG_TAIL_CHARS:]
            await session.flush()
            return convert.job(row)

    async def finish_job(
        self,
        job_id: int,
        *,
        succeeded: bool,
        log_tail: str = "",
        model_version: str | None = None,
        error: str | None = None,
    ) -> RetrainJob:
        version = check_version(model_version) if model_version is not None else None
        async with self._db.write() as session:
            row = await _running_job(session, job_id)
            row.status = (JobStatus.succeeded if succeeded else JobStatus.failed).value
            row.finished_at = self._clock()
            row.log_tail = log_tail[-LOG_TAIL_CHARS:]
            row.model_version = version
            row.error = None if succeeded else (error or "failed")[:LOG_TAIL_CHARS]
            if not succeeded:
                await release_corrections(session, [job_id])
            await session.flush()
            return convert.job(row)

    async def fail_stale_jobs(
        self, older_than: timedelta = timedelta(minutes=10)
    ) -> list[RetrainJob]:
        """Fail running jobs whose trainer stopped sending heartbeats (killed, crashed)."""
        if older_than < timedelta(0):
            raise InvalidInputError("older_than must not be negative")
        cutoff = self._clock() - older_than
        async with self._db.write() as session:
            rows = list(
                await session.scalars(
                    select(RetrainJobRow)
                    .where(
                        RetrainJobRow.status == JobStatus.running.value,
                        func.coalesce(RetrainJobRow.heartbeat_at, RetrainJobRow.started_at)
                        <= cutoff,
                    )
                    .order_by(RetrainJobRow.id)
                    .with_for_update(skip_locked=True)
                )
            )
            now = self._clock()
            for row in rows:
                row.status = JobStatus.failed.value
                row.finished_at = now
                worker = row.worker or "the trainer"
                row.error = f"no heartbeat from {worker} since {row.heartbeat_at}"
            await release_corrections(session, [row.id for row in rows])
            await session.flush()
            return [convert.job(r) for r in rows]

    async def get_job(self, job_id: int) -> RetrainJob:
        async with self._db.read() as session:
            return convert.job(await get_row(session, RetrainJobRow, job_id, "retrain job"))

    async def list_jobs(self, limit: int = 20) -> list[RetrainJob]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(RetrainJobRow).order_by(RetrainJobRow.id.desc()).limit(limit)
            )
            return [convert.job(r) for r in rows]


async def _running_job(session: AsyncSession, job_id: int) -> RetrainJobRow:
    await get_row(session, RetrainJobRow, job_id, "retrain job")
    # Lock the row: a trainer finishing races `fail_stale_jobs` from the bot on PostgreSQL.
    row = await session.scalar(
        select(RetrainJobRow)
        .where(RetrainJobRow.id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    if row.status != JobStatus.running.value:
        raise StateError(f"retrain job {job_id} is {row.status}, not running")
    return row


async def release_corrections(session: AsyncSession, job_ids: list[int]) -> None:
    """Jobs that failed taught no model: the corrections they read may be undone again."""
    if job_ids:
        await session.execute(
            update(CorrectionRow).where(CorrectionRow.trained_job_id.in_(job_ids))
            .values(trained_job_id=None)
        )
