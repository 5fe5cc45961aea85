"""Motion profiles: what moves where, frame to frame, for footage whose pictures barely change.

A fixed camera (CCTV, dashcam parked, tripod, a presenter standing still) gives frames whose pHashes
are nearly equal all through the clip, so frame hashes say "same scene" but not "same moment": every
query frame is close to every reference frame. What does tell moments apart is what moves, and when:
a car crossing the left of the picture at 0:12, a door opening at 0:15. Each sampled frame gets a
coarse grid of how much its picture changed since the previous sampled frame (mean absolute
difference of a 32x32 thumbnail, per cell). A copy of the footage has the same profile, whatever was
done to the colours, the encoding or the size; the same camera at another moment has a different one.

`place` slides a query's profile along a reference's and keeps the offset whose profiles correlate
best, when that peak is high and stands out from every other offset. `agreement` checks one line the
frame hashes found instead: the same camera at another moment can give frames as close as a copy's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Thumbnail the differences are taken on: small enough that encoding noise averages out (a 256-px
# working frame shrunk 8x), large enough that a walking person still changes a cell.
MOTION_THUMB = 32
# Cells per side of the stored grid (8x8 = 64 bytes a frame); matching pools it to MOTION_MATCH_GRID.
MOTION_GRID = 8
# Stored as uint8: mean absolute grey-level difference x MOTION_SCALE (1/8 grey level resolution;
# re-encoding noise on still footage is 0.3-1 grey level, so it stays above 0 and below 255/8).
MOTION_SCALE = 8.0
# Matching compares the full 8x8 grid: on the tune half of the held-out corpus (bench/heldout.tsv) a
# 4x4 or 2x2 pooling separated copies from other moments of the same camera by far less (peak z 5-10
# against 3-6 at 4x4; 8x8: 7-17 against 2-5), small movers (fish in a tank) being lost in big cells.
MOTION_MATCH_GRID = 8
# A profile is compared over at least this many sampled frames (2 s at 4 fps) of overlap.
MOTION_MIN_FRAMES = 8
# Offsets that overlap at least this share of the shorter profile are compared (the rest overlap
# too little to say anything).
MOTION_MIN_OVERLAP = 0.6
# A placement needs a peak correlation of at least MOTION_MIN_CORRELATION and a peak that stands
# MOTION_MIN_PEAK_Z standard deviations above the correlations at every other offset (at least
# MOTION_MIN_NULL of them, else the correlation alone must reach MOTION_MIN_CORRELATION_ALONE).
# Chosen on the tune half of the held-out corpus (2026-11-30, speeds 0.8-1.25, 8x8): copies (re-encoded
# and downscaled, colour-corrected, captioned, a mirrored 4-s excerpt, a 9:16 blurred fill) peaked at
# r 0.32-0.95 and z 7.3-16.7; the same cameras at other moments at r -0.18..-0.08 and z 2.1-4.8.
MOTION_MIN_CORRELATION = 0.25
MOTION_MIN_PEAK_Z = 6.0
MOTION_MIN_NULL = 8
MOTION_MIN_CORRELATION_ALONE = 0.6
# Offsets within this many sampled frames of the peak are its own shoulders, not the null.
MOTION_PEAK_HALF_WIDTH = 2
# Footage with less motion than this (std of the log-compressed, floor-removed profile) is a still
# picture: a title card, a logo, a freeze frame, nothing moving. It proves no moment and no scene.
MOTION_MIN_ENERGY = 0.15
# Speeds tried, reference seconds per query second: the common retiming range of reposts.
MOTION_SPEEDS = (1.0, 0.9, 1.1, 0.8, 1.25)
# A line's agreement (match.LINE_MOTION_*) is compared with its frames shifted elsewhere in the reference,
# each shift keeping at least this share of them inside the reference (the rest would say too little).
AGREEMENT_MIN_OVERLAP = 0.9


@dataclass(frozen=True)
class MotionProfile:
    """A clip's motion: one row per sampled frame (all sampled frames, usable or not)."""

    times: np.ndarray  # float64 seconds
    cells: np.ndarray  # uint8 (frames, MOTION_GRID * MOTION_GRID); row 0 is all zero (no previous frame)

    def to_bytes(self) -> bytes:
        return self.cells.astype(np.uint8).tobytes()

    @classmethod
    def from_bytes(cls, times: np.ndarray, data: bytes) -> "MotionProfile":
        cells = np.frombuffer(data, dtype=np.uint8).reshape(-1, MOTION_GRID * MOTION_GRID)
        return cls(times=np.asarray(times, dtype=np.float64)[: cells.shape[0]], cells=cells)


