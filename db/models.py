"""The relational schema. ORM classes stay inside provenance.db; callers get records."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    SmallInteger,
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from provenance.db.scrub import scrub_info, strip_nul

# Deterministic constraint names so migrations (and SQLite batch rebuilds) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the database.

    Naive input is refused: a local time silently stored as UTC would corrupt every
    "first seen" comparison, and that is the one thing this tool must get right.
    """

    impl = DateTime()
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give it a timezone")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


class NulFreeText(TypeDecorator[str]):
    """Text without NUL: PostgreSQL refuses it, and internet text may hold it (see db/scrub.py)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return strip_nul(value)


class NulFreeString(NulFreeText):
    impl = String
    cache_ok = True


class NulFreeJSON(TypeDecorator[Any]):
    """JSON without NUL in any string or key."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return strip_nul(value)


class ScrubbedJSON(NulFreeJSON):
    """yt-dlp's raw info, stored without the session's cookies and auth headers (db/scrub.py).
    Every write goes through it: a new sighting, a filled-in one, an imported export."""

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return scrub_info(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Clip(Base):
    """One distinct file (by SHA-256) and what was measured on it."""

    __tablename__ = "clips"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(NulFreeString(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    evidence_path: Mapped[str | None] = mapped_column(NulFreeText)
    container: Mapped[str] = mapped_column(NulFreeString)
    duration_s: Mapped[float] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    video_codec: Mapped[str | None] = mapped_column(NulFreeString)
    has_audio: Mapped[bool] = mapped_column(Boolean)
    probe: Mapped[dict[str, Any]] = mapped_column(NulFreeJSON)
    sample_fps: Mapped[float] = mapped_column(Float)
    hash_algo: Mapped[str] = mapped_column(NulFreeString(32))
    content_left: Mapped[float] = mapped_column(Float)
    content_top: Mapped[float] = mapped_column(Float)
    content_right: Mapped[float] = mapped_column(Float)
    content_bottom: Mapped[float] = mapped_column(Float)
    usable_frames: Mapped[int] = mapped_column(Integer)
    first_observed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Frame(Base):
    """One sampled frame's hash. Rows, not a JSON blob, so search can stream them."""

    __tablename__ = "frames"
    # (clip_id, t) also serves every lookup by clip_id alone, so no separate clip_id index.
    __table_args__ = (Index("ix_frames_clip_id_t", "clip_id", "t"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id", ondelete="CASCADE"))
    t: Mapped[float] = mapped_column(Float)
    # Which view of the frame was hashed: an index into provenance.frames.REFERENCE_VARIANTS
    # (0 = the whole picture, then centre crops).
    variant: Mapped[int] = mapped_column(SmallInteger, default=0)
    # Signed int64: neither SQLite nor PostgreSQL has an unsigned 64-bit integer.
    phash: Mapped[int] = mapped_column(BigInteger)
    quality: Mapped[float] = mapped_column(Float)


class ClipMotion(Base):
    """A clip's motion profile (provenance.motion): what moved where between sampled frames. One
    blob per clip, read only for the few clips whose frame hashes say "same scene"."""

    __tablename__ = "clip_motion"

    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id", ondelete="CASCADE"), primary_key=True)
    grid: Mapped[int] = mapped_column(SmallInteger)  # cells per side
    times: Mapped[bytes] = mapped_column(LargeBinary)  # float64 seconds, one per sampled frame
    cells: Mapped[bytes] = mapped_column(LargeBinary)  # uint8 (frames, grid * grid)


# A sighting is one clip in one post: the same clip at the same post URL is the same fact, however
# often and by whichever command (ingest or check) it is met, so it is stored once; the first
# observation stays (repository.add_sighting fills in only what it lacked). A clip met without a
# URL (a local file) is likewise one fact, "this clip, seen in no known post": one such sighting
# per clip. SQL's NULLs are all distinct, so the two cases are two partial unique indexes.
# The key holds the URL's SHA-256, not the URL: PostgreSQL cannot index a text longer than about
# 2.7 kB, and signed media URLs get that long. Both SQLite and PostgreSQL accept partial unique
# indexes and ON CONFLICT against them.
SIGHTING_KEY = ("clip_id", "url_sha256")
SIGHTING_KEY_WHERE = text("url_sha256 IS NOT NULL")
SIGHTING_NO_URL_KEY = ("clip_id",)
SIGHTING_NO_URL_WHERE = text("url_sha256 IS NULL")


def url_sha256(url: str | None) -> str | None:
    # Of the URL as stored (NulFreeText drops NUL), so the key always matches the row's url.
    return hashlib.sha256(strip_nul(url).encode("utf-8", "surrogatepass")).hexdigest() if url is not None else None


class Sighting(Base):
    """A clip seen in a post (ingested deliberately, or met while checking)."""

    __tablename__ = "sightings"
    __table_args__ = (
        Index(
            "uq_sightings_clip_id_url_sha256",
            *SIGHTING_KEY,
            unique=True,
            sqlite_where=SIGHTING_KEY_WHERE,
            postgresql_where=SIGHTING_KEY_WHERE,
        ),
        Index(
            "uq_sightings_clip_id_without_url",
            *SIGHTING_NO_URL_KEY,
            unique=True,
            sqlite_where=SIGHTING_NO_URL_WHERE,
            postgresql_where=SIGHTING_NO_URL_WHERE,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)
    source: Mapped[str] = mapped_column(NulFreeString(16))  # "ingest" | "check"
    url: Mapped[str | None] = mapped_column(NulFreeText)
    url_sha256: Mapped[str | None] = mapped_column(NulFreeString(64))  # of url, for SIGHTING_KEY
    platform: Mapped[str | None] = mapped_column(NulFreeString)
    post_id: Mapped[str | None] = mapped_column(NulFreeString)
    uploader: Mapped[str | None] = mapped_column(NulFreeString)
    uploader_id: Mapped[str | None] = mapped_column(NulFreeString)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    title: Mapped[str | None] = mapped_column(NulFreeText)
    description: Mapped[str | None] = mapped_column(NulFreeText)
    post_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    media_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    info: Mapped[dict[str, Any] | None] = mapped_column(ScrubbedJSON)


class Check(Base):
    """One run of `provenance check` and its verdict."""

    __tablename__ = "checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)
    sighting_id: Mapped[int | None] = mapped_column(ForeignKey("sightings.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verdict: Mapped[str] = mapped_column(NulFreeString(16))
    first_seen_clip_id: Mapped[int | None] = mapped_column(ForeignKey("clips.id"))
    first_seen_sighting_id: Mapped[int | None] = mapped_column(ForeignKey("sightings.id"))
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    params: Mapped[dict[str, Any]] = mapped_column(NulFreeJSON)
    tool_version: Mapped[str] = mapped_column(NulFreeString)
    # Clips showing the same scene whose moment could not be established: hints, never matches.
    # A list of {"sha256", "similarity", "query_frames", "reason"}; None before migration 0004.
    scenes: Mapped[list[dict[str, Any]] | None] = mapped_column(NulFreeJSON)


class Match(Base):
    """A reference clip found in a check's query, strongest first (rank 0)."""

    __tablename__ = "matches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id", ondelete="CASCADE"), index=True)
    # Indexed so "which checks matched this clip" (and FK checks on clip deletion) stay cheap.
    reference_clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)
    similarity: Mapped[float] = mapped_column(Float)
    query_coverage: Mapped[float] = mapped_column(Float)
    reference_coverage: Mapped[float] = mapped_column(Float)
    transforms: Mapped[str] = mapped_column(NulFreeString)  # comma-separated, "" for none
    matched_frames: Mapped[int] = mapped_column(Integer)
    offset_s: Mapped[float] = mapped_column(Float)
    speed: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    # How the match was established ("frames", "motion", "region") and how sure it is (0..1).
    method: Mapped[str] = mapped_column(NulFreeString(16), default="frames", server_default="frames")
    confidence: Mapped[float | None] = mapped_column(Float)
    # Where the footage sits when it is only part of a picture: {"in": "query"|"reference", "x", "y",
    # "w", "h"} as shares of that clip's frame; None for the whole picture.
    region: Mapped[dict[str, Any] | None] = mapped_column(NulFreeJSON)


class MatchSegment(Base):
    __tablename__ = "match_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), index=True)
    query_start_s: Mapped[float] = mapped_column(Float)
    query_end_s: Mapped[float] = mapped_column(Float)
    reference_start_s: Mapped[float] = mapped_column(Float)
    reference_end_s: Mapped[float] = mapped_column(Float)
    speed: Mapped[float] = mapped_column(Float)  # reference seconds per query second


class Audit(Base):
    """One `provenance audit` of an account, channel, playlist, feed or URL list."""

    __tablename__ = "audits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(NulFreeString(16))  # "listing" (a URL yt-dlp lists) | "urls" (a file)
    source: Mapped[str] = mapped_column(NulFreeText)  # the listed URL, or the URL-list file's absolute path
    # What decided which posts were listed (since, limit): part of the audit's identity.
    options: Mapped[dict[str, Any]] = mapped_column(NulFreeJSON)
    # SHA-256 of (kind, source, options): rerunning the same command finds its audit by this.
    key: Mapped[str] = mapped_column(NulFreeString(64), index=True)
    title: Mapped[str | None] = mapped_column(NulFreeText)  # the listing's own title (channel, feed)
    status: Mapped[str] = mapped_column(NulFreeString(16))  # "running" | "done"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tool_version: Mapped[str] = mapped_column(NulFreeString)


class AuditItem(Base):
    """One listed post of an audit and how far it got. Done items point at their check."""

    __tablename__ = "audit_items"
    # A post is queued once per audit; the constraint's index also serves lookups by audit_id.
    __table_args__ = (UniqueConstraint("audit_id", "url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audits.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 0-based place in the listing
    url: Mapped[str] = mapped_column(NulFreeText)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # as the listing says
    title: Mapped[str | None] = mapped_column(NulFreeText)  # as the listing says
    state: Mapped[str] = mapped_column(NulFreeString(16))  # "pending" | "done" | "failed"
    error: Mapped[str | None] = mapped_column(NulFreeText)  # the last failure's one-line message
    error_code: Mapped[int | None] = mapped_column(SmallInteger)  # its exit code (3 fetch, 4 media...)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    check_id: Mapped[int | None] = mapped_column(ForeignKey("checks.id"))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Timestamp(Base):
    """A Time-Stamp Authority's token (RFC 3161) over one file's SHA-256: a clip's evidence file, or a
    report as written. It proves the bytes existed no later than `stamped_at`, by the TSA's clock."""

    __tablename__ = "timestamps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(NulFreeString(64), index=True)  # of the file stamped
    subject: Mapped[str] = mapped_column(NulFreeString(16))  # "clip" | "report"
    # The check this stamp belongs to (a clip stamped by ingest has none).
    check_id: Mapped[int | None] = mapped_column(ForeignKey("checks.id", ondelete="CASCADE"), index=True)
    path: Mapped[str | None] = mapped_column(NulFreeText)  # a report's file, absolute, as written
    tsa_url: Mapped[str] = mapped_column(NulFreeText)  # without any user:password part
    tsa_name: Mapped[str] = mapped_column(NulFreeText)  # the subject of the certificate that signed it
    stamped_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the token's genTime
    response: Mapped[bytes] = mapped_column(LargeBinary)  # the TSA's TimeStampResp, DER, as received


class ContentCredential(Base):
    """A clip's C2PA manifest as read and validated when the clip was first recorded
    (provenance.credentials): one row per clip read, state "none" when it carries no manifest."""

    __tablename__ = "content_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id", ondelete="CASCADE"), unique=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reader: Mapped[str] = mapped_column(NulFreeString(64))  # "c2pa-rs VERSION": validation rules change
    state: Mapped[str] = mapped_column(NulFreeString(16))  # "none" | "valid" | "trusted" | "invalid"
    summary: Mapped[dict[str, Any] | None] = mapped_column(NulFreeJSON)  # ContentCredentials.to_dict()
    manifest: Mapped[dict[str, Any] | None] = mapped_column(NulFreeJSON)  # the reader's whole manifest store


class ClipShot(Base):
    """One shot of a clip, found while it was hashed (provenance.shots), with the keyframe to search for."""

    __tablename__ = "clip_shots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id", ondelete="CASCADE"), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    keyframe_s: Mapped[float] = mapped_column(Float)


class ApiToken(Base):
    """A token of `provenance serve` (provenance.serve.auth). Only its SHA-256 is kept: the token is a
    random 256-bit secret printed once, so the hash cannot be turned back into it."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(NulFreeString(64), unique=True)  # who holds it: a person or a script
    token_sha256: Mapped[str] = mapped_column(NulFreeString(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set by `token revoke`; never reopened
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
