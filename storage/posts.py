"""Posts with their image blobs, predictions, admin corrections and confirmations, labels,
and the clean-up of blobs a crash left without a row."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import convert, queries
from storage.audit import add_audit, audit_row
from storage.base import StorageBase, get_row, poster_rows, require_labels
from storage.errors import LabelExistsError
from storage.intake import (
    ClipMedia,
    NewPost,
    PostKey,
    PredictionValues,
    checked_post,
    insert_post,
    store_files,
)
from storage.models import CorrectionRow, ImageRow, LabelRow, PostRow, PredictionRow
from storage.records import (
    Correction,
    CorrectionKind,
    CorrectionReview,
    GcReport,
    Label,
    Post,
    PredictionRecord,
)
from storage.validation import (
    check_id,
    check_label,
    check_platform,
    check_sha256,
)


def _approved(approved: bool) -> str | None:
    return CorrectionReview.approved.value if approved else None


async def _audited(session: AsyncSession, row: CorrectionRow, post: PostRow) -> Correction:
    """Store a decision and its line in the post's history, in one transaction."""
    session.add(row)
    await session.flush()
    await add_audit(session, audit_row(
        row.kind, actor_id=row.admin_id, at=row.created_at, platform=post.platform,
        chat_id=post.chat_id, post_id=post.id, from_value=row.previous_label,
        to_value=row.new_label, detail=f"{row.kind} #{row.id}",
    ))
    return convert.correction(row)


