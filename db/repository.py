"""Reads and writes. Every function takes the session keyword-only and returns records or ints."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

import numpy as np
from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from provenance import audio, records, stored
from provenance.credentials import CredentialsReading, credentials_from_dict
from provenance.frames import REFERENCE_VARIANTS
from provenance.motion import MotionProfile
from provenance.shots import Shot
from provenance.db.captures import captures_of_check
from provenance.db import models as orm, reads

HASH_ALGO = "phash64"
CREDENTIALS_NONE = "none"  # content_credentials.state: the clip was read and carries no manifest
SOURCES = ("ingest", "check")
_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1
_FRAME_DTYPE = np.dtype([("clip_id", np.int64), ("t", np.float64), ("variant", np.int64), ("phash", np.int64)])
_IN_CHUNK = 500  # stays far below every backend's bound-parameter limit
_PG_FETCH_ROWS = 50_000  # rows per round trip of the frames cursor on PostgreSQL (~2 MB)


def to_signed64(h: int) -> int:
    """Unsigned 64-bit hash -> the int64 the database can store (same bits)."""
    if not 0 <= h < _U64:
        raise ValueError(f"hash {h} is not an unsigned 64-bit value")
    return h - _U64 if h > _I64_MAX else h


def to_unsigned64(v: int) -> int:
    return v + _U64 if v < 0 else v


def json_safe(value: Any) -> Any:
    """Plain JSON types only: PostgreSQL rejects NaN, and nothing else may reach the driver."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


def find_clip_id(sha256: str, *, session: Session) -> int | None:
    return reads.find_clip_id(reads.session_run(session), sha256)


def clip_sha256s(*, session: Session) -> set[str]:
    """The SHA-256 of every clip in the library."""
    return set(session.scalars(select(orm.Clip.sha256)))


def clip_sha256(clip_id: int, *, session: Session) -> str:
    sha = session.scalar(select(orm.Clip.sha256).where(orm.Clip.id == clip_id))
    if sha is None:
        raise KeyError(f"no clip with id {clip_id}")
    return sha


def clip_identity(clip_id: int, *, session: Session) -> str:
    """A clip's SHA-256 with a summary of its stored frame rows (how many, and their hashes' low bits
    summed): the same file hashed by another version of the sampling reads differently. One indexed
    aggregate over the clip's rows. KeyError when there is no such clip."""
    return reads.clip_identity(reads.session_run(session), clip_id)


def add_clip(
    media: records.FetchedMedia,
    probe: records.ProbeInfo,
    fingerprint: records.Fingerprint,
    *,
    session: Session,
    observed_at: datetime,
    min_quality: float,
) -> int:
    """Store a clip and its frame hashes once per SHA-256; returns the clip id either way."""
    return upsert_clip(
        media, probe, fingerprint, session=session, observed_at=observed_at, min_quality=min_quality
    )[0]