def thumbnail(grey: np.ndarray) -> np.ndarray:
    return cv2.resize(np.ascontiguousarray(grey), (MOTION_THUMB, MOTION_THUMB),
                      interpolation=cv2.INTER_AREA).astype(np.float32)


def cells_between(previous: np.ndarray | None, current: np.ndarray) -> np.ndarray:
    """The grid of mean absolute differences between two thumbnails, quantised to uint8."""
    if previous is None:
        return np.zeros(MOTION_GRID * MOTION_GRID, dtype=np.uint8)
    diff = np.abs(current - previous)
    step = MOTION_THUMB // MOTION_GRID
    grid = diff.reshape(MOTION_GRID, step, MOTION_GRID, step).mean(axis=(1, 3))
    return np.clip(np.rint(grid * MOTION_SCALE), 0, 255).astype(np.uint8).reshape(-1)


class MotionTrack:
    """The motion profile of pictures handed in one by one, in time order. A picture that does not
    follow the one before (`follows` False: a gap, another stretch), or no picture, gets a row of
    zeros, as a clip's first frame does."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.rows: list[np.ndarray] = []
        self.previous: np.ndarray | None = None

    def add(self, t: float, picture: np.ndarray | None, *, follows: bool = True) -> int:
        """Add a picture; its row in the profile."""
        thumb = thumbnail(picture) if picture is not None else None
        if thumb is None:
            self.rows.append(np.zeros(MOTION_GRID * MOTION_GRID, dtype=np.uint8))
        else:
            self.rows.append(cells_between(self.previous if follows else None, thumb))
        self.times.append(t)
        self.previous = thumb
        return len(self.rows) - 1

    def profile(self) -> MotionProfile:
        cells = np.stack(self.rows) if self.rows else np.zeros((0, MOTION_GRID * MOTION_GRID), dtype=np.uint8)
        return MotionProfile(times=np.array(self.times, dtype=np.float64), cells=cells)


@dataclass(frozen=True)
class Placement:
    """Where a query's motion sits in a reference: t_reference = speed * t_query + offset_s."""

    speed: float
    offset_s: float
    correlation: float  # Pearson r of the two profiles at this offset
    peak_z: float | None  # how far the peak stands above the other offsets (None: too few to say)
    overlap_frames: int


def energy(profile: MotionProfile, rows: slice | np.ndarray = slice(None), *, mirrored: bool = False) -> float:
    """How much moves in `rows` of a profile: ~0 for a still picture."""
    block = _features(profile.cells, mirrored=mirrored)[rows]
    return float(block.std()) if block.size else 0.0


def place(query: MotionProfile, reference: MotionProfile, *, query_rows: np.ndarray, mirrored: bool,
          speeds: tuple[float, ...] = MOTION_SPEEDS) -> Placement | None:
    """The best offset of `query_rows` of the query inside the reference, or None when the profiles
    do not agree clearly enough at any offset (see the MOTION_MIN_* constants)."""
    rows = np.asarray(query_rows)
    rows = rows[rows > 0]  # row 0 has no previous frame
    if rows.size < MOTION_MIN_FRAMES or reference.cells.shape[0] < MOTION_MIN_FRAMES + 1:
        return None
    q = _features(query.cells, mirrored=mirrored)[rows]
    r = _features(reference.cells, mirrored=False)
    tq = query.times[rows]
    step = sample_step(reference)
    best: Placement | None = None
    for speed in speeds:
        found = _best_offset(q, tq, r, reference.times, step, speed)
        if found is not None and (best is None or found.correlation > best.correlation):
            best = found
    if best is None or best.correlation < MOTION_MIN_CORRELATION:
        return None
    if best.peak_z is None:
        return best if best.correlation >= MOTION_MIN_CORRELATION_ALONE else None
    return best if best.peak_z >= MOTION_MIN_PEAK_Z else None


