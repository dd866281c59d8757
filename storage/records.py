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


class CorrectionReview(StrEnum):
    approved = "approved"  # trains, whichever chat it came from
    rejected = "rejected"  # never trains, even once its chat is trusted


class TrustLevel(StrEnum):
    untrusted = "untrusted"  # corrections wait for an operator's review before they train
    trusted = "trusted"  # corrections train
    delegated = "delegated"  # + its admins may retrain, roll back and change labels


class CorrectionKind(StrEnum):
    correction = "correction"  # the admin changed the label
    confirmation = "confirmation"  # the admin said the model's label is right


REPLY_MODES = ("every", "confident", "silent", "react")  # mirrors config.settings.ReplyMode
REPOST_MODES = ("off", "note", "delete")  # mirrors config.settings.RepostMode
OFFTOPIC_ACTIONS = ("off", "note", "hold", "delete")
MEDIA_KINDS = ("still", "animation", "video", "sticker")  # mirrors inference.clips.MediaKind


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
    media_kind: str = "still"  # one of MEDIA_KINDS
    duration_s: float | None = None  # a clip's length
    frames_used: int | None = None  # the frames of a clip its label was read from
    poster: Image | None = None  # a clip's poster frame (an image blob)

    @property
    def picture(self) -> Image:
        """What to show for the post: the image itself, or a clip's poster frame."""
        return self.poster or self.image
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
    remembered: bool = False  # the label came from the correction memory


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
    review: CorrectionReview | None = None  # an operator's word; None: not reviewed
    trained_job_id: int | None = None  # the retrain that used it (then it cannot be undone)


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
    enabled: bool | None = None  # None: inherit (a Discord channel from its server), else on
    admin_ids: tuple[str, ...] = ()
    reply_mode: str | None = None  # None: use the process-wide setting
    confidence_threshold: float | None = None  # None: use the process-wide setting
    updated_at: datetime | None = None  # None: never changed, these are the defaults
    repost_mode: str | None = None  # None: use the process-wide setting
    repost_window_days: int | None = None  # None: use the process-wide setting
    sort_places: dict[str, str] = field(default_factory=dict)  # label -> place
    on_topic_labels: tuple[str, ...] | None = None  # None: inherit, else every label
    offtopic_action: str | None = None  # None: inherit, else "off"
    reaction_corrections: bool | None = None  # None: inherit, else on


class HoldState(StrEnum):
    held = "held"  # removed from its chat, waiting for the admins
    allowed = "allowed"  # an admin allowed it: re-posted with credit
    kept = "kept"  # an admin kept it removed


@dataclass(frozen=True)
class HeldPost:
    post_id: int
    state: HoldState
    author_name: str
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True)
class ChatMove:
    """What `move_chat` moved from a chat's old id to its new one (all zero: done before)."""

    settings: bool
    posts: int
    fingerprints: int
    left_behind: int  # posts whose message id the new chat already has
    trust: bool = False  # the chat's trust (or delegation) moved too


@dataclass(frozen=True)
class Fingerprint:
    """What repost detection compares: 64-bit perceptual and difference hashes (unsigned) and
    the projected float16 embedding with the space it belongs to."""

    phash: int
    dhash: int
    embedding: bytes | None = None
    embedding_space: str | None = None
    thumbnail: bytes | None = None  # small grey picture (same-template check)
    text_embedding: bytes | None = None  # the words' sentence vector, float16 (or none)


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
    correction_id: int = 0  # the decision it comes from (0: not from a stored decision)
    platform: str = ""  # the chat the decision was taken in
    chat_id: str = ""

    @property
    def chat(self) -> str:
        return f"{self.platform}:{self.chat_id}"


@dataclass(frozen=True)
class LabelledEmbedding:
    """An image an admin labelled (its latest decision, a correction or a confirmation), with
    the classifier embedding stored for repost detection (the correction memory,
    inference/correction_memory.py)."""

    sha256: str
    label: str
    decided_at: datetime
    embedding: bytes
    text_embedding: bytes | None = None  # the words' vector, when the post had enough words
    # (platform, chat id): the decision counts in that chat only (it may not train); None: in
    # every chat
    chat: tuple[str, str] | None = None


@dataclass(frozen=True)
class TrainingSet:
    labels: tuple[str, ...]
    examples: tuple[TrainingExample, ...]
    base_dataset_dir: Path | None  # the original class-folder dataset, trained on together
    pending: int = 0  # corrections from chats not trusted, waiting for an operator's review

    def per_chat(self) -> dict[str, int]:
        """How many examples each chat's admins decided ("platform:chat_id" -> count)."""
        counts: dict[str, int] = {}
        for example in self.examples:
            counts[example.chat] = counts.get(example.chat, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


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


@dataclass(frozen=True)
class ChatTrust:
    platform: str
    chat_id: str
    level: TrustLevel
    granted_by: str | None  # None for a chat never trusted
    updated_at: datetime | None


class AuditAction(StrEnum):
    """The actions this code records; `record_audit` takes any short lowercase name, so an
    adapter may add its own (settings, hold, delete, ...)."""

    correction = "correction"
    confirmation = "confirmation"
    undo = "undo"
    approve = "approve"
    reject = "reject"
    trust = "trust"
    retrain = "retrain"
    rollback = "rollback"
    add_label = "add_label"
    settings = "settings"
    hold = "hold"  # an off-topic meme removed and held for the admins
    delete = "delete"  # an off-topic meme deleted
    allow = "allow"  # a held meme re-posted by an admin
    keep = "keep"  # a held meme kept removed
    move_chat = "move_chat"  # a chat's new id (a Telegram supergroup): its data followed


@dataclass(frozen=True)
class AuditEntry:
    id: int
    created_at: datetime
    actor_id: str  # platform:user_id (console:admin for the console's operator)
    action: str
    platform: str | None
    chat_id: str | None
    post_id: int | None
    from_value: str | None
    to_value: str | None
    detail: str | None


@dataclass(frozen=True)
class PendingHold:
    """An off-topic meme held for the admins, not decided yet."""

    hold: HeldPost
    post: Post


@dataclass(frozen=True)
class PendingCorrection:
    """A correction from a chat that is not trusted, waiting for an operator's review."""

    correction: Correction
    post: Post
