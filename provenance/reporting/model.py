"""The report model: everything a check report shows, built once, rendered as HTML, JSON or Markdown.

Untrusted text (titles, descriptions, uploader names, URLs) is kept as it came; each renderer
escapes it for its own format. A class named `...View` is what a report shows of a record found
elsewhere (records.Post, stored.StoredClip, stored.StoredMatch, pipeline.FirstSeen): the same thing,
worded and dated for a reader, so the two are never mistaken for one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..credentials import CredentialsReading
from ..records import ContentBox, Region, Segment, Signal
from ..shots import Shot


@dataclass(frozen=True)
class PostTime:
    """How a post's time is known."""

    at: datetime | None
    source: str  # "platform_timestamp" | "platform_date" | "user_given" | "unknown"
    label: str  # a few plain words for the reader
    detail: str  # the reasoning, including what could not be told apart


@dataclass(frozen=True)
class PostView:
    """A clip seen in a post (a stored.StoredSighting), with what the platform said about it."""

    sighting_id: int
    clip_sha256: str
    source: str  # "ingest" | "check": how it came into the library
    url: str | None
    platform: str | None
    post_id: str | None
    media_id: str | None
    uploader: str | None
    uploader_id: str | None
    channel_id: str | None
    posted_at: datetime | None
    observed_at: datetime
    post_time: PostTime
    title: str | None
    description: str | None
    duration_s: float | None
    post_created_at: datetime | None  # from the X post id (snowflake)
    media_created_at: datetime | None  # from the X media id (snowflake)
    counts: dict[str, int]  # view_count, like_count, ... as the platform reported them when fetched

    @property
    def when(self) -> datetime:
        return self.posted_at or self.observed_at


@dataclass(frozen=True)
class Stream:
    kind: str
    codec: str | None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bit_rate: int | None = None


@dataclass(frozen=True)
class ClipView:
    """A clip as a report shows it (from a stored.StoredClip), the checked one or a matched reference."""

    sha256: str
    size_bytes: int
    evidence_path: str | None
    evidence_present: bool
    duration_s: float  # as the container states it (the check's JSON field)
    decoded_s: float  # what the frames cover
    container: str
    width: int | None
    height: int | None
    fps: float | None
    video_codec: str | None
    rotation: int
    has_audio: bool
    streams: tuple[Stream, ...]
    tags: dict[str, str]
    bit_rate: int | None
    sampled_frames: int
    usable_frames: int
    content_box: ContentBox
    first_observed_at: datetime


@dataclass(frozen=True)
class FramePair:
    """One query frame beside the reference frame the match puts it on."""

    query_t: float
    reference_t: float  # the stored reference frame nearest the time the match predicts
    predicted_reference_t: float
    distance: int | None  # Hamming distance of the closest views, bits of 64
    query_view: str
    reference_view: str
    query_hash: str  # 16 hex digits, the views named above
    reference_hash: str
    mirrored: bool
    note: str | None  # how the distance was found when not from stored hashes alone, or why it is missing
    query_image: str | None = None  # data: URI of a small JPEG (HTML only)
    reference_image: str | None = None
    image_note: str | None = None  # why an image is missing


@dataclass(frozen=True)
class MatchView:
    """A match as a report shows it (from a stored.StoredMatch), with its frame pairs and words."""

    rank: int  # 1 = strongest
    sha256: str
    reference: ClipView
    similarity: float
    query_coverage: float
    reference_coverage: float
    transforms: tuple[str, ...]
    matched_frames: int
    offset_s: float
    speed: float
    segments: tuple[Segment, ...]
    sightings: tuple[PostView, ...]  # as the check saw them, earliest first
    pairs: tuple[FramePair, ...]
    mirror_note: str | None
    method: str  # how the match was established: "frames" | "motion" | "region" | "local_features"
    method_text: str  # the same in words, with the confidence
    confidence: float | None
    region: Region | None
    region_text: str | None  # "this clip shows the reference inside x,y,w,h", or None
    # True when the pairs were left out to keep a many-check page (an audit) quick; the check's own
    # report has them.
    pairs_omitted: bool = False

    @property
    def anchor(self) -> str:
        return f"match-{self.rank}"


@dataclass(frozen=True)
class Scene:
    """A known clip of the same scene whose moment could not be established: a hint, not a match."""

    sha256: str
    similarity: float
    query_frames: int
    reason: str


@dataclass(frozen=True)
class TimelineEntry:
    post: PostView
    role: str  # "first_seen" | "earlier" | "this_post" | "later"
    reuse: bool  # a later appearance of footage seen before it
    match_rank: int | None  # which match this clip is (None: the checked clip itself)


@dataclass(frozen=True)
class FirstSeenView:
    """Where and when the footage was first seen, as a report shows it."""

    sha256: str
    is_this_post: bool
    post: PostView | None
    at: datetime | None


@dataclass(frozen=True)
class KeyframeView:
    """A shot of the checked clip and its keyframe, for reverse image search."""

    shot: Shot
    thumbnail: str | None  # data: URI (HTML only), None without the evidence file


@dataclass(frozen=True)
class Flag:
    """Something to look into beside the frame matches: a hint, never proof on its own."""

    kind: str
    title: str
    detail: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    headline: str  # the verdict in a few words
    text: str  # the answer in one or two plain sentences
    caveat: str  # what it does and does not mean


@dataclass(frozen=True)
class Reproducibility:
    tool_version: str  # the version that ran the check
    report_tool_version: str  # the version that made the report
    params: dict[str, Any]
    library_clips: int | None  # clips searched by the check; None when the check did not record it
    library_clips_now: int
    generated_at: datetime
    database_url: str  # password removed


@dataclass(frozen=True)
class CheckReport:
    check_id: int
    verdict: str
    checked_at: datetime
    answer: Answer
    clip: ClipView
    post: PostView | None
    first_seen: FirstSeenView
    matches: tuple[MatchView, ...]
    scenes: tuple[Scene, ...]
    timeline: tuple[TimelineEntry, ...]
    signals: tuple[Signal, ...]
    flags: tuple[Flag, ...]
    reproducibility: Reproducibility
    # A frame from the middle of the checked clip, data: URI (HTML only; an audit row's thumbnail too).
    thumbnail: str | None = None
    credentials: CredentialsReading | None = None  # the clip's C2PA reading; None: not read (older checks)
    keyframes: tuple[KeyframeView, ...] = ()  # one per shot; none for clips recorded before shots were found
    # The post's own thumbnail on the platform (yt-dlp `thumbnail`, http(s) only) and (engine, search URL) for it.
    platform_thumbnail: str | None = None
    thumbnail_searches: tuple[tuple[str, str], ...] = ()

    @property
    def anchor(self) -> str:
        return f"check-{self.check_id}"
