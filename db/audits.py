"""Reads and writes for audits. Every function takes the session keyword-only and returns records or ints."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from provenance import records
from provenance.db import models as orm
from provenance.db.repository import json_safe

PENDING, DONE, FAILED = "pending", "done", "failed"
RUNNING, FINISHED = "running", "done"
_IN_CHUNK = 500  # stays far below every backend's bound-parameter limit


def create_audit(*, session: Session, kind: str, source: str, options: dict[str, Any], key: str,
                 title: str | None, created_at: datetime, tool_version: str,
                 posts: Sequence[tuple[str, datetime | None, str | None]]) -> int:
    """An audit with all its listed posts (url, posted_at, title), pending, in listing order.

    The caller drops duplicate URLs first; the unique (audit_id, url) constraint refuses them anyway."""
    audit = orm.Audit(kind=kind, source=source, options=json_safe(options), key=key, title=title,
                      status=RUNNING, created_at=created_at, finished_at=None, tool_version=tool_version)
    session.add(audit)
    session.flush()
    session.add_all(orm.AuditItem(audit_id=audit.id, position=n, url=url, posted_at=posted_at, title=t,
                                  state=PENDING, attempts=0)
                    for n, (url, posted_at, t) in enumerate(posts))
    session.flush()
    return audit.id


def find_audit(key: str, *, session: Session, unfinished: bool) -> int | None:
    """The newest audit with this key (only a running one with `unfinished`)."""
    stmt = select(orm.Audit.id).where(orm.Audit.key == key)
    if unfinished:
        stmt = stmt.where(orm.Audit.status == RUNNING)
    return session.scalar(stmt.order_by(orm.Audit.id.desc()).limit(1))


def audit_exists(audit_id: int, *, session: Session) -> bool:
    return session.get(orm.Audit, audit_id) is not None


def pending_items(audit_id: int, *, session: Session) -> list[records.AuditItemState]:
    stmt = (select(orm.AuditItem).where(orm.AuditItem.audit_id == audit_id, orm.AuditItem.state == PENDING)
            .order_by(orm.AuditItem.position))
    return [records.AuditItemState(item_id=i.id, position=i.position, url=i.url, posted_at=i.posted_at,
                                   title=i.title, attempts=i.attempts)
            for i in session.scalars(stmt)]


def finish_item(item_id: int, *, session: Session, check_id: int, at: datetime) -> bool:
    """Mark a pending post done; False when it is no longer pending (another run of the same audit
    got there first). Called inside the transaction that records its check, so the two happen
    together or not at all: an audit killed at any moment never checks a post twice."""
    result = session.execute(update(orm.AuditItem).where(
        orm.AuditItem.id == item_id, orm.AuditItem.state == PENDING).values(
        state=DONE, check_id=check_id, error=None, error_code=None, attempts=orm.AuditItem.attempts + 1,
        updated_at=at))
    return bool(result.rowcount)


def fail_item(item_id: int, *, session: Session, error: str, error_code: int, at: datetime) -> None:
    session.execute(update(orm.AuditItem).where(orm.AuditItem.id == item_id, orm.AuditItem.state == PENDING)
                    .values(state=FAILED, error=error, error_code=error_code, attempts=orm.AuditItem.attempts + 1,
                            updated_at=at))


def retry_failed(audit_id: int, *, session: Session) -> int:
    """Queue an audit's failed posts again (their last error stays until they are retried); returns how many."""
    result = session.execute(update(orm.AuditItem).where(
        orm.AuditItem.audit_id == audit_id, orm.AuditItem.state == FAILED).values(state=PENDING))
    if result.rowcount:
        reopen(audit_id, session=session)
    return result.rowcount or 0


def reopen(audit_id: int, *, session: Session) -> None:
    session.execute(update(orm.Audit).where(orm.Audit.id == audit_id).values(status=RUNNING, finished_at=None))