def sample_step(profile: MotionProfile) -> float:
    """The mean time between a profile's rows. Not the median: samples at 4 a second fall on the source's
    frames, 0.233 and 0.267 s apart at 30 fps (0.24 and 0.28 at 25), and the median of such steps, one of
    the two, drifts a row every 4 s (found in matcher version 12; until then motion placements in 25 and
    30 fps references drifted so)."""
    t = profile.times
    return float(t[-1] - t[0]) / (t.size - 1) if t.size > 1 else 0.25


def _features(cells: np.ndarray, *, mirrored: bool) -> np.ndarray:
    """Pooled, log-compressed cells with each cell's own floor removed: a contrast or brightness change
    scales the differences, which the log turns into a shift that the floor removal takes away."""
    n = cells.shape[0]
    grid = cells.reshape(n, MOTION_GRID, MOTION_GRID).astype(np.float32) / MOTION_SCALE
    if mirrored:
        grid = grid[:, :, ::-1]
    k = MOTION_GRID // MOTION_MATCH_GRID
    pooled = grid.reshape(n, MOTION_MATCH_GRID, k, MOTION_MATCH_GRID, k).mean(axis=(2, 4)).reshape(n, -1)
    logged = np.log1p(pooled)
    if n > 1:
        logged[1:] -= np.median(logged[1:], axis=0)
        # What changes everywhere at once (flicker, the camera's gain, an encoder's keyframe pulse, the
        # same in every copy made with the same settings) is not what moves: keep where it moves.
        logged[1:] -= logged[1:].mean(axis=1, keepdims=True)
        logged[0] = 0.0
    return logged


def _best_offset(q: np.ndarray, tq: np.ndarray, r: np.ndarray, tr: np.ndarray, step: float,
                 speed: float) -> Placement | None:
    """Slide the query along the reference at `speed`, in steps of one reference sample."""
    n_ref = r.shape[0]
    rel = (tq - tq[0]) * speed / step  # query rows in reference samples from the query's first row
    span = rel[-1]
    min_overlap = max(MOTION_MIN_FRAMES, int(np.ceil(MOTION_MIN_OVERLAP * min(rel.size, n_ref - 1))))
    starts = np.arange(1 - int(span), n_ref - 1)  # reference row of the query's first row
    pos = starts[:, None] + rel[None, :]  # (offsets, query rows), fractional reference rows
    valid = (pos >= 1) & (pos <= n_ref - 1)
    keep = valid.sum(axis=1) >= min_overlap
    if not keep.any():
        return None
    starts, pos, valid = starts[keep], pos[keep], valid[keep]
    # In chunks of offsets: one (offsets, query rows, cells) block for an hour-long reference would
    # take gigabytes.
    corr = np.concatenate([_correlations(q, r, pos[i:i + _OFFSET_CHUNK], valid[i:i + _OFFSET_CHUNK])
                           for i in range(0, starts.size, _OFFSET_CHUNK)])
    peak = int(np.argmax(corr))
    others = np.abs(starts - starts[peak]) > MOTION_PEAK_HALF_WIDTH
    null = corr[others]
    peak_z = None
    if null.size >= MOTION_MIN_NULL:
        peak_z = float((corr[peak] - null.mean()) / max(float(null.std()), 1e-3))
    offset_s = float(tr[0] + starts[peak] * step - speed * tq[0])
    return Placement(speed=speed, offset_s=round(offset_s, 3), correlation=round(float(corr[peak]), 4),
                     peak_z=None if peak_z is None else round(peak_z, 2),
                     overlap_frames=int(valid[peak].sum()))


_OFFSET_CHUNK = 256


