"""Repost detection and sorting: per-post fingerprints (perceptual hash quarters indexed per
chat, projected embedding), admins' repost marks, the one forwarded copy per post, and the
chat settings for both.

Revision ID: 0003_reposts
Revises: 0002_post_caption
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003_reposts"
down_revision: str | None = "0002_post_caption"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BANDS = ("band0", "band1", "band2", "band3")


def _ts(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _post_fk(column: str, name: str, nullable: bool = False) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column(column, sa.Integer(), nullable=nullable),
        sa.ForeignKeyConstraint(
            [column], ["posts.id"], name=f"fk_{name}_{column}_posts", ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    with op.batch_alter_table("chat_settings") as batch:
        batch.add_column(sa.Column("repost_mode", sa.String(16), nullable=True))
        batch.add_column(sa.Column("repost_window_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sort_places", sa.JSON(), nullable=True))

    op.create_table(
        "post_fingerprints",
        *_post_fk("post_id", "post_fingerprints"),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        _ts("posted_at"),
        sa.Column("author_name", sa.String(128), nullable=False),
        sa.Column("phash", sa.BigInteger(), nullable=False),
        sa.Column("dhash", sa.BigInteger(), nullable=False),
        *(sa.Column(band, sa.Integer(), nullable=False) for band in BANDS),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_space", sa.String(64), nullable=True),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("post_id", name="pk_post_fingerprints"),
    )
    for band in BANDS:
        op.create_index(
            f"ix_post_fingerprints_{band}", "post_fingerprints", ["platform", "chat_id", band]
        )
    op.create_index(
        "ix_post_fingerprints_chat", "post_fingerprints", ["platform", "chat_id", "post_id"]
    )

    op.create_table(
        "repost_marks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *_post_fk("post_id", "repost_marks"),
        *_post_fk("original_post_id", "repost_marks", nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("admin_id", sa.String(64), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("kind IN ('not_repost', 'exempt')", name="ck_repost_marks_kind"),
        sa.PrimaryKeyConstraint("id", name="pk_repost_marks"),
    )
    op.create_index("ix_repost_marks_post_id", "repost_marks", ["post_id"])

    op.create_table(
        "forwards",
        *_post_fk("post_id", "forwards"),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("place", sa.String(128), nullable=False),
        sa.Column("copy_id", sa.String(64), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("post_id", name="pk_forwards"),
    )
    op.create_index("ix_forwards_place", "forwards", ["place"])


def downgrade() -> None:
    op.drop_index("ix_forwards_place", table_name="forwards")
    op.drop_table("forwards")
    op.drop_index("ix_repost_marks_post_id", table_name="repost_marks")
    op.drop_table("repost_marks")
    op.drop_index("ix_post_fingerprints_chat", table_name="post_fingerprints")
    for band in BANDS:
        op.drop_index(f"ix_post_fingerprints_{band}", table_name="post_fingerprints")
    op.drop_table("post_fingerprints")
    with op.batch_alter_table("chat_settings") as batch:
        batch.drop_column("sort_places")
        batch.drop_column("repost_window_days")
        batch.drop_column("repost_mode")
