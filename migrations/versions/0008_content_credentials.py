"""C2PA content credentials read from each clip

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

One row per clip read by provenance.credentials: the validation state, a summary (signer, claim
generator, actions, ingredients, failures) and the manifest store as the reader gave it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "content_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=False),
        sa.Column("reader", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("manifest", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], name=op.f("fk_content_credentials_clip_id_clips"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_credentials")),
        sa.UniqueConstraint("clip_id", name=op.f("uq_content_credentials_clip_id")),
    )


def downgrade() -> None:
    op.drop_table("content_credentials")
