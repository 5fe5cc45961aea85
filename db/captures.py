"""Reads and writes for page captures (provenance.capture). Session keyword-only, records out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance.db import models as orm, reads
from provenance.stored import StoredCapture

if TYPE_CHECKING:
    from provenance.capture import PageCapture


def add_capture(capture: PageCapture, *, sighting_id: int, check_id: int | None, session: Session) -> None:
    session.add(orm.PageCapture(
        sighting_id=sighting_id, check_id=check_id, url=capture.url, final_url=capture.final_url,
        title=capture.title, http_status=capture.http_status, captured_at=capture.captured_at,
        browser=capture.browser[:64], screenshot_sha256=capture.screenshot.sha256,
        screenshot_path=str(capture.screenshot.path), screenshot_bytes=capture.screenshot.size_bytes,
        archive_sha256=capture.archive.sha256, archive_path=str(capture.archive.path),
        archive_bytes=capture.archive.size_bytes, archive_format=capture.archive_format,
        resources=capture.resources, refused=list(capture.refused) or None))
    session.flush()


def captures_of_check(check_id: int, *, session: Session) -> tuple[StoredCapture, ...]:
    rows = session.scalars(select(orm.PageCapture).where(orm.PageCapture.check_id == check_id)
                           .order_by(orm.PageCapture.id))
    return tuple(_record(r) for r in rows)


def recorded_sha256s(sha256s: Iterable[str], *, session: Session) -> set[str]:
    """Which of these file hashes some recorded capture holds (so their files must stay)."""
    return reads.recorded_sha256s(reads.session_run(session), sha256s)


def _record(row: orm.PageCapture) -> StoredCapture:
    return StoredCapture(
        url=row.url, final_url=row.final_url, title=row.title, http_status=row.http_status,
        captured_at=row.captured_at, browser=row.browser, screenshot_sha256=row.screenshot_sha256,
        screenshot_path=row.screenshot_path, screenshot_bytes=row.screenshot_bytes,
        archive_sha256=row.archive_sha256, archive_path=row.archive_path, archive_bytes=row.archive_bytes,
        archive_format=row.archive_format, resources=row.resources, refused=tuple(row.refused or ()))
