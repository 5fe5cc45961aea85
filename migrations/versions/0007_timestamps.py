"""trusted timestamps (RFC 3161) of evidence files and reports

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

A table of the tokens a Time-Stamp Authority signed over the SHA-256 of a check's clip or of a
report written (provenance.timestamps); `provenance verify CHECK_ID` checks them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "timestamps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("check_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("tsa_url", sa.Text(), nullable=False),
        sa.Column("tsa_name", sa.Text(), nullable=False),
        sa.Column("stamped_at", sa.DateTime(), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["check_id"], ["checks.id"], name=op.f("fk_timestamps_check_id_checks"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timestamps")),
    )
    op.create_index(op.f("ix_timestamps_sha256"), "timestamps", ["sha256"])
    op.create_index(op.f("ix_timestamps_check_id"), "timestamps", ["check_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_timestamps_check_id"), table_name="timestamps")
    op.drop_index(op.f("ix_timestamps_sha256"), table_name="timestamps")
    op.drop_table("timestamps")
