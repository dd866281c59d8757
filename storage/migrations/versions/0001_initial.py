"""Initial schema: images, posts, predictions, corrections, labels, model versions, retrain
jobs, chat settings; seeds the three original labels.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEED_LABELS = ("doom", "animal_crossing", "other")


def _ts(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("extension", sa.String(8), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        _ts("first_seen"),
        sa.PrimaryKeyConstraint("sha256", name="pk_images"),
    )
    labels = op.create_table(
        "labels",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        _ts("added_at"),
        sa.PrimaryKeyConstraint("name", name="pk_labels"),
    )
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("attachment_index", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.String(64), nullable=False),
        _ts("posted_at"),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["image_sha256"], ["images.sha256"], name="fk_posts_image_sha256_images"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_posts"),
        sa.UniqueConstraint(
            "platform", "chat_id", "message_id", "attachment_index", name="uq_posts_delivery"
        ),
    )
    op.create_index("ix_posts_image_sha256", "posts", ["image_sha256"])
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("ood_score", sa.Float(), nullable=True),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_predictions_post_id_posts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["label"], ["labels.name"], name="fk_predictions_label_labels"),
        sa.PrimaryKeyConstraint("id", name="pk_predictions"),
    )
    op.create_index("ix_predictions_post_id", "predictions", ["post_id"])
    op.create_index("ix_predictions_label", "predictions", ["label"])
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("prediction_id", sa.Integer(), nullable=True),
        sa.Column("admin_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("previous_label", sa.String(32), nullable=True),
        sa.Column("new_label", sa.String(32), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("kind IN ('correction', 'confirmation')", name="ck_corrections_kind"),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_corrections_post_id_posts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name="fk_corrections_prediction_id_predictions",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["new_label"], ["labels.name"], name="fk_corrections_new_label_labels"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_corrections"),
    )
    op.create_index("ix_corrections_post_id", "corrections", ["post_id"])
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("created_at"),
        _ts("promoted_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('candidate', 'active', 'retired', 'failed')",
            name="ck_model_versions_status",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("version", name="uq_model_versions_version"),
    )
    op.create_index(
        "uq_model_versions_one_active",
        "model_versions",
        ["status"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "retrain_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(128), nullable=True),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("heartbeat_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.Column("log_tail", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')",
            name="ck_retrain_jobs_status",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_retrain_jobs"),
    )
    op.create_index(
        "uq_retrain_jobs_one_open",
        "retrain_jobs",
        ["kind"],
        unique=True,
        sqlite_where=sa.text("status IN ('queued', 'running')"),
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_index("ix_retrain_jobs_status", "retrain_jobs", ["status", "id"])
    op.create_table(
        "chat_settings",
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("admin_ids", sa.JSON(), nullable=False),
        sa.Column("reply_mode", sa.String(16), nullable=True),
        sa.Column("confidence_threshold", sa.Float(), nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("platform", "chat_id", name="pk_chat_settings"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        labels, [{"name": name, "added_by": "system", "added_at": now} for name in SEED_LABELS]
    )


def downgrade() -> None:
    for index, table in (
        ("ix_retrain_jobs_status", "retrain_jobs"),
        ("uq_retrain_jobs_one_open", "retrain_jobs"),
        ("uq_model_versions_one_active", "model_versions"),
        ("ix_corrections_post_id", "corrections"),
        ("ix_predictions_label", "predictions"),
        ("ix_predictions_post_id", "predictions"),
        ("ix_posts_image_sha256", "posts"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "chat_settings",
        "retrain_jobs",
        "model_versions",
        "corrections",
        "predictions",
        "posts",
        "labels",
        "images",
    ):
        op.drop_table(table)
