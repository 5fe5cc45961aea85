"""The pipeline: fetch -> probe -> sample/hash -> match -> record. One function per command."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from . import __version__
from .credentials import CredentialsReading, credential_signals, read_credentials
from .errors import MediaError, ProvenanceError, printable
from .fetch import discard, fetch
from . import audio, audiomatch, capture as page_capture
from .frames import (MATCH_VARIANTS, MIN_QUALITY, REFERENCE_VARIANTS, SAMPLE_FPS, HashedFn, densify, fingerprint,
                     require_whole)
from .probe import probe
from .records import (AudioMatch, FetchedMedia, Fingerprint, Match, Post, ProbeInfo, ReferenceFrames, SceneHint,
                      Sighting, Signal, SoundEvidence, Verdict)
from .settings import Settings
from .snowflake import media_predates_post
from .wording import gap_words

# The database and matching side (SQLAlchemy, the models, the index, the matcher; ~0.5-1 s of
# imports in a new process) is imported where it is used: a check imports it on the thread that
# opens the library, while the clip is fetched and decoded (tests/test_startup.py).
if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from .db.reads import Reads
    from .readonly import DirectLibrary
    from .timestamps import Stamp

    # What a check reads the library through: its engine, or, for a check that records nothing of an
    # SQLite library, the file opened with sqlite3 alone (provenance.readonly).
    Opened = Engine | DirectLibrary

log = logging.getLogger("provenance.pipeline")

ProgressFn = Callable[[str, float | None], None]
# Called inside the check's transaction with its session and check id (an audit marks its post
# done there, so the post is done exactly when its check is recorded).
RecordedFn = Callable[["Session", int], None]


@dataclass(frozen=True)
class AnalysedClip:
    """A clip this run fetched, probed and hashed: what a check or an ingest works on."""

    media: FetchedMedia
    probe: ProbeInfo
    fingerprint: Fingerprint
    credentials: CredentialsReading | None = None  # None: not read (e.g. an AnalysedClip made by hand)
    page: page_capture.CaptureOutcome | None = None  # the post's page (provenance.capture); None: not tried

    @property
    def usable_frames(self) -> int:
        return sum(1 for f in self.fingerprint.frames if f.quality >= MIN_QUALITY)

    @property
    def kept_usable_frames(self) -> int:
        """Usable frames the library keeps of it: the samples' and those between (frames.densify)."""
        return sum(1 for f in self.fingerprint.stored_frames if f.quality >= MIN_QUALITY)


@dataclass(frozen=True)
class FirstSeen:
    """Where and when a check found the footage first (reporting.model.FirstSeenView is its report view)."""

    sha256: str
    url: str | None
    posted_at: datetime | None
    observed_at: datetime
    is_this_post: bool


@dataclass(frozen=True)
class CheckResult:
    check_id: int | None
    verdict: Verdict
    clip: AnalysedClip
    post: Post
    observed_at: datetime
    first_seen: FirstSeen
    matches: tuple[Match, ...]
    signals: tuple[Signal, ...]
    params: dict[str, object]
    # Known clips of the same scene whose moment could not be established: hints, never a verdict.
    scenes: tuple[SceneHint, ...] = ()
    # What the sound matched, apart from the pictures, and the hints from comparing both.
    sound: SoundEvidence | None = None

    def to_dict(self) -> dict[str, object]:
        """What `provenance check --json` prints (schema_version 3), as Python values."""
        from .reporting.results import check_to_dict

        return check_to_dict(self)


@dataclass(frozen=True)
class IngestResult:
    clip: AnalysedClip
    post: Post
    clip_id: int
    sighting_id: int
    new_clip: bool
    new_sighting: bool  # False: this clip was already recorded in this post (or without one)

    def to_dict(self) -> dict[str, object]:
        """The clip, its post and what was added, as JSON-ready values (the same fields as a check's)."""
        from .reporting.results import ingest_to_dict

        return ingest_to_dict(self)


