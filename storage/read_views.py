"""Read views (nothing here writes): the training set, the review list, statistics."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from storage import convert, queries
from storage.base import StorageBase, aware, poster_rows
from storage.errors import InvalidInputError
from storage.models import (
    Base,
    CorrectionRow,
    FingerprintRow,
    ImageRow,
    LabelRow,
    ModelVersionRow,
    PostRow,
    PredictionRow,
    RetrainJobRow,
)
from storage.records import (
    CorrectionKind,
    JobStatus,
    LabelledEmbedding,
    ModelStatus,
    ReviewItem,
    Stats,
    TrainingExample,
    TrainingSet,
)
from storage.validation import (
    check_id,
    check_label,
    check_platform,
    check_probability,
    check_version,
)


class ReadViewsAPI(StorageBase):
    # ------------------------------------------------------------------- training and review

    async def training_set(self) -> TrainingSet:
        """Every image an admin labelled (latest correction or confirmation wins) in a trusted
        chat or with an operator's approval; the model's own unconfirmed guesses and the
        corrections waiting for review are never included (`pending` counts the latter)."""
        decisions = queries.training_decisions()
        async with self._db.read() as session:
            labels = tuple(await session.scalars(select(LabelRow.name).order_by(LabelRow.name)))
            rows = await session.execute(
                select(ImageRow, CorrectionRow, PostRow)
                .join(decisions, decisions.c.sha256 == ImageRow.sha256)
                .join(CorrectionRow, CorrectionRow.id == decisions.c.cid)
                .join(PostRow, PostRow.id == CorrectionRow.post_id)
                .order_by(ImageRow.sha256)
            )
            examples = tuple(
                TrainingExample(
                    sha256=image.sha256,
                    path=self._blobs.path_for(image.sha256, image.extension),
                    label=decision.new_label,
                    source=CorrectionKind(decision.kind),
                    admin_id=decision.admin_id,
                    correction_id=decision.id,
                    platform=post.platform,
                    chat_id=post.chat_id,
                )
                for image, decision, post in rows
            )
            pending = await session.scalar(queries.pending_count()) or 0
        return TrainingSet(labels=labels, examples=examples, base_dataset_dir=self._dataset_dir,
                           pending=pending)

    async def labelled_embeddings(self, space: str, *, since: datetime | None = None
                                  ) -> list[LabelledEmbedding]:
        """Every image an admin labelled (its latest decision, a correction or a confirmation,
        made after `since` when given), with one of its posts' stored embeddings of this
        embedding space (images without one are left out). A confirmation counts as much as a
        correction: of a label the correction memory gave, it is as good as one; of the model's
        own label, it keeps close images from being pulled away by a nearby correction.

        Decisions that may train (the training gate: a trusted chat's, approved, an operator's)
        count in every chat (`chat` None); the others only in the chat they were made in (`chat`
        set), so one community's admins label their own memes, not every community's."""
        after = () if since is None else (CorrectionRow.created_at > aware(since, "since"),)
        decided_in, shown = aliased(PostRow), aliased(PostRow)  # the decision's post; any post
        found: dict[tuple[str, tuple[str, str] | None], LabelledEmbedding] = {}
        async with self._db.read() as session:
            for decisions, own_chat in ((queries.training_decisions(), False),
                                        (queries.chat_only_decisions(), True)):
                rows = await session.execute(
                    select(decisions.c.sha256, CorrectionRow.new_label, CorrectionRow.created_at,
                           FingerprintRow.embedding, FingerprintRow.text_embedding,
                           decided_in.platform, decided_in.chat_id)
                    .join(CorrectionRow, CorrectionRow.id == decisions.c.cid)
                    .join(decided_in, decided_in.id == CorrectionRow.post_id)
                    .join(shown, shown.image_sha256 == decisions.c.sha256)
                    .join(FingerprintRow, FingerprintRow.post_id == shown.id)
                    .where(FingerprintRow.embedding_space == space,
                           FingerprintRow.embedding.is_not(None), *after)
                    .order_by(decisions.c.sha256, shown.id)
                )
                for sha, label, at, blob, words, platform, chat_id in rows:
                    chat = (platform, chat_id) if own_chat else None
                    # an image posted twice: its first post's embedding
                    found.setdefault((sha, chat), LabelledEmbedding(sha, label, at, blob, words,
                                                                    chat))
        return list(found.values())

    async def recent_predictions(
        self,
        *,
        label: str | None = None,
        min_confidence: float | None = None,
        max_confidence: float | None = None,
        corrected: bool | None = None,
        platform: str | None = None,
        chat_id: str | int | None = None,
        model_version: str | None = None,
        latest_only: bool = True,
        low_confidence_first: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ReviewItem]:
        """Predictions for a review page, newest first (or least confident first)."""
        if label is not None:
            check_label(label)
        for bound, what in ((min_confidence, "min_confidence"), (max_confidence, "max_confidence")):
            if bound is not None:
                check_probability(bound, what)
        if not 1 <= limit <= 1_000 or offset < 0:
            raise InvalidInputError("limit must be 1-1000 and offset not negative")
        stmt = queries.review_query(
            label=label,
            min_confidence=min_confidence,
            max_confidence=max_confidence,
            corrected=corrected,
            platform=check_platform(platform) if platform is not None else None,
            chat_id=check_id(chat_id, "chat id") if chat_id is not None else None,
            model_version=check_version(model_version) if model_version is not None else None,
            latest_only=latest_only,
            low_confidence_first=low_confidence_first,
            limit=limit,
            offset=offset,
        )
        async with self._db.read() as session:
            rows = (await session.execute(stmt)).all()
            corrected_shas = set(
                await session.scalars(
                    queries.corrected_images().where(
                        PostRow.image_sha256.in_({r[1].image_sha256 for r in rows})
                    )
                )
            )
            posters = await poster_rows(session, [r[1] for r in rows])
            return [
                ReviewItem(
                    prediction=convert.prediction(pred),
                    post=convert.post(post, image, self._blobs,
                                      poster_row=posters.get(post.poster_sha256 or "")),
                    effective_label=decision.new_label if decision is not None else None,
                    corrected=post.image_sha256 in corrected_shas,
                )
                for pred, post, image, decision in rows
            ]

    async def stats(self, chat: tuple[str, str] | None = None) -> Stats:
        """Totals; with `chat` (platform, chat id), that chat's memes and decisions only (the
        model and the retrain jobs are shared by every chat)."""
        decisions = queries.latest_decisions()
        newest = queries.latest_predictions()
        in_chat = (PostRow.platform == chat[0], PostRow.chat_id == chat[1]) if chat else ()
        async with self._db.read() as session:
            memes = await session.scalar(
                select(func.count()).select_from(PostRow).where(*in_chat)) or 0
            # Distinct files posted (a clip's poster frame is an image row, not a meme).
            images = await session.scalar(
                select(func.count(func.distinct(PostRow.image_sha256))).where(*in_chat)) or 0
            predicted = await session.execute(
                select(PredictionRow.label, func.count())
                .join(newest, newest.c.pid == PredictionRow.id)
                .join(PostRow, PostRow.id == PredictionRow.post_id)
                .where(*in_chat)
                .group_by(PredictionRow.label)
            )
            labelled = await session.execute(
                select(CorrectionRow.new_label, func.count())
                .join(decisions, decisions.c.cid == CorrectionRow.id)
                .join(PostRow, PostRow.id == CorrectionRow.post_id)
                .where(*in_chat)
                .group_by(CorrectionRow.new_label)
            )
            kinds = _counts(
                await session.execute(
                    select(CorrectionRow.kind, func.count())
                    .join(PostRow, PostRow.id == CorrectionRow.post_id)
                    .where(*in_chat)
                    .group_by(CorrectionRow.kind)
                )
            )
            jobs = _counts(
                await session.execute(
                    select(RetrainJobRow.status, func.count()).group_by(RetrainJobRow.status)
                )
            )
            active = await session.scalar(
                select(ModelVersionRow.version).where(
                    ModelVersionRow.status == ModelStatus.active.value
                )
            )
            return Stats(
                memes_seen=memes,
                unique_images=images,
                predicted_per_label=_counts(predicted),
                labelled_per_label=_counts(labelled),
                corrections=kinds.get(CorrectionKind.correction.value, 0),
                confirmations=kinds.get(CorrectionKind.confirmation.value, 0),
                active_model=active,
                queued_jobs=jobs.get(JobStatus.queued.value, 0),
                running_jobs=jobs.get(JobStatus.running.value, 0),
            )

    async def table_counts(self) -> dict[str, int]:
        """Rows per table (diagnostics, and tests that check nothing changed)."""
        async with self._db.read() as session:
            return {
                table.name: await session.scalar(select(func.count()).select_from(table)) or 0
                for table in Base.metadata.sorted_tables
            }


def _counts(rows: Iterable[Any]) -> dict[str, int]:
    return {key: int(count) for key, count in sorted(rows, key=lambda row: row[0])}
