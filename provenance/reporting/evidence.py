"""Evidence frame pairs: a few query frames beside the reference frames a match puts them on.

The matcher keeps segments (query span -> reference span, speed), not frame pairs, so pairs are
rebuilt here from the stored frame hashes of both clips: reference time = reference start +
(query time - query start) x speed, then the stored reference frame nearest that time: the closest pair
in picture among the stored frames within half a sampling step of both (where the library keeps the
frames between samples of fast-changing footage there are several; else the one sample). The distance
shown is the smallest over the stored views of both frames (each frame is stored whole and cut by
10% and 20% per side). Mirror images are not stored, so for a mirrored match the mirrored views of
one frame are hashed again from its evidence file. Images are cut from the evidence files with
OpenCV; a file that is gone leaves the hashes and a note, never a failed report.
"""

from __future__ import annotations

import base64
import logging
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from ..frames import MIN_QUALITY, QUERY_ZOOM, REFERENCE_VARIANTS, SAMPLE_FPS, Variant, hash_frame
from ..records import Region, Segment, Transform
from ..stored import StoredFrame, StoredMatch
from .model import FramePair

log = logging.getLogger("provenance.reporting")

# Pairs shown per match: enough to see the footage is the same along the match, few enough to print;
# a re-edit or compilation with more pieces gets one pair per piece, up to MAX_PAIRS_PER_MATCH.
PAIRS_PER_MATCH = 4
MAX_PAIRS_PER_MATCH = 8
# A reference frame further than this from the predicted time is not the partner of the query frame
# (frames are sampled every 1/4 s, so the nearest is normally within 1/8 s).
MAX_PAIR_GAP_S = 0.5
# Where the library keeps every frame of fast-changing footage (frames.densify), the frame nearest a
# time is as arbitrary as the segment's own placement error (0.04-0.1 s, a frame or two), and one video
# frame away the picture differs by 8-30 bits: a pair is the closest in picture among the stored frames
# within half a sampling step of the chosen query time and of its predicted reference time (with only
# samples stored, the one sample there).
PARTNER_WINDOW_S = 1 / (2 * SAMPLE_FPS)
# Thumbnails: wide enough to recognise the picture, small enough that a report with a dozen pairs
# stays a few hundred kilobytes.
THUMB_WIDTH = 240
JPEG_QUALITY = 80

# The mirrored views hashed again from a file, compared with the other side's stored views.
_MIRRORED_VIEWS = (Variant(mirrored=True), Variant(crop=QUERY_ZOOM, mirrored=True))


def view_name(v: Variant) -> str:
    parts = ["mirror image" if v.mirrored else "", f"cut {v.crop:.0%} per side" if v.crop else "whole picture"]
    return ", ".join(p for p in parts if p)