def matcher_params() -> dict[str, object]:
    """The settings a check ran with, kept beside it so that a result can be explained later: the
    matcher's version, the main settings by name, and every constant of the matching steps."""
    from . import match

    return {"matcher_version": match.MATCHER_VERSION, "sample_fps": SAMPLE_FPS,
            "hash": "phash64 (imagehash, 32x32 OpenCV area shrink)",
            "min_quality": MIN_QUALITY, "frame_match_max_distance": match.FRAME_MATCH_MAX_DISTANCE,
            "min_matched_frames": match.MIN_MATCHED_FRAMES, "min_distinct_frames": match.MIN_DISTINCT_FRAMES,
            "speeds": [match.SPEEDS[0], match.SPEEDS[-1]], "far_speed_min_similarity": match.FAR_SPEED_MIN_SIMILARITY,
            "reference_views": [asdict(v) for v in REFERENCE_VARIANTS],
            "query_views": [asdict(v) for v in MATCH_VARIANTS],
            "constants": match.matcher_constants(),
            "audio": audiomatch.constants()}


def analyse(target: str, *, settings: Settings, post_url: str | None = None, posted_at: datetime | None = None,
            query: bool = False, progress: ProgressFn | None = None,
            named_by_user: str | None = None, hashed: HashedFn | None = None,
            between: bool = True) -> tuple[AnalysedClip, Post]:
    """Fetch, probe and fingerprint one clip. Touches no database. `named_by_user`: the URL the
    user gave, when `target` was found elsewhere (an audit's listing); see fetch.fetch. `hashed`:
    see frames.fingerprint. `between`: a clip for the library (`query` False) keeps the frames
    between its fast-changing samples too (frames.densify); False leaves that to the caller."""
    media = fetch(target, store_dir=settings.store_dir, cookies=settings.cookies, progress=progress,
                  post_url=post_url, posted_at=posted_at, allow_private=settings.allow_private_urls,
                  named_by_user=named_by_user, limits=settings.download_limits,
                  trust_named=settings.trust_named_host)
    # The C2PA manifest is read beside the decode: loading its reader costs ~0.4 s the first time.
    with ThreadPoolExecutor(max_workers=1) as pool:
        reading = pool.submit(read_credentials, media.path)
        try:
            info, fp = probe_and_fingerprint(media.path, query=query, progress=progress, hashed=hashed)
            if not query and between:  # a clip for the library keeps the frames between fast-changing samples too
                fp = densify(media.path, fp, progress=progress)
        except ProvenanceError:
            # Not a usable video: the same bytes fail the same way for anyone, so no one records this copy.
            # (An interrupted analysis keeps it: it is whole, and another process may be recording it.)
            discard(media)
            raise
        credentials = reading.result()
    return AnalysedClip(media=media, probe=info, fingerprint=fp, credentials=credentials), media.post


