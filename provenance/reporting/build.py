"""Build a CheckReport from what the library stored about a check (plus the evidence files)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path


from .. import __version__
from ..db import repository, session_scope, shown_url
from ..errors import InputError
from ..keyframes import search_links
from ..pipeline import open_library
from ..records import Transform, Verdict
from ..settings import Settings
from ..stored import StoredCheck, StoredClip, StoredMatch, StoredSighting
from . import evidence
from .flags import entry_info, post_time, red_flags, signals_of
from .results import method_words, region_words
from .model import (Answer, CheckReport, ClipView, FirstSeenView, KeyframeView, MatchView, PostView, Reproducibility,
                    Scene, Stream, TimelineEntry)

# Platform counts worth showing, as yt-dlp names them.
COUNT_FIELDS = ("view_count", "like_count", "dislike_count", "repost_count", "comment_count", "concurrent_view_count")


def load_check(check_id: int, *, settings: Settings) -> StoredCheck:
    engine = open_library(settings)
    try:
        with session_scope(engine) as session:
            stored = repository.load_check_for_report(check_id, session=session)
    finally:
        engine.dispose()
    if stored is None:
        raise InputError(f"no check with id {check_id} in {shown_url(settings.db_url)}; "
                         "the id is printed by `provenance check` (\"recorded as check N\")")
    return stored


def build_check_report(check_id: int, *, settings: Settings, images: bool = True,
                       now: datetime | None = None) -> CheckReport:
    """The report of a recorded check. `images` cuts frame thumbnails from the evidence files (HTML)."""
    return report_from_stored(load_check(check_id, settings=settings), database_url=settings.db_url,
                              images=images, now=now)


def report_from_stored(stored: StoredCheck, *, database_url: str, images: bool = True,
                       now: datetime | None = None, paired_matches: int | None = None) -> CheckReport:
    """`paired_matches`: frame pairs only for the strongest N matches and the first-seen clip's
    (None: every match; 0: none at all)."""
    this_post = _post(stored.sighting) if stored.sighting is not None else None
    this_when = this_post.when if this_post is not None else stored.created_at
    paired = None if paired_matches is None else {
        m.rank for m in stored.matches
        if paired_matches > 0 and (m.rank < paired_matches or m.reference.sha256 == stored.first_seen_sha256)}
    matches = tuple(_match(m, stored, this_when, images=images, pairs=paired is None or m.rank in paired)
                    for m in stored.matches)
    if stored.first_seen_sighting is not None and stored.sighting is not None \
            and stored.first_seen_sighting.sighting_id == stored.sighting.sighting_id:
        first_post = this_post
    else:
        first_post = _post(stored.first_seen_sighting) if stored.first_seen_sighting is not None else None
    first_seen = FirstSeenView(sha256=stored.first_seen_sha256 or stored.clip.sha256,
                               is_this_post=stored.verdict != Verdict.REUSED, post=first_post, at=stored.first_seen_at)
    clip = _clip(stored.clip)
    scenes = tuple(Scene(sha256=str(h.get("sha256")), similarity=float(h.get("similarity") or 0.0),
                         query_frames=int(h.get("query_frames") or 0), reason=str(h.get("reason") or ""))
                   for h in stored.scenes)
    signals = signals_of(stored.sighting, stored.credentials)
    library_clips = stored.params.get("library_clips")
    return CheckReport(
        check_id=stored.check_id, verdict=stored.verdict, checked_at=stored.created_at,
        answer=_answer(stored.verdict, matches, first_seen, this_post,
                       library_clips if isinstance(library_clips, int) else None, stored.library_clips_now, scenes),
        clip=clip, post=this_post, first_seen=first_seen, matches=matches, scenes=scenes,
        timeline=_timeline(this_post, matches, first_seen), signals=signals,
        flags=red_flags(stored.sighting, clip.tags, signals),
        reproducibility=Reproducibility(
            tool_version=stored.tool_version, report_tool_version=__version__, params=stored.params,
            library_clips=library_clips if isinstance(library_clips, int) else None,
            library_clips_now=stored.library_clips_now, generated_at=now or datetime.now(UTC),
            database_url=shown_url(database_url)),
        thumbnail=evidence.clip_thumbnail(stored.frames, stored.clip.evidence_path) if images else None,
        credentials=stored.credentials,
        keyframes=_keyframes(stored, images=images),
        platform_thumbnail=platform_thumbnail(stored.sighting),
        thumbnail_searches=search_links(platform_thumbnail(stored.sighting)),
    )


def _keyframes(stored: StoredCheck, *, images: bool) -> tuple[KeyframeView, ...]:
    times = tuple(s.keyframe_s for s in stored.shots)
    thumbnails = (evidence.keyframe_thumbnails(times, stored.clip.evidence_path) if images and times
                  else (None,) * len(times))
    return tuple(KeyframeView(shot=s, thumbnail=t) for s, t in zip(stored.shots, thumbnails, strict=True))


def platform_thumbnail(s: StoredSighting | None) -> str | None:
    """The post's thumbnail URL as the platform gave it to yt-dlp, if it is a plain http(s) URL."""
    info = entry_info(s.info) if s is not None else None
    url = info.get("thumbnail") if info else None
    return url if isinstance(url, str) and search_links(url) else None


