"""Picture-in-picture from straight borders: a fourth look that needs neither four borders nor corners.

An inset is a rectangle with hard, straight borders that stay put while the pictures on both sides of
them change. The hashing step hashes the inset content.inset_box finds, but only when all four borders
show; over footage of like tone one or two of them fade into the background (the held-out tune half's
mire-2 inset, top right over a pale fish tank: its left and top borders run its whole length, its
bottom and right do not). The third look (provenance.localfeat) finds an inset by keypoints, but only
in the few clips the hash index met already, and a dark or flat inset has too few corners.

Here the query's frames are searched again for rectangles, from the same persistent border lines
(content.inset_borders), built from fewer sides: four borders, two that meet at a corner (each run's
length gives the side it does not show), or two parallel ones (their runs give the other two). Each
rectangle's picture is hashed frame by frame and searched in the whole library like any query frame's;
a clip is matched only when those hashes line up on one time line with the first look's rules (a
still proves nothing; a static camera whose frames fit every moment places nothing), and with more
strength than a first-look line (INSETS_MIN_STRENGTH): each rectangle is one more hypothesis. The
match says where the footage sits: "inside x,y,w,h" of this clip's picture.

It runs only when no earlier look settled the query (match.find_evidence), on the query's first
localfeat.LOCAL_MAX_QUERY_S, decoded once for the third look and this one (localfeat.Pictures.read_query).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import localfeat, motion
from .content import INSET_MAX_SIDE, INSET_MIN_COVER, INSET_MIN_SIDE, inset_borders
from .frames import (FILL_WINDOW_FRAMES, MIN_QUALITY, QUALITY_FULL_STD, QUERY_ZOOM, Variant, hash_frame,
                     inset_picture, small_grey)
from .match import MotionLookup, QueryFrames, keep_stronger, look_through, strength
from .records import ContentBox, Match, ReferenceFrames, Region, Transform

# At most this many rectangles per stretch of FILL_WINDOW_FRAMES frames are hashed and searched, the
# best outlined first (the share of their four sides that borders cover). The strongest non-border
# lines of a frame pair up into a few rectangles too; each costs a search of the index.
INSETS_MAX_RECTANGLES = 3
# ... and at most this many more from four border lines whatever their runs' ends (rectangles(); matcher
# version 17): on the held-out tune half's fixed cameras inset over a still picture (bench/heldout.py
# pip_still) the inset's own rectangle, when the runs' ends miss it, is the best outlined of these.
INSETS_FOUR_LINE_RECTANGLES = 1
# ... and at most this many more from two parallel border lines spanning both their runs (matcher
# version 20): over a still backdrop each of an inset's sides shows as a border only where the two
# pictures differ, so the two runs of a pair each cover part of the side, and together the whole of it.
# On the held-out tune half's pip_still queries (bench/heldout.py), which the earlier rectangles missed,
# the inset's own rectangle was the first such box of a fixed road camera top right and the third of
# mire-2 top right (the road bottom left: its second, 5% narrow, not matched). 3 keeps both; each costs
# one more search of the index in the checks no earlier look settled.
INSETS_UNION_RECTANGLES = 3
# Two border runs meet at a corner when each ends within this share of the frame of the other's line
# (an edge blurred over two pixels, the run's last gap at a corner where the pictures match).
INSETS_CORNER_SLACK = 0.03
# Two rectangles this alike (intersection over union) are one.
INSETS_SAME_IOU = 0.8
# A match through a rectangle needs this much strength (matched frames x similarity), as a
# local-features one (match.LOCAL_MIN_STRENGTH, and for the same reason: the rectangle is one more
# hypothesis per stretch). 8 is 2 s of frames at similarity 1.
INSETS_MIN_STRENGTH = 8.0

# The rectangle's picture is hashed as the first look hashes a whole frame: whole and zoomed, plain
# and mirrored (each met by the reference's whole, 10% and 20% views), inside INSET_MARGIN.
_VIEWS = (Variant(inset=True), Variant(inset=True, crop=QUERY_ZOOM), Variant(inset=True, mirrored=True),
          Variant(inset=True, crop=QUERY_ZOOM, mirrored=True))


@dataclass(frozen=True)
class _Rectangle:
    box: ContentBox
    outlined: float  # share of its four sides covered by border runs
    frames: tuple[int, ...]  # the query frames (indices) of the stretches it was found in


def rectangles(greys: list[np.ndarray]) -> list[tuple[float, ContentBox]]:
    """Rectangles outlined by persistent straight borders in a stretch of frames (all one size), the
    best outlined first, then at most INSETS_FOUR_LINE_RECTANGLES from four border lines and at most
    INSETS_UNION_RECTANGLES spanning the runs of two parallel ones: (share of the four sides covered, box
    as shares of the frame)."""
    if len(greys) < 2:
        return []
    h, w = greys[0].shape
    verticals, horizontals = inset_borders(greys)
    slack_x, slack_y = INSETS_CORNER_SLACK * w, INSETS_CORNER_SLACK * h
    boxes: set[tuple[int, int, int, int]] = set()
    for x, y0, y1 in verticals:
        for y, x0, x1 in horizontals:
            # A corner: the vertical's run ends at the horizontal line and the horizontal's at the
            # vertical line; the runs' far ends give the other two sides.
            if min(abs(y - y0), abs(y - y1)) <= slack_y and min(abs(x - x0), abs(x - x1)) <= slack_x:
                boxes.add((x0, y0, x1, y1))
    for i, (xa, ay0, ay1) in enumerate(verticals):
        for xb, by0, by1 in verticals[i + 1:]:
            boxes.add((min(xa, xb), max(ay0, by0), max(xa, xb), min(ay1, by1)))
    for i, (ya, ax0, ax1) in enumerate(horizontals):
        for yb, bx0, bx1 in horizontals[i + 1:]:
            boxes.add((max(ax0, bx0), min(ya, yb), min(ax1, bx1), max(ya, yb)))
    kept: list[tuple[float, ContentBox]] = []
    for outlined, _, box in _ranked(boxes, verticals, horizontals, w, h, tighter_first=False):
        if all(_iou(box, k) < INSETS_SAME_IOU for _, k in kept):
            kept.append((outlined, box))
        if len(kept) == INSETS_MAX_RECTANGLES:
            break
    # Four border lines whose runs neither meet at the corners nor end level: over a still backdrop every
    # straight edge persists as the inset's borders do, runs on from them and cuts them short where the
    # two pictures match, so the runs' ends outline the wrong rectangles; the four lines do not. Kept
    # apart from the rectangles above: a fixed camera's own straight edges (a tank's walls) make four
    # lines too, and such a rectangle would take the place of the inset's own.
    lines = {(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb))
             for i, (xa, *_) in enumerate(verticals) for xb, *_ in verticals[i + 1:]
             for j, (ya, *_) in enumerate(horizontals) for yb, *_ in horizontals[j + 1:]}
    extra = 0
    for outlined, _, box in _ranked(lines - boxes, verticals, horizontals, w, h, tighter_first=True):
        if extra == INSETS_FOUR_LINE_RECTANGLES:
            break
        if all(_iou(box, k) < INSETS_SAME_IOU for _, k in kept):
            kept.append((outlined, box))
            extra += 1
    spans = ({(min(xa, xb), min(ay0, by0), max(xa, xb), max(ay1, by1))
              for i, (xa, ay0, ay1) in enumerate(verticals) for xb, by0, by1 in verticals[i + 1:]}
             | {(min(ax0, bx0), min(ya, yb), max(ax1, bx1), max(ya, yb))
                for i, (ya, ax0, ax1) in enumerate(horizontals) for yb, bx0, bx1 in horizontals[i + 1:]})
    spanned = 0
    for outlined, _, box in _ranked(spans - boxes - lines, verticals, horizontals, w, h, tighter_first=False):
        if spanned == INSETS_UNION_RECTANGLES:
            break
        if all(_iou(box, k) < INSETS_SAME_IOU for _, k in kept):
            kept.append((outlined, box))
            spanned += 1
    return kept


def _ranked(boxes: set[tuple[int, int, int, int]], verticals: list[tuple[int, int, int]],
            horizontals: list[tuple[int, int, int]], w: int, h: int, *,
            tighter_first: bool) -> list[tuple[float, float, ContentBox]]:
    """The boxes of a plausible inset's size that borders outline on at least two sides, best outlined
    first: (outlined, outlined less the runs' overshoot, box). `tighter_first` ranks by the second
    (runs that go on past a box's corners count against it, as in content.inset_box)."""
    slack_x, slack_y = INSETS_CORNER_SLACK * w, INSETS_CORNER_SLACK * h
    found = []
    for left, top, right, bottom in boxes:
        if not (INSET_MIN_SIDE * w <= right - left <= INSET_MAX_SIDE * w
                and INSET_MIN_SIDE * h <= bottom - top <= INSET_MAX_SIDE * h):
            continue
        outlined, overshoot = _outlined((left, top, right, bottom), verticals, horizontals, slack_x, slack_y)
        # At least two sides must be borders (a corner, or two parallel sides): the rectangle is
        # then fixed by them, not guessed.
        if outlined >= 2 * INSET_MIN_COVER / 4:
            found.append((round(outlined, 4), round(outlined - overshoot, 4),
                          ContentBox(left=left / w, top=top / h, right=right / w, bottom=bottom / h)))
    found.sort(key=lambda f: (-(f[1] if tighter_first else f[0]), f[2].left, f[2].top))
    return found


def _outlined(box: tuple[int, int, int, int], verticals: list[tuple[int, int, int]],
              horizontals: list[tuple[int, int, int]], slack_x: float, slack_y: float) -> tuple[float, float]:
    """The share of the box's four sides that border runs cover (each side by its best run; a side
    covered less than INSET_MIN_COVER counts nothing), and the share by which those runs run on past
    the sides' ends."""
    left, top, right, bottom = box

    def side(line: int, lo: int, hi: int, runs: list[tuple[int, int, int]], slack: float) -> tuple[float, float]:
        best, past = 0.0, 0.0
        for at, a, b in runs:
            if abs(at - line) <= slack:
                cover = (min(hi, b) - max(lo, a)) / max(hi - lo, 1)
                if cover > best:
                    best, past = cover, (max(0, lo - a) + max(0, b - hi)) / max(hi - lo, 1)
        return (best, past) if best >= INSET_MIN_COVER else (0.0, 0.0)

    sides = (side(left, top, bottom, verticals, slack_x), side(right, top, bottom, verticals, slack_x),
             side(top, left, right, horizontals, slack_y), side(bottom, left, right, horizontals, slack_y))
    return sum(c for c, _ in sides) / 4, sum(p for _, p in sides) / 4


def _iou(a: ContentBox, b: ContentBox) -> float:
    iw = max(0.0, min(a.right, b.right) - max(a.left, b.left))
    ih = max(0.0, min(a.bottom, b.bottom) - max(a.top, b.top))
    inter = iw * ih
    union = (a.right - a.left) * (a.bottom - a.top) + (b.right - b.left) * (b.bottom - b.top) - inter
    return inter / union if union > 0 else 0.0


def find_rectangles(frames: localfeat.Frames) -> list[_Rectangle]:
    """Rectangles per stretch of FILL_WINDOW_FRAMES frames (an inset may come and go, or move, between
    the pieces of a compilation), one rectangle found in several stretches counted once."""
    out: list[_Rectangle] = []
    for start in range(0, len(frames), FILL_WINDOW_FRAMES):
        stretch = [g for _, g in frames[start:start + FILL_WINDOW_FRAMES]]
        if len({g.shape for g in stretch}) != 1:
            continue
        indices = tuple(range(start, start + len(stretch)))
        for outlined, box in rectangles(stretch):
            same = next((i for i, r in enumerate(out) if _iou(r.box, box) >= INSETS_SAME_IOU), None)
            if same is None:
                out.append(_Rectangle(box, outlined, indices))
            else:
                out[same] = replace(out[same], frames=out[same].frames + indices)
    return out


def _hash_rectangle(frames: localfeat.Frames, rect: _Rectangle, query: QueryFrames) -> QueryFrames | None:
    """The rectangle's picture in its frames, hashed in _VIEWS, as query frames of their own, with the
    motion profile of that picture: a fixed camera's footage in the rectangle is placed by what moves
    in it (match.look_through), as a whole-picture copy of it is."""
    times, rows, motion_rows = [], [], []
    moves = motion.MotionTrack()
    for k, i in enumerate(rect.frames):
        t, grey = frames[i]
        # The rectangle's frames may skip a stretch it was not found in: no difference across the gap.
        motion_row = moves.add(t, inset_picture(grey, rect.box), follows=k > 0 and rect.frames[k - 1] == i - 1)
        part = localfeat.crop(grey, (rect.box.left, rect.box.top, rect.box.right, rect.box.bottom))
        if min(part.shape) < 8 or float(part.std()) / QUALITY_FULL_STD < MIN_QUALITY:
            continue  # flat (black, a fade): no evidence
        # The whole frame first: hash_frame then always has a view to hash, and says (inset None) when
        # the rectangle's picture is too small to (a 100x56 clip's rectangles are 11-48 px).
        hashed = hash_frame(grey, t, variants=(Variant(), *_VIEWS), inset=rect.box)
        if hashed.inset is None:
            continue
        times.append(t)
        rows.append(hashed.variants)
        motion_rows.append(motion_row)
    if not rows:
        return None
    n = len(rows)
    return QueryFrames(times=np.array(times, dtype=np.float64), hashes=np.array(rows, dtype=np.uint64),
                       letterbox=np.zeros(n), pillarbox=np.zeros(n), duration_s=query.duration_s,
                       step_s=query.step_s, motion=moves.profile(),
                       motion_rows=np.array(motion_rows, dtype=np.int64))


def look(query: QueryFrames, library: ReferenceFrames, pictures: localfeat.Pictures,
         query_sha256: str | None, *, motion_of: MotionLookup | None = None) -> dict[int, Match]:
    """The best match per reference clip through a rectangle of the query's picture. `motion_of`
    (match.find_evidence's): a reference clip's motion profile, to place a fixed camera's footage
    inside the rectangle by what moves in it."""
    # The third look's frames when it read them (most of the cost is the decode), shrunk to WORK_SIZE.
    frames = [(t, small_grey(g)) for t, g in pictures.read_query(0.0, localfeat.LOCAL_MAX_QUERY_S, 1.0 / query.step_s)]
    best: dict[int, Match] = {}
    for rect in find_rectangles(frames):
        inside = _hash_rectangle(frames, rect, query)
        if inside is None:
            continue
        found = look_through(inside, library, _VIEWS, query_sha256, motion_of=motion_of)
        region = Region(inside="query", x=round(rect.box.left, 4), y=round(rect.box.top, 4),
                        w=round(rect.box.right - rect.box.left, 4), h=round(rect.box.bottom - rect.box.top, 4))
        for clip_id, m in found.items():
            if strength(m) < INSETS_MIN_STRENGTH:
                continue
            # The rectangle shows the reference's whole picture (a zoomed view meeting a cut one is
            # the rectangle's own margin, not a crop), as the second look's inset views (match._as_region).
            transforms = (*(t for t in m.transforms if t != Transform.CROPPED), Transform.PICTURE_IN_PICTURE)
            # Placed by what moves inside the rectangle, it stays a motion match, in that rectangle.
            m = replace(m, method="motion" if m.method == "motion" else "region", region=region, transforms=transforms)
            keep_stronger(best, {clip_id: m})
    return best
