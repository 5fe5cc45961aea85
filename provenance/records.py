"""Plain, frozen records that cross module boundaries (ORM objects never leave provenance.db)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any


class Verdict(StrEnum):
    """What a check found. Members are the strings stored in the database and written in JSON."""

    NO_MATCH = "no_match"  # nothing in the library matches this footage
    REUSED = "reused"  # matching footage was seen before this post
    EARLIEST_KNOWN = "earliest_known"  # matching footage exists; this post is its earliest known appearance


class Transform(StrEnum):
    """What was done to a reference clip to make the query (provenance.match decides which apply).
    Members are the strings stored in the database and written in JSON."""

    IDENTICAL = "identical"  # the same file
    MIRRORED = "mirrored"
    CROPPED = "cropped"
    LETTERBOXED = "letterboxed"
    PILLARBOXED = "pillarboxed"
    PICTURE_IN_PICTURE = "picture_in_picture"
    SPEED_CHANGED = "speed_changed"
    EXCERPT = "excerpt"  # covers only part of the reference


@dataclass(frozen=True)
class Post:
    """Where a clip was seen: what the platform (or the user) says about the post."""

    url: str | None = None
    platform: str | None = None  # yt-dlp extractor key, e.g. "Twitter", "Generic"; "local" for a file
    post_id: str | None = None
    uploader: str | None = None
    uploader_id: str | None = None
    posted_at: datetime | None = None  # aware UTC
    title: str | None = None
    description: str | None = None
    duration_s: float | None = None
    # X/Twitter snowflake decoding: post id -> post creation time, media id -> media upload time.
    post_created_at: datetime | None = None
    media_created_at: datetime | None = None
    info: dict[str, Any] | None = field(default=None, compare=False)  # yt-dlp's raw info JSON


@dataclass(frozen=True)
class FetchedMedia:
    """A clip in the evidence store, with the post it came from."""

    path: Path  # the evidence copy, named by its SHA-256; never overwritten
    sha256: str
    size_bytes: int
    post: Post
    source: str  # "url" or "file"; for a file, the original path is in post.url when given
    # This fetch put the file in the store (it was not there): unless something is recorded with it,
    # the command that fetched it removes it again (pipeline), so failures leave no copies behind.
    newly_stored: bool = False


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # "video", "audio", "subtitle", "data"
    codec: str | None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    rotation: int = 0
    bit_rate: int | None = None
    duration_s: float | None = None  # the stream's own, when the container states it


@dataclass(frozen=True)
class ProbeInfo:
    container: str
    duration_s: float
    streams: tuple[StreamInfo, ...]
    tags: dict[str, str]  # container tags: creation_time, encoder, handler_name, location...
    bit_rate: int | None = None

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "video"), None)

    @property
    def has_audio(self) -> bool:
        return any(s.kind == "audio" for s in self.streams)

    @property
    def picture_duration_s(self) -> float:
        """How long the pictures run: the video stream's own duration where stated (a subtitle or
        data stream may run on past the last frame), else the container's."""
        video = self.video
        return video.duration_s if video is not None and video.duration_s else self.duration_s


@dataclass(frozen=True)
class ContentBox:
    """The picture inside black bars, as fractions of the frame (0..1)."""

    left: float = 0.0
    top: float = 0.0
    right: float = 1.0
    bottom: float = 1.0


@dataclass(frozen=True)
class FrameHash:
    t: float  # seconds from the start of the clip
    phash: int  # 64-bit perceptual hash (unsigned)
    quality: float  # 0..1; near-uniform frames score low and never count as evidence
    # Hashes of the same frame seen differently, in the order of frames.REFERENCE_VARIANTS or
    # frames.QUERY_VARIANTS (centre crops; on the query side also the mirrored frame). A query's
    # fingerprint leaves out the second look's views (the last of QUERY_VARIANTS): they are in its
    # `second_look`, hashed only if that look runs.
    variants: tuple[int, ...] = ()
    box: ContentBox | None = None  # where the picture was inside bars; not stored per frame
    inset: ContentBox | None = None  # a picture-in-picture inset found around this frame; not stored


