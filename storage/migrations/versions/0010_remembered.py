"""A prediction records whether its label came from the correction memory (issue 24), so
the console and a reply shown again say so instead of a confidence.

Revision ID: 0010_remembered
Revises: 0009_text_vectors
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_remembered"
down_revision: str | None = "0009_text_vectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("remembered", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("remembered")
