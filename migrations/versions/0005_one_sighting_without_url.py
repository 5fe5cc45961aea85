"""one sighting per clip without a post URL

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

A clip met without a post URL (a local file ingested or checked) is one fact however often it is
met, as a clip at one post URL is since 0003: every re-ingest of a file added a sighting, and three
concurrent folder ingests stored 48 sightings for 16 clips. A second partial unique index, on
clip_id where there is no URL, makes the database enforce it (0003's covers the sightings with one).

Existing duplicates are merged first: the earliest (lowest id) is kept, what it lacks is filled in
from the later ones (earliest first, as repository.add_sighting would have done), and checks that
pointed at a later copy point at the kept one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NO_URL = "url_sha256 IS NULL"
# A URL-less sighting of the same clip with a lower id exists: this one is a duplicate.
_IS_DUPLICATE = (
    "EXISTS (SELECT 1 FROM sightings k WHERE k.clip_id = {s}.clip_id AND k.url_sha256 IS NULL AND k.id < {s}.id)"
)
# The post details a later sighting may add to the kept one (repository._SIGHTING_FILLABLE, copied:
# migrations never import application code).
_FILLABLE = ("platform", "post_id", "uploader", "uploader_id", "posted_at", "title", "description",
             "post_created_at", "media_created_at", "info")


def upgrade() -> None:
    for col in _FILLABLE:
        op.execute(
            f"UPDATE sightings SET {col} = (SELECT d.{col} FROM sightings d WHERE d.clip_id = sightings.clip_id "
            f"AND d.url_sha256 IS NULL AND d.{col} IS NOT NULL ORDER BY d.id LIMIT 1) "
            f"WHERE {_NO_URL} AND {col} IS NULL AND NOT {_IS_DUPLICATE.format(s='sightings')}"
        )
    for col in ("sighting_id", "first_seen_sighting_id"):
        op.execute(
            f"UPDATE checks SET {col} = (SELECT MIN(k.id) FROM sightings s JOIN sightings k "
            f"ON k.clip_id = s.clip_id AND k.url_sha256 IS NULL WHERE s.id = checks.{col}) "
            f"WHERE {col} IN (SELECT s.id FROM sightings s "
            f"WHERE s.url_sha256 IS NULL AND {_IS_DUPLICATE.format(s='s')})"
        )
    op.execute(f"DELETE FROM sightings WHERE {_NO_URL} AND {_IS_DUPLICATE.format(s='sightings')}")
    op.create_index(
        "uq_sightings_clip_id_without_url",
        "sightings",
        ["clip_id"],
        unique=True,
        sqlite_where=sa.text(_NO_URL),
        postgresql_where=sa.text(_NO_URL),
    )


def downgrade() -> None:
    op.drop_index("uq_sightings_clip_id_without_url", table_name="sightings")
