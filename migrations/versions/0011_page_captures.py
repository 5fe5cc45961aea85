"""page captures: the post's page as a screenshot and a web archive

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

When `check` or `ingest` is given a post URL, headless Chromium keeps a full-page screenshot (PNG)
and a web archive (WARC) of the page in the evidence store (provenance.capture); this table records
them, per sighting, and per check when a check made them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "page_captures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sighting_id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.Integer(), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("captured_at", sa.DateTime(), nullable=False),
        sa.Column("browser", sa.String(64), nullable=False),
        sa.Column("screenshot_sha256", sa.String(64), nullable=False),
        sa.Column("screenshot_path", sa.Text(), nullable=False),
        sa.Column("screenshot_bytes", sa.BigInteger(), nullable=False),
        sa.Column("archive_sha256", sa.String(64), nullable=False),
        sa.Column("archive_path", sa.Text(), nullable=False),
        sa.Column("archive_bytes", sa.BigInteger(), nullable=False),
        sa.Column("archive_format", sa.String(16), nullable=False),
        sa.Column("resources", sa.Integer(), nullable=False),
        sa.Column("refused", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["sighting_id"], ["sightings.id"], name=op.f("fk_page_captures_sighting_id_sightings"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["check_id"], ["checks.id"], name=op.f("fk_page_captures_check_id_checks"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_captures")),
    )
    op.create_index(op.f("ix_page_captures_sighting_id"), "page_captures", ["sighting_id"])
    op.create_index(op.f("ix_page_captures_check_id"), "page_captures", ["check_id"])
    op.create_index(op.f("ix_page_captures_screenshot_sha256"), "page_captures", ["screenshot_sha256"])
    op.create_index(op.f("ix_page_captures_archive_sha256"), "page_captures", ["archive_sha256"])


def downgrade() -> None:
    op.drop_index(op.f("ix_page_captures_archive_sha256"), table_name="page_captures")
    op.drop_index(op.f("ix_page_captures_screenshot_sha256"), table_name="page_captures")
    op.drop_index(op.f("ix_page_captures_check_id"), table_name="page_captures")
    op.drop_index(op.f("ix_page_captures_sighting_id"), table_name="page_captures")
    op.drop_table("page_captures")