def frame_pairs(match: StoredMatch, query_frames: tuple[StoredFrame, ...], query_path: str | None, *,
                images: bool) -> tuple[FramePair, ...]:
    """Pairs evenly spread over the match's segments (with thumbnails when `images`)."""
    mirrored = Transform.MIRRORED in match.transforms
    query = _by_time(query_frames)
    reference = _by_time(match.frames)
    ref_times = sorted(reference)
    times = [t for t in sorted(query) if _segment_of(t, match.segments) is not None]
    if len(match.segments) <= PAIRS_PER_MATCH:
        chosen = _evenly(times, PAIRS_PER_MATCH)
    else:  # the middle frame of each piece
        per_piece = [[t for t in times if _segment_of(t, match.segments) is s] for s in match.segments]
        chosen = [ts[len(ts) // 2] for ts in per_piece if ts][:MAX_PAIRS_PER_MATCH]
    qpath, rpath = _existing(query_path), _existing(match.reference.evidence_path)
    # Frames are decoded for the pictures, and for a mirrored match's distance; seeking in the files is
    # most of a report's time, so JSON and Markdown of an unmirrored match skip it.
    # A match in part of the picture (an inset, a kept corner) has its region, whatever placed it
    # (frames, keypoints, or what moves inside a fixed camera's inset).
    region = match.region
    decode = images or mirrored or region is not None
    pairs: list[FramePair] = []
    with _reader(qpath if decode else None) as qread, _reader(rpath if decode else None) as rread:
        for chosen_t in chosen:
            seg = _segment_of(chosen_t, match.segments)
            assert seg is not None
            if mirrored or region is not None:
                # The distance needs views hashed again below (the mirror image, or the matched region),
                # so the stored whole-picture views cannot choose the pair: the nearest frames.
                tq = chosen_t
                predicted = seg.reference_start_s + (tq - seg.query_start_s) * seg.speed
                tr = _nearest(ref_times, predicted)
            else:
                tq, predicted, tr = _closest_pair(chosen_t, seg, times, query, ref_times, reference)
            qimg = qread(tq) if qread else None
            rimg = rread(tr) if rread and tr is not None else None
            pair = _pair(tq, predicted, tr, query[tq], reference.get(tr) if tr is not None else None,
                         qimg, rimg, mirrored=mirrored, images=images, qpath=qpath, rpath=rpath)
            if region is not None and tr is not None and tr in reference:
                pair = _region_pair(pair, region, query[tq], reference[tr], qimg, rimg, mirrored=mirrored)
            pairs.append(pair)
    return tuple(pairs)


def _region_pair(pair: FramePair, region: Region, qviews: dict[int, int], rviews: dict[int, int],
                 qimg: np.ndarray | None, rimg: np.ndarray | None, *, mirrored: bool) -> FramePair:
    """A region match's distance: the part of the picture that matched (the inset in this clip, or the
    part of the reference this clip kept), hashed again from its evidence file against the other
    side's stored views. The whole pictures' distance says nothing about such a match."""
    image, stored, side = (qimg, rviews, "query") if region.inside == "query" else (rimg, qviews, "reference")
    if image is None:
        return replace(pair, note=f"matched inside a region of the {side}'s picture, whose evidence file cannot "
                                  "be read: the distance shown is of the whole pictures")
    h, w = image.shape[:2]
    part = image[round(region.y * h):round((region.y + region.h) * h), round(region.x * w):round((region.x + region.w) * w)]
    if min(part.shape[:2]) < 8:
        return pair
    views = (Variant(mirrored=mirrored), Variant(crop=QUERY_ZOOM, mirrored=mirrored))
    fresh = hash_frame(part, 0.0, variants=(Variant(), *views)).variants
    d, fi, si = _closest(dict(enumerate(fresh)), stored)
    box = f"x {region.x:.0%}, y {region.y:.0%}, w {region.w:.0%}, h {region.h:.0%}"
    fresh_view, stored_view = f"{view_name(views[fi])} of {box}", view_name(REFERENCE_VARIANTS[si])
    note = f"the {side} frame's region {box} was hashed again from its evidence file"
    if side == "query":
        return replace(pair, distance=d, query_view=fresh_view, reference_view=stored_view, query_hash=_hex(fresh[fi]),
                       reference_hash=_hex(stored[si]), note=note)
    return replace(pair, distance=d, query_view=stored_view, reference_view=fresh_view, query_hash=_hex(stored[si]),
                   reference_hash=_hex(fresh[fi]), note=note)


def _pair(tq: float, predicted: float, tr: float | None, qviews: dict[int, int], rviews: dict[int, int] | None,
          qimg: np.ndarray | None, rimg: np.ndarray | None, *, mirrored: bool, images: bool,
          qpath: Path | None, rpath: Path | None) -> FramePair:
    image_note = _image_note(qpath, rpath, qimg, rimg) if images else None
    qthumb = _thumbnail(qimg) if images and qimg is not None else None
    rthumb = _thumbnail(rimg) if images and rimg is not None else None
    base = dict(query_t=round(tq, 3), predicted_reference_t=round(predicted, 3), mirrored=mirrored,
                query_image=qthumb, reference_image=rthumb, image_note=image_note)
    if rviews is None or tr is None:
        return FramePair(reference_t=round(predicted, 3), distance=None, query_view="", reference_view="",
                         query_hash=_hex(qviews.get(0)), reference_hash="",
                         note=f"no usable reference frame was sampled within {MAX_PAIR_GAP_S} s of {predicted:.2f} s",
                         **base)
    if not mirrored:
        d, qv, rv = _closest(qviews, rviews)
        return FramePair(reference_t=round(tr, 3), distance=d, query_view=view_name(REFERENCE_VARIANTS[qv]),
                         reference_view=view_name(REFERENCE_VARIANTS[rv]), query_hash=_hex(qviews[qv]),
                         reference_hash=_hex(rviews[rv]), note=None, **base)
    # Mirrored: hash the mirror image of whichever frame can still be read, against the other's stored views.
    for image, stored, this_side in ((qimg, rviews, "query"), (rimg, qviews, "reference")):
        if image is None:
            continue
        fresh = hash_frame(image, 0.0, variants=(Variant(), *_MIRRORED_VIEWS)).variants
        d, mi, si = _closest(dict(enumerate(fresh)), stored)
        mirrored_view, stored_view = view_name(_MIRRORED_VIEWS[mi]), view_name(REFERENCE_VARIANTS[si])
        note = (f"the {this_side} frame's mirror image was hashed again from its evidence file "
                "(mirror images are not stored)")
        if this_side == "query":
            return FramePair(reference_t=round(tr, 3), distance=d, query_view=mirrored_view, reference_view=stored_view,
                             query_hash=_hex(fresh[mi]), reference_hash=_hex(stored[si]), note=note, **base)
        return FramePair(reference_t=round(tr, 3), distance=d, query_view=stored_view, reference_view=mirrored_view,
                         query_hash=_hex(stored[si]), reference_hash=_hex(fresh[mi]), note=note, **base)
    return FramePair(reference_t=round(tr, 3), distance=None, query_view=view_name(REFERENCE_VARIANTS[0]),
                     reference_view=view_name(REFERENCE_VARIANTS[0]), query_hash=_hex(qviews.get(0)),
                     reference_hash=_hex(rviews.get(0)),
                     note=("mirrored match, but neither evidence file can be read: only unmirrored views are "
                           "stored, so the matcher's distance cannot be shown"), **base)


def clip_thumbnail(frames: tuple[StoredFrame, ...], path: str | None) -> str | None:
    """A thumbnail of the usable frame in the middle of a clip, or None without its evidence file."""
    times = sorted(_by_time(frames))
    existing = _existing(path)
    if not times or existing is None:
        return None
    with _reader(existing) as read:
        image = read(times[len(times) // 2]) if read else None
    return _thumbnail(image) if image is not None else None


def keyframe_thumbnails(times: tuple[float, ...], path: str | None) -> tuple[str | None, ...]:
    """A thumbnail of the frame at each time, None where the evidence file is gone or will not decode."""
    with _reader(_existing(path)) as read:
        images = [read(t) if read else None for t in times]
    return tuple(_thumbnail(image) if image is not None else None for image in images)


def _closest(a: dict[int, int], b: dict[int, int]) -> tuple[int, int, int]:
    return min(((a[i] ^ b[j]).bit_count(), i, j) for i in sorted(a) for j in sorted(b))


def _by_time(frames: tuple[StoredFrame, ...]) -> dict[float, dict[int, int]]:
    out: dict[float, dict[int, int]] = {}
    for f in frames:
        if f.quality >= MIN_QUALITY:
            out.setdefault(f.t, {})[f.variant] = f.phash
    return out


def _segment_of(t: float, segments: tuple[Segment, ...]) -> Segment | None:
    return next((s for s in segments if s.query_start_s - 1e-6 <= t < s.query_end_s + 1e-6), None)


def _evenly(items: list[float], k: int) -> list[float]:
    if len(items) <= k:
        return items
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def _closest_pair(chosen_t: float, seg: Segment, query_times: list[float], query: dict[float, dict[int, int]],
                  ref_times: list[float], reference: dict[float, dict[int, int]]) -> tuple[float, float, float | None]:
    """(query time, predicted reference time, reference time) of the closest pair in picture among the
    query frames of `seg` within PARTNER_WINDOW_S of `chosen_t` and, for each, the reference frames within
    PARTNER_WINDOW_S of its predicted time; the nearest in time on a tie. Without any reference frame
    there: `chosen_t` and the nearest reference frame (_nearest)."""
    def predicted(tq: float) -> float:
        return seg.reference_start_s + (tq - seg.query_start_s) * seg.speed

    best: tuple[tuple[int, float, float], float, float] | None = None
    near_q = query_times[bisect_left(query_times, chosen_t - PARTNER_WINDOW_S):
                         bisect_left(query_times, chosen_t + PARTNER_WINDOW_S + 1e-9)]
    for tq in (t for t in near_q if _segment_of(t, (seg,)) is not None):
        p = predicted(tq)
        for tr in ref_times[bisect_left(ref_times, p - PARTNER_WINDOW_S):bisect_left(ref_times, p + PARTNER_WINDOW_S + 1e-9)]:
            key = (_closest(query[tq], reference[tr])[0], abs(tq - chosen_t), abs(tr - p))
            if best is None or key < best[0]:
                best = (key, tq, tr)
    if best is None:
        return chosen_t, predicted(chosen_t), _nearest(ref_times, predicted(chosen_t))
    return best[1], predicted(best[1]), best[2]


def _nearest(times: list[float], t: float) -> float | None:
    i = bisect_left(times, t)
    near = [times[j] for j in (i - 1, i) if 0 <= j < len(times)]
    best = min(near, key=lambda x: abs(x - t), default=None)
    return best if best is not None and abs(best - t) <= MAX_PAIR_GAP_S else None


def _hex(h: int | None) -> str:
    return "" if h is None else f"{h:016x}"


def _existing(path: str | None) -> Path | None:
    return Path(path) if path and Path(path).is_file() else None


@contextmanager
def _reader(path: Path | None) -> Iterator[object]:
    """A function t -> BGR frame at t seconds (None when it cannot be decoded), or None without a file."""
    if path is None:
        yield None
        return
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        log.info("cannot open evidence file %s for report frames", path)
        yield None
        return

    def read(t: float) -> np.ndarray | None:
        cap.set(cv2.CAP_PROP_POS_MSEC, t * 1000.0)
        ok, image = cap.read()
        return image if ok and image is not None else None

    try:
        yield read
    finally:
        cap.release()


def _thumbnail(image: np.ndarray) -> str | None:
    h, w = image.shape[:2]
    if w > THUMB_WIDTH:
        image = cv2.resize(image, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _image_note(qpath: Path | None, rpath: Path | None, qimg: np.ndarray | None, rimg: np.ndarray | None) -> str | None:
    missing = []
    if qpath is None:
        missing.append("this clip's evidence file is gone, so its frame image is unavailable")
    elif qimg is None:
        missing.append("this clip's frame could not be decoded from its evidence file")
    if rpath is None:
        missing.append("the reference clip's evidence file is gone, so its frame image is unavailable")
    elif rimg is None:
        missing.append("the reference frame could not be decoded from its evidence file")
    return "; ".join(missing) or None
