"""scrub session cookies and auth headers from stored raw info

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

yt-dlp copies the session's cookies (`--cookies`) into the raw info it returns
(`formats[].cookies`, `http_headers` Cookie/Authorization), and sightings.info kept them: anyone
reading a shared library or an export could take over the analyst's login. The application now
drops them before storing (provenance.db.scrub); this removes them, and NUL characters, from the
rows stored before. No schema change; there is nothing to restore on downgrade.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1_000  # rows read and rewritten at a time: constant memory on large libraries

# provenance.db.scrub.SECRET_KEY and scrub_info as of this revision (copied, since migrations
# never import application code).
_SECRET_KEY = re.compile(
    r"^(set-)?cookies?$|authori[sz]ation|token|csrf|api[-_]?key|passw(or)?d|secret|session",
    re.IGNORECASE,
)


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {_strip_nul(k): _scrub(v) for k, v in value.items()
                if not (isinstance(k, str) and _SECRET_KEY.search(k))}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return _strip_nul(value)


def upgrade() -> None:
    conn = op.get_bind()
    sightings = sa.table("sightings", sa.column("id", sa.Integer), sa.column("info", sa.JSON))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(sightings.c.id, sightings.c.info)
            .where(sightings.c.id > last, sightings.c.info.is_not(None))
            .order_by(sightings.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        changed = [{"i": i, "info": clean} for i, info in rows if (clean := _scrub(info)) != info]
        if changed:
            conn.execute(
                sightings.update().where(sightings.c.id == sa.bindparam("i")).values(info=sa.bindparam("info")),
                changed,
            )


def downgrade() -> None:
    pass  # the secrets are gone for good, which is the point