def _correlations(q: np.ndarray, r: np.ndarray, pos: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pearson r of the query against the reference read at fractional rows `pos` (offsets, query rows)."""
    n_ref = r.shape[0]
    lo = np.clip(np.floor(pos).astype(np.int64), 1, n_ref - 1)
    hi = np.clip(lo + 1, 1, n_ref - 1)
    frac = (np.clip(pos, 1, n_ref - 1) - lo)[..., None].astype(np.float32)
    ref_at = r[lo] * (1 - frac) + r[hi] * frac  # (offsets, query rows, cells)
    mask = valid[..., None].astype(np.float32)
    return _masked_pearson(np.broadcast_to(q, ref_at.shape), ref_at, mask)


def _masked_pearson(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pearson r of a and b over the masked entries, one value per leading index."""
    axes = tuple(range(1, a.ndim))
    count = np.maximum(mask.sum(axis=axes), 1.0)
    ma = (a * mask).sum(axis=axes) / count
    mb = (b * mask).sum(axis=axes) / count
    shape = (-1,) + (1,) * (a.ndim - 1)
    da = (a - ma.reshape(shape)) * mask
    db = (b - mb.reshape(shape)) * mask
    num = (da * db).sum(axis=axes)
    den = np.sqrt((da * da).sum(axis=axes) * (db * db).sum(axis=axes))
    return np.where(den > 1e-9, num / np.maximum(den, 1e-9), 0.0)


@dataclass(frozen=True)
class Agreement:
    """How well what moves along a line agrees with the reference there."""

    correlation: float  # Pearson r of the two profiles on the line
    peak_z: float | None  # how far that stands above the same frames shifted elsewhere (None: too few shifts)
    frames: int


def agreement(query: MotionProfile, reference: MotionProfile, *, query_rows: np.ndarray,
              reference_times: np.ndarray, mirrored: bool) -> Agreement | None:
    """What moves in `query_rows` against what moves in the reference at the times a line maps them to,
    and at the same times shifted by whole reference samples (shifts keeping at least
    AGREEMENT_MIN_OVERLAP of the rows inside the reference, beyond the peak's own shoulders); None when
    fewer than MOTION_MIN_FRAMES rows have a previous frame on both sides."""
    ref_t = reference.times
    if ref_t.size < MOTION_MIN_FRAMES + 1:
        return None
    n_ref = reference.cells.shape[0]
    rows = np.asarray(query_rows, dtype=np.int64)
    # Fractional reference rows, read off the reference's own times (its samples fall on source frames).
    at = np.interp(np.asarray(reference_times, dtype=np.float64), ref_t[:n_ref], np.arange(n_ref, dtype=np.float64),
                   left=-1.0, right=float(n_ref))
    inside = (rows > 0) & (at >= 1) & (at <= n_ref - 1)
    rows, at = rows[inside], at[inside]
    if rows.size < MOTION_MIN_FRAMES:
        return None
    q = _features(query.cells, mirrored=mirrored)[rows]
    r = _features(reference.cells, mirrored=False)
    shifts = np.arange(1 - int(np.ceil(at.max())), n_ref - int(np.floor(at.min())))
    pos = at[None, :] + shifts[:, None]
    valid = (pos >= 1) & (pos <= n_ref - 1)
    keep = (shifts == 0) | ((valid.sum(axis=1) >= AGREEMENT_MIN_OVERLAP * rows.size)
                            & (np.abs(shifts) > MOTION_PEAK_HALF_WIDTH))
    shifts, pos, valid = shifts[keep], pos[keep], valid[keep]
    corr = np.concatenate([_correlations(q, r, pos[i:i + _OFFSET_CHUNK], valid[i:i + _OFFSET_CHUNK])
                           for i in range(0, shifts.size, _OFFSET_CHUNK)])
    own = float(corr[shifts == 0][0])
    null = corr[shifts != 0]
    peak_z = None
    if null.size >= MOTION_MIN_NULL:
        peak_z = round(float((own - null.mean()) / max(float(null.std()), 1e-3)), 2)
    return Agreement(correlation=round(own, 4), peak_z=peak_z, frames=int(rows.size))