class PostsAPI(StorageBase):
    # --------------------------------------------------------------------------------- posts

    async def add_post(
        self,
        *,
        platform: str,
        chat_id: str | int,
        message_id: str | int,
        author_id: str | int,
        image: bytes,
        attachment_index: int = 0,
        posted_at: datetime | None = None,
        caption: str | None = None,
        media: ClipMedia | None = None,
    ) -> Post:
        """Store the image (or clip: `media` says what it is) blob and its post; a redelivered
        update returns the existing post.

        Order matters for crash safety: the blob is durable before its row commits.
        """
        new = checked_post(NewPost(
            key=PostKey.checked(platform, chat_id, message_id, attachment_index),
            author_id=author_id, image=image, posted_at=posted_at, caption=caption, media=media,
        ))
        files = await asyncio.to_thread(store_files, self._blobs, new)
        async with self._db.write() as session:
            row, created = await insert_post(self, session, new, files)
            image_row = await session.get_one(ImageRow, row.image_sha256)
            return convert.post(row, image_row, self._blobs, created=created)

    async def get_post(self, post_id: int) -> Post:
        async with self._db.read() as session:
            row = await get_row(session, PostRow, post_id, "post")
            image_row = await session.get_one(ImageRow, row.image_sha256)
            poster = (await poster_rows(session, [row])).get(row.poster_sha256 or "")
            return convert.post(row, image_row, self._blobs, poster_row=poster)

    async def find_post(
        self, platform: str, chat_id: str | int, message_id: str | int, attachment_index: int = 0
    ) -> Post | None:
        platform = check_platform(platform)
        chat = check_id(chat_id, "chat id")
        message = check_id(message_id, "message id")
        async with self._db.read() as session:
            found = (
                await session.execute(
                    select(PostRow, ImageRow)
                    .join(ImageRow, ImageRow.sha256 == PostRow.image_sha256)
                    .where(
                        PostRow.platform == platform,
                        PostRow.chat_id == chat,
                        PostRow.message_id == message,
                        PostRow.attachment_index == attachment_index,
                    )
                )
            ).first()
            if found is None:
                return None
            poster = (await poster_rows(session, [found[0]])).get(found[0].poster_sha256 or "")
            return convert.post(found[0], found[1], self._blobs, poster_row=poster)

    # ---------------------------------------------------------------- predictions, corrections

    async def record_prediction(
        self,
        post_id: int,
        *,
        model_version: str,
        label: str,
        confidence: float,
        probabilities: Mapping[str, float],
        latency_ms: float,
        ood_score: float | None = None,
        remembered: bool = False,
    ) -> PredictionRecord:
        values = PredictionValues(model_version, label, confidence, dict(probabilities),
                                  latency_ms, ood_score, remembered).checked()
        async with self._db.write() as session:
            await get_row(session, PostRow, post_id, "post")
            await require_labels(session, [values.label])
            row = PredictionRow(
                post_id=post_id,
                model_version=values.model_version,
                label=values.label,
                confidence=values.confidence,
                ood_score=values.ood_score,
                probabilities=values.probabilities,
                latency_ms=values.latency_ms,
                created_at=self._clock(),
                remembered=values.remembered,
            )
            session.add(row)
            await session.flush()
            return convert.prediction(row)

    async def record_correction(
        self, post_id: int, *, admin_id: str | int, label: str, approved: bool = False
    ) -> Correction:
        """The admin says this post's image is `label`; the latest decision wins. It trains
        when its chat is trusted or it is `approved` (an operator's own decision)."""
        admin = check_id(admin_id, "admin id")
        label = check_label(label)
        async with self._db.write() as session:
            post = await get_row(session, PostRow, post_id, "post")
            await require_labels(session, [label])
            previous = await queries.effective_label(session, post.image_sha256)
            if previous is None:
                previous = await queries.latest_prediction_label(session, post_id)
            row = CorrectionRow(
                post_id=post_id,
                prediction_id=None,
                admin_id=admin,
                kind=CorrectionKind.correction.value,
                previous_label=previous,
                new_label=label,
                created_at=self._clock(),
                review=_approved(approved),
            )
            return await _audited(session, row, post)

    async def confirm_prediction(self, prediction_id: int, *, admin_id: str | int,
                                 approved: bool = False) -> Correction:
        """The admin says the model was right: the prediction's label becomes a training label
        (under the same rule as `record_correction`)."""
        admin = check_id(admin_id, "admin id")
        async with self._db.write() as session:
            prediction = await get_row(session, PredictionRow, prediction_id, "prediction")
            post = await session.get_one(PostRow, prediction.post_id)
            previous = await queries.effective_label(session, post.image_sha256)
            row = CorrectionRow(
                post_id=prediction.post_id,
                prediction_id=prediction.id,
                admin_id=admin,
                kind=CorrectionKind.confirmation.value,
                previous_label=previous if previous is not None else prediction.label,
                new_label=prediction.label,
                created_at=self._clock(),
                review=_approved(approved),
            )
            return await _audited(session, row, post)

    async def corrections_for(self, post_id: int) -> list[Correction]:
        """The audit trail of one post, oldest first."""
        async with self._db.read() as session:
            rows = await session.scalars(
                select(CorrectionRow)
                .where(CorrectionRow.post_id == post_id)
                .order_by(CorrectionRow.id)
            )
            return [convert.correction(r) for r in rows]

    async def predictions_for(self, post_id: int) -> list[PredictionRecord]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(PredictionRow)
                .where(PredictionRow.post_id == post_id)
                .order_by(PredictionRow.id)
            )
            return [convert.prediction(r) for r in rows]

    async def current_labels(self, post_ids: Iterable[int]) -> dict[int, str]:
        """Each post's label as shown: the admins' latest decision on it, else the model's latest
        prediction (posts with neither are left out). Two queries for any number of posts."""
        ids = sorted(set(post_ids))
        if not ids:
            return {}
        predicted = select(queries.latest_predictions(ids).c.pid)
        decided = (select(func.max(CorrectionRow.id)).where(CorrectionRow.post_id.in_(ids))
                   .group_by(CorrectionRow.post_id))
        async with self._db.read() as session:
            labels: dict[int, str] = {}
            for post_id, label in await session.execute(
                    select(PredictionRow.post_id, PredictionRow.label)
                    .where(PredictionRow.id.in_(predicted))):
                labels[post_id] = label
            for post_id, label in await session.execute(  # a decision overrides the prediction
                    select(CorrectionRow.post_id, CorrectionRow.new_label)
                    .where(CorrectionRow.id.in_(decided))):
                labels[post_id] = label
            return labels

    async def effective_label(self, sha256: str) -> str | None:
        """The label an admin gave this image (latest decision), or None if never labelled."""
        sha256 = check_sha256(sha256)
        async with self._db.read() as session:
            return await queries.effective_label(session, sha256)

    # -------------------------------------------------------------------------------- labels

    async def add_label(self, name: str, *, added_by: str | int) -> Label:
        name = check_label(name)
        who = check_id(added_by, "added_by")
        async with self._db.write() as session:
            inserted = await session.scalar(
                self._db.insert_ignore(LabelRow)
                .values(name=name, added_by=who, added_at=self._clock())
                .returning(LabelRow.name)
            )
            if inserted is None:
                raise LabelExistsError(f"label {name!r} already exists")
            return convert.label(await session.get_one(LabelRow, name))

    async def list_labels(self) -> list[Label]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(LabelRow).order_by(LabelRow.added_at, LabelRow.name)
            )
            return [convert.label(r) for r in rows]

    # ------------------------------------------------------------------------ blob clean-up

    async def gc_orphan_blobs(self, min_age: timedelta = timedelta(hours=1)) -> GcReport:
        """Delete blob files without an image row (left by a crash between blob and row).

        `min_age` protects blobs whose row is still being committed by a running bot.
        """
        async with self._db.read() as session:
            referenced = set(await session.scalars(select(ImageRow.sha256)))
        removed, temps, freed, kept = await asyncio.to_thread(
            self._blobs.remove_orphans, referenced.__contains__, min_age.total_seconds()
        )
        return GcReport(
            removed_blobs=removed, removed_temp_files=temps, freed_bytes=freed, kept_blobs=kept
        )
