"""The ORM schema (SQLAlchemy 2 typed declarative). Changing it needs an Alembic revision in
storage/migrations/versions; a test compares the migrated schema with these models."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

ID = 64  # max length of platform ids (see storage.validation.MAX_ID_LENGTH)

# Deterministic constraint names so migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to storage; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ImageRow(Base):
    __tablename__ = "images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String(16))
    extension: Mapped[str] = mapped_column(String(8))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class PostRow(Base):
    __tablename__ = "posts"
    __table_args__ = (
        # A redelivered update hits this constraint and becomes a no-op.
        UniqueConstraint(
            "platform", "chat_id", "message_id", "attachment_index", name="uq_posts_delivery"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(ID))
    message_id: Mapped[str] = mapped_column(String(ID))
    attachment_index: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[str] = mapped_column(String(ID))
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    image_sha256: Mapped[str] = mapped_column(ForeignKey("images.sha256"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The words posted with the image (Telegram caption, Discord message text, console title).
    caption: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    # What the file is (storage.records.MEDIA_KINDS); a clip's length, the frames its label was
    # read from, and its poster frame (an image blob shown for it).
    media_kind: Mapped[str] = mapped_column(String(16), default="still",
                                            server_default="still")
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    frames_used: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    poster_sha256: Mapped[str | None] = mapped_column(
        ForeignKey("images.sha256"), nullable=True, default=None
    )
    # Deleted on its platform (issue 23): never named as an original again.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, default=None)


class LabelRow(Base):
    __tablename__ = "labels"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    added_by: Mapped[str] = mapped_column(String(ID))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PredictionRow(Base):
    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    # Not a foreign key: the bot may run a model file that was never registered here.
    model_version: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(ForeignKey("labels.name"), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    ood_score: Mapped[float | None] = mapped_column(Float)
    probabilities: Mapped[dict[str, float]] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The label came from the correction memory, not from the model: its confidence is the
    # likeness to an admin-labelled image, and it is shown as such wherever it is shown again.
    remembered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CorrectionRow(Base):
    """Audit trail of admin decisions; the row with the highest id per image is the label."""

    __tablename__ = "corrections"
    __table_args__ = (
        CheckConstraint("kind IN ('correction', 'confirmation')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    prediction_id: Mapped[int | None] = mapped_column(
        ForeignKey("predictions.id", ondelete="SET NULL")
    )
    admin_id: Mapped[str] = mapped_column(String(ID))
    kind: Mapped[str] = mapped_column(String(16))
    previous_label: Mapped[str | None] = mapped_column(String(32))
    new_label: Mapped[str] = mapped_column(ForeignKey("labels.name"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # An operator's word on a correction from a chat that is not trusted: "approved" lets it
    # train, "rejected" keeps it out even once the chat is trusted; None: not reviewed.
    review: Mapped[str | None] = mapped_column(String(16))
    reviewed_by: Mapped[str | None] = mapped_column(String(ID))
    # The retrain job that read it: from then on it cannot be undone.
    trained_job_id: Mapped[int | None] = mapped_column(Integer)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('candidate', 'active', 'retired', 'failed')", name="status"
        ),
        # At most one active version, enforced by the database on both backends.
        Index(
            "uq_model_versions_one_active",
            "status",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    metadata_: Mapped[dict[str, object]] = mapped_column("metadata", JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RetrainJobRow(Base):
    __tablename__ = "retrain_jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')", name="status"
        ),
        # One open job per kind: a second request joins it (backstop for concurrent bots).
        Index(
            "uq_retrain_jobs_one_open",
            "kind",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_retrain_jobs_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(String(ID))
    status: Mapped[str] = mapped_column(String(16))
    worker: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    log_tail: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(64))


class ChatSettingsRow(Base):
    __tablename__ = "chat_settings"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    enabled: Mapped[bool | None] = mapped_column(Boolean)  # None: inherit (on by default)
    admin_ids: Mapped[list[str]] = mapped_column(JSON)
    reply_mode: Mapped[str | None] = mapped_column(String(16))
    confidence_threshold: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Reposts: "off" / "note" / "delete" (None: the process-wide setting) and how far back a
    # post counts as the original (None: the process-wide window).
    repost_mode: Mapped[str | None] = mapped_column(String(16))
    repost_window_days: Mapped[int | None] = mapped_column(Integer)
    # Sorting: label -> place (a Telegram topic, a Discord channel, a console tab).
    sort_places: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # The chat's own rules (None: inherit from the server, then the process-wide default).
    on_topic_labels: Mapped[list[str] | None] = mapped_column(JSON)  # None: every label
    offtopic_action: Mapped[str | None] = mapped_column(String(16))
    reaction_corrections: Mapped[bool | None] = mapped_column(Boolean)


class FingerprintRow(Base):
    """What repost detection compares, one row per post (a clip: per kept frame), denormalized
    by chat so that one chat's history is searched through its own index entries.

    `band0..band3` are the four 16-bit quarters of the perceptual hash: two hashes within
    Hamming distance 3 share at least one quarter (pigeonhole), so four indexed equality
    lookups find every near-duplicate without scanning the chat (multi-index hashing).
    """

    __tablename__ = "post_fingerprints"
    __table_args__ = (
        Index("ix_post_fingerprints_band0", "platform", "chat_id", "band0"),
        Index("ix_post_fingerprints_band1", "platform", "chat_id", "band1"),
        Index("ix_post_fingerprints_band2", "platform", "chat_id", "band2"),
        Index("ix_post_fingerprints_band3", "platform", "chat_id", "band3"),
        Index("ix_post_fingerprints_chat", "platform", "chat_id", "post_id"),
    )

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # 0 for a still; a clip keeps a few of its frames (0, 1, ...), so that a screenshot of
    # any of them finds it.
    frame: Mapped[int] = mapped_column(Integer, primary_key=True, default=0, server_default="0",
                                       autoincrement=False)
    platform: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(ID))
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    author_name: Mapped[str] = mapped_column(String(128))
    phash: Mapped[int] = mapped_column(BigInteger)  # signed 64-bit
    dhash: Mapped[int] = mapped_column(BigInteger)
    band0: Mapped[int] = mapped_column(Integer)
    band1: Mapped[int] = mapped_column(Integer)
    band2: Mapped[int] = mapped_column(Integer)
    band3: Mapped[int] = mapped_column(Integer)
    # The classifier's embedding, projected and stored as float16 (inference/fingerprint.py);
    # only comparable within one embedding space (backbone and its weights).
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    embedding_space: Mapped[str | None] = mapped_column(String(64))
    # The sentence encoder's vector of the words read (OCR + caption), float16, when there were
    # enough: the correction memory's words (bot/core/recall.py).
    text_embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    # 16x16 grey levels: tells another meme of the same template from a copy.
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary)


class RepostMarkRow(Base):
    """An admin's word on repost detection, kept like a correction: "not_repost" (this post
    is not a copy of `original_post_id`) or "exempt" (never flag copies of this image)."""

    __tablename__ = "repost_marks"
    __table_args__ = (CheckConstraint("kind IN ('not_repost', 'exempt')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    original_post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    admin_id: Mapped[str] = mapped_column(String(ID))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ForwardRow(Base):
    """The one copy of a post in its sorted place: the primary key makes "exactly once" a
    database guarantee (a claim is inserted before the copy is sent)."""

    __tablename__ = "forwards"

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    label: Mapped[str] = mapped_column(String(32))
    place: Mapped[str] = mapped_column(String(128), index=True)
    copy_id: Mapped[str | None] = mapped_column(String(ID))  # None while being sent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChatTrustRow(Base):
    """A chat an operator trusts: its corrections train ("trusted"), and its admins may also
    retrain, roll back and change labels ("delegated"). No row: not trusted."""

    __tablename__ = "chat_trust"
    __table_args__ = (CheckConstraint("level IN ('trusted', 'delegated')", name="level"),)

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[str] = mapped_column(String(ID))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditRow(Base):
    """One admin action: who, when, what, where, from what to what. Never updated; kept when
    the post or chat it names is gone (no foreign keys)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_post", "post_id", "id"),
        Index("ix_audit_log_chat", "platform", "chat_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[str] = mapped_column(String(ID))
    action: Mapped[str] = mapped_column(String(32))
    platform: Mapped[str | None] = mapped_column(String(32))
    chat_id: Mapped[str | None] = mapped_column(String(ID))
    post_id: Mapped[int | None] = mapped_column(Integer)
    from_value: Mapped[str | None] = mapped_column(String(128))
    to_value: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(Text)


class HeldPostRow(Base):
    """An off-topic meme removed from its chat and waiting for the admins: "held" until one
    allows it (re-posted) or keeps it removed. Never a training label."""

    __tablename__ = "held_posts"
    __table_args__ = (CheckConstraint("state IN ('held', 'allowed', 'kept')", name="state"),)

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    state: Mapped[str] = mapped_column(String(16))
    author_name: Mapped[str] = mapped_column(String(128))
    decided_by: Mapped[str | None] = mapped_column(String(ID))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChatPresenceRow(Base):
    """A chat the bot left or was removed from (`left_at`), purged some days later unless it
    is back (`left_at` cleared)."""

    __tablename__ = "chat_presence"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelCursorRow(Base):
    """The newest message the bot saw in a channel: after a restart it reads what came since."""

    __tablename__ = "channel_cursors"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    last_message_id: Mapped[str] = mapped_column(String(ID))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