def upsert_clip(
    media: records.FetchedMedia,
    probe: records.ProbeInfo,
    fingerprint: records.Fingerprint,
    *,
    session: Session,
    observed_at: datetime,
    min_quality: float,
) -> tuple[int, bool]:
    """Store a clip and its frame hashes once per SHA-256: (clip id, whether this call added it).

    Safe against another process adding the same clip at the same moment: the insert is
    INSERT .. ON CONFLICT (sha256) DO NOTHING, so the loser of the race inserts nothing (PostgreSQL
    makes it wait for the winner's commit; SQLite's write lock does the same) and then reads the
    winner's id. Frames are written only by the call that added the clip, so never twice."""
    existing = find_clip_id(media.sha256, session=session)
    if existing is not None:
        return existing, False
    video = probe.video
    box = fingerprint.content_box
    frames = sorted(fingerprint.stored_frames, key=lambda f: f.t)
    values = dict(
        sha256=media.sha256,
        size_bytes=media.size_bytes,
        evidence_path=str(media.path),
        container=probe.container,
        # The decoded length is what the frame hashes cover; containers can misreport theirs
        # (the probe's own value stays in the probe JSON).
        duration_s=fingerprint.decoded_duration_s or probe.duration_s,
        width=video.width if video else None,
        height=video.height if video else None,
        fps=video.fps if video else None,
        video_codec=video.codec if video else None,
        has_audio=probe.has_audio,
        probe=json_safe(probe),
        sample_fps=fingerprint.sample_fps,
        hash_algo=HASH_ALGO,
        content_left=box.left,
        content_top=box.top,
        content_right=box.right,
        content_bottom=box.bottom,
        usable_frames=sum(1 for f in frames if f.quality >= min_quality),
        first_observed_at=observed_at,
    )
    stmt = (
        backend_insert(session, orm.Clip)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(orm.Clip.id)
    )
    clip_id = session.scalar(stmt)
    if clip_id is None:  # another process stored it since find_clip_id looked
        clip_id = find_clip_id(media.sha256, session=session)
        assert clip_id is not None, "ON CONFLICT (sha256) without a row of that sha256"
        return clip_id, False
    if frames:
        # One executemany, not an ORM object per frame: clips have thousands of frames.
        session.execute(
            insert(orm.Frame),
            [
                {"clip_id": clip_id, "t": f.t, "variant": variant, "phash": to_signed64(h), "quality": f.quality}
                for f in frames
                # A query fingerprint has more views than the library keeps; the first ones are the same.
                for variant, h in enumerate((f.phash, *f.variants)[: len(REFERENCE_VARIANTS)])
            ],
        )
    if fingerprint.shots:
        session.execute(insert(orm.ClipShot), [
            {"clip_id": clip_id, "start_s": s.start_s, "end_s": s.end_s, "keyframe_s": s.keyframe_s}
            for s in fingerprint.shots])
    profile = fingerprint.motion
    if profile is not None and profile.cells.shape[0]:
        session.execute(insert(orm.ClipMotion), [{
            "clip_id": clip_id, "grid": int(round(profile.cells.shape[1] ** 0.5)),
            "times": np.asarray(profile.times, dtype=np.float64).tobytes(),
            "cells": np.ascontiguousarray(profile.cells, dtype=np.uint8).tobytes()}])
    if fingerprint.audio is not None:
        _add_audio(clip_id, fingerprint.audio, session=session)
    return clip_id, True


def add_credentials(clip_id: int, reading: CredentialsReading, *, session: Session) -> None:
    """Record what reading the clip found, once per clip: a clip recorded again keeps its first reading."""
    credentials = reading.credentials
    # ON CONFLICT: two processes recording one clip (or re-reading a clip recorded before credentials
    # were read) insert one row; the other's insert does nothing.
    session.execute(backend_insert(session, orm.ContentCredential).values(
        clip_id=clip_id, read_at=reading.read_at, reader=reading.reader,
        state=credentials.state if credentials else CREDENTIALS_NONE,
        summary=json_safe(credentials.to_dict()) if credentials else None,
        manifest=json_safe(credentials.manifest) if credentials else None,
    ).on_conflict_do_nothing(index_elements=["clip_id"]))


def shots_of(clip_id: int, *, session: Session) -> tuple[Shot, ...]:
    """A clip's shots in time order; none for a clip recorded before shots were found."""
    rows = session.execute(select(orm.ClipShot.start_s, orm.ClipShot.end_s, orm.ClipShot.keyframe_s)
                           .where(orm.ClipShot.clip_id == clip_id).order_by(orm.ClipShot.start_s, orm.ClipShot.id))
    return tuple(Shot(start_s=a, end_s=b, keyframe_s=k) for a, b, k in rows)


def credentials_of(clip_id: int, *, session: Session) -> CredentialsReading | None:
    """The clip's recorded reading; None if it was recorded before credentials were read."""
    row = session.scalar(select(orm.ContentCredential).where(orm.ContentCredential.clip_id == clip_id))
    if row is None:
        return None
    none = row.state == CREDENTIALS_NONE or row.summary is None
    credentials = None if none else credentials_from_dict(row.summary, row.manifest)
    return CredentialsReading(read_at=row.read_at, reader=row.reader, credentials=credentials)


