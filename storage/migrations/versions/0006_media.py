"""Clips (issue 22): a post records what kind of media it is (still, animation, video, sticker),
its duration, the frames its label was read from, and a poster frame (an image blob shown for
it); repost fingerprints are kept for a few frames of a clip (`frame`).

Revision ID: 0006_media
Revises: 0003_reposts
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_media"
down_revision: str | None = "0005_chat_rules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMING = {
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def upgrade() -> None:
    with op.batch_alter_table("posts", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("media_kind", sa.String(16), nullable=False,
                                   server_default="still"))
        batch.add_column(sa.Column("duration_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("frames_used", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("poster_sha256", sa.String(64), nullable=True))
        batch.create_foreign_key("fk_posts_poster_sha256_images", "images",
                                 ["poster_sha256"], ["sha256"])
    with op.batch_alter_table("post_fingerprints", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("frame", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("pk_post_fingerprints", type_="primary")
        batch.create_primary_key("pk_post_fingerprints", ["post_id", "frame"])


def downgrade() -> None:
    op.execute("DELETE FROM post_fingerprints WHERE frame <> 0")
    with op.batch_alter_table("post_fingerprints", naming_convention=NAMING) as batch:
        batch.drop_constraint("pk_post_fingerprints", type_="primary")
        batch.create_primary_key("pk_post_fingerprints", ["post_id"])
        batch.drop_column("frame")
    with op.batch_alter_table("posts", naming_convention=NAMING) as batch:
        batch.drop_constraint("fk_posts_poster_sha256_images", type_="foreignkey")
        batch.drop_column("poster_sha256")
        batch.drop_column("frames_used")
        batch.drop_column("duration_s")
        batch.drop_column("media_kind")
