"""Probe step: what the container says about a file (ffprobe through ffmpeg-python)."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from .errors import InputError, MediaError
from .records import ProbeInfo, StreamInfo

log = logging.getLogger("provenance.probe")

# Container tags worth keeping as evidence: when, with what and where the file says it was made.
KEPT_TAGS = ("creation_time", "encoder", "handler_name", "location", "location-eng", "com.apple.quicktime.location.ISO6709",
             "com.apple.quicktime.creationdate", "com.apple.quicktime.make", "com.apple.quicktime.model",
             "major_brand", "compatible_brands", "title", "comment")

# The largest frame decoded: DCI 8K (8192x4320, 35 MP), the largest cameras and platforms publish. A
# decoder holds several frames of that size: one process decoding 8192x4320 peaked at 0.7 GB, at
# 8000x8000 0.9 GB and at 16000x16000 3.5 GB, which gets a folder ingest's workers killed by the OOM
# killer. Larger frames are refused before anything decodes them.
MAX_FRAME_PIXELS = 8192 * 4320


def probe(path: Path) -> ProbeInfo:
    """Read container and stream facts; a file ffprobe cannot read is not a video."""
    _readable(path)
    try:
        # -v error: ffprobe's warnings are not for users; its last error line goes into ours.
        data = ffmpeg.probe(str(path), v="error")
    except ffmpeg.Error as e:
        reason = _last_line(e.stderr.decode("utf-8", "replace") if e.stderr else "")
        raise MediaError(f"not a readable video: {path.name} ({reason}); check the file is a complete video download") from e
    except FileNotFoundError as e:  # ffprobe itself is missing
        raise MediaError("ffprobe not found; install ffmpeg (e.g. apt-get install ffmpeg)") from e

    fmt = data.get("format", {})
    streams = tuple(_stream(s) for s in data.get("streams", []))
    if not any(s.kind == "video" for s in streams):
        raise MediaError(f"no video stream in {path.name}; it is not a video file")
    _refuse_huge_frames(streams, path)
    duration = _float(fmt.get("duration")) or max((_float(s.get("duration")) or 0.0 for s in data.get("streams", [])), default=0.0)
    tags = {k: str(v) for k, v in (fmt.get("tags") or {}).items() if k in KEPT_TAGS or k.startswith("com.apple.quicktime.")}
    for s in data.get("streams", []):
        for k, v in (s.get("tags") or {}).items():
            if k in ("creation_time", "handler_name", "encoder") and f"{k}" not in tags:
                tags[k] = str(v)
    return ProbeInfo(container=fmt.get("format_name", "unknown"), duration_s=duration or 0.0, streams=streams,
                     tags=tags, bit_rate=_int(fmt.get("bit_rate")))


def _readable(path: Path) -> None:
    """A file this user may not read is a permission problem (e.g. a colleague's evidence file in a
    shared store), not bad media: ffprobe would only say "Permission denied" inside its own error."""
    try:
        with open(path, "rb"):
            pass
    except PermissionError as e:
        raise InputError(f"cannot read {path}: permission denied; its owner can make it readable "
                         f"(chmod a+r {path}), or use an evidence store of your own (PROVENANCE_STORE)") from e


def _refuse_huge_frames(streams: tuple[StreamInfo, ...], path: Path) -> None:
    for s in streams:
        if s.kind == "video" and s.width and s.height and s.width * s.height > MAX_FRAME_PIXELS:
            raise MediaError(f"frames too large: {s.width}x{s.height} ({s.width * s.height / 1e6:.0f} megapixels) in "
                             f"{path.name}; the most decoded is 8192x4320 ({MAX_FRAME_PIXELS / 1e6:.0f} MP): scale it "
                             "down first, e.g. ffmpeg -i IN -vf scale=3840:-2 OUT")


def _stream(s: dict[str, Any]) -> StreamInfo:
    kind = s.get("codec_type", "data")
    fps = None
    if kind == "video":
        rate = s.get("avg_frame_rate") or s.get("r_frame_rate")
        try:
            fps = float(Fraction(rate)) if rate and rate != "0/0" else None
        except (ValueError, ZeroDivisionError):
            fps = None
    return StreamInfo(index=int(s.get("index", 0)), kind=kind, codec=s.get("codec_name"),
                      width=_int(s.get("width")), height=_int(s.get("height")), fps=fps,
                      rotation=_rotation(s), bit_rate=_int(s.get("bit_rate")), duration_s=_float(s.get("duration")))


def _rotation(s: dict[str, Any]) -> int:
    # Phones store rotation either as a legacy "rotate" tag or as a display-matrix side data entry.
    rotate = (s.get("tags") or {}).get("rotate")
    if rotate is not None:
        return int(float(rotate)) % 360
    for side in s.get("side_data_list") or []:
        if "rotation" in side:
            return int(float(side["rotation"])) % 360
    return 0


def _float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "ffprobe failed"