def _post(s: StoredSighting) -> PostView:
    info = entry_info(s.info) or {}
    duration = info.get("duration")
    counts = {k: int(v) for k in COUNT_FIELDS if isinstance(v := info.get(k), (int, float)) and not isinstance(v, bool)}
    media_id = info.get("id")
    return PostView(
        sighting_id=s.sighting_id, clip_sha256=s.clip_sha256, source=s.source, url=s.url, platform=s.platform,
        post_id=s.post_id, media_id=str(media_id) if media_id not in (None, "") and str(media_id) != s.post_id else None,
        uploader=s.uploader, uploader_id=s.uploader_id,
        channel_id=str(info["channel_id"]) if info.get("channel_id") else None,
        posted_at=s.posted_at, observed_at=s.observed_at, post_time=post_time(s), title=s.title,
        description=s.description,
        duration_s=float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None,
        post_created_at=s.post_created_at, media_created_at=s.media_created_at, counts=counts)


def _clip(c: StoredClip) -> ClipView:
    probe = c.probe
    streams = tuple(Stream(kind=str(s.get("kind")), codec=s.get("codec"), width=s.get("width"), height=s.get("height"),
                           fps=s.get("fps"), bit_rate=s.get("bit_rate"))
                    for s in probe.get("streams") or [] if isinstance(s, dict))
    video = next((s for s in probe.get("streams") or [] if isinstance(s, dict) and s.get("kind") == "video"), {})
    duration = probe.get("duration_s")
    return ClipView(
        sha256=c.sha256, size_bytes=c.size_bytes, evidence_path=c.evidence_path,
        evidence_present=bool(c.evidence_path) and Path(c.evidence_path).is_file(),
        duration_s=round(float(duration), 3) if isinstance(duration, (int, float)) else round(c.duration_s, 3),
        decoded_s=round(c.duration_s, 3), container=probe.get("container") or c.container, width=c.width,
        height=c.height, fps=round(c.fps, 3) if c.fps else None, video_codec=c.video_codec,
        rotation=int(video.get("rotation") or 0), has_audio=c.has_audio, streams=streams,
        tags={str(k): str(v) for k, v in (probe.get("tags") or {}).items()}, bit_rate=probe.get("bit_rate"),
        sampled_frames=c.sampled_frames, usable_frames=c.usable_frames, content_box=c.content_box,
        first_observed_at=c.first_observed_at)


def _match(m: StoredMatch, stored: StoredCheck, this_when: datetime, *, images: bool, pairs: bool = True) -> MatchView:
    sightings = tuple(_post(s) for s in m.sightings)
    frame_pairs = evidence.frame_pairs(m, stored.frames, stored.clip.evidence_path, images=images) if pairs else ()
    mirror_note = None
    if Transform.MIRRORED in m.transforms:
        later = ""
        if sightings:
            ref_first = min(s.when for s in sightings)
            later = (" The reference was seen first, so this clip is most likely the flipped copy."
                     if ref_first < this_when else
                     " This post came first, so the reference is most likely the flipped copy.")
        mirror_note = ("Mirrored: this clip shows the mirror image of the reference clip (left and right swapped). "
                       "Frames are shown as each file has them; which of the two was flipped cannot be told from "
                       "the pictures alone." + later)
    return MatchView(rank=m.rank + 1, sha256=m.reference.sha256, reference=_clip(m.reference), similarity=m.similarity,
                     query_coverage=m.query_coverage, reference_coverage=m.reference_coverage, transforms=m.transforms,
                     matched_frames=m.matched_frames, offset_s=m.offset_s, speed=m.speed, segments=m.segments,
                     sightings=sightings, pairs=frame_pairs, mirror_note=mirror_note, method=m.method,
                     method_text=method_words(m.method, m.confidence), confidence=m.confidence, region=m.region,
                     region_text=region_words(m.region), pairs_omitted=not pairs)


