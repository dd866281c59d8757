"""ORM rows -> frozen records; the only place that knows both shapes."""

from __future__ import annotations

from storage.blobs import BlobStore
from storage.models import (
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
    ChatSettings,
    Correction,
    CorrectionKind,
    CorrectionReview,
    Image,
    JobStatus,
    Label,
    ModelStatus,
    ModelVersion,
    Post,
    PredictionRecord,
    RetrainJob,
)


def image(row: ImageRow, blobs: BlobStore) -> Image:
    return Image(
        sha256=row.sha256,
        format=row.format,
        extension=row.extension,
        width=row.width,
        height=row.height,
        byte_size=row.byte_size,
        first_seen=row.first_seen,
        path=blobs.path_for(row.sha256, row.extension),
    )


def post(row: PostRow, image_row: ImageRow, blobs: BlobStore, created: bool = False,
         poster_row: ImageRow | None = None) -> Post:
    """`poster_row`: the clip's poster image row (loaded by the caller, with its post)."""
    return Post(
        id=row.id,
        platform=row.platform,
        chat_id=row.chat_id,
        message_id=row.message_id,
        attachment_index=row.attachment_index,
        author_id=row.author_id,
        posted_at=row.posted_at,
        image=image(image_row, blobs),
        created=created,
        caption=row.caption,
        media_kind=row.media_kind or "still",
        duration_s=row.duration_s,
        frames_used=row.frames_used,
        poster=image(poster_row, blobs) if poster_row is not None else None,
        deleted_at=row.deleted_at,
    )


def prediction(row: PredictionRow) -> PredictionRecord:
    return PredictionRecord(
        id=row.id,
        post_id=row.post_id,
        model_version=row.model_version,
        label=row.label,
        confidence=row.confidence,
        ood_score=row.ood_score,
        probabilities=dict(row.probabilities),
        latency_ms=row.latency_ms,
        created_at=row.created_at,
        remembered=row.remembered,
    )


def correction(row: CorrectionRow) -> Correction:
    return Correction(
        id=row.id,
        post_id=row.post_id,
        prediction_id=row.prediction_id,
        admin_id=row.admin_id,
        kind=CorrectionKind(row.kind),
        previous_label=row.previous_label,
        new_label=row.new_label,
        created_at=row.created_at,
        review=CorrectionReview(row.review) if row.review else None,
        trained_job_id=row.trained_job_id,
    )


def label(row: LabelRow) -> Label:
    return Label(name=row.name, added_by=row.added_by, added_at=row.added_at)


def model_version(row: ModelVersionRow) -> ModelVersion:
    return ModelVersion(
        version=row.version,
        path=row.path,
        sha256=row.sha256,
        metadata=dict(row.metadata_),
        status=ModelStatus(row.status),
        created_at=row.created_at,
        promoted_at=row.promoted_at,
    )


def job(row: RetrainJobRow) -> RetrainJob:
    return RetrainJob(
        id=row.id,
        kind=row.kind,
        requested_by=row.requested_by,
        status=JobStatus(row.status),
        worker=row.worker,
        created_at=row.created_at,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
        log_tail=row.log_tail,
        error=row.error,
        model_version=row.model_version,
    )


def chat_settings(row: ChatSettingsRow) -> ChatSettings:
    return ChatSettings(
        platform=row.platform,
        chat_id=row.chat_id,
        enabled=row.enabled,
        admin_ids=tuple(row.admin_ids),
        reply_mode=row.reply_mode,
        confidence_threshold=row.confidence_threshold,
        updated_at=row.updated_at,
        repost_mode=row.repost_mode,
        repost_window_days=row.repost_window_days,
        sort_places=dict(row.sort_places or {}),
        on_topic_labels=tuple(row.on_topic_labels) if row.on_topic_labels is not None else None,
        offtopic_action=row.offtopic_action,
        reaction_corrections=row.reaction_corrections,
    )
