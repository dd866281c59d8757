"""Each chat's own rules, set from the chat: which labels are on-topic, what happens to an
off-topic meme, whether admins' reactions correct labels; `enabled` may inherit (a Discord
channel from its server); and the memes held for the admins' judgement.

Revision ID: 0005_chat_rules
Revises: 0003_reposts
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_chat_rules"
down_revision: str | None = "0004_roles_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_settings") as batch:
        batch.alter_column("enabled", existing_type=sa.Boolean(), nullable=True)
        batch.add_column(sa.Column("on_topic_labels", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("offtopic_action", sa.String(16), nullable=True))
        batch.add_column(sa.Column("reaction_corrections", sa.Boolean(), nullable=True))

    op.create_table(
        "held_posts",
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("author_name", sa.String(128), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('held', 'allowed', 'kept')", name="ck_held_posts_state"),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name="fk_held_posts_post_id_posts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id", name="pk_held_posts"),
    )


def downgrade() -> None:
    op.drop_table("held_posts")
    with op.batch_alter_table("chat_settings") as batch:
        batch.drop_column("reaction_corrections")
        batch.drop_column("offtopic_action")
        batch.drop_column("on_topic_labels")
    op.execute(sa.text("UPDATE chat_settings SET enabled = true WHERE enabled IS NULL"))
    with op.batch_alter_table("chat_settings") as batch:
        batch.alter_column("enabled", existing_type=sa.Boolean(), nullable=False)
