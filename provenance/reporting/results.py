"""What `check`, `ingest` and `ingest DIR` print when they finish: a check's result as JSON for
machines (`--json`) or a short verdict for people; an ingest's in a few lines.

Untrusted text goes through text.safe in terminal lines; JSON escapes it itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import printable
from ..records import Match, Post, Region, SceneHint, Sighting, Signal, SoundEvidence, Verdict
from .text import iso, safe

if TYPE_CHECKING:  # annotations only: a check's summary is printed without loading audits, folders, attest
    from ..capture import CaptureOutcome
    from ..credentials import CredentialsReading
    from ..attest import FileVerification
    from ..folder import FolderResult
    from ..pipeline import CheckResult, FirstSeen, IngestResult

SCHEMA_VERSION = 2  # 2: content_credentials and sound (check --json, reports, ingest --json)
# check --json alone is at 3 (page_capture, provenance/schemas/check.v3.schema.json): a report shows the
# captures recorded (`page_captures`), and why a capture failed is not recorded, so reports stay at 2.
CHECK_SCHEMA_VERSION = 3


def check_to_dict(result: CheckResult) -> dict[str, Any]:
    return {
        "schema_version": CHECK_SCHEMA_VERSION,
        "check_id": result.check_id,
        "verdict": result.verdict,
        "checked_at": iso(result.observed_at),
        "clip": _clip(result.clip),
        "post": _post(result.post),
        "first_seen": _first_seen(result.first_seen),
        "matches": [_match(m) for m in result.matches],
        "scenes": [scene_to_dict(h) for h in result.scenes],
        "signals": [_signal(s) for s in result.signals],
        "params": result.params,
        "content_credentials": credentials_to_dict(result.clip.credentials),
        "sound": sound_to_dict(result.sound),
        "page_capture": page_capture_to_dict(result.clip.page),
    }


# check --json's page_capture.detail when no capture was tried (capture.OFF, capture.NOT_A_PAGE).
_NOT_CAPTURED = {"off": "not asked for (--no-capture)",
                 "not_a_page": "a local file or a media file's URL: no post page to capture"}


def page_capture_to_dict(outcome: CaptureOutcome | None) -> dict[str, Any]:
    """The post's page capture, in the shape of a report's `page_captures` item, or why there is none."""
    if outcome is None:  # a caller that never asked for one
        return {"status": "off", "detail": _NOT_CAPTURED["off"], "capture": None}
    c = outcome.capture
    if c is None:
        if outcome.note:
            return {"status": "failed", "detail": outcome.note, "capture": None}
        return {"status": outcome.skipped or "off", "detail": _NOT_CAPTURED.get(outcome.skipped or "off", ""),
                "capture": None}
    return {"status": "captured", "detail": "", "capture": {
        "url": c.url, "final_url": c.final_url, "title": c.title, "http_status": c.http_status,
        "captured_at": iso(c.captured_at), "browser": c.browser,
        "screenshot": {"sha256": c.screenshot.sha256, "size_bytes": c.screenshot.size_bytes,
                       "path": str(c.screenshot.path), "format": "png"},
        "web_archive": {"sha256": c.archive.sha256, "size_bytes": c.archive.size_bytes, "path": str(c.archive.path),
                        "format": c.archive_format, "responses": c.resources},
        "refused": list(c.refused)}}



def sound_to_dict(sound: SoundEvidence | None) -> dict[str, Any]:
    """The sound's evidence, apart from the pictures': its status, its matches and the hints."""
    if sound is None:
        return {"status": "not_fingerprinted", "detail": "the sound was not fingerprinted", "matches": [],
                "hints": []}
    return {"status": sound.status, "detail": sound.detail,
            "matches": [{"sha256": m.sha256, "similarity": m.similarity, "matched_s": m.matched_s,
                         "query_coverage": m.query_coverage, "reference_coverage": m.reference_coverage,
                         "offset_s": m.offset_s, "speed": m.speed,
                         "segments": [_segment(g) for g in m.segments],
                         "sightings": [_sighting(x) for x in m.sightings]} for m in sound.matches],
            "hints": [{"kind": h.kind, "sha256": h.sha256, "detail": h.detail, "offset_gap_s": h.offset_gap_s}
                      for h in sound.hints]}


def _segment(s: Any) -> dict[str, float]:
    return {"query_start_s": s.query_start_s, "query_end_s": s.query_end_s,
            "reference_start_s": s.reference_start_s, "reference_end_s": s.reference_end_s, "speed": s.speed}


# How a match was established, in words (records.Match.method).
METHOD_WORDS = {
    "frames": "aligned frames: the frame hashes agree on one time line",
    "motion": ("motion profile: the pictures barely change (a fixed camera), and what moves in them "
               "lines up at this offset"),
    "region": "part of the picture: the footage sits inside a rectangle of the other clip",
    "local_features": ("local features: keypoints located the footage inside a rectangle of the other clip, "
                       "and the rectangles' frames agree on one time line"),
}


def method_words(method: str, confidence: float | None) -> str:
    sure = f" (confidence {confidence:.2f})" if confidence is not None else ""
    return METHOD_WORDS.get(method, method) + sure


def region_words(region: Region | None) -> str | None:
    """"this clip shows the reference inside x,y,w,h" for an inset or a kept part of the picture."""
    if region is None:
        return None
    box = f"x {region.x:.0%}, y {region.y:.0%}, w {region.w:.0%}, h {region.h:.0%}"
    if region.inside == "query":
        return f"this clip shows the reference inside {box} of its picture"
    return f"this clip shows only {box} of the reference's picture"


def region_to_dict(region: Region | None) -> dict[str, Any] | None:
    if region is None:
        return None
    return {"in": region.inside, "x": round(region.x, 4), "y": round(region.y, 4), "w": round(region.w, 4),
            "h": round(region.h, 4)}


def credentials_to_dict(reading: CredentialsReading | None) -> dict[str, Any] | None:
    """The clip's C2PA reading for the JSON contract: null when it was not read (checks made before
    credentials were read), `present` false when the clip carries none."""
    if reading is None:
        return None
    found = reading.credentials
    out: dict[str, Any] = {"read_at": iso(reading.read_at), "reader": reading.reader, "present": found is not None}
    if found is not None:
        out.update({**found.to_dict(), "actions": [dict(vars(a)) for a in found.actions],
                    "ingredients": list(found.ingredients), "failures": list(found.failures)})
    return out


def scene_to_dict(h: SceneHint) -> dict[str, Any]:
    return {"sha256": h.sha256, "similarity": h.similarity, "query_frames": h.query_frames, "reason": h.reason,
            "sightings": [_sighting(s) for s in h.sightings]}


def _clip(clip: Any) -> dict[str, Any]:  # pipeline.AnalysedClip
    probe, fp, video = clip.probe, clip.fingerprint, clip.probe.video
    return {
        "sha256": clip.media.sha256,
        "size_bytes": clip.media.size_bytes,
        "evidence_path": str(clip.media.path),
        "duration_s": round(probe.duration_s, 3),
        "container": probe.container,
        "width": video.width if video else None,
        "height": video.height if video else None,
        "fps": round(video.fps, 3) if video and video.fps else None,
        "video_codec": video.codec if video else None,
        "rotation": video.rotation if video else 0,
        "has_audio": probe.has_audio,
        "tags": probe.tags,
        # Every frame hashed and kept: the samples, and for a recorded clip the frames between them where it
        # changes faster than the sampling (frames.densify), as a report of the stored check counts them.
        "sampled_frames": len(fp.stored_frames),
        "usable_frames": clip.kept_usable_frames,
        "content_box": _box(fp.content_box),
    }


def ingest_to_dict(result: IngestResult) -> dict[str, Any]:
    """An ingest as JSON-ready values: the clip and post as in `check_to_dict`, and what was added."""
    return {"schema_version": SCHEMA_VERSION, "clip_id": result.clip_id, "sighting_id": result.sighting_id,
            "new_clip": result.new_clip, "new_sighting": result.new_sighting, "clip": _clip(result.clip),
            "post": _post(result.post), "content_credentials": credentials_to_dict(result.clip.credentials)}


def check_to_json(result: CheckResult) -> str:
    # ASCII only (every JSON output here): titles from the internet may hold C1 controls or bidi
    # overrides that a terminal would obey; \uXXXX escapes are the same JSON to any parser.
    return json.dumps(check_to_dict(result), indent=2, ensure_ascii=True)


def _post(post: Post) -> dict[str, Any]:
    return {"url": post.url, "platform": post.platform, "post_id": post.post_id, "uploader": post.uploader,
            "uploader_id": post.uploader_id, "posted_at": iso(post.posted_at), "title": post.title,
            "description": post.description, "duration_s": post.duration_s,
            "post_created_at": iso(post.post_created_at), "media_created_at": iso(post.media_created_at)}


def _first_seen(fs: FirstSeen) -> dict[str, Any]:
    return {"sha256": fs.sha256, "url": fs.url, "posted_at": iso(fs.posted_at), "observed_at": iso(fs.observed_at),
            "is_this_post": fs.is_this_post}


def _match(m: Match) -> dict[str, Any]:
    return {"sha256": m.sha256, "similarity": m.similarity, "query_coverage": m.query_coverage,
            "reference_coverage": m.reference_coverage, "transforms": list(m.transforms),
            "matched_frames": m.matched_frames, "offset_s": m.offset_s, "speed": m.speed,
            "sightings": [_sighting(s) for s in m.sightings],
            "segments": [{"query_start_s": s.query_start_s, "query_end_s": s.query_end_s,
                          "reference_start_s": s.reference_start_s, "reference_end_s": s.reference_end_s,
                          "speed": s.speed}
                         for s in m.segments],
            "method": m.method, "confidence": m.confidence, "region": region_to_dict(m.region)}


def _sighting(s: Sighting) -> dict[str, Any]:
    return {"url": s.url, "platform": s.platform, "post_id": s.post_id, "uploader": s.uploader,
            "posted_at": iso(s.posted_at), "observed_at": iso(s.observed_at)}


def _signal(s: Signal) -> dict[str, Any]:
    data = {k: iso(v) if isinstance(v, datetime) else v for k, v in s.data.items()}
    return {"kind": s.kind, "detail": s.detail, **data}


def _box(box: Any) -> dict[str, float]:
    return {k: round(getattr(box, k), 4) for k in ("left", "top", "right", "bottom")}


_HEADLINE = {
    Verdict.NO_MATCH: "NO MATCH: nothing in the library matches this footage.",
    Verdict.REUSED: "REUSED: this footage was seen before this post.",
    Verdict.EARLIEST_KNOWN: "EARLIEST KNOWN: matching footage exists, and this post is its earliest known appearance.",
}


def check_summary(result: CheckResult, *, max_matches: int = 5) -> str:
    from ..match import SPEED_CHANGE_MIN  # loaded by the check already; not by an error line

    clip, post = result.clip, result.post
    lines = [_HEADLINE[result.verdict]]
    lines.append(f"  clip        sha256 {clip.media.sha256}  {_clip_facts(result)}")
    lines.append(f"  post        {_where(post.url, post.posted_at, post.uploader)}")
    lines += _page_lines(result.clip)
    fs = result.first_seen
    if not fs.is_this_post:
        lines.append(f"  first seen  {_where(fs.url, fs.posted_at, None, fs.observed_at)}  (clip {fs.sha256[:12]})")
    for n, m in enumerate(result.matches[:max_matches], 1):
        transforms = f"  [{', '.join(m.transforms)}]" if m.transforms else ""
        lines.append(f"  match {n}     clip {m.sha256[:12]}  similarity {m.similarity:.2f}, "
                     f"{m.query_coverage:.0%} of this clip, {m.reference_coverage:.0%} of that clip{transforms}")
        lines.append(f"              by {method_words(m.method, m.confidence)}")
        if (where := region_words(m.region)) is not None:
            lines.append(f"              {where}")
        for seg in m.segments:
            speed = f" (at {seg.speed:g}x)" if abs(seg.speed - 1.0) > SPEED_CHANGE_MIN else ""
            lines.append(f"              {seg.query_start_s:.1f}-{seg.query_end_s:.1f} s here = "
                         f"{seg.reference_start_s:.1f}-{seg.reference_end_s:.1f} s there{speed}")
        for s in m.sightings[:3]:
            lines.append(f"              seen {_where(s.url, s.posted_at, s.uploader, s.observed_at)}")
        if len(m.sightings) > 3:
            lines.append(f"              and {len(m.sightings) - 3} more sightings")
    if len(result.matches) > max_matches:
        lines.append(f"  and {len(result.matches) - max_matches} more matches (see --json)")
    for h in result.scenes[:max_matches]:
        lines.append(f"  same scene  clip {h.sha256[:12]}  similarity {h.similarity:.2f}, moment not established: "
                     "not evidence that this is the same footage")
        for s in h.sightings[:3]:
            lines.append(f"              seen {_where(s.url, s.posted_at, s.uploader, s.observed_at)}")
    lines += _sound_lines(result.sound, max_matches)
    for s in result.signals:
        lines.append(f"  signal      {safe(s.detail, 300)}")
    if result.check_id is not None:
        lines.append(f"  recorded as check {result.check_id}")
    return "\n".join(lines)


def _sound_lines(sound: SoundEvidence | None, max_matches: int) -> list[str]:
    """The sound's evidence, apart from the pictures': its matches, then the hints."""
    if sound is None:
        return []
    if not sound.matches and not sound.hints:
        if sound.detail:
            return [f"  sound       no sound evidence: {safe(sound.detail, 200)}"]
        return ["  sound       no match: nothing known sounds like it"]
    lines = []
    for m in sound.matches[:max_matches]:
        lines.append(f"  sound       clip {m.sha256[:12]}  similarity {m.similarity:.2f}, {m.matched_s:.1f} s of this "
                     f"clip's sound, {m.reference_coverage:.0%} of that clip's")
        for seg in m.segments[:3]:
            speed = f" (at {seg.speed:g}x)" if abs(seg.speed - 1.0) > 0.01 else ""
            lines.append(f"              {seg.query_start_s:.1f}-{seg.query_end_s:.1f} s here = "
                         f"{seg.reference_start_s:.1f}-{seg.reference_end_s:.1f} s there{speed}")
        for s in m.sightings[:3]:
            lines.append(f"              seen {_where(s.url, s.posted_at, s.uploader, s.observed_at)}")
    for h in sound.hints:
        lines.append(f"  hint        {safe(h.detail, 300)}")
    return lines


def ingest_summary(result: IngestResult) -> str:
    state = ("added" if result.new_clip else "already known; new sighting added" if result.new_sighting
             else "already known; sighting already recorded (only post details it lacked are filled in)")
    return "\n".join([f"{state}: clip sha256 {result.clip.media.sha256}  {_clip_facts(result)}",
                      f"  post        {_where(result.post.url, result.post.posted_at, result.post.uploader)}",
                      *_page_lines(result.clip)])


def _page_lines(clip: Any) -> list[str]:
    """The post's page as captured (provenance.capture): its two evidence files."""
    page = clip.page.capture if clip.page is not None else None
    if page is None:
        return []
    return [f"  page        screenshot {safe(printable(page.screenshot.path), 300)}",
            f"              web archive {safe(printable(page.archive.path), 300)} ({page.resources} responses)"]


