"""The report as JSON (schema: provenance/schemas/report.v2.schema.json).

Every field of `provenance check --json` (schema_version 1) is here with the same meaning and value,
so a consumer of that output can read a report; the report adds the answer, post times and how they
are known, frame-pair evidence (hashes and distances; the images are in the HTML report only), the
sighting timeline, red flags and a reproducibility block.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

from .audit import AuditReport, audit_to_dict
from .results import SCHEMA_VERSION, credentials_to_dict, region_to_dict
from .text import iso
from .model import CheckReport, ClipView, FramePair, MatchView, PostView, TimelineEntry

SCHEMA_FILE = "report.v2.schema.json"
REPORT_SCHEMA_ID = "urn:provenance:report:v2"
# An audit report has its own schema, which refers to the check report's by its $id, so the check
# report's schema (and `check --json` compatibility) is untouched.
AUDIT_SCHEMA_FILE = "audit-report.v2.schema.json"
AUDIT_REPORT_SCHEMA_ID = "urn:provenance:audit-report:v2"


def schema(name: str = SCHEMA_FILE) -> dict[str, Any]:
    """The published JSON Schema every report (of a check, or `AUDIT_SCHEMA_FILE`: of an audit) validates against."""
    text = resources.files("provenance").joinpath("schemas", name).read_text(encoding="utf-8")
    return json.loads(text)


def audit_report_to_dict(a: AuditReport) -> dict[str, Any]:
    """`provenance audit --json` with each post's full check report (items in listing order, as there)."""
    base = audit_to_dict(a.audit)
    reports = {r.item.item_id: r.report for r in a.rows}
    items = [{**item, "check_report": to_dict(rep) if (rep := reports.get(i.item_id)) is not None else None}
             for i, item in zip(a.audit.items, base["items"], strict=True)]
    return {**base, "report_schema": AUDIT_REPORT_SCHEMA_ID,
            "order": [r.item.position for r in a.rows],
            "generated_at": iso(a.generated_at), "report_tool_version": a.tool_version,
            "database_url": a.database_url, "items": items}


def render_audit(a: AuditReport) -> str:
    return json.dumps(audit_report_to_dict(a), indent=2, ensure_ascii=True) + "\n"


def to_dict(r: CheckReport) -> dict[str, Any]:
    fs = r.first_seen
    fs_post = fs.post
    return {
        "schema_version": SCHEMA_VERSION,
        "report_schema": REPORT_SCHEMA_ID,
        "check_id": r.check_id,
        "verdict": r.verdict,
        "checked_at": iso(r.checked_at),
        "answer": {"headline": r.answer.headline, "text": r.answer.text, "caveat": r.answer.caveat},
        "clip": _clip(r.clip),
        "post": _post(r.post) if r.post is not None else None,
        "first_seen": {
            "sha256": fs.sha256,
            "url": fs_post.url if fs_post else None,
            "posted_at": iso(fs_post.posted_at) if fs_post else None,
            "observed_at": iso(fs_post.observed_at) if fs_post else None,
            "is_this_post": fs.is_this_post,
            "platform": fs_post.platform if fs_post else None,
            "uploader": fs_post.uploader if fs_post else None,
            "post_time": _post_time(fs_post) if fs_post else None,
        },
        "matches": [_match(m) for m in r.matches],
        "scenes": [{"sha256": h.sha256, "similarity": h.similarity, "query_frames": h.query_frames,
                    "reason": h.reason} for h in r.scenes],
        "signals": [{"kind": s.kind, "detail": s.detail, **_plain(s.data)} for s in r.signals],
        "params": r.reproducibility.params,
        "timeline": [_entry(e) for e in r.timeline],
        "red_flags": [{"kind": f.kind, "title": f.title, "detail": f.detail, "data": _plain(f.data)} for f in r.flags],
        "content_credentials": credentials_to_dict(r.credentials),
        "keyframes": [{"start_s": k.shot.start_s, "end_s": k.shot.end_s, "keyframe_s": k.shot.keyframe_s}
                      for k in r.keyframes],
        "platform_thumbnail": r.platform_thumbnail,
        "thumbnail_searches": [{"engine": engine, "url": url} for engine, url in r.thumbnail_searches],
        "reproducibility": {
            "tool_version": r.reproducibility.tool_version,
            "report_tool_version": r.reproducibility.report_tool_version,
            "library_clips": r.reproducibility.library_clips,
            "library_clips_now": r.reproducibility.library_clips_now,
            "generated_at": iso(r.reproducibility.generated_at),
            "database_url": r.reproducibility.database_url,
        },
    }


