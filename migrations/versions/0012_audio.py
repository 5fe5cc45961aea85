"""audio evidence: Chromaprint sub-fingerprints per clip, and the audio matches of a check

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

`clip_audio` says whether a clip has audio evidence (provenance.audio.AudioStatus) and with which
fingerprint settings; `audio_items` holds its sub-fingerprints, one row per time step (like frames),
and `audio_matches` what a check's sound matched, beside its picture matches. Clips stored before
this revision have no `clip_audio` row: their sound was never fingerprinted.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clip_audio",
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("item_s", sa.Float(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("max_volume_db", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], name=op.f("fk_clip_audio_clip_id_clips"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("clip_id", name=op.f("pk_clip_audio")),
    )
    op.create_table(
        "audio_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("i", sa.Integer(), nullable=False),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], name=op.f("fk_audio_items_clip_id_clips"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audio_items")),
    )
    op.create_index("ix_audio_items_clip_id_t", "audio_items", ["clip_id", "t"])
    op.create_table(
        "audio_matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.Integer(), nullable=False),
        sa.Column("reference_clip_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=False),
        sa.Column("speed", sa.Float(), nullable=False),
        sa.Column("matched_items", sa.Integer(), nullable=False),
        sa.Column("query_items", sa.Integer(), nullable=False),
        sa.Column("reference_items", sa.Integer(), nullable=False),
        sa.Column("query_coverage", sa.Float(), nullable=False),
        sa.Column("reference_coverage", sa.Float(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["check_id"], ["checks.id"], name=op.f("fk_audio_matches_check_id_checks"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reference_clip_id"], ["clips.id"],
                                name=op.f("fk_audio_matches_reference_clip_id_clips")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audio_matches")),
    )
    op.create_index(op.f("ix_audio_matches_check_id"), "audio_matches", ["check_id"])
    op.create_index(op.f("ix_audio_matches_reference_clip_id"), "audio_matches", ["reference_clip_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audio_matches_reference_clip_id"), table_name="audio_matches")
    op.drop_index(op.f("ix_audio_matches_check_id"), table_name="audio_matches")
    op.drop_table("audio_matches")
    op.drop_index("ix_audio_items_clip_id_t", table_name="audio_items")
    op.drop_table("audio_items")
    op.drop_table("clip_audio")