def _add_audio(clip_id: int, fp: Any, *, session: Session) -> None:
    """The clip's audio status and its sub-fingerprints at speed 1.0 (a query's other speeds are
    for matching only)."""
    values = np.asarray(fp.items, dtype=np.int64)
    session.execute(insert(orm.ClipAudio), [{
        "clip_id": clip_id, "status": str(fp.status), "algorithm": f"chromaprint{audio.ALGORITHM}",
        "item_s": audio.ITEM_S, "items": int(values.size), "max_volume_db": fp.max_volume_db,
        "detail": fp.detail or None}])
    if values.size:
        session.execute(insert(orm.AudioItem), [
            {"clip_id": clip_id, "i": i, "t": round(i * audio.ITEM_S, 6), "value": int(v)}
            for i, v in enumerate(values.tolist())])


def load_audio_items(*, session: Session, clip_ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every stored sub-fingerprint (or those of the clips `clip_ids`): (clip ids as int64, values as
    uint32), ordered by clip id, each clip's items in time order."""
    if clip_ids is None:
        chunks: list[Sequence[int] | None] = [None]
    else:
        wanted = sorted(clip_ids)
        chunks = [wanted[k:k + _IN_CHUNK] for k in range(0, len(wanted), _IN_CHUNK)]
    parts = []
    for chunk in chunks:
        query = select(orm.AudioItem.clip_id, orm.AudioItem.value)
        if chunk is not None:
            query = query.where(orm.AudioItem.clip_id.in_(chunk))
        parts.append(np.array(session.execute(query.order_by(orm.AudioItem.clip_id, orm.AudioItem.i)).all(),
                              dtype=np.int64).reshape(-1, 2))
    arr = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)
    return arr[:, 0].copy(), arr[:, 1].astype(np.uint32)


def load_audio_library(*, session: Session) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Every stored sub-fingerprint: (clip ids, values, clip id -> SHA-256), each clip's items in
    time order and together."""
    clip_ids, values = load_audio_items(session=session)
    ids = np.unique(clip_ids).tolist()
    sha_of: dict[int, str] = {}
    for chunk in range(0, len(ids), _IN_CHUNK):
        part = ids[chunk:chunk + _IN_CHUNK]
        sha_of.update({int(i): s for i, s in session.execute(select(orm.Clip.id, orm.Clip.sha256)
                                                              .where(orm.Clip.id.in_(part)))})
    return clip_ids, values, sha_of


def audio_status_of(clip_id: int, *, session: Session) -> tuple[str, str | None] | None:
    """A stored clip's audio status and why it has no audio evidence; None: never fingerprinted."""
    return reads.audio_status_of(reads.session_run(session), clip_id)


def add_audio_matches(check_id: int, matches: Sequence[tuple[int, records.AudioMatch]], *,
                      session: Session) -> None:
    """A check's audio matches, in the given order (rank 0 = strongest)."""
    if not matches:
        return
    session.execute(insert(orm.AudioMatchRow), [{
        "check_id": check_id, "reference_clip_id": clip_id, "rank": rank, "similarity": m.similarity,
        "offset_s": m.offset_s, "speed": m.speed, "matched_items": m.matched_items, "query_items": m.query_items,
        "reference_items": m.reference_items, "query_coverage": m.query_coverage,
        "reference_coverage": m.reference_coverage,
        "segments": [dataclasses.asdict(s) for s in m.segments]} for rank, (clip_id, m) in enumerate(matches)])