def probe_and_fingerprint(path: Path, *, query: bool = False, progress: ProgressFn | None = None,
                          hashed: HashedFn | None = None) -> tuple[ProbeInfo, Fingerprint]:
    """ffprobe's facts and the fingerprint. ffprobe (a process of its own, ~0.1 s) runs while the
    decode starts; when both fail, ffprobe's error is the one raised, as when it ran first."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="provenance-probe") as pool:
        probing = pool.submit(probe, path)
        # The sound is fingerprinted by its own ffmpeg process, on another core, once ffprobe has
        # said whether there is any.
        sound = pool.submit(lambda: audio.safely(path, has_audio=probing.result().has_audio, query=query))
        try:
            fp = fingerprint(path, query=query, progress=progress, hashed=hashed)
        except ProvenanceError:
            probing.result()
            raise
        info = probing.result()
        require_whole(fp, duration_s=info.picture_duration_s, name=path.name)
        fp = replace(fp, audio=sound.result())
    return info, fp


def ingest(target: str, *, settings: Settings, post_url: str | None = None, posted_at: datetime | None = None,
           progress: ProgressFn | None = None, engine: Engine | None = None) -> IngestResult:
    """Add a clip to the library as known footage, with the post it was seen in. `engine`: the
    library's, already open (a long-running caller keeps one); else it is opened here."""
    from .db import repository, session_scope, timestamps as stored_stamps

    engine = engine if engine is not None else open_library(settings)
    with _page_beside(target, settings) as capturing:
        clip, post = analyse(target, settings=settings, post_url=post_url, posted_at=posted_at, progress=progress,
                             between=False)
        # A file the library holds already (seen again, in another post) keeps its stored frames:
        # the frames between its samples would go unused (see check_analysed).
        if not _stored(clip.media.sha256, engine):
            clip = _with_between(clip, progress)
        clip = replace(clip, page=capturing.result() if capturing else
                       page_capture.not_tried(target, enabled=settings.capture_pages))
    observed_at = _now()
    with evidence_kept_if_recorded(clip.media, engine, page=clip.page):
        stamps = stamp_clip(clip, settings=settings, progress=progress)
        clip = replace(clip, page=page_capture.stamp_capture(clip.page, settings.tsa_url))
        with session_scope(engine) as session:
            # "new" is decided by the insert itself, so two processes ingesting one file agree on it.
            clip_id, new_clip = repository.upsert_clip(clip.media, clip.probe, clip.fingerprint, session=session,
                                                       observed_at=observed_at, min_quality=MIN_QUALITY)
            sighting_id, new_sighting = repository.upsert_sighting(clip_id, post, source="ingest",
                                                                   observed_at=observed_at, session=session)
            if clip.credentials is not None:
                repository.add_credentials(clip_id, clip.credentials, session=session)
            stored_stamps.add_stamps(stamps, subject=stored_stamps.CLIP, check_id=None,
                                     path=str(clip.media.path), session=session)
            _record_page(clip.page, sighting_id=sighting_id, check_id=None, session=session)
    return IngestResult(clip=clip, post=post, clip_id=clip_id, sighting_id=sighting_id, new_clip=new_clip,
                        new_sighting=new_sighting)


def open_library(settings: Settings) -> Engine:
    """The library's engine, with its schema checked (created when the database is empty)."""
    from .db import connect, ensure_schema

    engine = connect(settings.db_url)
    ensure_schema(engine)
    return engine


def load_library(engine: Engine) -> ReferenceFrames:
    """Every usable frame hash in the library, ready for the matcher, with its in-memory index.

    Read whole on a process's first call for a database, then kept current: a later call costs one
    small SELECT when nothing changed, and reads only the new clips when some were added, by this
    process or any other (provenance.index)."""
    from . import index

    return index.load(engine, min_quality=MIN_QUALITY)


def open_and_load(settings: Settings, engine: Engine | Callable[[], Engine] | None = None, *,
                  direct: bool = False) -> tuple[Opened, ReferenceFrames]:
    """`open_library` (unless `engine` is given, or a function giving it) then `load_library`: what a
    check waits for from the database. `direct`: for a check that records nothing, the library read
    through sqlite3 alone where it can be (provenance.readonly), else as with `direct` False."""
    if direct:
        from .readonly import open_direct

        found = open_direct(settings.db_url, min_quality=MIN_QUALITY)
        if found is not None:
            return found, found.snapshot.frames
    if engine is None:
        engine = open_library(settings)
    elif callable(engine):
        engine = engine()
    return engine, load_library(engine)


def check(target: str, *, settings: Settings, post_url: str | None = None, posted_at: datetime | None = None,
          record: bool = True, progress: ProgressFn | None = None,
          engine: Engine | Callable[[], Engine] | None = None) -> CheckResult:
    """Compare a clip with all known footage; with `record`, add it and this check to the library.
    `engine`: the library's, or a function giving it (called on the library thread: a long-running
    caller keeps one engine, opened by the first check); else it is opened here.

    The database opens (imports, schema check, index) while the clip downloads and decodes, on
    another thread, which then searches the library for the query's hashes as they are made
    (provenance.presearch): a check's wall time is then about its fetch and decode (bench/README.md,
    "Index on disk and start-up"). A database that cannot be opened is reported once the clip is
    analysed."""
    from .presearch import EarlySearch

    early = EarlySearch(MIN_QUALITY)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="provenance-library") as pool, \
            _page_beside(target, settings) as capturing:
        library_opening = pool.submit(open_and_load, settings, engine, direct=not record)
        searching = pool.submit(early.run, library_opening)
        try:
            clip, post = analyse(target, settings=settings, post_url=post_url, posted_at=posted_at, query=True,
                                 progress=progress, hashed=early.add)
        finally:
            early.stop()
        clip = replace(clip, page=capturing.result() if capturing else
                       page_capture.not_tried(target, enabled=settings.capture_pages))
        engine, library = _opened(library_opening, clip.media)
        with _closed_after(engine), evidence_kept_if_recorded(clip.media, engine, recorded=record, page=clip.page):
            searching.result()
            library = early.searched(library)
            require_enough_frames(clip, name=target)
            stamps = stamp_clip(clip, settings=settings, progress=progress) if record else ()
            if record:
                clip = replace(clip, page=page_capture.stamp_capture(clip.page, settings.tsa_url))
            if progress:
                progress("match", None)
            return check_analysed(clip, post, engine=engine, library=library, record=record, stamps=stamps,
                                  progress=progress)


