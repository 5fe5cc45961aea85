"""An audit as people and machines see it. What `audit` and `audits` print: an audit as JSON or
a summary table, the list of audits, progress lines. And the report of a whole audit
(`report --audit`): its counts, one row per post (reused first), and each checked post's full
check report, built from the library as `provenance report ID` builds one.

URLs, titles and uploaders come from the internet: terminal text goes through text.safe.

All the checks are loaded through one database connection; the frame-pair evidence of each check
(cut from the evidence files) is the costly part, as in a check report.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import __version__, audit as audit_lib
from ..db import repository, session_scope
from ..errors import InputError
from ..pipeline import open_library
from ..records import AuditItemResult, AuditResult, AuditSummary, Sighting, Verdict
from ..settings import Settings
from ..db import shown_url
from .build import report_from_stored
from .model import CheckReport
from .text import iso, safe

# On the audit page, frame pairs for the strongest matches of each check and the first-seen clip's
# match: enough for an editor to see the evidence of each post. An account reposting its own footage
# gives later posts a match per earlier copy (bench/audit_report_speed.py: 50 such posts took 83 s
# and 18 MB with every pair); the check's own report has them all.
AUDIT_PAIRED_MATCHES = 2
# Checks built at once: OpenCV seeks and decodes without the GIL, so threads overlap the evidence
# files' decoding; more than the cores gains nothing.
REPORT_THREADS = max(1, min(4, os.cpu_count() or 1))
# What a row says for each outcome, in a few words.
OUTCOME_WORDS = {Verdict.REUSED: "Reused footage", Verdict.EARLIEST_KNOWN: "Earliest known appearance",
                 Verdict.NO_MATCH: "No match", "failed": "Failed", "pending": "Not checked yet"}

SCHEMA_VERSION = 1  # of `audit --json` and `audits --json`
# Reused posts first (what the desk is looking for), then the rest; failures stay visible.
_ORDER = {Verdict.REUSED: 0, Verdict.EARLIEST_KNOWN: 1, Verdict.NO_MATCH: 2, "failed": 3, "pending": 4}
_LABEL = {Verdict.REUSED: "REUSED", Verdict.EARLIEST_KNOWN: "EARLIEST KNOWN", Verdict.NO_MATCH: "NO MATCH",
          "failed": "FAILED", "pending": "PENDING"}
_REUSE = {"self": "self", "cross": "cross-account"}

@dataclass(frozen=True)
class AuditRow:
    """One post of the audit as its row shows it; `report` is its check's report once checked."""

    item: AuditItemResult
    outcome: str  # a Verdict, failed or pending
    posted_at: datetime | None  # the post's own time, else the listing's
    url: str  # the post's URL after redirects when checked, else as listed (untrusted)
    title: str | None  # the post's title when checked, else the listing's (untrusted)
    uploader: str | None  # untrusted
    report: CheckReport | None

    @property
    def anchor(self) -> str | None:
        return self.report.anchor if self.report is not None else None

    @property
    def first_seen(self) -> Sighting | None:
        return self.item.first_seen

    @property
    def words(self) -> str:
        return OUTCOME_WORDS.get(self.outcome, self.outcome)


@dataclass(frozen=True)
class AuditReport:
    audit: AuditResult
    counts: dict[str, int]
    rows: tuple[AuditRow, ...]  # reused first (ordered)
    generated_at: datetime
    tool_version: str
    database_url: str  # password removed

    @property
    def audit_id(self) -> int:
        return self.audit.audit_id

    @property
    def reports(self) -> tuple[CheckReport, ...]:
        return tuple(r.report for r in self.rows if r.report is not None)


def build_audit_report(audit_id: int, *, settings: Settings, images: bool = True, now: datetime | None = None,
                       paired_matches: int | None = AUDIT_PAIRED_MATCHES) -> AuditReport:
    """The report of a stored audit. `images` cuts thumbnails and frame pairs from the evidence files (HTML);
    `paired_matches` as in build.report_from_stored (None: every match's pairs, as JSON has them)."""
    now = now or datetime.now(UTC)
    engine = open_library(settings)
    try:
        try:
            result = audit_lib.load_result(engine, audit_id)
        except KeyError:
            raise InputError(f"no audit {audit_id} in {shown_url(settings.db_url)}; "
                             "list them with: provenance audits") from None
        items = ordered(result)
        stored = {}
        with session_scope(engine) as session:
            for item in items:
                if item.check_id is not None:
                    found = repository.load_check_for_report(item.check_id, session=session)
                    if found is not None:
                        stored[item.check_id] = found
    finally:
        engine.dispose()
    def build(check_id: int) -> CheckReport:
        return report_from_stored(stored[check_id], database_url=settings.db_url, images=images, now=now,
                                  paired_matches=paired_matches)

    with ThreadPoolExecutor(max_workers=REPORT_THREADS, thread_name_prefix="report") as pool:
        reports = dict(zip(stored, pool.map(build, stored), strict=True))
    rows = []
    for item in items:
        report = reports.get(item.check_id) if item.check_id is not None else None
        post = report.post if report is not None else None
        rows.append(AuditRow(
            item=item, outcome=outcome(item), posted_at=posted(item),
            url=(post.url if post is not None and post.url else item.url),
            title=(post.title if post is not None and post.title else item.title),
            uploader=post.uploader if post is not None else None, report=report))
    return AuditReport(audit=result, counts=counts(result), rows=tuple(rows), generated_at=now,
                       tool_version=__version__, database_url=shown_url(settings.db_url))


# --- what `audit` and `audits` print --------------------------------------------------------------


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
            "source": result.source, "title": result.title, "lister": audit_lib.lister_of(result),
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


def posted(i: AuditItemResult) -> datetime | None:
    """The post's own time when its check recorded one, else the listing's date."""
    return i.post.posted_at if i.post and i.post.posted_at else i.listed_posted_at


def ordered(result: AuditResult) -> list[AuditItemResult]:
    """Reused first, then earliest known, no match, failed, pending; oldest post first within each."""
    return sorted(result.items, key=lambda i: (_ORDER[outcome(i)], posted(i) or datetime.max.replace(
        tzinfo=result.created_at.tzinfo), i.position))


def audit_summary(result: AuditResult) -> str:
    c = counts(result)
    title = f" ({safe(result.title, 80)})" if result.title else ""
    lister = f", listed by {lister}" if (lister := audit_lib.lister_of(result)) else ""
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
        when_posted = iso(posted(i)) or "date unknown"
        lines.append(f"  {label:<24} {when_posted:<21} {safe(i.url)}")
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
        created = iso(s.created_at, whole_seconds=True) or ""
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


def progress_line(p: audit_lib.AuditProgress) -> str:
    """One plain log line per finished post (for a log file or a pipe)."""
    if p.url is None:
        done_before = p.total - p.to_do
        return (f"audit {p.audit_id}: {p.to_do} posts to check"
                + (f" ({done_before} of {p.total} done before)" if done_before else ""))
    label = "first seen " if p.outcome == Verdict.REUSED else ""
    detail = f"  ({label}{safe(p.detail, 300)})" if p.detail else ""
    return f"audit {p.audit_id}: [{p.processed}/{p.to_do}] {p.outcome}  {safe(p.url)}{detail}"
