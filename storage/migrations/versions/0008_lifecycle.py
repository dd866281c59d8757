"""People's data and the bot's presence (issue 23): a post deleted on its platform is marked
(`posts.deleted_at`), the chats the bot left (purged some days later), and the last message
seen per Discord channel (catch-up after a restart).

Revision ID: 0008_lifecycle
Revises: 0003_reposts
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_lifecycle"
down_revision: str | None = "0006_media"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "chat_presence",
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "chat_id", name="pk_chat_presence"),
    )
    op.create_table(
        "channel_cursors",
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("last_message_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "chat_id", name="pk_channel_cursors"),
    )


def downgrade() -> None:
    op.drop_table("channel_cursors")
    op.drop_table("chat_presence")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("deleted_at")
