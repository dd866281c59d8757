"""Roles and audit: which chats an operator trusts (their corrections train) or delegated
to (their admins may retrain, roll back, change labels), the review of corrections from other
chats and the retrain that used each one, and the audit log of admin actions (backfilled with
the corrections made before it).

Revision ID: 0004_roles_audit
Revises: 0003_reposts
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_roles_audit"
down_revision: str | None = "0003_reposts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.add_column(sa.Column("review", sa.String(16), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("trained_job_id", sa.Integer(), nullable=True))

    op.create_table(
        "chat_trust",
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("granted_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("level IN ('trusted', 'delegated')", name="ck_chat_trust_level"),
        sa.PrimaryKeyConstraint("platform", "chat_id", name="pk_chat_trust"),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("platform", sa.String(32), nullable=True),
        sa.Column("chat_id", sa.String(64), nullable=True),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("from_value", sa.String(128), nullable=True),
        sa.Column("to_value", sa.String(128), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_post", "audit_log", ["post_id", "id"])
    op.create_index("ix_audit_log_chat", "audit_log", ["platform", "chat_id", "id"])
    # Each post's history starts with the decisions taken before there was a log.
    op.execute(
        "INSERT INTO audit_log (created_at, actor_id, action, platform, chat_id, post_id, "
        "from_value, to_value) "
        "SELECT c.created_at, c.admin_id, c.kind, p.platform, p.chat_id, p.id, "
        "c.previous_label, c.new_label "
        "FROM corrections c JOIN posts p ON p.id = c.post_id ORDER BY c.id"
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_chat", table_name="audit_log")
    op.drop_index("ix_audit_log_post", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("chat_trust")
    with op.batch_alter_table("corrections") as batch:
        batch.drop_column("trained_job_id")
        batch.drop_column("reviewed_by")
        batch.drop_column("review")
