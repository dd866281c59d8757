"""The operators' review desk and the admins' undo: corrections from chats that are not
trusted wait here until approved or rejected; an admin may take a correction back until a
retrain used it (the trainer marks what it read)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update

from storage import convert, queries
from storage.audit import add_audit, audit_row
from storage.base import StorageBase, get_row
from storage.errors import AlreadyTrainedError, InvalidInputError
from storage.models import CorrectionRow, ImageRow, PostRow
from storage.records import (
    AuditAction,
    Correction,
    CorrectionReview,
    PendingCorrection,
)
from storage.validation import check_id

MAX_BATCH = 1_000


def _ids(ids: Iterable[int]) -> list[int]:
    checked = sorted(set(ids))
    if not 1 <= len(checked) <= MAX_BATCH or any(
        isinstance(i, bool) or not isinstance(i, int) or not 0 < i < 2**63 for i in checked
    ):
        raise InvalidInputError(f"give 1-{MAX_BATCH} correction ids (positive integers)")
    return checked


class CorrectionReviewAPI(StorageBase):
    async def get_correction(self, correction_id: int) -> Correction:
        async with self._db.read() as session:
            return convert.correction(
                await get_row(session, CorrectionRow, correction_id, "correction")
            )

    async def pending_corrections(self, *, limit: int = 100, offset: int = 0
                                  ) -> list[PendingCorrection]:
        """Corrections waiting for review (from chats not trusted), oldest first."""
        if not 1 <= limit <= 1_000 or offset < 0:
            raise InvalidInputError("limit must be 1-1000 and offset not negative")
        async with self._db.read() as session:
            rows = (await session.execute(queries.pending().limit(limit).offset(offset))).all()
            images = {
                row.sha256: row for row in await session.scalars(
                    select(ImageRow).where(ImageRow.sha256.in_({p.image_sha256 for _, p in rows}))
                )
            }
            return [
                PendingCorrection(convert.correction(c),
                                  convert.post(p, images[p.image_sha256], self._blobs))
                for c, p in rows
            ]

    async def count_pending_corrections(self) -> int:
        async with self._db.read() as session:
            return await session.scalar(queries.pending_count()) or 0

    async def review_corrections(self, ids: Iterable[int], *, approve: bool, by: str | int
                                 ) -> list[int]:
        """An operator approves (they train) or rejects (they never train) corrections; the
        ids whose review changed."""
        wanted = _ids(ids)
        who = check_id(by, "operator id")
        review = (CorrectionReview.approved if approve else CorrectionReview.rejected).value
        action = (AuditAction.approve if approve else AuditAction.reject).value
        changed: list[int] = []
        async with self._db.write() as session:
            rows = (await session.execute(
                select(CorrectionRow, PostRow)
                .join(PostRow, PostRow.id == CorrectionRow.post_id)
                .where(CorrectionRow.id.in_(wanted))
                .order_by(CorrectionRow.id)
                .with_for_update()
            )).all()
            now = self._clock()
            for correction, post in rows:
                if correction.review == review:
                    continue
                await add_audit(session, audit_row(
                    action, actor_id=who, at=now, platform=post.platform, chat_id=post.chat_id,
                    post_id=post.id, from_value=correction.review or "pending",
                    to_value=review,
                    detail=f"correction #{correction.id}: {correction.previous_label} -> "
                           f"{correction.new_label}",
                ))
                correction.review, correction.reviewed_by = review, who
                changed.append(correction.id)
        return changed

    async def undo_correction(self, correction_id: int, *, by: str | int) -> str | None:
        """Take a correction back (deleted, the undo audited); returns the image's label
        decided by admins now (None: none left). Raises AlreadyTrainedError once a retrain
        used it."""
        who = check_id(by, "admin id")
        async with self._db.write() as session:
            row = await get_row(session, CorrectionRow, correction_id, "correction")
            if row.trained_job_id is not None:
                raise AlreadyTrainedError(
                    f"correction {correction_id} was used by retrain job #{row.trained_job_id}"
                )
            post = await session.get_one(PostRow, row.post_id)
            await session.delete(row)
            await session.flush()
            now_label = await queries.effective_label(session, post.image_sha256)
            await add_audit(session, audit_row(
                AuditAction.undo.value, actor_id=who, at=self._clock(), platform=post.platform,
                chat_id=post.chat_id, post_id=post.id, from_value=row.new_label,
                to_value=now_label or row.previous_label,
                detail=f"{row.kind} #{row.id} by {row.admin_id}",
            ))
            return now_label

    async def mark_corrections_trained(self, job_id: int, ids: Iterable[int]) -> int:
        """The trainer read these corrections for job `job_id`: they cannot be undone now (the
        job failing frees them again: `finish_job`, `fail_stale_jobs`)."""
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        total = 0
        async with self._db.write() as session:
            for start in range(0, len(wanted), MAX_BATCH):  # IN lists stay small
                result = await session.execute(
                    update(CorrectionRow)
                    .where(CorrectionRow.id.in_(wanted[start:start + MAX_BATCH]),
                           CorrectionRow.trained_job_id.is_(None))
                    .values(trained_job_id=job_id)
                )
                total += int(getattr(result, "rowcount", 0) or 0)
        return total
