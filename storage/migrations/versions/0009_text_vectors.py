"""The correction memory's words (issue 24): each post fingerprint may keep the sentence
encoder's vector of the words the bot read (float16), beside the image embedding.

Revision ID: 0009_text_vectors
Revises: 0008_lifecycle
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_text_vectors"
down_revision: str | None = "0008_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("post_fingerprints") as batch:
        batch.add_column(sa.Column("text_embedding", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("post_fingerprints") as batch:
        batch.drop_column("text_embedding")