def _is_direct(opened: Opened) -> bool:
    """Whether `opened` is a library read directly (provenance.readonly): never, in a process that has
    not loaded that module, which an ingest or a recorded check need not load."""
    readonly = sys.modules.get(f"{__package__}.readonly")
    return readonly is not None and isinstance(opened, readonly.DirectLibrary)


@contextmanager
def _closed_after(opened: Opened) -> Iterator[None]:
    """A library read directly is closed with the check (an engine is its caller's, or the process's)."""
    try:
        yield
    finally:
        if _is_direct(opened):
            opened.close()


@contextmanager
def _reading(opened: Opened) -> Iterator[tuple[Reads, Session | None]]:
    """One transaction on the library: what it reads through, and its session for writing (None for a
    library read directly, which a check that records nothing reads through)."""
    if _is_direct(opened):
        with opened.reading() as found:
            yield found, None
        return
    from .db import reads, session_scope

    with session_scope(opened) as session:
        yield reads.Reads(reads.session_run(session)), session


def _opened(library_opening: Future[tuple[Opened, ReferenceFrames]],
            media: FetchedMedia) -> tuple[Opened, ReferenceFrames]:
    """The opened library; when it failed, the evidence copy this check stored goes (nothing can
    have been recorded with it through a database this process could not open) and the error is raised."""
    try:
        return library_opening.result()
    except BaseException:
        if media.newly_stored:
            discard(media)
        raise


def stamp_clip(clip: AnalysedClip, *, settings: Settings, progress: ProgressFn | None = None) -> tuple[Stamp, ...]:
    """The clip's SHA-256 timestamped by the TSA of `settings`, before anything is recorded: a TSA
    that fails stops the command with the library as it was."""
    if settings.tsa_url is None:
        return ()
    from .timestamps import stamp

    if progress:
        progress("timestamp", None)
    return (stamp(clip.media.sha256, settings.tsa_url),)


def _page_beside(target: str, settings: Settings) -> AbstractContextManager[page_capture.Capturing | None]:
    """The post's page captured in a thread while the clip downloads and decodes (provenance.capture)."""
    return page_capture.beside(target, store_dir=settings.store_dir, cookies=settings.cookies,
                               allow_private=settings.allow_private_urls, trust_named=settings.trust_named_host,
                               enabled=settings.capture_pages)


def _record_page(page: page_capture.CaptureOutcome | None, *, sighting_id: int, check_id: int | None,
                 session: Session) -> None:
    if page is None or page.capture is None:
        return
    from .db import timestamps as stored_stamps
    from .db.captures import add_capture

    add_capture(page.capture, sighting_id=sighting_id, check_id=check_id, session=session)
    for s, (subject, f) in zip(page.stamps, ((stored_stamps.SCREENSHOT, page.capture.screenshot),
                                             (stored_stamps.WEB_ARCHIVE, page.capture.archive))):
        stored_stamps.add_stamps((s,), subject=subject, check_id=check_id, path=str(f.path), session=session)


