"""initial schema

Revision ID: 0001
Revises:
Create Date: 2025-11-25

Datetimes are plain DateTime columns holding naive UTC; provenance.db.models.UTCDateTime
converts at the boundary. Migrations never import application types, so they stay
valid however the models change later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("evidence_path", sa.Text(), nullable=True),
        sa.Column("container", sa.String(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("video_codec", sa.String(), nullable=True),
        sa.Column("has_audio", sa.Boolean(), nullable=False),
        sa.Column("probe", sa.JSON(), nullable=False),
        sa.Column("sample_fps", sa.Float(), nullable=False),
        sa.Column("hash_algo", sa.String(length=32), nullable=False),
        sa.Column("content_left", sa.Float(), nullable=False),
        sa.Column("content_top", sa.Float(), nullable=False),
        sa.Column("content_right", sa.Float(), nullable=False),
        sa.Column("content_bottom", sa.Float(), nullable=False),
        sa.Column("usable_frames", sa.Integer(), nullable=False),
        sa.Column("first_observed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clips")),
        sa.UniqueConstraint("sha256", name=op.f("uq_clips_sha256")),
    )
    op.create_table(
        "frames",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("variant", sa.SmallInteger(), nullable=False),
        sa.Column("phash", sa.BigInteger(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clip_id"], ["clips.id"], name=op.f("fk_frames_clip_id_clips"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frames")),
    )
    op.create_index("ix_frames_clip_id_t", "frames", ["clip_id", "t"])
    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("platform", sa.String(), nullable=True),
        sa.Column("post_id", sa.String(), nullable=True),
        sa.Column("uploader", sa.String(), nullable=True),
        sa.Column("uploader_id", sa.String(), nullable=True),
        sa.Column("posted_at", sa.DateTime(), nullable=True),
        sa.Column("observed_at", sa.DateTime(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("post_created_at", sa.DateTime(), nullable=True),
        sa.Column("media_created_at", sa.DateTime(), nullable=True),
        sa.Column("info", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], name=op.f("fk_sightings_clip_id_clips")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings")),
    )
    op.create_index(op.f("ix_sightings_clip_id"), "sightings", ["clip_id"])
    op.create_table(
        "checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("sighting_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("first_seen_clip_id", sa.Integer(), nullable=True),
        sa.Column("first_seen_sighting_id", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("tool_version", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], name=op.f("fk_checks_clip_id_clips")),
        sa.ForeignKeyConstraint(
            ["first_seen_clip_id"], ["clips.id"], name=op.f("fk_checks_first_seen_clip_id_clips")
        ),
        sa.ForeignKeyConstraint(
            ["first_seen_sighting_id"],
            ["sightings.id"],
            name=op.f("fk_checks_first_seen_sighting_id_sightings"),
        ),
        sa.ForeignKeyConstraint(
            ["sighting_id"], ["sightings.id"], name=op.f("fk_checks_sighting_id_sightings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checks")),
    )
    op.create_index(op.f("ix_checks_clip_id"), "checks", ["clip_id"])
    op.create_table(
        "matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.Integer(), nullable=False),
        sa.Column("reference_clip_id", sa.Integer(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("query_coverage", sa.Float(), nullable=False),
        sa.Column("reference_coverage", sa.Float(), nullable=False),
        sa.Column("transforms", sa.String(), nullable=False),
        sa.Column("matched_frames", sa.Integer(), nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=False),
        sa.Column("speed", sa.Float(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["check_id"], ["checks.id"], name=op.f("fk_matches_check_id_checks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reference_clip_id"], ["clips.id"], name=op.f("fk_matches_reference_clip_id_clips")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matches")),
    )
    op.create_index(op.f("ix_matches_check_id"), "matches", ["check_id"])
    op.create_index(op.f("ix_matches_reference_clip_id"), "matches", ["reference_clip_id"])
    op.create_table(
        "match_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("match_id", sa.Integer(), nullable=False),
        sa.Column("query_start_s", sa.Float(), nullable=False),
        sa.Column("query_end_s", sa.Float(), nullable=False),
        sa.Column("reference_start_s", sa.Float(), nullable=False),
        sa.Column("reference_end_s", sa.Float(), nullable=False),
        sa.Column("speed", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["match_id"],
            ["matches.id"],
            name=op.f("fk_match_segments_match_id_matches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_segments")),
    )
    op.create_index(op.f("ix_match_segments_match_id"), "match_segments", ["match_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes too.
    for table in ("match_segments", "matches", "checks", "sightings", "frames", "clips"):
        op.drop_table(table)
