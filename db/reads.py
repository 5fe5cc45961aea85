"""The reads a check makes, in plain SQL, for SQLAlchemy sessions and bare sqlite3 connections alike.

A check that records nothing of an SQLite library (`provenance check --no-record`, provenance.readonly)
reads it through Python's own sqlite3, so that the process never imports SQLAlchemy: its import and
the models' are ~0.5 s of CPU, which on two cores slows the decode running beside them (bench/README.md,
"A check that reads without SQLAlchemy"). The repository's functions of the same names run these
same statements through a session, so each query exists once, and the whole test suite reads through
it on SQLite and PostgreSQL.

Statements use `:name` parameters, which both sqlite3 and SQLAlchemy's text() accept, and only SQL
that SQLite and PostgreSQL read alike. Values come back as the driver gives them (no SQLAlchemy type
processing): times as naive UTC, strings on SQLite, and are made aware here as models.UTCDateTime does.
This module imports neither SQLAlchemy nor the models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from provenance import records
from provenance.motion import MOTION_GRID, MotionProfile

# The newest migration in migrations/versions, which a library must be at to be read. Kept here so that
# the check run before every command is one SELECT instead of importing Alembic (0.2 s of a 28-s clip's
# check, bench/check_speed.py); tests/test_db.py asserts it equals Alembic's head.
HEAD_REVISION = "0012"
_IN_CHUNK = 500  # ids per IN (...): far below every backend's bound-parameter limit

Run = Callable[[str, Mapping[str, Any]], Sequence[Sequence[Any]]]


def session_run(session: Any) -> Run:
    """`Run` through a SQLAlchemy session (inside its transaction)."""
    from sqlalchemy import text

    return lambda sql, params: session.execute(text(sql), dict(params)).all()


def sqlite_run(conn: Any) -> Run:
    """`Run` through a sqlite3 connection."""
    return lambda sql, params: conn.execute(sql, dict(params)).fetchall()


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite's DATETIME, as SQLAlchemy writes it: "2026-12-01 07:10:46.306000"
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def _placeholders(values: Sequence[Any], prefix: str) -> tuple[str, dict[str, Any]]:
    names = [f"{prefix}{i}" for i in range(len(values))]
    return ", ".join(f":{n}" for n in names), dict(zip(names, values, strict=True))


def stored_revision(run: Run) -> str | None:
    """The one revision in alembic_version; None when there is none or several."""
    rows = run("SELECT version_num FROM alembic_version", {})
    return rows[0][0] if len(rows) == 1 else None


def find_clip_id(run: Run, sha256: str) -> int | None:
    rows = run("SELECT id FROM clips WHERE sha256 = :sha256", {"sha256": sha256})
    return int(rows[0][0]) if rows else None


def clip_identity(run: Run, clip_id: int) -> str:
    """A clip's SHA-256 with a summary of its stored frame rows (how many, and their hashes' low bits
    summed): the same file hashed by another version of the sampling reads differently. One indexed
    aggregate over the clip's rows. KeyError when there is no such clip."""
    found = run("SELECT sha256 FROM clips WHERE id = :id", {"id": clip_id})
    if not found:
        raise KeyError(f"no clip with id {clip_id}")
    rows, low_bits = run("SELECT count(*), coalesce(sum(phash % 65536), 0) FROM frames WHERE clip_id = :id",
                         {"id": clip_id})[0]
    return f"{found[0][0]}:{int(rows)}:{int(low_bits)}"


def library_state(run: Run) -> records.LibraryState:
    """What the library holds, in one SELECT: cheap enough to ask before every match."""
    revision, clips, max_id, id_sum = run(
        "SELECT (SELECT max(version_num) FROM alembic_version), count(id), coalesce(max(id), 0), "
        "coalesce(sum(id), 0) FROM clips", {})[0]
    return records.LibraryState(revision=revision, clips=int(clips), max_clip_id=int(max_id),
                                clip_id_sum=int(id_sum))


