"""Sample and hash step: frames at a fixed rate (OpenCV), bars cut off, a quality score and pHash each."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import cv2
import imagehash
import numpy as np
from PIL import Image

from .errors import MediaError
from .records import ContentBox, Fingerprint, FrameHash

log = logging.getLogger("provenance.frames")

# 4 frames a second: at most 1/8 s between a query frame and the nearest reference frame whatever the
# sampling phase (1 fps on both sides can be 0.5 s apart, a known cause of missed matches), while a
# library of 100,000 hashes still holds about 7 hours of footage.
SAMPLE_FPS = 4.0

# Frames are shrunk before bar detection and hashing: pHash looks at a 32x32 thumbnail anyway, and
# 256 px keeps bar edges to within 0.4% of the frame.
WORK_SIZE = 256

# A row or column is letterbox/pillarbox bar when it is dark and flat. Encoders leave black bars at
# luma 0..20 with a little noise; real dark scenery has texture (std well above 6).
BAR_MAX_MEAN = 24.0
BAR_MAX_STD = 6.0
# A 16:9 picture boxed into a 9:16 frame leaves bars of 34% on each side; beyond 45% it is not a bar.
BAR_MAX_SHARE = 0.45

# Quality 0..1 from the grey-level spread of the content area: std 64 counts as fully textured.
# Below MIN_QUALITY (std < ~10: black, white, flat colour, a fade) a frame's pHash is noise and never
# counts as evidence. Chosen on the samples: their real frames sit at std 25..70, black frames at 0..3.
QUALITY_FULL_STD = 64.0
MIN_QUALITY = 0.15
# A content area below this share of the frame (after bars are cut) is too small to hash.
MIN_CONTENT_SHARE = 0.05



@dataclass(frozen=True)
class Variant:
    """One way of looking at a frame: a centre crop (share cut off each side) and/or a mirror image."""

    crop: float = 0.0
    mirrored: bool = False


# pHash moves ~6 bits when the picture is cropped 2.5% more per side, ~10-14 bits at 5% (median / 90th
# percentile over 40 frames of the Big Buck Bunny film; unrelated frames sit at 18 and above). So a repost
# cropped 5-20% per side is met half-way: the library keeps each frame whole and cut by 10% and 20% per
# side, and the query adds its own frame cut by 5.6% more (5% of the original for a 5% crop), so that every
# crop from 0 to 20% per side is within 2.5% of one (query, reference) pairing.
REFERENCE_VARIANTS = (Variant(), Variant(crop=0.10), Variant(crop=0.20))
QUERY_ZOOM = 0.0556
# What the query is matched with: whole and zoomed, each also mirrored.
MATCH_VARIANTS = (Variant(), Variant(crop=QUERY_ZOOM), Variant(mirrored=True), Variant(crop=QUERY_ZOOM, mirrored=True))
# The query side hashes the reference variants too, so that a checked clip joins the library as it is.
QUERY_VARIANTS = REFERENCE_VARIANTS + tuple(v for v in MATCH_VARIANTS if v not in REFERENCE_VARIANTS)

# A file whose frames stop this far before its stated duration is truncated (a broken download).
TRUNCATION_TOLERANCE_S = 1.0
TRUNCATION_MIN_SHARE = 0.8

ProgressFn = Callable[[str, float | None], None]


def fingerprint(path: Path, *, duration_s: float | None = None, query: bool = False,
                sample_fps: float = SAMPLE_FPS, progress: ProgressFn | None = None) -> Fingerprint:
    """Sample frames at `sample_fps`, cut off black bars, score and pHash each frame.

    Each frame is also hashed in the variants of REFERENCE_VARIANTS, or with `query` of
    QUERY_VARIANTS (which include the mirror image, so a mirrored repost still matches).
    """
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise MediaError(f"cannot decode video: {path.name}; check it is a complete video file")
    frames: list[FrameHash] = []
    boxes: list[ContentBox] = []
    step = 1.0 / sample_fps
    stream_fps = cap.get(cv2.CAP_PROP_FPS)
    # Take the frame nearest each target time k/sample_fps: the first at most half a frame before it.
    half_frame = 0.5 / stream_fps if 1.0 <= stream_fps <= 240.0 else 1.0 / 60
    next_t = 0.0
    last_t = -1.0
    try:
        while cap.grab():
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if t < last_t:  # some streams report nonsense timestamps; fall back to counting frames
                t = last_t + 1e-3
            last_t = t
            if t + 1e-6 < next_t - half_frame:
                continue
            ok, image = cap.retrieve()
            if not ok or image is None:
                continue
            frame, box = hash_frame(image, t, variants=QUERY_VARIANTS if query else REFERENCE_VARIANTS)
            frames.append(frame)
            if frame.quality >= MIN_QUALITY:
                boxes.append(box)
            while next_t - half_frame <= t + 1e-6:
                next_t += step
            if progress and duration_s:
                progress("hash", min(1.0, t / duration_s))
    finally:
        cap.release()

    if not frames:
        raise MediaError(f"no frames could be decoded from {path.name}; the file is damaged or not a video")
    if duration_s and last_t < TRUNCATION_MIN_SHARE * duration_s - TRUNCATION_TOLERANCE_S:
        raise MediaError(f"truncated video: {path.name} decodes to {last_t:.1f} s of its stated {duration_s:.1f} s;"
                         " download it again")
    return Fingerprint(sample_fps=sample_fps, frames=tuple(frames), content_box=_median_box(boxes),
                       decoded_duration_s=max(last_t, 0.0))


def hash_frame(image: np.ndarray, t: float, *,
               variants: tuple[Variant, ...] = (Variant(),)) -> tuple[FrameHash, ContentBox]:
    """Hash one decoded frame: `phash` of the whole content area, `variants[1:]` in FrameHash.variants."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    h, w = grey.shape
    scale = WORK_SIZE / max(h, w)
    if scale < 1.0:
        grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    box = content_box(grey)
    gh, gw = grey.shape
    x0, x1 = round(box.left * gw), round(box.right * gw)
    y0, y1 = round(box.top * gh), round(box.bottom * gh)
    content = grey[y0:y1, x0:x1]
    if content.size < MIN_CONTENT_SHARE * grey.size or min(content.shape) < 8:
        return FrameHash(t=t, phash=0, quality=0.0, variants=(0,) * (len(variants) - 1), box=box), box
    quality = min(1.0, float(content.std()) / QUALITY_FULL_STD)
    hashes = [_phash(_view(content, v)) for v in variants]
    return FrameHash(t=t, phash=hashes[0], quality=quality, variants=tuple(hashes[1:]), box=box), box


