"""shots and keyframes of each clip

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

The shots provenance.shots finds while a clip is hashed, each with the sampled frame to use for
reverse image search (`provenance keyframes`). Clips recorded before have none.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clip_shots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("keyframe_s", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], name=op.f("fk_clip_shots_clip_id_clips"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clip_shots")),
    )
    op.create_index(op.f("ix_clip_shots_clip_id"), "clip_shots", ["clip_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_clip_shots_clip_id"), table_name="clip_shots")
    op.drop_table("clip_shots")