def audio_matches_of(check_id: int, *, session: Session) -> tuple[records.AudioMatch, ...]:
    """A stored check's audio matches, strongest first."""
    rows = session.execute(select(orm.AudioMatchRow, orm.Clip.sha256)
                           .join(orm.Clip, orm.Clip.id == orm.AudioMatchRow.reference_clip_id)
                           .where(orm.AudioMatchRow.check_id == check_id).order_by(orm.AudioMatchRow.rank)).all()
    return tuple(records.AudioMatch(
        sha256=sha, similarity=r.similarity, segments=tuple(records.Segment(**s) for s in r.segments),
        offset_s=r.offset_s, speed=r.speed, matched_items=r.matched_items, query_items=r.query_items,
        reference_items=r.reference_items, query_coverage=r.query_coverage,
        reference_coverage=r.reference_coverage) for r, sha in rows)


def motion_of(clip_id: int, *, session: Session) -> MotionProfile | None:
    """A clip's motion profile, or None for a clip stored before profiles were kept."""
    return reads.motion_of(reads.session_run(session), clip_id)


def evidence_path_of(clip_id: int, *, session: Session) -> Path | None:
    """Where a clip's evidence copy is, when it is still there (a library moved to another machine or
    a cleaned store keeps the rows but not the files)."""
    return reads.evidence_path_of(reads.session_run(session), clip_id)


# What a later sighting of the same clip in the same post may add to the stored one: post metadata
# the first observation lacked (e.g. --posted-at given on a second ingest). Nothing stored is
# overwritten: the first observation is the evidence, and its source and observed_at stay.
_SIGHTING_FILLABLE = (
    "platform",
    "post_id",
    "uploader",
    "uploader_id",
    "posted_at",
    "title",
    "description",
    "post_created_at",
    "media_created_at",
    "info",
)


def add_sighting(
    clip_id: int,
    post: records.Post,
    *,
    source: str,
    observed_at: datetime,
    session: Session,
) -> int:
    """Record that a clip was seen in a post; returns the sighting's id (see upsert_sighting)."""
    return upsert_sighting(clip_id, post, source=source, observed_at=observed_at, session=session)[0]


def upsert_sighting(
    clip_id: int,
    post: records.Post,
    *,
    source: str,
    observed_at: datetime,
    session: Session,
) -> tuple[int, bool]:
    """Record that a clip was seen in a post: (the sighting's id, whether this call added it).

    A clip at a post URL it was already seen at, or seen again without a URL, is the same
    sighting (see models.SIGHTING_KEY): its id is returned and only its missing post metadata is
    filled in, even when another process records the same sighting at the same moment (the
    insert is INSERT .. ON CONFLICT DO NOTHING, which waits for the other's commit, then finds
    its row)."""
    if source not in SOURCES:
        raise ValueError(f"sighting source must be one of {SOURCES}, not {source!r}")
    key_sha256 = orm.url_sha256(post.url)
    values = dict(
        clip_id=clip_id,
        source=source,
        url=post.url,
        url_sha256=key_sha256,
        platform=post.platform,
        post_id=post.post_id,
        uploader=post.uploader,
        uploader_id=post.uploader_id,
        posted_at=post.posted_at,
        observed_at=observed_at,
        title=post.title,
        description=post.description,
        post_created_at=post.post_created_at,
        media_created_at=post.media_created_at,
        info=json_safe(post.info) if post.info is not None else None,
    )
    key, key_where = ((orm.SIGHTING_KEY, orm.SIGHTING_KEY_WHERE) if key_sha256 is not None
                      else (orm.SIGHTING_NO_URL_KEY, orm.SIGHTING_NO_URL_WHERE))
    stmt = (
        backend_insert(session, orm.Sighting)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(key), index_where=key_where)
        .returning(orm.Sighting.id)
    )
    added = session.scalar(stmt)
    if added is not None:
        return added, True
    table = orm.Sighting.__table__
    same = (table.c.clip_id == clip_id) & (
        table.c.url_sha256 == key_sha256 if key_sha256 is not None else table.c.url_sha256.is_(None)
    )
    fill = {
        c: func.coalesce(table.c[c], literal(values[c], type_=table.c[c].type))
        for c in _SIGHTING_FILLABLE
        if values[c] is not None
    }
    found = (
        session.scalar(update(table).where(same).values(fill).returning(table.c.id))
        if fill
        else session.scalar(select(table.c.id).where(same))
    )
    assert found is not None, "ON CONFLICT DO NOTHING without a row of that key"
    return found, False