def _view(content: np.ndarray, variant: Variant) -> np.ndarray:
    h, w = content.shape
    dy, dx = round(h * variant.crop), round(w * variant.crop)
    view = content[dy:h - dy, dx:w - dx] if variant.crop else content
    return view[:, ::-1] if variant.mirrored else view


def content_box(grey: np.ndarray) -> ContentBox:
    """The part of the frame inside flat dark bars (letterbox top/bottom, pillarbox left/right)."""
    h, w = grey.shape
    g = grey.astype(np.float32)
    row_bar = (g.mean(axis=1) <= BAR_MAX_MEAN) & (g.std(axis=1) <= BAR_MAX_STD)
    col_bar = (g.mean(axis=0) <= BAR_MAX_MEAN) & (g.std(axis=0) <= BAR_MAX_STD)
    top = _run_length(row_bar, int(h * BAR_MAX_SHARE))
    bottom = _run_length(row_bar[::-1], int(h * BAR_MAX_SHARE))
    left = _run_length(col_bar, int(w * BAR_MAX_SHARE))
    right = _run_length(col_bar[::-1], int(w * BAR_MAX_SHARE))
    return ContentBox(left=left / w, top=top / h, right=(w - right) / w, bottom=(h - bottom) / h)


def _run_length(flags: np.ndarray, limit: int) -> int:
    """How many leading entries are True, or 0 when the run exceeds `limit` (then it is not a bar)."""
    not_bar = np.flatnonzero(~flags)
    run = int(not_bar[0]) if not_bar.size else flags.size
    return run if run <= limit else 0


def _phash(grey: np.ndarray) -> int:
    bits = imagehash.phash(Image.fromarray(np.ascontiguousarray(grey))).hash.flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _median_box(boxes: list[ContentBox]) -> ContentBox:
    if not boxes:
        return ContentBox()
    return ContentBox(left=median(b.left for b in boxes), top=median(b.top for b in boxes),
                      right=median(b.right for b in boxes), bottom=median(b.bottom for b in boxes))