@contextmanager
def evidence_kept_if_recorded(media: FetchedMedia, engine: Opened, *, recorded: bool = True,
                              page: page_capture.CaptureOutcome | None = None) -> Iterator[None]:
    """Remove the evidence copy this command stored when the block fails or `recorded` is False: a
    failed command, a database error or --no-record leaves the store as it found it. A copy that
    another process recorded meanwhile (the same bytes) stays. The same for the page capture's files."""
    try:
        yield
    except BaseException:
        _discard_unless_recorded(media, engine)
        _discard_page_unless_recorded(page, engine)
        raise
    if not recorded:
        _discard_unless_recorded(media, engine)
        _discard_page_unless_recorded(page, engine)


def _discard_page_unless_recorded(page: page_capture.CaptureOutcome | None, engine: Opened) -> None:
    if page is None or page.capture is None:
        return
    shas = (page.capture.screenshot.sha256, page.capture.archive.sha256)
    try:
        with _reading(engine) as (reads, _):
            kept = reads.recorded_sha256s(shas)
    except ProvenanceError:
        kept = set()
    page_capture.discard(page, kept)


def _discard_unless_recorded(media: FetchedMedia, engine: Opened) -> None:
    if not media.newly_stored:
        return
    try:
        with _reading(engine) as (reads, _):
            if reads.find_clip_id(media.sha256) is not None:
                return
    except ProvenanceError:
        pass  # the database is out of reach: no one recorded anything with this copy through it
    discard(media)


def check_analysed(clip: AnalysedClip, post: Post, *, engine: Opened, library: ReferenceFrames,
                   record: bool = True, on_recorded: RecordedFn | None = None,
                   stamps: tuple[Stamp, ...] = (), progress: ProgressFn | None = None) -> CheckResult:
    """Match an analysed clip (from `analyse(..., query=True)`) against `library` and record the check.

    The match step of `check`, on its own so that a caller analysing many clips (an audit) can
    overlap downloads with matching. `on_recorded` runs in the same transaction, after the check
    is written. `stamps` (from `stamp_clip`) are recorded with the check. `progress` is shown while the
    frames between fast-changing samples are hashed for the library (frames.densify). `engine` may be
    a library read directly (open_and_load's `direct`) when nothing is recorded."""
    from . import localfeat
    from .match import find_evidence, query_frames

    require_enough_frames(clip)
    observed_at = _now()
    # The library's size goes with the settings: "no match in a library of N clips" is only
    # meaningful with the N the check actually searched (reports are built from the stored check).
    # The clips this one could have matched: not clips with no usable frame. The clip itself counts
    # when it was in the library before this check (a file checked again matches its own copy, and
    # a report must not say it searched 0 clips beside that match); a new clip is not in `library`.
    searchable = sum(1 for ref in library.clips.values() if ref.usable_frames > 0)
    params = {**matcher_params(), "library_clips": searchable}
    # What the library keeps of a clip that changes faster than the sampling: decoded before the
    # transaction opens, and only for such footage (most checks decode nothing more), and not for a
    # file the library already holds (add_clip keeps the stored copy, so the decode would go unused:
    # 1.4 s for bench/check_speed.py's clip checked again).
    library_copy = clip.fingerprint
    if record and not _stored(clip.media.sha256, engine):
        library_copy = densify(clip.media.path, clip.fingerprint, progress=progress)
    # Everything the check writes is one transaction: a failure anywhere leaves nothing half-written.
    with _reading(engine) as (reads, session):
        pictures = localfeat.Pictures(query=clip.media.path, reference=reads.evidence_path_of)
        evidence = find_evidence(query_frames(clip.fingerprint, min_quality=MIN_QUALITY), library,
                                 query_sha256=clip.media.sha256, motion_of=reads.motion_of, pictures=pictures)
        clip_id_of = {ref.sha256: cid for cid, ref in library.clips.items()}
        clip_ids = {m.sha256: clip_id_of[m.sha256] for m in (*evidence.matches, *evidence.scenes)}
        sightings = reads.sightings_for(clip_ids.values())
        matches = [_with_sightings(m, sightings.get(clip_ids[m.sha256], [])) for m in evidence.matches]
        scenes = tuple(_with_sightings(h, sightings.get(clip_ids[h.sha256], [])) for h in evidence.scenes)
        sound, sound_ids = _sound_evidence(clip, matches, engine=engine, reads=reads, session=session)
        verdict, first_seen, first_seen_sighting = _verdict(clip, post, observed_at,
                                                            [*matches, *audiomatch.verdict_matches(sound)])
        clip_ids.update(sound_ids)
        check_id = None
        if record:
            assert session is not None, "a library read directly is for checks that record nothing"
            from .db import repository, timestamps as stored_stamps

            # add_clip stores a clip once per SHA-256 and returns its id either way.
            clip_id = repository.add_clip(clip.media, clip.probe, library_copy, session=session,
                                          observed_at=observed_at, min_quality=MIN_QUALITY)
            sighting_id = repository.add_sighting(clip_id, post, source="check", observed_at=observed_at,
                                                  session=session)
            if clip.credentials is not None:
                repository.add_credentials(clip_id, clip.credentials, session=session)
            check_id = repository.add_check(
                session=session, clip_id=clip_id, sighting_id=sighting_id, created_at=observed_at, verdict=verdict,
                first_seen_clip_id=clip_ids.get(first_seen.sha256) if not first_seen.is_this_post else clip_id,
                first_seen_sighting_id=first_seen_sighting if not first_seen.is_this_post else sighting_id,
                first_seen_at=first_seen.posted_at or first_seen.observed_at, params=params,
                tool_version=__version__, matches=[(clip_ids[m.sha256], m) for m in matches], scenes=scenes)
            stored_stamps.add_stamps(stamps, subject=stored_stamps.CLIP, check_id=check_id,
                                     path=str(clip.media.path), session=session)
            _record_page(clip.page, sighting_id=sighting_id, check_id=check_id, session=session)
            repository.add_audio_matches(check_id, [(sound_ids[m.sha256], m) for m in sound.matches],
                                         session=session)
            if on_recorded is not None:
                on_recorded(session, check_id)
    # The grey frames kept for the second look go with the match: a result may be kept long after.
    clip = replace(clip, fingerprint=replace(library_copy, second_look=None))
    return CheckResult(check_id=check_id, verdict=verdict, clip=clip, post=post, observed_at=observed_at,
                       first_seen=first_seen, matches=tuple(matches),
                       signals=_signals(post, clip.credentials), params=params,
                       scenes=scenes, sound=sound)


