"""`Storage`: the typed API the bot and the trainer use. No sessions or ORM objects leak out.

Every method validates its input before it opens a transaction, and every write runs in one
transaction, so a raised `StorageError` always leaves the database as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from storage import convert, migrate, queries, transfer
from storage.blobs import BlobStore, inspect_image
from storage.db import Database
from storage.errors import (
    ConflictError,
    InvalidInputError,
    LabelExistsError,
    NotFoundError,
    StateError,
    UnknownLabelError,
)
from storage.models import (
    Base,
    ChatSettingsRow,
    CorrectionRow,
    ImageRow,
    LabelRow,
    ModelVersionRow,
    PostRow,
    PredictionRow,
    RetrainJobRow,
)
from storage.records import (
    REPLY_MODES,
    ChatSettings,
    Correction,
    CorrectionKind,
    EnqueuedJob,
    ExportReport,
    GcReport,
    ImportReport,
    JobStatus,
    Label,
    ModelStatus,
    ModelVersion,
    Post,
    Prediction,
    RetrainJob,
    ReviewItem,
    Stats,
    TrainingExample,
    TrainingSet,
)
from storage.validation import (
    check_finite,
    check_id,
    check_label,
    check_platform,
    check_probability,
    check_sha256,
    check_short_text,
    check_version,
)

Clock = Callable[[], datetime]
LOG_TAIL_CHARS = 8_000  # enough to show why a training run failed, small enough for a row
IMPORT_PLATFORM = "import"  # posts created by `import_labelled` have no real chat
_UNSET: Final = object()  # "leave unchanged", where None is a meaningful value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Storage:
    """Posts, predictions, corrections, labels, model versions, retrain jobs, chat settings."""

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
        **engine_kwargs: Any,
    ) -> Storage:
        """Connect, and (by default) upgrade the schema to the newest revision."""
        db = Database.connect(url, schema=schema, **engine_kwargs)
        try:
            if upgrade:
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
    ) -> Post:
        """Store the image blob and its post; a redelivered update returns the existing post.

        Order matters for crash safety: the blob is durable before its row commits.
        """
        platform = check_platform(platform)
        chat = check_id(chat_id, "chat id")
        message = check_id(message_id, "message id")
        author = check_id(author_id, "author id")
        if isinstance(attachment_index, bool) or not isinstance(attachment_index, int):
            raise InvalidInputError("attachment index must be an integer")
        if not 0 <= attachment_index < 1_000:
            raise InvalidInputError(f"attachment index {attachment_index} is out of range")
        posted = _aware(posted_at, "posted_at") if posted_at else self._clock()
        info = await asyncio.to_thread(inspect_image, image)
        await asyncio.to_thread(self._blobs.put, image, info)

        async with self._db.write() as session:
            now = self._clock()
            await session.execute(
                self._db.insert_ignore(ImageRow).values(
                    sha256=info.sha256,
                    format=info.format,
                    extension=info.extension,
                    width=info.width,
                    height=info.height,
                    byte_size=info.byte_size,
                    first_seen=now,
                )
            )
            inserted = await session.scalar(
                self._db.insert_ignore(PostRow)
                .values(
                    platform=platform,
                    chat_id=chat,
                    message_id=message,
                    attachment_index=attachment_index,
                    author_id=author,
                    posted_at=posted,
                    image_sha256=info.sha256,
                    created_at=now,
                )
                .returning(PostRow.id)
            )
            row = await session.scalar(
                select(PostRow).where(
                    PostRow.platform == platform,
                    PostRow.chat_id == chat,
                    PostRow.message_id == message,
                    PostRow.attachment_index == attachment_index,
                )
            )
            assert row is not None  # inserted above or by the earlier delivery
            image_row = await session.get_one(ImageRow, row.image_sha256)
            return convert.post(row, image_row, self._blobs, created=inserted is not None)

    async def get_post(self, post_id: int) -> Post:
        async with self._db.read() as session:
            row = await _get(session, PostRow, post_id, "post")
            image_row = await session.get_one(ImageRow, row.image_sha256)
            return convert.post(row, image_row, self._blobs)

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
            return convert.post(found[0], found[1], self._blobs) if found else None

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
    ) -> Prediction:
        version = check_version(model_version)
        label = check_label(label)
        conf = check_probability(confidence, "confidence")
        probs = {check_label(k): check_probability(v, f"probability of {k}") for k, v in
                 dict(probabilities).items()}
        latency = check_finite(latency_ms, "latency_ms")
        ood = None if ood_score is None else check_finite(ood_score, "ood_score")
        async with self._db.write() as session:
            await _get(session, PostRow, post_id, "post")
            await _require_labels(session, [label])
            row = PredictionRow(
                post_id=post_id,
                model_version=version,
                label=label,
                confidence=conf,
                ood_score=ood,
                probabilities=probs,
                latency_ms=latency,
                created_at=self._clock(),
            )
            session.add(row)
            await session.flush()
            return convert.prediction(row)

    async def record_correction(self, post_id: int, *, admin_id: str | int, label: str) -> Correction:
        """The admin says this post's image is `label`; the latest decision wins."""
        admin = check_id(admin_id, "admin id")
        label = check_label(label)
        async with self._db.write() as session:
            post = await _get(session, PostRow, post_id, "post")
            await _require_labels(session, [label])
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
            )
            session.add(row)
            await session.flush()
            return convert.correction(row)

    async def confirm_prediction(self, prediction_id: int, *, admin_id: str | int) -> Correction:
        """The admin says the model was right: the prediction's label becomes a training label."""
        admin = check_id(admin_id, "admin id")
        async with self._db.write() as session:
            prediction = await _get(session, PredictionRow, prediction_id, "prediction")
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
            )
            session.add(row)
            await session.flush()
            return convert.correction(row)

    async def corrections_for(self, post_id: int) -> list[Correction]:
        """The audit trail of one post, oldest first."""
        async with self._db.read() as session:
            rows = await session.scalars(
                select(CorrectionRow).where(CorrectionRow.post_id == post_id).order_by(CorrectionRow.id)
            )
            return [convert.correction(r) for r in rows]

    async def predictions_for(self, post_id: int) -> list[Prediction]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(PredictionRow).where(PredictionRow.post_id == post_id).order_by(PredictionRow.id)
            )
            return [convert.prediction(r) for r in rows]

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
            rows = await session.scalars(select(LabelRow).order_by(LabelRow.added_at, LabelRow.name))
            return [convert.label(r) for r in rows]

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

    async def claim_next_job(self, worker: str, kinds: Iterable[str] | None = None) -> RetrainJob | None:
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
            await session.flush()
            return convert.job(row)

    async def fail_stale_jobs(self, older_than: timedelta = timedelta(minutes=10)) -> list[RetrainJob]:
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
                        func.coalesce(RetrainJobRow.heartbeat_at, RetrainJobRow.started_at) <= cutoff,
                    )
                    .order_by(RetrainJobRow.id)
                    .with_for_update(skip_locked=True)
                )
            )
            now = self._clock()
            for row in rows:
                row.status = JobStatus.failed.value
                row.finished_at = now
                row.error = f"no heartbeat from {row.worker or 'the trainer'} since {row.heartbeat_at}"
            await session.flush()
            return [convert.job(r) for r in rows]

    async def get_job(self, job_id: int) -> RetrainJob:
        async with self._db.read() as session:
            return convert.job(await _get(session, RetrainJobRow, job_id, "retrain job"))

    async def list_jobs(self, limit: int = 20) -> list[RetrainJob]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(RetrainJobRow).order_by(RetrainJobRow.id.desc()).limit(limit)
            )
            return [convert.job(r) for r in rows]

    # --------------------------------------------------------------------------- chat settings

    async def chat_settings(self, platform: str, chat_id: str | int) -> ChatSettings:
        """This chat's settings, or the defaults (nothing is written for a chat never changed)."""
        platform = check_platform(platform)
        chat = check_id(chat_id, "chat id")
        async with self._db.read() as session:
            row = await session.get(ChatSettingsRow, (platform, chat))
            return convert.chat_settings(row) if row else ChatSettings(platform, chat)

    async def update_chat_settings(
        self,
        platform: str,
        chat_id: str | int,
        *,
        enabled: bool | None = None,
        admin_ids: Iterable[str | int] | None = None,
        reply_mode: str | None | object = _UNSET,
        confidence_threshold: float | None | object = _UNSET,
    ) -> ChatSettings:
        """Change the given fields; `reply_mode`/`confidence_threshold` None means inherit."""
        platform = check_platform(platform)
        chat = check_id(chat_id, "chat id")
        admins = None
        if admin_ids is not None:
            if isinstance(admin_ids, (str, bytes)):
                raise InvalidInputError("admin_ids must be a list of ids, not one string")
            admins = sorted({check_id(a, "admin id") for a in admin_ids})
        if reply_mode is not _UNSET and reply_mode is not None and reply_mode not in REPLY_MODES:
            raise InvalidInputError(f"reply mode must be one of {', '.join(REPLY_MODES)}")
        if confidence_threshold is not _UNSET and confidence_threshold is not None:
            confidence_threshold = check_probability(confidence_threshold, "confidence threshold")
        if enabled is not None and not isinstance(enabled, bool):
            raise InvalidInputError("enabled must be true or false")
        async with self._db.write() as session:
            defaults = ChatSettings(platform, chat)
            await session.execute(
                self._db.insert_ignore(ChatSettingsRow).values(
                    platform=platform,
                    chat_id=chat,
                    enabled=defaults.enabled,
                    admin_ids=list(defaults.admin_ids),
                    reply_mode=defaults.reply_mode,
                    confidence_threshold=defaults.confidence_threshold,
                    updated_at=self._clock(),
                )
            )
            row = await session.scalar(
                select(ChatSettingsRow)
                .where(ChatSettingsRow.platform == platform, ChatSettingsRow.chat_id == chat)
                .with_for_update()
            )
            assert row is not None
            if enabled is not None:
                row.enabled = enabled
            if admins is not None:
                row.admin_ids = admins
            if reply_mode is not _UNSET:
                row.reply_mode = reply_mode  # type: ignore[assignment]
            if confidence_threshold is not _UNSET:
                row.confidence_threshold = confidence_threshold  # type: ignore[assignment]
            row.updated_at = self._clock()
            await session.flush()
            return convert.chat_settings(row)

    # ------------------------------------------------------------------- training and review

    async def training_set(self) -> TrainingSet:
        """Every image an admin labelled (latest correction or confirmation wins); the model's
        own unconfirmed guesses are never included."""
        decisions = queries.latest_decisions()
        async with self._db.read() as session:
            labels = tuple(await session.scalars(select(LabelRow.name).order_by(LabelRow.name)))
            rows = await session.execute(
                select(ImageRow, CorrectionRow)
                .join(decisions, decisions.c.sha256 == ImageRow.sha256)
                .join(CorrectionRow, CorrectionRow.id == decisions.c.cid)
                .order_by(ImageRow.sha256)
            )
            examples = tuple(
                TrainingExample(
                    sha256=image.sha256,
                    path=self._blobs.path_for(image.sha256, image.extension),
                    label=decision.new_label,
                    source=CorrectionKind(decision.kind),
                    admin_id=decision.admin_id,
                )
                for image, decision in rows
            )
        return TrainingSet(labels=labels, examples=examples, base_dataset_dir=self._dataset_dir)

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
            return [
                ReviewItem(
                    prediction=convert.prediction(pred),
                    post=convert.post(post, image, self._blobs),
                    effective_label=decision.new_label if decision is not None else None,
                    corrected=post.image_sha256 in corrected_shas,
                )
                for pred, post, image, decision in rows
            ]

    async def stats(self) -> Stats:
        decisions = queries.latest_decisions()
        newest = queries.latest_predictions()
        async with self._db.read() as session:
            memes = await session.scalar(select(func.count()).select_from(PostRow)) or 0
            images = await session.scalar(select(func.count()).select_from(ImageRow)) or 0
            predicted = await session.execute(
                select(PredictionRow.label, func.count())
                .join(newest, newest.c.pid == PredictionRow.id)
                .group_by(PredictionRow.label)
            )
            labelled = await session.execute(
                select(CorrectionRow.new_label, func.count())
                .join(decisions, decisions.c.cid == CorrectionRow.id)
                .group_by(CorrectionRow.new_label)
            )
            kinds = _counts(
                await session.execute(
                    select(CorrectionRow.kind, func.count()).group_by(CorrectionRow.kind)
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

    # ------------------------------------------------------------------ export, import, gc

    async def export_labelled(self, folder: Path) -> ExportReport:
        """Write the labelled set as an ImageFolder tree: `<folder>/<label>/<sha256>.<ext>`."""
        training = await self.training_set()
        return await asyncio.to_thread(transfer.write_tree, training.examples, Path(folder))

    async def import_labelled(
        self, folder: Path, *, admin_id: str | int = "import", create_labels: bool = True
    ) -> ImportReport:
        """Label every image of an ImageFolder tree, as a correction by `admin_id`.

        The whole tree is read and checked first, so a corrupt file or a bad folder name
        raises before anything is written.
        """
        admin = check_id(admin_id, "admin id")
        folder = Path(folder)
        items = await asyncio.to_thread(transfer.read_tree, folder)
        wanted = sorted({item.label for item in items})
        known = {label.name for label in await self.list_labels()}
        missing = [name for name in wanted if name not in known]
        if missing and not create_labels:
            raise UnknownLabelError(f"unknown labels in {folder}: {', '.join(missing)}")
        for name in missing:
            try:
                await self.add_label(name, added_by=admin)
            except LabelExistsError:  # another process added it meanwhile
                pass
        relabelled = unchanged = 0
        for item in items:
            data = await asyncio.to_thread(item.path.read_bytes)
            post = await self.add_post(
                platform=IMPORT_PLATFORM,
                chat_id=IMPORT_PLATFORM,
                message_id=item.sha256,
                author_id=admin,
                image=data,
            )
            if await self.effective_label(post.image.sha256) == item.label:
                unchanged += 1
                continue
            await self.record_correction(post.id, admin_id=admin, label=item.label)
            relabelled += 1
        return ImportReport(
            folder=folder,
            images=len(items),
            relabelled=relabelled,
            unchanged=unchanged,
            labels_added=tuple(missing),
        )

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


# ---------------------------------------------------------------------------------- helpers


def _counts(rows: Iterable[Any]) -> dict[str, int]:
    return {key: int(count) for key, count in sorted(rows, key=lambda row: row[0])}


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInputError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


async def _get(session: Any, model: type[Any], key: object, what: str) -> Any:
    if isinstance(key, bool) or not isinstance(key, int) or not 0 < key < 2**63:
        raise InvalidInputError(f"{what} id must be a positive integer, got {key!r}")
    row = await session.get(model, key)
    if row is None:
        raise NotFoundError(f"{what} {key} does not exist")
    return row


async def _require_labels(session: Any, names: Iterable[str]) -> None:
    names = set(names)
    found = set(await session.scalars(select(LabelRow.name).where(LabelRow.name.in_(names))))
    if unknown := sorted(names - found):
        raise UnknownLabelError(
            f"unknown label {', '.join(map(repr, unknown))}: an admin must add it first"
        )


async def _model_row(session: Any, version: str) -> ModelVersionRow:
    row = await session.scalar(select(ModelVersionRow).where(ModelVersionRow.version == version))
    if row is None:
        raise NotFoundError(f"model version {version!r} is not registered")
    return row


async def _running_job(session: Any, job_id: int) -> RetrainJobRow:
    await _get(session, RetrainJobRow, job_id, "retrain job")
    # Lock the row: a trainer finishing races `fail_stale_jobs` from the bot on PostgreSQL.
    row = await session.scalar(
        select(RetrainJobRow)
        .where(RetrainJobRow.id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row.status != JobStatus.running.value:
        raise StateError(f"retrain job {job_id} is {row.status}, not running")
    return row


__all__ = ["Storage", "utcnow"]