@dataclass(frozen=True)
class Fingerprint:
    """What sampling and hashing found in one clip."""

    sample_fps: float
    frames: tuple[FrameHash, ...]
    content_box: ContentBox  # median over frames; bars outside it were cut off before hashing
    decoded_duration_s: float
    # What moves, frame to frame (provenance.motion.MotionProfile): one row per sampled frame.
    motion: Any = field(default=None, compare=False)
    # Where the picture cuts, with a keyframe per shot (provenance.shots.Shot), for reverse image search.
    shots: tuple[Any, ...] = field(default=(), compare=False)
    # A query's second-look views, hashed when the matcher asks (frames.SecondLook); None: none kept
    # (a reference's fingerprint, or one whose second look is over).
    second_look: Any = field(default=None, compare=False)
    # The sound's Chromaprint fingerprint (provenance.audio.AudioFingerprint); None: not taken.
    audio: Any = field(default=None, compare=False)
    # Frames between the samples, where the footage changes faster than the sampling follows
    # (frames.densify): stored in the library with `frames`, never matched as a query's.
    between: tuple[FrameHash, ...] = ()

    @property
    def stored_frames(self) -> tuple[FrameHash, ...]:
        """What the library keeps of this clip: the sampled frames and those between, in time order."""
        return tuple(sorted((*self.frames, *self.between), key=lambda f: f.t)) if self.between else self.frames


@dataclass(frozen=True)
class Segment:
    query_start_s: float
    query_end_s: float
    reference_start_s: float
    reference_end_s: float
    speed: float = 1.0  # reference seconds per query second in this segment


@dataclass(frozen=True)
class Sighting:
    """A clip seen in a post, as stored."""

    url: str | None
    platform: str | None
    post_id: str | None
    uploader: str | None
    posted_at: datetime | None
    observed_at: datetime
    sha256: str
    sighting_id: int | None = None


@dataclass(frozen=True)
class Match:
    """Evidence that the query contains footage of one known reference clip."""

    sha256: str  # the reference clip
    similarity: float  # 0..1: 1 identical frames, 0 as different as unrelated footage
    query_coverage: float  # share of the query's usable frames inside matched segments
    reference_coverage: float
    transforms: tuple[Transform, ...]
    segments: tuple[Segment, ...]
    matched_frames: int
    offset_s: float  # reference time - query time at the start of the best segment
    speed: float  # reference seconds per query second
    sightings: tuple[Sighting, ...] = ()
    # How the match was established: "frames" (frame hashes aligned on one time line), "motion"
    # (near-identical pictures placed by what moves in them: static-camera footage), "region" (the
    # footage inside part of the picture: picture-in-picture or an off-centre crop), "local_features"
    # (keypoints located that part, and its frames' hashes were aligned: provenance.localfeat).
    method: str = "frames"
    # 0..1. frames, region and local_features: the similarity of the aligned frames; motion: the
    # correlation of the two motion profiles at the placed offset.
    confidence: float | None = None
    region: "Region | None" = None


@dataclass(frozen=True)
class AudioMatch:
    """Evidence that the query's sound contains the sound of one known clip (provenance.audiomatch):
    Chromaprint sub-fingerprints aligned on one (speed, offset) line."""

    sha256: str  # the reference clip
    similarity: float  # 0..1: 1 - 2 x the bit error rate of the matched items (0: unrelated sound)
    segments: tuple[Segment, ...]
    offset_s: float  # reference time - speed x query time
    speed: float  # reference seconds per query second
    matched_items: int  # query sub-fingerprints on matched stretches (audio.ITEM_S each)
    query_items: int
    reference_items: int
    query_coverage: float  # share of the query's sub-fingerprints matched
    reference_coverage: float
    sightings: tuple[Sighting, ...] = ()

    @property
    def matched_s(self) -> float:
        """Seconds of the query's sound inside the matched segments."""
        return round(sum(s.query_end_s - s.query_start_s for s in self.segments), 3)


@dataclass(frozen=True)
class SoundHint:
    """What comparing the picture and sound matches of one known clip suggests, for a person to weigh
    (provenance.audiomatch.combine): never a verdict by itself."""

    kind: str  # "picture_not_sound" | "sound_not_picture" | "both_agree" | "both_disagree"
    sha256: str  # the known clip
    detail: str  # in words
    offset_gap_s: float | None = None  # both matched: how far apart the two placements are


@dataclass(frozen=True)
class SoundEvidence:
    """A check's sound evidence, reported apart from its picture evidence."""

    status: str  # provenance.audio.AudioStatus of the query: "ok", "no_audio", "silent", ...
    detail: str  # why there is no sound evidence ("" when there is)
    matches: tuple[AudioMatch, ...] = ()
    hints: tuple[SoundHint, ...] = ()