def backend_insert(session: Session, model: type[orm.Base]) -> Any:
    """The backend's own INSERT, which has .on_conflict_do_nothing/.on_conflict_do_update."""
    backend = session.get_bind().dialect.name
    if backend == "postgresql":
        return pg_insert(model)
    if backend == "sqlite":
        return sqlite_insert(model)
    raise AssertionError(f"unsupported backend {backend}: provenance.db.connect refuses it")


def library_state(*, session: Session) -> records.LibraryState:
    """What the library holds, in one SELECT: cheap enough to ask before every match."""
    return reads.library_state(reads.session_run(session))


def clip_ids(*, session: Session) -> np.ndarray:
    """Every clip id, ascending (int64)."""
    return np.fromiter(session.scalars(select(orm.Clip.id).order_by(orm.Clip.id)), dtype=np.int64)


def load_reference_frames(
    *, session: Session, min_quality: float, clip_ids: Sequence[int] | None = None
) -> records.ReferenceFrames:
    """Every usable frame hash in the library (or of the clips `clip_ids`), as flat numpy arrays ordered
    by frame id (with `clip_ids`, by frame id within chunks of clips): each clip's frames are
    contiguous and in time order, which is all the matcher relies on.

    The clips are read first and only their frames are kept: on PostgreSQL (READ COMMITTED) a clip
    committed between the two SELECTs must not appear without its frames in a library that is kept
    current incrementally (provenance.index), or its frames would never be loaded."""
    clips = _reference_clips(session, clip_ids)
    if clip_ids is None:
        rows = _frame_rows(session, min_quality, None)
    else:
        ids = sorted(clips)
        parts = [_frame_rows(session, min_quality, ids[i:i + _IN_CHUNK]) for i in range(0, len(ids), _IN_CHUNK)]
        rows = np.concatenate(parts) if parts else np.zeros(0, dtype=_FRAME_DTYPE)
    if rows.size:
        rows = rows[_known(rows["clip_id"], clips)]
    return records.ReferenceFrames(
        clip_ids=np.ascontiguousarray(rows["clip_id"]),
        times=np.ascontiguousarray(rows["t"]),
        variants=np.ascontiguousarray(rows["variant"]),
        hashes=np.ascontiguousarray(rows["phash"]).view(np.uint64),
        clips=clips,
    )


def _known(clip_of_row: np.ndarray, clips: dict[int, records.ReferenceClip]) -> np.ndarray:
    """Which rows belong to one of `clips` (a lookup table by clip id: linear, unlike np.isin)."""
    if not clips:
        return np.zeros(clip_of_row.size, dtype=bool)
    table = np.zeros(max(clips) + 2, dtype=bool)
    table[np.fromiter(clips, dtype=np.int64, count=len(clips))] = True
    return table[np.clip(clip_of_row, 0, table.size - 1)]


def _frame_rows(session: Session, min_quality: float, clip_ids: Sequence[int] | None) -> np.ndarray:
    stmt = select(orm.Frame.clip_id, orm.Frame.t, orm.Frame.variant, orm.Frame.phash).where(
        orm.Frame.quality >= float(min_quality)
    )
    if clip_ids is not None:
        stmt = stmt.where(orm.Frame.clip_id.in_([int(i) for i in clip_ids]))
    stmt = stmt.order_by(orm.Frame.id)
    # Straight from the driver's cursor (same connection, same transaction) into a structured
    # array: building a SQLAlchemy Row per frame roughly doubles the time on 1M rows. The SQL
    # is still compiled by SQLAlchemy, so it stays portable; the binds are int and float literals.
    conn = session.connection()
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        # A server-side cursor streams the rows in batches: psycopg's default cursor would hold every
        # row as Python objects at once (~2 GB at 10M rows, bench/scale.py). sqlite3's cursor streams.
        cursor = driver.cursor(name="provenance_frames")  # type: ignore[union-attr]
        cursor.itersize = _PG_FETCH_ROWS
    else:
        cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return np.fromiter(cursor, dtype=_FRAME_DTYPE)
    finally:
        cursor.close()


