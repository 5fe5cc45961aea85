"""Reads and writes for trusted timestamps (provenance.timestamps). Session keyword-only, records out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance.db import models as orm
from provenance.timestamps import Stamp

CLIP, REPORT = "clip", "report"
# A page capture's two files (provenance.capture): stamped, verified and bundled like the clip.
SCREENSHOT, WEB_ARCHIVE = "screenshot", "web_archive"


@dataclass(frozen=True)
class StampedFile:
    """A file a check stands on, where it should be, and the stamps over its recorded SHA-256."""

    subject: str  # CLIP | REPORT | SCREENSHOT | WEB_ARCHIVE
    path: str | None  # the evidence file or the report as written; None if the store kept none
    sha256: str  # as recorded: what the file held when it was checked or written
    stamps: tuple[Stamp, ...]


def add_stamps(stamps: Iterable[Stamp], *, subject: str, check_id: int | None, path: str | None,
               session: Session) -> None:
    session.add_all(orm.Timestamp(sha256=s.sha256, subject=subject, check_id=check_id, path=path,
                                  tsa_url=s.tsa_url, tsa_name=s.tsa_name, stamped_at=s.stamped_at,
                                  response=s.response) for s in stamps)
    session.flush()


def files_of_check(check_id: int, *, session: Session) -> tuple[StampedFile, ...] | None:
    """The check's clip (with every stamp over its SHA-256, from any check or ingest) and each
    report stamped for it; None if there is no such check."""
    check = session.get(orm.Check, check_id)
    if check is None:
        return None
    clip = session.get(orm.Clip, check.clip_id)
    files = [StampedFile(subject=CLIP, path=clip.evidence_path, sha256=clip.sha256,
                         stamps=_stamps(session, orm.Timestamp.sha256 == clip.sha256,
                                        orm.Timestamp.subject == CLIP))]
    for capture in session.scalars(select(orm.PageCapture).where(orm.PageCapture.check_id == check_id)
                                   .order_by(orm.PageCapture.id)):
        for subject, path, sha in ((SCREENSHOT, capture.screenshot_path, capture.screenshot_sha256),
                                   (WEB_ARCHIVE, capture.archive_path, capture.archive_sha256)):
            files.append(StampedFile(subject=subject, path=path, sha256=sha,
                                     stamps=_stamps(session, orm.Timestamp.sha256 == sha,
                                                    orm.Timestamp.subject == subject)))
    reports: dict[tuple[str | None, str], list[Stamp]] = {}
    for row in session.scalars(select(orm.Timestamp).where(orm.Timestamp.check_id == check_id,
                                                           orm.Timestamp.subject == REPORT)
                               .order_by(orm.Timestamp.id)):
        reports.setdefault((row.path, row.sha256), []).append(_stamp(row))
    files += [StampedFile(subject=REPORT, path=path, sha256=sha, stamps=tuple(stamps))
              for (path, sha), stamps in reports.items()]
    return tuple(files)


def _stamps(session: Session, *where) -> tuple[Stamp, ...]:
    rows = session.scalars(select(orm.Timestamp).where(*where).order_by(orm.Timestamp.stamped_at, orm.Timestamp.id))
    return tuple(_stamp(r) for r in rows)


def _stamp(row: orm.Timestamp) -> Stamp:
    return Stamp(sha256=row.sha256, tsa_url=row.tsa_url, response=row.response, stamped_at=row.stamped_at,
                 tsa_name=row.tsa_name)
