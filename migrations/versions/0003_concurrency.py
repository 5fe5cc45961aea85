"""one sighting per clip and post URL

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Several processes now write one library at once, and a sighting (a clip seen in a post) is stored
once per (clip, post URL): the unique index makes the database enforce it, so two processes meeting
the same post at the same moment cannot both add it. The index is on the URL's SHA-256 (a new
column), as PostgreSQL cannot index long texts. Sightings without a URL (local files) stay as they
are.

Existing duplicates are merged first: the earliest (lowest id) is kept, and checks that pointed at
a later copy point at the kept one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A sighting with the same clip and URL and a lower id exists: this one is a duplicate.
_IS_DUPLICATE = (
    "EXISTS (SELECT 1 FROM sightings k WHERE k.clip_id = {s}.clip_id AND k.url = {s}.url AND k.id < {s}.id)"
)
_KEPT_ID = (
    "(SELECT MIN(k.id) FROM sightings s JOIN sightings k ON k.clip_id = s.clip_id AND k.url = s.url "
    "WHERE s.id = checks.{col})"
)
_BATCH = 1_000  # rows per UPDATE executemany


def upgrade() -> None:
    with op.batch_alter_table("sightings") as batch:
        batch.add_column(sa.Column("url_sha256", sa.String(length=64), nullable=True))
    # SHA-256 in Python: SQLite has no SQL function for it. The same digest as
    # provenance.db.models.url_sha256 (copied, since migrations never import application code).
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, url FROM sightings WHERE url IS NOT NULL")).all()
    update = sa.text("UPDATE sightings SET url_sha256 = :h WHERE id = :i")
    for start in range(0, len(rows), _BATCH):
        conn.execute(
            update,
            [
                {"i": i, "h": hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()}
                for i, url in rows[start : start + _BATCH]
            ],
        )
    for col in ("sighting_id", "first_seen_sighting_id"):
        op.execute(
            f"UPDATE checks SET {col} = {_KEPT_ID.format(col=col)} "
            f"WHERE {col} IN (SELECT s.id FROM sightings s WHERE s.url IS NOT NULL AND "
            f"{_IS_DUPLICATE.format(s='s')})"
        )
    op.execute(
        f"DELETE FROM sightings WHERE url IS NOT NULL AND {_IS_DUPLICATE.format(s='sightings')}"
    )
    op.create_index(
        "uq_sightings_clip_id_url_sha256",
        "sightings",
        ["clip_id", "url_sha256"],
        unique=True,
        sqlite_where=sa.text("url_sha256 IS NOT NULL"),
        postgresql_where=sa.text("url_sha256 IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_sightings_clip_id_url_sha256", table_name="sightings")
    with op.batch_alter_table("sightings") as batch:
        batch.drop_column("url_sha256")