def render(r: CheckReport) -> str:
    return json.dumps(to_dict(r), indent=2, ensure_ascii=True) + "\n"


def _clip(c: ClipView) -> dict[str, Any]:
    box = c.content_box
    return {
        # The fields of `check --json`:
        "sha256": c.sha256, "size_bytes": c.size_bytes, "evidence_path": c.evidence_path,
        "duration_s": c.duration_s, "container": c.container, "width": c.width, "height": c.height, "fps": c.fps,
        "video_codec": c.video_codec, "rotation": c.rotation, "has_audio": c.has_audio, "tags": c.tags,
        "sampled_frames": c.sampled_frames, "usable_frames": c.usable_frames,
        "content_box": {k: round(getattr(box, k), 4) for k in ("left", "top", "right", "bottom")},
        # Added by the report:
        "evidence_present": c.evidence_present, "decoded_duration_s": c.decoded_s, "bit_rate": c.bit_rate,
        "streams": [{"kind": s.kind, "codec": s.codec, "width": s.width, "height": s.height, "fps": s.fps,
                     "bit_rate": s.bit_rate} for s in c.streams],
        "first_observed_at": iso(c.first_observed_at),
    }


def _post(p: PostView) -> dict[str, Any]:
    return {
        # The fields of `check --json`:
        "url": p.url, "platform": p.platform, "post_id": p.post_id, "uploader": p.uploader,
        "uploader_id": p.uploader_id, "posted_at": iso(p.posted_at), "title": p.title, "description": p.description,
        "duration_s": p.duration_s, "post_created_at": iso(p.post_created_at),
        "media_created_at": iso(p.media_created_at),
        # Added by the report:
        "observed_at": iso(p.observed_at), "media_id": p.media_id, "channel_id": p.channel_id,
        "source": p.source, "clip_sha256": p.clip_sha256, "counts": p.counts, "post_time": _post_time(p),
    }


def _post_time(p: PostView) -> dict[str, Any]:
    t = p.post_time
    return {"at": iso(t.at), "source": t.source, "label": t.label, "detail": t.detail}


def _sighting(p: PostView) -> dict[str, Any]:
    # `check --json`'s sighting fields first, then the rest of the post.
    return {"url": p.url, "platform": p.platform, "post_id": p.post_id, "uploader": p.uploader,
            "posted_at": iso(p.posted_at), "observed_at": iso(p.observed_at),
            "uploader_id": p.uploader_id, "title": p.title, "post_time": _post_time(p)}


def _match(m: MatchView) -> dict[str, Any]:
    return {
        "sha256": m.sha256, "similarity": m.similarity, "query_coverage": m.query_coverage,
        "reference_coverage": m.reference_coverage, "transforms": list(m.transforms),
        "matched_frames": m.matched_frames, "offset_s": m.offset_s, "speed": m.speed,
        "sightings": [_sighting(s) for s in m.sightings],
        "segments": [{"query_start_s": s.query_start_s, "query_end_s": s.query_end_s,
                      "reference_start_s": s.reference_start_s, "reference_end_s": s.reference_end_s,
                      "speed": s.speed} for s in m.segments],
        "method": m.method, "confidence": m.confidence, "region": region_to_dict(m.region),
        "method_text": m.method_text, "region_text": m.region_text,
        "rank": m.rank,
        "reference": _clip(m.reference),
        "mirror_note": m.mirror_note,
        "frame_pairs": [_pair(p) for p in m.pairs],
    }


def _pair(p: FramePair) -> dict[str, Any]:
    return {"query_t": p.query_t, "reference_t": p.reference_t, "predicted_reference_t": p.predicted_reference_t,
            "distance": p.distance, "query_view": p.query_view, "reference_view": p.reference_view,
            "query_hash": p.query_hash, "reference_hash": p.reference_hash, "mirrored": p.mirrored, "note": p.note}


def _entry(e: TimelineEntry) -> dict[str, Any]:
    return {"role": e.role, "reuse": e.reuse, "match_rank": e.match_rank, "clip_sha256": e.post.clip_sha256,
            **_sighting(e.post)}


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in data.items()}