def motion_of(run: Run, clip_id: int) -> MotionProfile | None:
    """A clip's motion profile, or None for a clip stored before profiles were kept."""
    rows = run("SELECT grid, times, cells FROM clip_motion WHERE clip_id = :id", {"id": clip_id})
    if not rows or rows[0][0] != MOTION_GRID:
        return None
    _, times, cells = rows[0]
    return MotionProfile.from_bytes(np.frombuffer(bytes(times), dtype=np.float64), bytes(cells))


def evidence_path_of(run: Run, clip_id: int) -> Path | None:
    """Where a clip's evidence copy is, when it is still there (a library moved to another machine or
    a cleaned store keeps the rows but not the files)."""
    rows = run("SELECT evidence_path FROM clips WHERE id = :id", {"id": clip_id})
    if not rows or not rows[0][0]:
        return None
    path = Path(rows[0][0])
    return path if path.is_file() else None


def audio_status_of(run: Run, clip_id: int) -> tuple[str, str | None] | None:
    """A stored clip's audio status and why it has no audio evidence; None: never fingerprinted."""
    rows = run("SELECT status, detail FROM clip_audio WHERE clip_id = :id", {"id": clip_id})
    return (rows[0][0], rows[0][1]) if rows else None


def sightings_for(run: Run, clip_ids: Iterable[int]) -> dict[int, list[records.Sighting]]:
    """Each clip's sightings, earliest first (posted time when known, else when we saw it).
    Every requested id is a key, with [] when it has none."""
    ids = sorted({int(i) for i in clip_ids})
    out: dict[int, list[records.Sighting]] = {i: [] for i in ids}
    for start in range(0, len(ids), _IN_CHUNK):
        marks, params = _placeholders(ids[start:start + _IN_CHUNK], "id")
        rows = run("SELECT s.id, s.clip_id, s.url, s.platform, s.post_id, s.uploader, s.posted_at, s.observed_at, "
                   f"c.sha256 FROM sightings s JOIN clips c ON c.id = s.clip_id WHERE s.clip_id IN ({marks}) "
                   "ORDER BY s.id", params)
        for sighting_id, clip_id, url, platform, post_id, uploader, posted_at, observed_at, sha in rows:
            out[int(clip_id)].append(records.Sighting(
                url=url, platform=platform, post_id=post_id, uploader=uploader, posted_at=_utc(posted_at),
                observed_at=_utc(observed_at), sha256=sha, sighting_id=int(sighting_id)))
    for found in out.values():
        found.sort(key=lambda s: s.posted_at or s.observed_at)  # stable: ties keep insertion order
    return out


def recorded_sha256s(run: Run, sha256s: Iterable[str]) -> set[str]:
    """Which of these file hashes some recorded page capture holds (so their files must stay)."""
    wanted = sorted(set(sha256s))
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        marks, params = _placeholders(wanted[start:start + _IN_CHUNK], "sha")
        for row in run(f"SELECT screenshot_sha256, archive_sha256 FROM page_captures "
                       f"WHERE screenshot_sha256 IN ({marks}) OR archive_sha256 IN ({marks})", params):
            found.update(row)
    return found & set(wanted)


class Reads:
    """The reads above bound to one transaction's `run`: what a check asks of the library."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def find_clip_id(self, sha256: str) -> int | None:
        return find_clip_id(self.run, sha256)

    def clip_identity(self, clip_id: int) -> str:
        return clip_identity(self.run, clip_id)

    def library_state(self) -> records.LibraryState:
        return library_state(self.run)

    def motion_of(self, clip_id: int) -> MotionProfile | None:
        return motion_of(self.run, clip_id)

    def evidence_path_of(self, clip_id: int) -> Path | None:
        return evidence_path_of(self.run, clip_id)

    def audio_status_of(self, clip_id: int) -> tuple[str, str | None] | None:
        return audio_status_of(self.run, clip_id)

    def sightings_for(self, clip_ids: Iterable[int]) -> dict[int, list[records.Sighting]]:
        return sightings_for(self.run, clip_ids)

    def recorded_sha256s(self, sha256s: Iterable[str]) -> set[str]:
        return recorded_sha256s(self.run, sha256s)
