"""The report of a whole audit: its counts, one row per post (reused first), and each checked
post's full check report, built from the library as `provenance report ID` builds one.

All the checks are loaded through one database connection; the frame-pair evidence of each check
(cut from the evidence files) is the costly part, as in a check report.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from .. import __version__, audit as audit_lib, audit_report
from ..db import repository, session_scope
from ..errors import InputError
from ..pipeline import open_library
from ..records import AuditItemResult, AuditResult, Sighting, Verdict
from ..settings import Settings
from ..db import shown_url
from .build import report_from_stored
from .model import CheckReport

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
    rows: tuple[AuditRow, ...]  # reused first (audit_report.ordered)
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
        items = audit_report.ordered(result)
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
            item=item, outcome=audit_report.outcome(item), posted_at=audit_report.posted(item),
            url=(post.url if post is not None and post.url else item.url),
            title=(post.title if post is not None and post.title else item.title),
            uploader=post.uploader if post is not None else None, report=report))
    return AuditReport(audit=result, counts=audit_report.counts(result), rows=tuple(rows), generated_at=now,
                       tool_version=__version__, database_url=shown_url(settings.db_url))