def _with_between(clip: AnalysedClip, progress: ProgressFn | None) -> AnalysedClip:
    """`clip` with the frames between its fast-changing samples (frames.densify). A file that cannot be
    decoded again is no one's to record: its copy goes, as `analyse` lets it go."""
    try:
        return replace(clip, fingerprint=densify(clip.media.path, clip.fingerprint, progress=progress))
    except ProvenanceError:
        discard(clip.media)
        raise


def _stored(sha256: str, engine: Opened) -> bool:
    """Whether the library holds the file of this SHA-256 now."""
    with _reading(engine) as (reads, _):
        return reads.find_clip_id(sha256) is not None


def _sound_evidence(clip: AnalysedClip, matches: list[Match], *, engine: Opened, reads: Reads,
                    session: Session | None) -> tuple[SoundEvidence, dict[str, int]]:
    """The query's sound against the library's, with sightings, and the hints from comparing what the
    pictures and the sound matched; and the clip ids of the audio matches."""
    fp = clip.fingerprint.audio or audio.no_audio(audio.AudioStatus.FAILED, "the sound was not fingerprinted")
    if not fp.has_evidence:
        return audiomatch.combine(fp.status, fp.detail, (), matches, {}), {}
    if _is_direct(engine):  # the sound of the snapshot its frames came from
        sound = engine.snapshot.sound
        ids, values, sha_of = sound.clip_ids, sound.values, sound.sha256_of
    else:
        from . import index

        ids, values, sha_of = index.load_sound(engine, min_quality=MIN_QUALITY, session=session)
    found = audiomatch.find_audio(fp, audiomatch.build_library(ids, values, sha_of))
    id_of = {sha: cid for cid, sha in sha_of.items()}
    sound_ids = {m.sha256: id_of[m.sha256] for m in found}
    sightings = reads.sightings_for(sound_ids.values())
    found = tuple(_with_sightings(m, sightings.get(sound_ids[m.sha256], [])) for m in found)
    picture_ids = {m.sha256: reads.find_clip_id(m.sha256) for m in matches}
    reference_sound = {sha: reads.audio_status_of(cid) for sha, cid in picture_ids.items() if cid is not None}
    return audiomatch.combine(fp.status, fp.detail, found, matches, reference_sound), sound_ids


