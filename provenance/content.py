"""Where the picture is inside a frame: black bars (per frame) and fills or bands (per stretch of frames).

Reposts box footage into another frame: black letterbox and pillarbox bars, a vertical 9:16 frame filled
with a blurred copy of the footage, or a caption band added above or below. Cutting these off before
hashing lets the copy be compared with the footage as it was first posted.
"""

from __future__ import annotations

from collections.abc import Sequence

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
# the picture), to within this share of the frame.
FILL_SYMMETRY = 0.012
# A band on one side only (a caption strip added above or below) must be still: pixel std over the
# stretch under FILL_STILL_STD grey levels, in at least FILL_ROW_SHARE of its rows.
FILL_STILL_STD = 2.0
FILL_ROW_SHARE = 0.95
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
    top, bottom = _span(stack)
    left, right = _span(stack.transpose(0, 2, 1))
    h, w = stack.shape[1:]
    return ContentBox(left=left / w, top=top / h, right=right / w, bottom=bottom / h)


def _span(stack: np.ndarray) -> tuple[int, int]:
    """First and last+1 row of the picture, looking for borders across the rows of (frames, rows, cols)."""
    n_rows = stack.shape[1]
    step = np.median(np.abs(np.diff(stack, axis=1)).mean(axis=2), axis=0)  # between row y and y+1
    lines = np.flatnonzero(step >= max(FILL_EDGE_MIN, FILL_EDGE_RATIO * float(np.median(step)))) + 1
    tops = [int(y) for y in lines if y <= n_rows // 2]
    bottoms = [int(y) for y in lines if y > n_rows // 2]
    strength = {int(y): float(step[y - 1]) for y in lines}
    # Two borders symmetric about the middle: a fill or bars, whatever is in them.
    pairs = [(min(strength[t], strength[b]), t, b) for t in tops for b in bottoms
             if abs(t + b - n_rows) <= FILL_SYMMETRY * n_rows and b - t >= FILL_MIN_KEPT * n_rows]
    if pairs:
        _, top, bottom = max(pairs)
        return top, bottom
    # Otherwise a still band on one side: the innermost border with only still rows beyond it.
    still_row = stack.std(axis=0).mean(axis=1) < FILL_STILL_STD
    top = max((t for t in tops if still_row[:t].mean() >= FILL_ROW_SHARE), default=0)
    bottom = min((b for b in bottoms if still_row[b:].mean() >= FILL_ROW_SHARE), default=n_rows)
    if bottom - top < FILL_MIN_KEPT * n_rows:
        return 0, n_rows
    return top, bottom


def _run_length(flags: np.ndarray, limit: int) -> int:
    """How many leading entries are True, or 0 when the run exceeds `limit` (then it is not a bar)."""
    not_bar = np.flatnonzero(~flags)
    run = int(not_bar[0]) if not_bar.size else flags.size
    return run if run <= limit else 0