def _reference_clips(session: Session, clip_ids: Sequence[int] | None) -> dict[int, records.ReferenceClip]:
    stmt = select(
        orm.Clip.id,
        orm.Clip.sha256,
        orm.Clip.duration_s,
        orm.Clip.usable_frames,
        orm.Clip.content_left,
        orm.Clip.content_top,
        orm.Clip.content_right,
        orm.Clip.content_bottom,
    )
    if clip_ids is None:
        chunks: list[Any] = [stmt]
    else:
        ids = sorted({int(i) for i in clip_ids})
        chunks = [stmt.where(orm.Clip.id.in_(ids[i:i + _IN_CHUNK])) for i in range(0, len(ids), _IN_CHUNK)]
    return {
        r.id: records.ReferenceClip(
            clip_id=r.id,
            sha256=r.sha256,
            duration_s=r.duration_s,
            usable_frames=r.usable_frames,
            content_box=records.ContentBox(r.content_left, r.content_top, r.content_right, r.content_bottom),
        )
        for chunk in chunks
        for r in session.execute(chunk)
    }


def sightings_for(
    clip_ids: Iterable[int], *, session: Session
) -> dict[int, list[records.Sighting]]:
    """Each clip's sightings, earliest first (posted time when known, else when we saw it).
    Every requested id is a key, with [] when it has none."""
    return reads.sightings_for(reads.session_run(session), clip_ids)


def add_check(
    *,
    session: Session,
    clip_id: int,
    sighting_id: int | None,
    created_at: datetime,
    verdict: str,
    first_seen_clip_id: int | None,
    first_seen_sighting_id: int | None,
    first_seen_at: datetime | None,
    params: dict[str, Any],
    tool_version: str,
    matches: Sequence[tuple[int, records.Match]],
    scenes: Sequence[records.SceneHint] = (),
) -> int:
    """Store a check with its matches in the given order (rank 0 = strongest) and their segments."""
    check = orm.Check(
        clip_id=clip_id,
        sighting_id=sighting_id,
        created_at=created_at,
        verdict=verdict,
        first_seen_clip_id=first_seen_clip_id,
        first_seen_sighting_id=first_seen_sighting_id,
        first_seen_at=first_seen_at,
        params=json_safe(params),
        tool_version=tool_version,
        scenes=[{"sha256": h.sha256, "similarity": h.similarity, "query_frames": h.query_frames, "reason": h.reason}
                for h in scenes],
    )
    session.add(check)
    session.flush()
    for rank, (reference_clip_id, m) in enumerate(matches):
        row = orm.Match(
            check_id=check.id,
            reference_clip_id=reference_clip_id,
            similarity=m.similarity,
            query_coverage=m.query_coverage,
            reference_coverage=m.reference_coverage,
            transforms=",".join(m.transforms),
            matched_frames=m.matched_frames,
            offset_s=m.offset_s,
            speed=m.speed,
            rank=rank,
            method=m.method,
            confidence=m.confidence,
            region=dataclasses.asdict(m.region) if m.region is not None else None,
        )
        session.add(row)
        session.flush()
        if m.segments:
            session.execute(
                insert(orm.MatchSegment),
                [{"match_id": row.id, **dataclasses.asdict(seg)} for seg in m.segments],
            )
    return check.id


def row_counts(*, session: Session) -> dict[str, int]:
    return {
        table.name: session.scalar(select(func.count()).select_from(table)) or 0
        for table in orm.Base.metadata.sorted_tables
    }


# --- reports: one past check with everything it showed ------------------------------------------

# Reference frames are loaded this far around the matched segments, so the frame nearest any
# evidence time is among them (frames are sampled every 1/4 s).
_REPORT_FRAME_MARGIN_S = 1.0