def folder_summary(result: FolderResult, *, verbose: bool = True) -> str:
    """Counts, then (with `verbose`) every file that was not ingested and why; failures always."""
    lines = [f"{len(result.of('ingested'))} ingested ({result.footage_s / 3600:.2f} h of footage), "
             f"{len(result.of('known'))} already known, {len(result.of('skipped'))} skipped (not video), "
             f"{len(result.of('failed'))} failed; {len(result.files)} files in {safe(printable(result.folder))}, "
             f"{result.wall_s:.1f} s with {result.workers} worker{'s' if result.workers != 1 else ''}"]
    for kind in ("known", "skipped", "failed"):
        if verbose or kind == "failed":
            lines += [f"  {kind:8} {safe(printable(f.path), 300)}: {safe(printable(f.reason), 300)}"
                      for f in result.of(kind)]
    return "\n".join(lines)


def _clip_facts(result: CheckResult | IngestResult) -> str:
    probe = result.clip.probe
    v = probe.video
    size = f"{v.width}x{v.height} {v.codec}" if v else "no video"
    return (f"({probe.duration_s:.1f} s, {size}, {result.clip.usable_frames} of "
            f"{len(result.clip.fingerprint.frames)} sampled frames usable)")


def _where(url: str | None, posted_at: datetime | None, uploader: str | None,
           observed_at: datetime | None = None) -> str:
    parts = [safe(url) if url else "(no URL)"]
    if posted_at:
        parts.append(f"posted {iso(posted_at)}")
    elif observed_at:
        parts.append(f"observed {iso(observed_at)}, post time unknown")
    if uploader:
        parts.append(f"by {safe(uploader, 80)}")
    return ", ".join(parts)


def verification_lines(results: tuple[FileVerification, ...]) -> str:
    """One line per file `provenance verify` checked: ok or FAILED, what it is, where, and why not."""
    lines = []
    for r in results:
        where = safe(r.path or "(no file)", limit=400)
        if not r.ok:
            lines.append(f"FAILED  {r.subject:<6}  {where}: {safe(r.problem, limit=400)}")
        elif r.stamped_at is None:
            lines.append(f"ok      {r.subject:<6}  {where}: holds the bytes recorded; not timestamped")
        else:
            more = f", {r.tokens} tokens" if r.tokens > 1 else ""
            lines.append(f"ok      {r.subject:<6}  {where}: holds the bytes recorded; timestamped "
                         f"{r.stamped_at:%Y-%m-%d %H:%M:%S} UTC by {safe(r.tsa_name)}{more}")
    return "\n".join(lines)
