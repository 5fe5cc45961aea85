"""An audit as JSON for machines or a summary table for people; the list of audits; progress lines.

URLs, titles and uploaders come from the internet: terminal text goes through report.safe.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .audit import AuditProgress, lister_of
from .records import AuditItemResult, AuditResult, AuditSummary, Sighting, Verdict
from .report import iso, safe

SCHEMA_VERSION = 1
# Reused posts first (what the desk is looking for), then the rest; failures stay visible.
_ORDER = {Verdict.REUSED: 0, Verdict.EARLIEST_KNOWN: 1, Verdict.NO_MATCH: 2, "failed": 3, "pending": 4}
_LABEL = {Verdict.REUSED: "REUSED", Verdict.EARLIEST_KNOWN: "EARLIEST KNOWN", Verdict.NO_MATCH: "NO MATCH",
          "failed": "FAILED", "pending": "PENDING"}
_REUSE = {"self": "self", "cross": "cross-account"}


def outcome(item: AuditItemResult) -> str:
    """The verdict (reused, earliest_known, no_match) once checked, else failed or pending."""
    return item.verdict if item.state == "done" and item.verdict else item.state


def counts(result: AuditResult) -> dict[str, int]:
    return {"posts": len(result.items), "reused": result.count(verdict=Verdict.REUSED),
            "reused_self": result.count(reuse="self"), "reused_cross": result.count(reuse="cross"),
            "earliest_known": result.count(verdict=Verdict.EARLIEST_KNOWN),
            "no_match": result.count(verdict=Verdict.NO_MATCH),
            "failed": result.count(state="failed"), "pending": result.count(state="pending")}


def audit_to_dict(result: AuditResult) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "audit_id": result.audit_id, "kind": result.kind,
            "source": result.source, "title": result.title, "lister": lister_of(result),
            "options": result.options, "status": result.status,
            "created_at": iso(result.created_at), "finished_at": iso(result.finished_at),
            "counts": counts(result), "items": [_item(i) for i in result.items]}


def audit_to_json(result: AuditResult) -> str:
    return json.dumps(audit_to_dict(result), indent=2, ensure_ascii=True)


def _item(i: AuditItemResult) -> dict[str, Any]:
    return {"position": i.position, "url": i.url, "title": i.title, "listed_posted_at": iso(i.listed_posted_at),
            "state": i.state, "outcome": outcome(i), "attempts": i.attempts, "error": i.error,
            "error_code": i.error_code, "check_id": i.check_id, "verdict": i.verdict,
            "checked_at": iso(i.checked_at), "reuse": i.reuse, "post": _sighting(i.post),
            "first_seen": _sighting(i.first_seen), "similarity": i.similarity, "transforms": list(i.transforms),
            "match_count": i.match_count}


def _sighting(s: Sighting | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"url": s.url, "platform": s.platform, "post_id": s.post_id, "uploader": s.uploader,
            "posted_at": iso(s.posted_at), "observed_at": iso(s.observed_at), "sha256": s.sha256}


def _posted(i: AuditItemResult) -> datetime | None:
    return i.post.posted_at if i.post and i.post.posted_at else i.listed_posted_at


def posted(i: AuditItemResult) -> datetime | None:
    """The post's own time when its check recorded one, else the listing's date."""
    return _posted(i)


def ordered(result: AuditResult) -> list[AuditItemResult]:
    """Reused first, then earliest known, no match, failed, pending; oldest post first within each."""
    return sorted(result.items, key=lambda i: (_ORDER[outcome(i)], _posted(i) or datetime.max.replace(
        tzinfo=result.created_at.tzinfo), i.position))


def audit_summary(result: AuditResult) -> str:
    c = counts(result)
    title = f" ({safe(result.title, 80)})" if result.title else ""
    lister = f", listed by {lister}" if (lister := lister_of(result)) else ""
    lines = [f"AUDIT {result.audit_id} of {safe(result.source)}{title}: {result.status}, {c['posts']} posts"
             f"{lister}",
             f"  reused {c['reused']} ({c['reused_self']} self, {c['reused_cross']} cross-account)   "
             f"earliest known {c['earliest_known']}   no match {c['no_match']}   failed {c['failed']}"
             + (f"   pending {c['pending']}" if c["pending"] else "")]
    items = ordered(result)
    if items:
        lines.append("")
    for i in items:
        kind = outcome(i)
        label = _LABEL[kind] + (f" ({_REUSE[i.reuse]})" if i.reuse else "")
        posted = iso(_posted(i)) or "date unknown"
        lines.append(f"  {label:<24} {posted:<21} {safe(i.url)}")
        if kind == Verdict.REUSED and i.first_seen is not None:
            fs = i.first_seen
            when = f"posted {iso(fs.posted_at)}" if fs.posted_at else f"observed {iso(fs.observed_at)}"
            similarity = f", similarity {i.similarity:.2f}" if i.similarity is not None else ""
            transforms = f" [{', '.join(i.transforms)}]" if i.transforms else ""
            lines.append(f"  {'':<24} first seen {safe(fs.url) if fs.url else '(no URL)'}, {when}"
                         f"{similarity}{transforms}")
        elif kind == "failed":
            lines.append(f"  {'':<24} {safe(i.error or 'unknown error', 300)}")
    return "\n".join(lines)


def audits_table(summaries: list[AuditSummary]) -> str:
    if not summaries:
        return "no audits yet; start one with: provenance audit URL"
    header = f"{'id':>4}  {'status':<8} {'created':<20} {'posts':>5} {'reused':>6} {'earliest':>8} " \
             f"{'no match':>8} {'failed':>6} {'pending':>7}  source"
    lines = [header]
    for s in summaries:
        created = iso(s.created_at.replace(microsecond=0)) or ""
        lines.append(f"{s.audit_id:>4}  {s.status:<8} {created:<20} {s.posts:>5} {s.reused:>6} "
                     f"{s.earliest_known:>8} {s.no_match:>8} {s.failed:>6} {s.pending:>7}  {safe(s.source)}")
    return "\n".join(lines)


def audits_to_json(summaries: list[AuditSummary]) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, "audits": [
        {"audit_id": s.audit_id, "kind": s.kind, "source": s.source, "title": s.title, "status": s.status,
         "created_at": iso(s.created_at), "finished_at": iso(s.finished_at),
         "counts": {"posts": s.posts, "reused": s.reused, "earliest_known": s.earliest_known,
                    "no_match": s.no_match, "failed": s.failed, "pending": s.pending}}
        for s in summaries]}, indent=2, ensure_ascii=True)


def progress_line(p: AuditProgress) -> str:
    """One plain log line per finished post (for a log file or a pipe)."""
    if p.url is None:
        done_before = p.total - p.to_do
        return (f"audit {p.audit_id}: {p.to_do} posts to check"
                + (f" ({done_before} of {p.total} done before)" if done_before else ""))
    label = "first seen " if p.outcome == Verdict.REUSED else ""
    detail = f"  ({label}{safe(p.detail, 300)})" if p.detail else ""
    return f"audit {p.audit_id}: [{p.processed}/{p.to_do}] {p.outcome}  {safe(p.url)}{detail}"