_Evidence = TypeVar("_Evidence", Match, SceneHint, AudioMatch)


def require_enough_frames(clip: AnalysedClip, *, name: str | None = None) -> None:
    """A clip with fewer usable frames than a match needs cannot be told apart from new footage: say
    so (MediaError, exit 4) rather than answer no_match, which would claim a search that could not
    happen."""
    from . import match

    what = printable(name) if name else "the clip"
    usable = clip.usable_frames
    if usable == 0:
        raise MediaError(f"no usable frames in {what}: every sampled frame is black, flat or faded, so there is "
                         "no picture to compare; check the file shows footage")
    if usable < match.MIN_MATCHED_FRAMES:
        raise MediaError(f"too short to tell: {what} has {usable} usable frame{'s' if usable > 1 else ''} "
                         f"({usable / SAMPLE_FPS:g} s of footage at {SAMPLE_FPS:g} frames a second); a match needs "
                         f"at least {match.MIN_MATCHED_FRAMES}; check a longer copy of the clip")


def _now() -> datetime:
    return datetime.now(UTC)


def _with_sightings(match: _Evidence, sightings: list[Sighting]) -> _Evidence:
    return replace(match, sightings=tuple(sightings))


def _when(posted_at: datetime | None, observed_at: datetime) -> datetime:
    return posted_at or observed_at


def _verdict(clip: AnalysedClip, post: Post, observed_at: datetime,
             matches: list[Match | AudioMatch]) -> tuple[Verdict, FirstSeen, int | None]:
    this_post = FirstSeen(sha256=clip.media.sha256, url=post.url, posted_at=post.posted_at,
                          observed_at=observed_at, is_this_post=True)
    if not matches:
        return Verdict.NO_MATCH, this_post, None
    this_time = _when(post.posted_at, observed_at)
    # The same post seen again (same URL) is not a reuse of itself; nor is this file's own sighting
    # without a URL (one per clip: it is the sighting this check records).
    others = [s for m in matches for s in m.sightings
              if not (post.url and s.url == post.url)
              and not (post.url is None and s.url is None and s.sha256 == clip.media.sha256)]
    earliest = min(others, key=lambda s: (_when(s.posted_at, s.observed_at), s.observed_at), default=None)
    if earliest is None or _when(earliest.posted_at, earliest.observed_at) >= this_time:
        return Verdict.EARLIEST_KNOWN, this_post, None
    first = FirstSeen(sha256=earliest.sha256, url=earliest.url, posted_at=earliest.posted_at,
                      observed_at=earliest.observed_at, is_this_post=False)
    return Verdict.REUSED, first, earliest.sighting_id


def _signals(post: Post, credentials: CredentialsReading | None) -> tuple[Signal, ...]:
    found = credential_signals(credentials.credentials if credentials else None, post.posted_at)
    gap = media_predates_post(post.post_created_at, post.media_created_at)
    if gap is None:
        return found
    return found + (Signal(
        kind="x_media_predates_post",
        detail=(f"the video's media id dates from {post.media_created_at:%Y-%m-%d %H:%M} UTC, "
                f"{gap_words(gap)} before the post: it was uploaded earlier, probably by someone else"),
        data={"media_created_at": post.media_created_at, "post_created_at": post.post_created_at,
              "gap_s": gap.total_seconds()}),)


def post_signals(post: Post, credentials: CredentialsReading | None = None) -> tuple[Signal, ...]:
    """The signals beside the frame matches for a post and its clip's credentials; reports rebuild
    them from the stored post and reading."""
    return _signals(post, credentials)