def load_check_for_report(check_id: int, *, session: Session) -> stored.StoredCheck | None:
    """A check with its clip, post, first seen, matches (segments, the reference clips' sightings as
    the check saw them, their frames around the matched segments) and the clip's frames; None if
    there is no such check."""
    check = session.get(orm.Check, check_id)
    if check is None:
        return None
    clip = _stored_clip(_clip_row(check.clip_id, session=session), session=session)
    sighting = _stored_sighting(check.sighting_id, session=session)
    first_seen_sha = clip_sha256(check.first_seen_clip_id, session=session) if check.first_seen_clip_id else None
    matches = []
    rows = session.scalars(select(orm.Match).where(orm.Match.check_id == check.id).order_by(orm.Match.rank)).all()
    for m in rows:
        segments = tuple(
            records.Segment(query_start_s=s.query_start_s, query_end_s=s.query_end_s,
                            reference_start_s=s.reference_start_s, reference_end_s=s.reference_end_s, speed=s.speed)
            for s in session.scalars(select(orm.MatchSegment).where(orm.MatchSegment.match_id == m.id)
                                     .order_by(orm.MatchSegment.query_start_s, orm.MatchSegment.id))
        )
        lo = min((s.reference_start_s for s in segments), default=0.0) - _REPORT_FRAME_MARGIN_S
        hi = max((s.reference_end_s for s in segments), default=0.0) + _REPORT_FRAME_MARGIN_S
        matches.append(stored.StoredMatch(
            rank=m.rank,
            reference=_stored_clip(_clip_row(m.reference_clip_id, session=session), session=session),
            similarity=m.similarity, query_coverage=m.query_coverage, reference_coverage=m.reference_coverage,
            transforms=tuple(t for t in m.transforms.split(",") if t), matched_frames=m.matched_frames,
            offset_s=m.offset_s, speed=m.speed, segments=segments,
            method=m.method, confidence=m.confidence,
            region=records.Region(**m.region) if m.region else None,
            sightings=_sightings_before(m.reference_clip_id, check, session=session),
            frames=_stored_frames(m.reference_clip_id, session=session, t_min=lo, t_max=hi),
        ))
    first_seen_sighting = (sighting if check.first_seen_sighting_id == check.sighting_id
                           else _stored_sighting(check.first_seen_sighting_id, session=session))
    return stored.StoredCheck(
        check_id=check.id, created_at=check.created_at, verdict=check.verdict, clip=clip, sighting=sighting,
        first_seen_sha256=first_seen_sha, first_seen_sighting=first_seen_sighting, first_seen_at=check.first_seen_at,
        params=dict(check.params or {}), tool_version=check.tool_version, matches=tuple(matches),
        scenes=tuple(dict(h) for h in (check.scenes or [])),
        frames=_stored_frames(check.clip_id, session=session),
        library_clips_now=session.scalar(select(func.count()).select_from(orm.Clip)) or 0,
        credentials=credentials_of(check.clip_id, session=session),
        shots=shots_of(check.clip_id, session=session),
        captures=captures_of_check(check_id, session=session),
        sound=_stored_sound(check, tuple(matches), session=session),
    )


def _stored_sound(check: orm.Check, matches: tuple[stored.StoredMatch, ...], *,
                  session: Session) -> records.SoundEvidence | None:
    """A check's sound evidence rebuilt from what was stored: its clip's audio status, its audio
    matches, and the hints (recomputed from both, as the check did)."""
    from provenance import audiomatch

    status = audio_status_of(check.clip_id, session=session)
    if status is None:
        return None
    found = tuple(dataclasses.replace(a, sightings=tuple(
        records.Sighting(url=s.url, platform=s.platform, post_id=s.post_id, uploader=s.uploader,
                         posted_at=s.posted_at, observed_at=s.observed_at, sha256=s.clip_sha256,
                         sighting_id=s.sighting_id)
        for s in _sightings_before(find_clip_id(a.sha256, session=session) or -1, check, session=session)))
        for a in audio_matches_of(check.id, session=session))
    pictures = [records.Match(sha256=m.reference.sha256, similarity=m.similarity, query_coverage=m.query_coverage,
                              reference_coverage=m.reference_coverage, transforms=(), segments=m.segments,
                              matched_frames=m.matched_frames, offset_s=m.offset_s, speed=m.speed) for m in matches]
    reference_sound = {m.reference.sha256: audio_status_of(m.reference.clip_id, session=session) for m in matches}
    return audiomatch.combine(status[0], status[1] or "", found, pictures, reference_sound)