def finish_audit(audit_id: int, *, session: Session, at: datetime) -> bool:
    """Mark the audit done when no post is pending; returns whether it is done."""
    left = session.scalar(select(func.count()).select_from(orm.AuditItem).where(
        orm.AuditItem.audit_id == audit_id, orm.AuditItem.state == PENDING)) or 0
    if left:
        return False
    session.execute(update(orm.Audit).where(orm.Audit.id == audit_id, orm.Audit.status == RUNNING)
                    .values(status=FINISHED, finished_at=at))
    return True


def audit_result(audit_id: int, *, session: Session, item_id: int | None = None) -> records.AuditResult:
    """The whole audit (or only one of its posts), each done post with what its check found
    (whether a reuse is the account's own is left for the caller)."""
    audit = session.get(orm.Audit, audit_id)
    if audit is None:
        raise KeyError(f"no audit with id {audit_id}")
    stmt = (select(orm.AuditItem, orm.Check).outerjoin(orm.Check, orm.Check.id == orm.AuditItem.check_id)
            .where(orm.AuditItem.audit_id == audit_id).order_by(orm.AuditItem.position))
    if item_id is not None:
        stmt = stmt.where(orm.AuditItem.id == item_id)
    rows = session.execute(stmt).all()
    checks = [c for _, c in rows if c is not None]
    sightings = _sightings({i for c in checks for i in (c.sighting_id, c.first_seen_sighting_id) if i},
                           session=session)
    matches = _matches([c.id for c in checks], session=session)
    items = []
    for item, check in rows:
        found = matches.get(check.id, []) if check else []
        chosen = next((m for m in found if check and m.reference_clip_id == check.first_seen_clip_id),
                      found[0] if found else None)
        reused = check is not None and check.verdict == records.Verdict.REUSED
        items.append(records.AuditItemResult(
            item_id=item.id, position=item.position, url=item.url, title=item.title,
            listed_posted_at=item.posted_at, state=item.state, attempts=item.attempts, error=item.error,
            error_code=item.error_code, check_id=item.check_id, verdict=check.verdict if check else None,
            checked_at=check.created_at if check else None,
            post=sightings.get(check.sighting_id) if check and check.sighting_id else None,
            first_seen=sightings.get(check.first_seen_sighting_id) if reused and check.first_seen_sighting_id
            else None,
            similarity=chosen.similarity if chosen else None,
            transforms=tuple(t for t in chosen.transforms.split(",") if t) if chosen else (),
            match_count=len(found)))
    return records.AuditResult(audit_id=audit.id, kind=audit.kind, source=audit.source, title=audit.title,
                               options=dict(audit.options or {}), status=audit.status,
                               created_at=audit.created_at, finished_at=audit.finished_at, items=tuple(items))