def _timeline(this_post: PostView | None, matches: tuple[MatchView, ...],
              first_seen: FirstSeenView) -> tuple[TimelineEntry, ...]:
    items: dict[int, tuple[PostView, int | None]] = {}
    for m in matches:
        for s in m.sightings:
            items.setdefault(s.sighting_id, (s, m.rank))
    if this_post is not None:
        items[this_post.sighting_id] = (this_post, None)
    ordered = sorted(items.values(), key=lambda pm: (pm[0].when, pm[0].observed_at, pm[0].sighting_id))
    first_id = first_seen.post.sighting_id if first_seen.post is not None else None
    this_id = this_post.sighting_id if this_post is not None else None
    this_when = this_post.when if this_post is not None else None
    out = []
    for i, (post, rank) in enumerate(ordered):
        if post.sighting_id == this_id:
            role = "this_post"
        elif post.sighting_id == first_id:
            role = "first_seen"
        else:
            role = "earlier" if this_when is not None and post.when < this_when else "later"
        out.append(TimelineEntry(post=post, role=role, reuse=i > 0, match_rank=rank))
    return tuple(out)


def span(seconds: float) -> str:
    """m:ss for times inside a clip (h:mm:ss beyond an hour)."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def day(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d") if dt else "an unknown date"


def _answer(verdict: str, matches: tuple[MatchView, ...], first_seen: FirstSeenView, this_post: PostView | None,
            library_clips: int | None, library_now: int, scenes: tuple[Scene, ...] = ()) -> Answer:
    library = (f"a library of {library_clips} clips" if library_clips is not None else
               f"this library (its size when the check ran was not recorded; it holds {library_now} clips now)")
    first_caveat = ("\"First seen\" is the earliest appearance this library knows of, not necessarily the original: "
                    "the footage may have been posted earlier somewhere this library has not seen.")
    if verdict == Verdict.NO_MATCH or not matches:
        same_scene = (f" {len(scenes)} known clip{'s' if len(scenes) != 1 else ''} show{'' if len(scenes) != 1 else 's'} "
                      "the same scene (a fixed camera's view), at a moment that could not be established: that is "
                      "evidence of the place, not of this footage (see \"Same scene\")." if scenes else "")
        return Answer(
            headline="No match",
            text=f"No known earlier copy in {library}.{same_scene}",
            caveat=("The library holds only clips ingested or checked with this tool. No match does not mean the "
                    "footage is original or new: it may have been posted anywhere this library has not seen. "
                    "Clips with less than about 1 s of usable footage, still pictures, picture-in-picture and "
                    "reuse of the sound alone are not found."))
    if verdict == Verdict.REUSED and first_seen.post is not None:
        fp = first_seen.post
        match = next((m for m in matches if any(s.sighting_id == fp.sighting_id for s in m.sightings)), matches[0])
        spans = ", ".join(f"{span(s.query_start_s)}-{span(s.query_end_s)}" for s in match.segments)
        when = (f"first posted on {day(fp.posted_at)}" if fp.posted_at else
                f"first seen by this tool on {day(fp.observed_at)} (its post time is unknown)")
        who = f" by {fp.uploader}" if fp.uploader else ""
        how = ", ".join([t for t in match.transforms if t != Transform.EXCERPT]
                        + (["placed by what moves in the picture (fixed camera)"] if match.method == "motion" else [])
                        + ([match.region_text] if match.region_text else []))
        others = len(matches) - 1
        more = (f" {others} other known clip{'s' if others != 1 else ''} also match{'' if others != 1 else 'es'}."
                if others else "")
        own = (f" This post is dated {day(this_post.posted_at)}." if this_post and this_post.posted_at else
               " This post's own time is unknown, so it was compared by when this tool observed it.")
        return Answer(
            headline="Reused footage",
            text=(f"Reused footage: this clip's frames {spans} match a video {when}{who} "
                  f"(similarity {match.similarity:.2f}{', ' + how if how else ''}).{own}{more}"),
            caveat=first_caveat)
    n = len(matches)
    return Answer(
        headline="Earliest known appearance",
        text=(f"Earliest known appearance: {n} known clip{'s' if n != 1 else ''} in {library} match this footage, "
              "and none was seen before this post."),
        caveat=first_caveat)