def _clip_row(clip_id: int, *, session: Session) -> orm.Clip:
    row = session.get(orm.Clip, clip_id)
    if row is None:  # foreign keys make this unreachable; say so plainly if it happens anyway
        raise KeyError(f"no clip with id {clip_id}")
    return row


def _stored_clip(c: orm.Clip, *, session: Session) -> stored.StoredClip:
    sampled = session.scalar(select(func.count()).select_from(orm.Frame)
                             .where(orm.Frame.clip_id == c.id, orm.Frame.variant == 0)) or 0
    return stored.StoredClip(
        clip_id=c.id, sha256=c.sha256, size_bytes=c.size_bytes, evidence_path=c.evidence_path, container=c.container,
        duration_s=c.duration_s, width=c.width, height=c.height, fps=c.fps, video_codec=c.video_codec,
        has_audio=c.has_audio, probe=dict(c.probe or {}), sample_fps=c.sample_fps,
        content_box=records.ContentBox(c.content_left, c.content_top, c.content_right, c.content_bottom),
        sampled_frames=sampled, usable_frames=c.usable_frames, first_observed_at=c.first_observed_at)


def _stored_sighting(sighting_id: int | None, *, session: Session) -> stored.StoredSighting | None:
    if sighting_id is None:
        return None
    row = session.execute(select(orm.Sighting, orm.Clip.sha256).join(orm.Clip, orm.Clip.id == orm.Sighting.clip_id)
                          .where(orm.Sighting.id == sighting_id)).first()
    return None if row is None else _sighting_record(*row)


def _sighting_record(s: orm.Sighting, sha256: str) -> stored.StoredSighting:
    return stored.StoredSighting(
        sighting_id=s.id, clip_sha256=sha256, source=s.source, url=s.url, platform=s.platform, post_id=s.post_id,
        uploader=s.uploader, uploader_id=s.uploader_id, posted_at=s.posted_at, observed_at=s.observed_at,
        title=s.title, description=s.description, post_created_at=s.post_created_at,
        media_created_at=s.media_created_at, info=s.info)


def _sightings_before(clip_id: int, check: orm.Check, *, session: Session) -> tuple[stored.StoredSighting, ...]:
    """A clip's sightings that existed when `check` ran, in the check's order (see sightings_for)."""
    stmt = (select(orm.Sighting, orm.Clip.sha256).join(orm.Clip, orm.Clip.id == orm.Sighting.clip_id)
            .where(orm.Sighting.clip_id == clip_id, orm.Sighting.observed_at < check.created_at)
            .order_by(orm.Sighting.id))
    out = [_sighting_record(s, sha) for s, sha in session.execute(stmt) if s.id != check.sighting_id]
    out.sort(key=lambda s: s.posted_at or s.observed_at)  # stable: ties keep insertion order
    return tuple(out)


def _stored_frames(clip_id: int, *, session: Session, t_min: float | None = None,
                   t_max: float | None = None) -> tuple[stored.StoredFrame, ...]:
    stmt = select(orm.Frame.t, orm.Frame.variant, orm.Frame.phash, orm.Frame.quality).where(orm.Frame.clip_id == clip_id)
    if t_min is not None:
        stmt = stmt.where(orm.Frame.t >= t_min)
    if t_max is not None:
        stmt = stmt.where(orm.Frame.t <= t_max)
    return tuple(stored.StoredFrame(t=t, variant=v, phash=to_unsigned64(h), quality=q)
                 for t, v, h, q in session.execute(stmt.order_by(orm.Frame.t, orm.Frame.variant)))