def list_audits(*, session: Session) -> list[records.AuditSummary]:
    """Every audit, newest first, with its counts by state and verdict."""
    item, check = orm.AuditItem, orm.Check

    def n(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    counts = (select(item.audit_id, func.count(item.id).label("posts"), n(item.state == PENDING).label("pending"),
                     n(item.state == FAILED).label("failed"),
                     n(check.verdict == records.Verdict.REUSED).label("reused"),
                     n(check.verdict == records.Verdict.EARLIEST_KNOWN).label("earliest_known"),
                     n(check.verdict == records.Verdict.NO_MATCH).label("no_match"))
              .outerjoin(check, check.id == item.check_id).group_by(item.audit_id).subquery())
    stmt = (select(orm.Audit, counts).outerjoin(counts, counts.c.audit_id == orm.Audit.id)
            .order_by(orm.Audit.id.desc()))
    out = []
    for row in session.execute(stmt):
        a = row[0]
        out.append(records.AuditSummary(
            audit_id=a.id, kind=a.kind, source=a.source, title=a.title, status=a.status, created_at=a.created_at,
            finished_at=a.finished_at, posts=row.posts or 0, pending=row.pending or 0, failed=row.failed or 0,
            reused=row.reused or 0, earliest_known=row.earliest_known or 0, no_match=row.no_match or 0))
    return out


def _sightings(ids: Iterable[int], *, session: Session) -> dict[int, records.Sighting]:
    ids = sorted(set(ids))
    out: dict[int, records.Sighting] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        stmt = (select(orm.Sighting, orm.Clip.sha256).join(orm.Clip, orm.Clip.id == orm.Sighting.clip_id)
                .where(orm.Sighting.id.in_(ids[start:start + _IN_CHUNK])))
        for s, sha in session.execute(stmt):
            out[s.id] = records.Sighting(url=s.url, platform=s.platform, post_id=s.post_id, uploader=s.uploader,
                                         posted_at=s.posted_at, observed_at=s.observed_at, sha256=sha,
                                         sighting_id=s.id)
    return out


def _matches(check_ids: Sequence[int], *, session: Session) -> dict[int, list[orm.Match]]:
    out: dict[int, list[orm.Match]] = {}
    for start in range(0, len(check_ids), _IN_CHUNK):
        stmt = (select(orm.Match).where(orm.Match.check_id.in_(check_ids[start:start + _IN_CHUNK]))
                .order_by(orm.Match.check_id, orm.Match.rank))
        for m in session.scalars(stmt):
            out.setdefault(m.check_id, []).append(m)
    return out


# --- for audits run as jobs (provenance.jobs) ---------------------------------------------------


def item_for_job(item_id: int, *, session: Session) -> tuple[records.AuditItemState, str, int, str, str] | None:
    """One post of an audit as a job needs it: (the post, its state, audit id, audit kind, audit
    source); None when the post is gone (its audit was deleted, or another library)."""
    row = session.execute(select(orm.AuditItem, orm.Audit.kind, orm.Audit.source)
                          .join(orm.Audit, orm.Audit.id == orm.AuditItem.audit_id)
                          .where(orm.AuditItem.id == item_id)).first()
    if row is None:
        return None
    i, kind, source = row
    state = records.AuditItemState(item_id=i.id, position=i.position, url=i.url, posted_at=i.posted_at,
                                   title=i.title, attempts=i.attempts)
    return state, i.state, i.audit_id, kind, source


def pending_before(audit_id: int, item: records.AuditItemState, *, session: Session) -> list[int]:
    """The ids of the audit's pending posts that come before `item` in processing order (as
    provenance.audit orders them: dated posts oldest first, then undated ones from the end of the
    listing up), so that a post is recorded only after every post before it."""
    i = orm.AuditItem
    if item.posted_at is not None:
        before = (i.posted_at.is_not(None)
                  & ((i.posted_at < item.posted_at) | ((i.posted_at == item.posted_at) & (i.position < item.position))))
    else:
        before = i.posted_at.is_not(None) | (i.position > item.position)
    stmt = select(i.id).where(i.audit_id == audit_id, i.state == PENDING, i.id != item.item_id, before)
    return list(session.scalars(stmt.order_by(i.id)))


def state_counts(audit_id: int, *, session: Session) -> dict[str, int]:
    """How many of the audit's posts are pending, done and failed, and how many were found reused."""
    rows = session.execute(select(orm.AuditItem.state, func.count()).where(orm.AuditItem.audit_id == audit_id)
                           .group_by(orm.AuditItem.state)).all()
    reused = session.scalar(select(func.count()).select_from(orm.AuditItem)
                            .join(orm.Check, orm.Check.id == orm.AuditItem.check_id)
                            .where(orm.AuditItem.audit_id == audit_id, orm.Check.verdict == records.Verdict.REUSED))
    return {PENDING: 0, DONE: 0, FAILED: 0, **{state: n for state, n in rows}, "reused": reused or 0}


def item_states(audit_id: int, *, session: Session) -> dict[int, str]:
    """Each post's state by item id, for following an audit that workers run."""
    return dict(session.execute(select(orm.AuditItem.id, orm.AuditItem.state)
                                .where(orm.AuditItem.audit_id == audit_id)).all())