@dataclass(frozen=True)
class Signal:
    """Evidence beside the frame matches, e.g. an X media id much older than its post."""

    kind: str
    detail: str
    data: dict[str, object]


@dataclass(frozen=True)
class Region:
    """Where the matched footage sits, as shares of a frame: in the query's picture (an inset:
    picture-in-picture) or in the reference's (the part of it a crop kept)."""

    inside: str  # "query" | "reference"
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class SceneHint:
    """A known clip showing the same scene as the query (pictures within a few bits all along) whose
    moment could not be established: evidence of the place or camera, not of the footage."""

    sha256: str
    similarity: float
    query_frames: int  # query frames close to this clip's frames
    reason: str  # why it is not placed, in words
    sightings: tuple[Sighting, ...] = ()


@dataclass(frozen=True)
class ReferenceFrames:
    """The library's frame hashes, flattened for vectorised search (numpy arrays)."""

    clip_ids: Any  # np.ndarray[int64]
    times: Any  # np.ndarray[float64]
    variants: Any  # np.ndarray[int64]: index into frames.REFERENCE_VARIANTS
    hashes: Any  # np.ndarray[uint64]
    clips: dict[int, "ReferenceClip"]
    # Finds the rows within a Hamming distance of query hashes faster than comparing every row
    # (provenance.index); None: the matcher compares every row.
    search: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class LibraryState:
    """What a library holds, cheaply: when it is unchanged, an in-memory index of it is current."""

    revision: str | None  # the schema's Alembic revision
    clips: int
    max_clip_id: int
    clip_id_sum: int


@dataclass(frozen=True)
class ReferenceClip:
    clip_id: int
    sha256: str
    duration_s: float
    usable_frames: int
    content_box: ContentBox


# --- audits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditItemState:
    """A listed post still to be checked (or retried), as the audit loop needs it."""

    item_id: int
    position: int  # 0-based place in the listing
    url: str
    posted_at: datetime | None  # as the listing says
    title: str | None
    attempts: int


@dataclass(frozen=True)
class AuditItemResult:
    """One post of an audit: its state and, once checked, what its check found."""

    item_id: int
    position: int  # 0-based place in the listing
    url: str  # as listed
    title: str | None  # as listed
    listed_posted_at: datetime | None  # the listing's date (a feed's pubDate), if it gave one
    state: str  # "pending" | "done" | "failed"
    attempts: int  # finished tries (done or failed)
    error: str | None  # the last failure's one-line message
    error_code: int | None  # its exit code: 2 input, 3 fetch, 4 media, 1 other
    check_id: int | None
    verdict: str | None  # a Verdict ("no_match" | "reused" | "earliest_known") once done
    checked_at: datetime | None
    post: Sighting | None  # the sighting the check recorded: URL after redirects, post time, uploader
    first_seen: Sighting | None  # for "reused": the earliest other sighting of the footage
    similarity: float | None  # of the match with the first-seen clip, else the strongest match
    transforms: tuple[str, ...]  # of that same match: Transform values, as stored
    match_count: int
    # For "reused": "self" when the first-seen post is one of this audit's posts or has the same
    # uploader, "cross" when someone else posted it first; None otherwise.
    reuse: str | None = None


@dataclass(frozen=True)
class AuditResult:
    """A whole audit as stored: what a report (terminal, JSON, later HTML) renders."""

    audit_id: int
    kind: str  # "listing" | "urls"
    source: str  # the listed URL or the URL-list file
    title: str | None  # the listing's own title
    options: dict[str, Any]  # since, limit: what decided the listing
    status: str  # "running" | "done"
    created_at: datetime
    finished_at: datetime | None
    items: tuple[AuditItemResult, ...]  # in listing order

    def count(self, *, state: str | None = None, verdict: str | None = None, reuse: str | None = None) -> int:
        return sum(1 for i in self.items if (state is None or i.state == state)
                   and (verdict is None or i.verdict == verdict) and (reuse is None or i.reuse == reuse))


@dataclass(frozen=True)
class AuditSummary:
    """One line of `provenance audits`."""

    audit_id: int
    kind: str
    source: str
    title: str | None
    status: str
    created_at: datetime
    finished_at: datetime | None
    posts: int
    pending: int
    failed: int
    reused: int
    earliest_known: int
    no_match: int
