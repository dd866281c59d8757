"""What the storage API returns: frozen dataclasses, never ORM objects, so callers cannot
accidentally lazy-load or mutate rows outside a transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path


class ModelStatus(StrEnum):
    candidate = "candidate"
    active = "active"
    retired = "retired"
    failed = "failed"


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class CorrectionKind(StrEnum):
    correction = "correction"  # the admin changed the label
    confirmation = "confirmation"  # the admin said the model's label is right


REPLY_MODES = ("every", "confident", "silent")  # mirrors config.settings.ReplyMode
REPOST_MODES = ("off", "note", "delete")  # mirrors config.settings.RepostMode


@dataclass(frozen=True)
class Image:
    sha256: str
    format: str  # Pillow format name, e.g. "PNG"
    extension: str  # file extension in the blob store, e.g. "png"
    width: int
    height: int
    byte_size: int
    first_seen: datetime
    path: Path


@dataclass(frozen=True)
class Post:
    id: int
    platform: str
    chat_id: str
    message_id: str
    attachment_index: int
    author_id: str
    posted_at: datetime
    image: Image
    created: bool  # False when this call found an existing post (a redelivered update)
    caption: str | None = None  # the words posted with the image
    deleted_at: datetime | None = None  # deleted on its platform (issue 23)


@dataclass(frozen=True)
class PredictionRecord:
    id: int
    post_id: int
    model_version: str
    label: str
    confidence: float
    ood_score: float | None
    probabilities: dict[str, float]
    latency_ms: float
    created_at: datetime


@dataclass(frozen=True)
class Correction:
    id: int
    post_id: int
    prediction_id: int | None
    admin_id: str
    kind: CorrectionKind
    previous_label: str | None
    new_label: str
    created_at: datetime


@dataclass(frozen=True)
class Label:
    name: str
    added_by: str
    added_at: datetime


@dataclass(frozen=True)
class ModelVersion:
    version: str
    path: str
    sha256: str
    metadata: dict[str, object]
    status: ModelStatus
    created_at: datetime
    promoted_at: datetime | None


@dataclass(frozen=True)
class RetrainJob:
    id: int
    kind: str
    requested_by: str
    status: JobStatus
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    log_tail: str
    error: str | None
    model_version: str | None


@dataclass(frozen=True)
class EnqueuedJob:
    job: RetrainJob
    created: bool  # False when the request joined a job already queued or running


@dataclass(frozen=True)
class ChatSettings:
    platform: str
    chat_id: str
    enabled: bool = True
    admin_ids: tuple[str, ...] = ()
    reply_mode: str | None = None  # None: use the process-wide setting
    confidence_threshold: float | None = None  # None: use the process-wide setting
    updated_at: datetime | None = None  # None: never changed, these are the defaults
    repost_mode: str | None = None  # None: use the process-wide setting
    repost_window_days: int | None = None  # None: use the process-wide setting
    sort_places: dict[str, str] = field(default_factory=dict)  # label -> place


@dataclass(frozen=True)
class Fingerprint:
    """What repost detection compares: 64-bit perceptual and difference hashes (unsigned) and
    the projected float16 embedding with the space it belongs to."""

    phash: int
    dhash: int
    embedding: bytes | None = None
    embedding_space: str | None = None
    thumbnail: bytes | None = None  # small grey picture (same-template check)


@dataclass(frozen=True)
class StoredFingerprint:
    post_id: int
    platform: str
    chat_id: str
    message_id: str
    posted_at: datetime
    author_name: str
    phash: int
    dhash: int
    thumbnail: bytes | None = None


class RepostMarkKind(StrEnum):
    not_repost = "not_repost"  # an admin said this post is not a copy of the original
    exempt = "exempt"  # copies of this image are never flagged


@dataclass(frozen=True)
class RepostMark:
    id: int
    post_id: int
    original_post_id: int | None
    kind: RepostMarkKind
    admin_id: str
    created_at: datetime


@dataclass(frozen=True)
class Forward:
    """The one copy of a post in its sorted place; `copy_id` is None while it is being sent."""

    post_id: int
    label: str
    place: str
    copy_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TrainingExample:
    sha256: str
    path: Path
    label: str
    source: CorrectionKind  # how the label was decided
    admin_id: str


@dataclass(frozen=True)
class TrainingSet:
    labels: tuple[str, ...]
    examples: tuple[TrainingExample, ...]
    base_dataset_dir: Path | None  # the original class-folder dataset, trained on together


@dataclass(frozen=True)
class Stats:
    memes_seen: int  # posts
    unique_images: int
    predicted_per_label: dict[str, int]  # latest prediction of each post
    labelled_per_label: dict[str, int]  # effective admin label of each image
    corrections: int
    confirmations: int
    active_model: str | None
    queued_jobs: int
    running_jobs: int


@dataclass(frozen=True)
class ReviewItem:
    prediction: PredictionRecord
    post: Post
    effective_label: str | None  # latest admin correction or confirmation, if any
    corrected: bool  # an admin changed the label of this post at least once


@dataclass(frozen=True)
class GcReport:
    removed_blobs: int
    removed_temp_files: int
    freed_bytes: int
    kept_blobs: int


@dataclass(frozen=True)
class ExportReport:
    folder: Path
    written: int
    unchanged: int
    per_label: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportReport:
    folder: Path
    images: int
    relabelled: int  # images whose effective label changed
    unchanged: int
    labels_added: tuple[str, ...] = ()
