"""motion profiles, how each match was established, same-scene hints

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Matching version 2 (provenance.match.MATCHER_VERSION) finds static-camera footage by what moves in
it, and footage shown inside part of another picture. Each clip gets its motion profile (one row per
clip: clips stored before this revision have none and are matched by their frames alone until they
are ingested again); each match says how it was established, how sure it is, and where in the picture
the footage sits; each check keeps the same-scene hints it found.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clip_motion",
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("grid", sa.SmallInteger(), nullable=False),
        sa.Column("times", sa.LargeBinary(), nullable=False),
        sa.Column("cells", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], name=op.f("fk_clip_motion_clip_id_clips"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("clip_id", name=op.f("pk_clip_motion")),
    )
    with op.batch_alter_table("matches") as batch:
        batch.add_column(sa.Column("method", sa.String(length=16), server_default="frames", nullable=False))
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("region", sa.JSON(), nullable=True))
    with op.batch_alter_table("checks") as batch:
        batch.add_column(sa.Column("scenes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checks") as batch:
        batch.drop_column("scenes")
    with op.batch_alter_table("matches") as batch:
        batch.drop_column("region")
        batch.drop_column("confidence")
        batch.drop_column("method")
    op.drop_table("clip_motion")
