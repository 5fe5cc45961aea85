"""What the library holds about one past check, as the repository returns it for a report.

Plain frozen records: the report is built from these alone (plus the evidence files), so a check
reported a month later shows what it showed the day it ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .credentials import CredentialsReading
from .records import ContentBox, Region, Segment
from .shots import Shot


@dataclass(frozen=True)
class StoredClip:
    clip_id: int
    sha256: str
    size_bytes: int
    evidence_path: str | None
    container: str
    duration_s: float  # decoded length, what the frame hashes cover
    width: int | None
    height: int | None
    fps: float | None
    video_codec: str | None
    has_audio: bool
    probe: dict[str, Any]  # the ProbeInfo as stored: container, duration_s, streams, tags, bit_rate
    sample_fps: float
    content_box: ContentBox
    sampled_frames: int
    usable_frames: int
    first_observed_at: datetime


@dataclass(frozen=True)
class StoredSighting:
    sighting_id: int
    clip_sha256: str
    source: str  # "ingest" | "check"
    url: str | None
    platform: str | None
    post_id: str | None
    uploader: str | None
    uploader_id: str | None
    posted_at: datetime | None
    observed_at: datetime
    title: str | None
    description: str | None
    post_created_at: datetime | None
    media_created_at: datetime | None
    info: dict[str, Any] | None  # yt-dlp's raw info JSON, None for a local file


@dataclass(frozen=True)
class StoredFrame:
    t: float
    variant: int  # index into provenance.frames.REFERENCE_VARIANTS
    phash: int  # unsigned 64-bit
    quality: float


@dataclass(frozen=True)
class StoredMatch:
    rank: int  # 0 = strongest
    reference: StoredClip
    similarity: float
    query_coverage: float
    reference_coverage: float
    transforms: tuple[str, ...]
    matched_frames: int
    offset_s: float
    speed: float
    segments: tuple[Segment, ...]
    method: str  # "frames" | "motion" | "region" (records.Match.method)
    confidence: float | None
    region: Region | None
    # The reference clip's sightings known when the check ran, earliest first (as the check saw them).
    sightings: tuple[StoredSighting, ...]
    # The reference clip's stored frame hashes around its matched segments (all views, all qualities).
    frames: tuple[StoredFrame, ...]


@dataclass(frozen=True)
class StoredCheck:
    check_id: int
    created_at: datetime
    verdict: str
    clip: StoredClip
    sighting: StoredSighting | None  # the post this check was about
    first_seen_sha256: str | None
    first_seen_sighting: StoredSighting | None
    first_seen_at: datetime | None
    params: dict[str, Any]
    tool_version: str
    matches: tuple[StoredMatch, ...]
    scenes: tuple[dict[str, Any], ...]  # same-scene hints: {"sha256", "similarity", "query_frames", "reason"}
    frames: tuple[StoredFrame, ...]  # the checked clip's stored frame hashes (all views, all qualities)
    library_clips_now: int  # clips in the library when the report is made (not when the check ran)
    credentials: CredentialsReading | None = None  # the clip's C2PA reading; None: recorded before they were read
    shots: tuple[Shot, ...] = ()  # the clip's shots with their keyframes; none for clips recorded before
