"""Reads for browsing the library (`provenance serve`): sightings found by URL, uploader and date,
and the latest checks. Session keyword-only, records out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provenance.db import models as orm

MAX_ROWS = 500  # one page of results; a larger library is narrowed by the filters, not scrolled


@dataclass(frozen=True)
class SightingRow:
    """One post a clip was seen in, with the clip's earliest known post time."""

    sighting_id: int
    clip_sha256: str
    duration_s: float
    source: str  # "ingest" | "check"
    url: str | None
    platform: str | None
    uploader: str | None
    title: str | None
    posted_at: datetime | None
    observed_at: datetime
    clip_first_posted_at: datetime | None  # the earliest posted_at over all the clip's sightings


@dataclass(frozen=True)
class CheckRow:
    check_id: int
    created_at: datetime
    verdict: str
    url: str | None
    title: str | None
    first_seen_at: datetime | None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_sightings(*, session: Session, url: str | None = None, uploader: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     limit: int = 100) -> list[SightingRow]:
    """Sightings newest post first; `url` and `uploader` match a part of the text, case-insensitively;
    `since`/`until` bound the post time (undated posts are left out when either is given)."""
    s = orm.Sighting
    first = (select(s.clip_id, func.min(s.posted_at).label("first_posted_at")).group_by(s.clip_id).subquery())
    stmt = (select(s, orm.Clip.sha256, orm.Clip.duration_s, first.c.first_posted_at)
            .join(orm.Clip, orm.Clip.id == s.clip_id).join(first, first.c.clip_id == s.clip_id))
    if url:
        stmt = stmt.where(func.lower(s.url).like(_like(url.lower()), escape="\\"))
    if uploader:
        stmt = stmt.where(func.lower(s.uploader).like(_like(uploader.lower()), escape="\\"))
    if since is not None:
        stmt = stmt.where(s.posted_at >= since)
    if until is not None:
        stmt = stmt.where(s.posted_at <= until)
    stmt = stmt.order_by(s.posted_at.desc().nulls_last(), s.id.desc()).limit(min(max(limit, 1), MAX_ROWS))
    out = []
    for row, sha, duration, first_posted in session.execute(stmt):
        out.append(SightingRow(sighting_id=row.id, clip_sha256=sha, duration_s=duration, source=row.source,
                               url=row.url, platform=row.platform, uploader=row.uploader, title=row.title,
                               posted_at=row.posted_at, observed_at=row.observed_at,
                               clip_first_posted_at=first_posted))
    return out


def recent_checks(*, session: Session, limit: int = 20) -> list[CheckRow]:
    stmt = (select(orm.Check, orm.Sighting.url, orm.Sighting.title)
            .outerjoin(orm.Sighting, orm.Sighting.id == orm.Check.sighting_id)
            .order_by(orm.Check.id.desc()).limit(min(max(limit, 1), MAX_ROWS)))
    return [CheckRow(check_id=c.id, created_at=c.created_at, verdict=c.verdict, url=url, title=title,
                     first_seen_at=c.first_seen_at) for c, url, title in session.execute(stmt)]
