"""Match step: find known footage inside a query clip and place it in time.

1. Candidates: every (query frame, library frame) pair whose pHashes are within
   FRAME_MATCH_MAX_DISTANCE bits, found exactly by the library's in-memory index (provenance.index:
   multi-index hashing) or, without one, with a vectorised XOR + popcount over all library hashes.
2. Alignment: frames of a true copy agree on one line  t_ref = speed * t_query + offset.  Pairs vote
   per reference clip and orientation (plain or mirrored) for (speed, offset); the best line's pairs,
   one per query frame, are the evidence. A line is kept only with MIN_MATCHED_FRAMES frames on it.
   Further lines are looked for among the query frames that are left (a re-edit or compilation).
3. Segments: runs of matched query frames, split where the run breaks for more than SEGMENT_GAP_S.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from . import localfeat, motion
from .hashindex import pairs_within_brute
from .frames import (MATCH_VARIANTS, MIN_QUALITY, PHASH_INPUT, QUALITY_FULL_STD, QUERY_VARIANTS, REFERENCE_VARIANTS,
                     SAMPLE_FPS, SECOND_LOOK_VARIANTS, Variant, phash_many)
from .motion import MotionProfile
from .records import (ContentBox, Fingerprint, Match, ReferenceClip, ReferenceFrames, Region, SceneHint, Segment,
                      Transform)

# Bumped whenever a threshold, a hash view or a signal changes, so that a stored check says which
# matcher made it (checks' params also hold every constant: matcher_constants()).
# 1: frame pHashes aligned on a time line (2026-11-25). 2: motion profiles for static-camera footage,
# same-scene hints, sub-picture regions (2026-11-30). 3: local features (ORB keypoints, RANSAC) place
# insets and kept corners for a third look (provenance.localfeat, 2026-11-30). 4: the third look's
# candidates ranked by how specifically they were met, and the clip the whole picture met most given
# the third look too (2026-11-30). 5: a fourth look, rectangles outlined by two or more straight
# borders hashed and searched in the whole library (provenance.insets, 2026-11-30). 6: in the fourth
# look, a rectangle whose frames meet a clip only as stills (a fixed camera's inset) is placed by what
# moves inside it, as a whole-picture copy is (2026-11-30). 7: a line through frames that match about as
# well elsewhere is a still, however close, unless it runs at a common speed (2026-12-01). 8: the
# library keeps every frame between samples of footage that changes faster than the sampling
# (frames.densify), and a short line at the edge of the frame threshold is chance (WEAK_LINE_*)
# (2026-12-01). 9: footage in which nothing moves, matched all along by a known clip in which nothing
# moves either, is a same-scene hint ("the same still picture"), no longer nothing; a same-scene hint
# needs SCENE_MIN_S in both clips (2026-12-01). 10: a line's frames that match the reference about as
# well through the other orientation (mirrored or not) are ambiguous too, so that a near-symmetric fixed
# camera's other moment no longer makes a mirrored line (_ambiguous_share), and a same-scene hint over
# moving footage needs SCENE_MIN_SHARE of the query's frames to meet the clip (2026-12-02). 11: a line
# at the edge of the frame threshold needs WEAK_LINE_MIN_FRAMES 14 (3.5 s), no longer 8, and a second-look
# match REGION_MIN_STRENGTH (2026-12-02). 12: a close line through frames that match the reference about
# as well elsewhere (a fixed camera) must agree with it in what moves (LINE_MOTION_*), and motion rows are
# read at the reference's mean sample step, not the median one that drifted in 25 and 30 fps footage
# (motion.sample_step) (2026-12-02). 13: the third look's close lines through a fixed camera must agree
# in what moves inside the two rectangles it matched (_box_motion), and a reference met only by short
# lines at the edge of chance is not placed (LONE_LINE_BITS) (2026-12-02). 14 (withdrawn): when the
# third look's lines are all stills, the two rectangles were placed by what moves inside them; it placed
# a dancer's other moment as a copy on the held-out report half. 15: such rectangles are said to be the
# same scene only (the rectangle named), whatever their motion says (2026-12-03). 16: the third look
# keeps only lines at the common retiming speeds (LOCAL_FAR_SPEEDS) (2026-12-03). 17: the fourth look
# (provenance.insets) also tries the rectangle four border lines make whatever their runs' ends, so an
# inset over a still background is found (2026-12-03). 18: LINE_MOTION_MIN_Z 1.5 -> 1.75, between a
# fixed road camera's other moment (z 1.53, placed as a copy) and the lowest true line (z 1.96) on the
# tune half with deal 8 (2026-12-03). 19: MAX_AMBIGUOUS_SHARE 0.5 -> 0.45, between the most ambiguous
# line kept in a tune positive (0.4375) and the mouse cage's other moment (0.467, placed as a copy)
# (2026-12-03). 20: the fourth look also tries rectangles spanning the runs of two parallel border lines
# (insets.INSETS_UNION_RECTANGLES), an inset over a still backdrop showing its sides only in parts
# (2026-12-03).
MATCHER_VERSION = 20

# pHash is 64 bits. Re-encoded, downscaled, letterboxed and mirrored copies of the samples sit at 0..10;
# frames of unrelated samples never came closer than 20 (samples/, 4 fps, all pairs). On
# bench/robustness.py (228 positives, 27 negatives, 2026-11-25): at 10, recall 217/228; at 12, 219/228;
# at 14, 220/228 but 6 positives also got a wrong extra reference. 12 is the widest with none, and zero
# false matches on the negatives at all three. A single frame pair proves nothing; the alignment does.
FRAME_MATCH_MAX_DISTANCE = 12
# Hamming distance two unrelated 64-bit hashes have on average: the zero point of `similarity`.
UNRELATED_DISTANCE = 32.0

# At least this many sampled frames (1 s at 4 fps) must agree on one alignment line.
MIN_MATCHED_FRAMES = 4
# And a match needs this much evidence (strength: matched frames x similarity). On the held-out tune
# half (bench/heldout.py, 2026-11-30) the strongest match on a negative (another moment of a hand-held
# shot; a title card then another moment of a presenter) was 2.81, the weakest correctly placed copy
# 14.5 (a 4-s excerpt): 3.0 keeps a 1-s match only when its frames are close (similarity >= 0.75).
MIN_MATCH_STRENGTH = 3.0
# Speeds tried, reference seconds per query second: reposts are sped up or slowed down by up to 25%,
# and edits use slow motion (the Big Buck Bunny trailer has a piece at 0.5x) and double speed.
SPEEDS = tuple(round(1.0 + k * 0.025, 3) for k in range(-20, 41))  # 0.5 .. 2.0
# Offsets are voted into bins of this width: two sampling periods at 4 fps, wide enough for the
# sampling phase (up to 1/8 s) and a speed step's drift over 10 s (0.0125 x 10 s).
OFFSET_BIN_S = 0.5
# A pair is on a line when its reference time is this close to the line: half a sampling period
# (phase) plus one frame of jitter at 25 fps.
INLIER_TOLERANCE_S = 0.3
# A still picture (title card, freeze frame, logo) shows the same picture at every offset, so it proves
# no footage: a line needs frames of at least MIN_DISTINCT_FRAMES different pictures, pictures being
# different when their hashes differ by more than STILL_MAX_DISTANCE bits (re-encoding noise on a still
# is 0-2 bits; moving footage sampled 1/4 s apart differs by 4 and more).
MIN_DISTINCT_FRAMES = 3
STILL_MAX_DISTANCE = 4
# A line is no placement when many of its frames match the reference about as well elsewhere: a
# frame is ambiguous when, more than AMBIGUITY_OFF_LINE_S from the line, some reference frame is
# within AMBIGUITY_MARGIN_BITS of its distance on the line; a line with MAX_AMBIGUOUS_SHARE of its
# frames ambiguous is a still (static-camera footage), handed to the motion profiles. Version 19 moved
# the share from 0.5 to 0.45: on the held-out tune half (2026-12-03) the lines kept as placements in its
# positives had shares up to 0.4375 (14 of 32 frames: the presenter's zoomed 9:16 fill), and the one false
# match left, the mouse cage at another moment, rode a mirrored line of 15 frames at a median of 8 bits
# with 7 of them ambiguous (0.467); 0.45 is between the two. The margin is thin: bench/README.md,
# "Matcher version 19".
AMBIGUITY_OFF_LINE_S = 2.0
AMBIGUITY_MARGIN_BITS = 2
MAX_AMBIGUOUS_SHARE = 0.45
# ... unless its frames are close: a median distance on the line of at most this many bits. Copies of
# slow shots in the Big Buck Bunny film (bench/robustness.py: a letterboxed and a cropped one) sat at
# 2-4 with half their frames ambiguous; the best lines of the held-out tune half's negatives (the same
# fixed camera or presenter at another moment) at 8-12.
AMBIGUITY_CLOSE_BITS = 6
# ... and only at a common retiming speed (COMMON_SPEEDS). Frames that match the reference almost
# everywhere (a fixed camera on a scene that barely changes) fit a line at almost any speed and offset,
# the same camera at another moment as well as a copy, and the lines far from 1x are the many more
# hypotheses (_strong_enough). Matcher version 6 placed such lines as copies: the same fixed camera at
# another moment at 0.50-0.62x on the held-out report half (deal 4, bench/README.md), a small window of
# street footage over a still picture, another 5 s of it, at 0.53x (tests/test_static_camera.py). On
# the tune half (deal 5's fixed cameras included, 2026-12-01) every line kept by closeness ran at
# 1.00-1.05x, and on bench/robustness.py at 0.82-1.18x but for one 0.52x line in a 1x copy (a wrong
# extra match, which this shortens): this costs neither half a placement.
# ... and, when its frames are ambiguous all the same (a fixed camera: the same camera at another moment
# makes such lines too), only when what moves along it agrees with what moves in the reference there
# (motion.agreement): a Pearson r of at least LINE_MOTION_MIN_CORRELATION, standing LINE_MOTION_MIN_Z
# standard deviations above the same frames shifted elsewhere in the reference (when there is room for
# MOTION_MIN_NULL shifts). Chosen on the held-out tune half (matcher version 12, 2026-12-02, bench/
# line_motion.py): the true lines of its fixed and low-motion cameras (whole-picture copies, where anything
# moves) had r 0.23-0.91 and z 1.97-12.0, but for two compilation pieces of the sleeping baby (r -0.07 and
# 0.04: nothing moves in it, its lines are stills already); lines laid at every second of the same cameras
# at other moments (its negatives) had r -0.28..0.44 (the mouse cage's mirrored picture correlates at any
# offset: hence the z), and 29 of 968 passed both thresholds. bench/README.md, "Matcher version 12".
# Version 18 raised the z from 1.5 to 1.75: deal 8's fixed road camera at another moment made a close
# line at 1.09x with r 0.29 and z 1.53, placed as a copy; the tune half's true lines (92 with deal 8)
# had z 1.96-12.7, so 1.75 is the midpoint (bench/line_motion.py --split tune, 2026-12-03).
LINE_MOTION_MIN_CORRELATION = 0.15
LINE_MOTION_MIN_Z = 1.75
# Lines rejected as stills do not count against MAX_LINES_PER_REFERENCE, up to this many.
MAX_STILL_LINES = 2
# A break of more than this in the matched query frames starts a new segment.
SEGMENT_GAP_S = 2.0
# Beyond the common retiming range a line must show frames this similar on average: wrong lines at
# ~0.5x between different shots of one Big Buck Bunny scene reached 0.72-0.754, the trailer's true 0.5x
# sepia piece 0.824 (bench/robustness.py, 2026-11-25). The margin is thin on both sides; see bench/README.md.
COMMON_SPEEDS = (0.8, 1.25)
# A line of fewer than WEAK_LINE_MIN_FRAMES frames whose median pair is WEAK_LINE_BITS or more apart
# is chance. Where the library keeps every frame of fast-changing footage (frames.densify) a query frame
# meets ~6 times as many reference frames, and on the held-out tune half the goldfish pond's other
# moments then made lines of 5-6 frames at a median of 12 bits (similarity 0.64) at 1.07x; its copies
# made lines of 16-35 frames at medians 0-10. The shortest such line of a copy on the tune half is
# 21 frames (a caption band over a fixed camera, plain or mirrored, medians 12), at 4 fps; the mouse
# cage's other moment under a caption band made one of 11 frames at a median of 12, plain and mirrored
# (matcher version 11, 2026-12-02). 14 frames is 3.5 s: a 4-s excerpt losing a frame at each end still
# counts. Checked, not tuned, on bench/robustness.py (bench/README.md, "matcher version 11").
WEAK_LINE_BITS = 11
WEAK_LINE_MIN_FRAMES = 14
# A reference met (in one look and orientation) only by lines shorter than WEAK_LINE_MIN_FRAMES whose
# median pair is LONE_LINE_BITS or more apart is not placed: such a line can extend a match (a
# compilation's short piece beside the main line), not make one. On the held-out tune half (bench files
# made bit-exactly, 2026-12-02, matcher version 12) the only such lone line was the mouse cage's other
# moment under a corner crop (5 frames at a median of 10 bits, 0.806x, mirrored: a false match); the
# short lines of copies at 10 bits all sat beside a longer line of the same reference (the goldfish
# pond's compilation piece, 5 frames, beside 17 at 0 bits). On earlier files the same kind of line made
# the tune half's other false match (the coin on a table in a mouse cage, 5 frames at 0.69).
LONE_LINE_BITS = 10
FAR_SPEED_MIN_SIMILARITY = 0.80
# A re-edit or compilation can hold several pieces of one reference: look for this many lines at most
# (the Big Buck Bunny trailer holds 6 pieces of the film).
MAX_LINES_PER_REFERENCE = 8

# The second look (off-centre views) runs unless a first-look match covers this share of the query
# with at least this similarity: plain copies, centre crops and mirrors (0.85-1.0 on the samples) skip
# it; an off-centre crop met weakly by a centre view (0.64 on samples/bikes.mp4 cut 10% from two
# sides) gets it.
SECOND_LOOK_COVERAGE = 0.5
SECOND_LOOK_SIMILARITY = 0.75
# A second-look match needs this much strength (matched frames x similarity), as a local-features one
# (LOCAL_MIN_STRENGTH) and for the same reason: each off-centre view is one more hypothesis. On the
# held-out tune half (2026-12-02) a coin on a table cut to its bottom-right corner met the mouse cage in
# 4 frames at 0.77 (strength 3.1, a false match); the second look's true matches there, corners kept and
# insets, had 17.9-30.9.
REGION_MIN_STRENGTH = 8.0

# Bars: a copy whose bars (top+bottom or left+right) exceed the reference's by this share of the frame
# is reported as letterboxed / pillarboxed. Below that it is encoder edge noise.
BOX_CHANGE_MIN = 0.03
SPEED_CHANGE_MIN = 0.03
# Fitted speeds of plain re-encodes and excerpts of the samples scatter within 1.0 +- 0.006 (sampling
# jitter); closer to 1 than this is taken as untouched speed.
SPEED_SNAP = 0.01
# Matched through crop variants implying at least this much cut off each side: reported as cropped.
CROP_MIN = 0.04
# A copy covering less than this share of the reference is reported as an excerpt.
EXCERPT_MAX_COVERAGE = 0.9


@dataclass(frozen=True)
class QueryFrames:
    times: np.ndarray  # float64, one per usable frame
    hashes: np.ndarray  # uint64, (frames, len(MATCH_VARIANTS))
    # Bars cut off each frame, as shares of the frame: top + bottom, left + right.
    letterbox: np.ndarray
    pillarbox: np.ndarray
    duration_s: float
    step_s: float
    # The clip's motion profile (every sampled frame) and, per usable frame, its row in it.
    motion: MotionProfile | None = field(default=None, compare=False)
    motion_rows: np.ndarray | None = field(default=None, compare=False)
    # uint64 (frames, len(SECOND_LOOK_VARIANTS)): off-centre and inset views for the second look, and
    # per frame the inset's box (left, top, right, bottom; NaN: none found).
    region_hashes: np.ndarray | None = field(default=None, compare=False)
    insets: np.ndarray | None = field(default=None, compare=False)
    # Or, until the second look asks (_looked_closer), what gives those two: a fingerprint made by
    # frames.fingerprint(query=True) hashes its second-look views only then (frames.SecondLook).
    second_look: Callable[[], tuple[np.ndarray, np.ndarray]] | None = field(default=None, compare=False)


def query_frames(fingerprint: Fingerprint, *, min_quality: float) -> QueryFrames:
    rows = [i for i, f in enumerate(fingerprint.frames) if f.quality >= min_quality]
    usable = [fingerprint.frames[i] for i in rows]
    hashes = np.array([(f.phash, *f.variants) for f in usable], dtype=np.uint64).reshape(len(usable), -1)
    deferred = fingerprint.second_look is not None and hashes.shape[1] == _FIRST_QUERY_COLUMNS
    if hashes.shape[1] != len(QUERY_VARIANTS) and not deferred:
        raise ValueError("query fingerprint lacks the query variants; make it with fingerprint(query=True)")
    bars = np.array([_bars(f.box or fingerprint.content_box) for f in usable], dtype=np.float64).reshape(-1, 2)
    query = QueryFrames(
        times=np.array([f.t for f in usable], dtype=np.float64),
        hashes=hashes[:, _MATCH_COLUMNS],
        letterbox=bars[:, 0],
        pillarbox=bars[:, 1],
        duration_s=max(fingerprint.decoded_duration_s, 1.0 / fingerprint.sample_fps),
        step_s=1.0 / fingerprint.sample_fps,
        motion=fingerprint.motion,
        motion_rows=np.array(rows, dtype=np.int64),
    )
    if deferred:
        return replace(query, second_look=lambda: _second_look_views(fingerprint.second_look, rows))
    return replace(query, region_hashes=hashes[:, _REGION_COLUMNS], insets=_inset_boxes([f.inset for f in usable]))


def _second_look_views(second_look: Any, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    hashes, insets = second_look.views(rows)
    return hashes, _inset_boxes(insets)


def _inset_boxes(insets: Sequence[ContentBox | None]) -> np.ndarray:
    return np.array([(b.left, b.top, b.right, b.bottom) if b else (np.nan,) * 4 for b in insets],
                    dtype=np.float64).reshape(-1, 4)


def _looked_closer(query: QueryFrames) -> QueryFrames:
    """The query with its second-look views hashed (once: the result carries them)."""
    if query.region_hashes is not None or query.second_look is None:
        return query
    region_hashes, insets = query.second_look()
    return replace(query, region_hashes=region_hashes, insets=insets, second_look=None)


def _bars(box: ContentBox) -> tuple[float, float]:
    return box.top + 1.0 - box.bottom, box.left + 1.0 - box.right


# The crop of the original a (query variant, reference variant) pairing implies: the query's view shows
# the original cut by c + zoom * (1 - 2c) per side, which equals the reference variant's crop.
_MATCH_COLUMNS = [QUERY_VARIANTS.index(v) for v in MATCH_VARIANTS]
_QUERY_ZOOMS = np.array([v.crop for v in MATCH_VARIANTS])
_REFERENCE_CROPS = np.array([v.crop for v in REFERENCE_VARIANTS])
_CROP_OF_PAIRING = (_REFERENCE_CROPS[None, :] - _QUERY_ZOOMS[:, None]) / (1.0 - 2.0 * _QUERY_ZOOMS[:, None])
_REGION_COLUMNS = [QUERY_VARIANTS.index(v) for v in SECOND_LOOK_VARIANTS]
# A query fingerprint's own columns (phash, *variants) when its second-look views are deferred:
# those are the last of QUERY_VARIANTS (frames.SecondLook).
_FIRST_QUERY_COLUMNS = len(QUERY_VARIANTS) - len(SECOND_LOOK_VARIANTS)
assert _REGION_COLUMNS == list(range(_FIRST_QUERY_COLUMNS, len(QUERY_VARIANTS)))
# In the second look `crop` carries which (region view, reference view) pairing met, to place the region.
_PAIRING_OF_REGION = (np.arange(len(SECOND_LOOK_VARIANTS))[:, None] * len(REFERENCE_VARIANTS)
                      + np.arange(len(REFERENCE_VARIANTS))[None, :]).astype(np.float64)


MotionLookup = Callable[[int], MotionProfile | None]


@dataclass(frozen=True)
class Evidence:
    matches: tuple[Match, ...]  # strongest first
    scenes: tuple[SceneHint, ...]  # same scene, moment not established: hints, not matches


def find_matches(query: QueryFrames, library: ReferenceFrames, *, query_sha256: str | None = None,
                 motion_of: MotionLookup | None = None, pictures: localfeat.Pictures | None = None) -> list[Match]:
    """All reference clips whose footage is in the query, strongest first."""
    return list(find_evidence(query, library, query_sha256=query_sha256, motion_of=motion_of,
                              pictures=pictures).matches)


def find_evidence(query: QueryFrames, library: ReferenceFrames, *, query_sha256: str | None = None,
                  motion_of: MotionLookup | None = None, pictures: localfeat.Pictures | None = None) -> Evidence:
    """Matches (footage of a known clip placed in time) and same-scene hints.

    `motion_of(clip_id)` gives a reference clip's motion profile; with it, a clip whose pictures are
    close to the query's all along but cannot be placed by its frames (static-camera footage: every
    frame looks like every other) is placed by what moves in it, or else reported as the same scene.
    `pictures` gives the query's and the references' files; with it, when no look so far settled the
    query, the reference clips the hash index met most get a third look with local features
    (provenance.localfeat): an inset or a kept corner is located by keypoints and placed in time by
    the hashes of the two matching rectangles."""
    if query.times.size == 0 or library.hashes.size == 0:
        return Evidence((), ())
    if motion_of is not None:
        # Each look and each line may ask for a clip's profile: read it once per check.
        motion_of = functools.cache(motion_of)
    stills: dict[int, list[_StillCandidate]] = {}
    # Clips met by the whole-picture views, and clips met only through part of the picture: the
    # local-features look's candidates (_local_candidates).
    whole: dict[int, _Met] = {}
    met: dict[int, _Met] = {}
    best = _look(query, library, query.hashes, MATCH_VARIANTS, _CROP_OF_PAIRING, query_sha256, stills, region=False,
                 met=whole, motion_of=motion_of)
    closer = query.region_hashes is not None or query.second_look is not None
    if closer and not any(_settled(m) for m in best.values()):
        # The second look: the footage may fill only part of this picture (an off-centre crop kept
        # a corner of it) or this picture part of the footage's. Per clip, the stronger look wins.
        # Its views are hashed now: most checks never get here.
        query = _looked_closer(query)
        regional = _look(query, library, query.region_hashes, SECOND_LOOK_VARIANTS, _PAIRING_OF_REGION,
                         query_sha256, {}, region=True, met=met)
        keep_stronger(best, {clip_id: m for clip_id, found in regional.items()
                             if (m := _as_region(found)) is not None and strength(m) >= REGION_MIN_STRENGTH})
    scenes = []
    for clip_id, placed in _placed_stills(query, library, stills, best, motion_of, query_sha256):
        if isinstance(placed, Match):
            best[clip_id] = placed
        else:
            scenes.append(placed)
    if pictures is not None and not any(_settled(m) for m in best.values()):
        query = _looked_closer(query)
        _widen_candidates(query, library, met)
        local, local_hints = _local_look(query, library, _local_candidates(met, whole), best, pictures, query_sha256)
        keep_stronger(best, local)
        scenes += [h for h in local_hints if h.sha256 not in {s.sha256 for s in scenes}]
    if pictures is not None and not any(_settled(m) for m in best.values()):
        # The fourth look: rectangles outlined by straight borders, hashed and searched in the whole
        # library (provenance.insets, which uses this module's alignment: imported here).
        from . import insets
        keep_stronger(best, insets.look(query, library, pictures, query_sha256, motion_of=motion_of))
    if pictures is not None:
        scenes = [h for h in scenes if h.sha256 not in {m.sha256 for m in best.values()}]
    return Evidence(tuple(sorted(best.values(), key=strength, reverse=True)),
                    tuple(sorted(scenes, key=lambda h: h.query_frames * h.similarity, reverse=True)))


def _look(query: QueryFrames, library: ReferenceFrames, hashes: np.ndarray, views: tuple[Variant, ...],
          pairing: np.ndarray, query_sha256: str | None,
          stills: dict[int, list["_StillCandidate"]], *, region: bool,
          met: dict[int, "_Met"] | None = None,
          motion_of: MotionLookup | None = None) -> dict[int, "_RegionMatch | Match"]:
    """The best match per reference clip through the query `views` (columns of `hashes`); reference
    clips whose lines were all stills go into `stills`; the clips met most specifically into `met`
    (candidates for the local-features look). With `motion_of`, a close line through static-camera
    frames must also agree in what moves (_moves_elsewhere)."""
    best: dict[int, Any] = {}
    met_by_view = {mirrored: candidate_pairs(hashes[:, [i for i, v in enumerate(views) if v.mirrored == mirrored]],
                                             library.hashes, search=library.search)
                   for mirrored in (False, True)}
    for mirrored in (False, True):
        columns = [i for i, v in enumerate(views) if v.mirrored == mirrored]
        qi, ri, dist, column = met_by_view[mirrored]
        if qi.size == 0:
            continue
        other_qi, other_ri, other_dist, _ = met_by_view[not mirrored]
        other_order = np.argsort(library.clip_ids[other_ri], kind="stable")
        other_clips = library.clip_ids[other_ri][other_order]
        implied = pairing[np.asarray(columns)[column], library.variants[ri]]
        clip_of_pair = library.clip_ids[ri]
        order = np.argsort(clip_of_pair, kind="stable")
        clip_sorted = clip_of_pair[order]
        starts = np.flatnonzero(np.r_[True, clip_sorted[1:] != clip_sorted[:-1]])
        ends = np.r_[starts[1:], clip_sorted.size]
        # A clip met by fewer than MIN_MATCHED_FRAMES query frames cannot hold a line (_best_line's
        # first test): skipped here in one pass. In a large library most clips met are such chance
        # pairs, and one Python call each cost more than the search (bench/scale.py, 10M rows).
        frames_met = _distinct_per_group(clip_sorted, qi[order], starts)
        if met is not None:
            scores = meeting_scores(clip_sorted, qi[order], column[order], dist[order], starts,
                                     FRAME_MATCH_MAX_DISTANCE)
            _note_met(met, frames_met, scores, starts, ends, order, clip_sorted, query.times[qi], library.times[ri],
                      mirrored=mirrored, clips=library.clips)
        for s, e in zip(starts[frames_met >= MIN_MATCHED_FRAMES], ends[frames_met >= MIN_MATCHED_FRAMES],
                        strict=True):
            sel = order[s:e]
            clip = library.clips[int(clip_sorted[s])]
            pairs = _Pairs(query.times[qi[sel]], library.times[ri[sel]], dist[sel], qi[sel],
                           query.hashes[qi[sel], 0], implied[sel])
            in_other = other_order[np.searchsorted(other_clips, clip_sorted[s], side="left"):
                                   np.searchsorted(other_clips, clip_sorted[s], side="right")]
            rivals = _Rivals(other_qi[in_other], other_dist[in_other])
            moves = (_Moves(query.motion, query.motion_rows, clip.clip_id, motion_of)
                     if motion_of is not None and query.motion is not None and query.motion_rows is not None
                     else None)
            match, still = _align(query, clip, pairs, mirrored=mirrored, same_file=clip.sha256 == query_sha256,
                                  region=region, rivals=rivals, moves=moves)
            if match and (clip.clip_id not in best or strength(_plain(match)) > strength(_plain(best[clip.clip_id]))):
                best[clip.clip_id] = match
            if still is not None:
                stills.setdefault(clip.clip_id, []).append(still)
    return best


def _settled(m: Match) -> bool:
    """A first-look match strong enough that no second look is needed."""
    return m.query_coverage >= SECOND_LOOK_COVERAGE and m.similarity >= SECOND_LOOK_SIMILARITY


@dataclass(frozen=True)
class _RegionMatch:
    """A second-look match with the pairing of views that made it, to place the region."""

    match: Match
    pairing: int  # region view * len(REFERENCE_VARIANTS) + reference view, the most frequent on the lines
    inset: tuple[float, float, float, float] | None  # median inset box of the matched frames, if inset views


def _plain(m: "Match | _RegionMatch") -> Match:
    return m.match if isinstance(m, _RegionMatch) else m


def _as_region(found: "Match | _RegionMatch") -> Match | None:
    """A second-look match with its region: where the reference sits in this picture, or which part of
    the reference's picture this clip kept."""
    if not isinstance(found, _RegionMatch):
        return found
    view = SECOND_LOOK_VARIANTS[found.pairing // len(REFERENCE_VARIANTS)]
    ref_crop = REFERENCE_VARIANTS[found.pairing % len(REFERENCE_VARIANTS)].crop
    m = found.match
    transforms = [t for t in m.transforms if t != Transform.CROPPED]
    if view.inset:
        if found.inset is None:
            return None
        left, top, right, bottom = found.inset
        region = Region(inside="query", x=left, y=top, w=right - left, h=bottom - top)
        transforms.append(Transform.PICTURE_IN_PICTURE)
        return replace(m, method="region", region=region, transforms=tuple(transforms))
    cut_left, cut_top, cut_right, cut_bottom = (1.0 if k else 0.0 for k in view.window)
    a = max(view.window)
    if ref_crop <= 0.0:
        # The reference's whole picture inside this one's window (cut before mirroring, so in this
        # clip's own coordinates): this clip adds picture around it.
        region = Region(inside="query", x=a * cut_left, y=a * cut_top, w=1.0 - a, h=1.0 - a)
    else:
        kept = ref_crop / a  # share of the reference's sides kept, 1 - c (see frames.CORNER_CUTS)
        c = 1.0 - kept
        left = c * (cut_left if view.mirrored else cut_right)
        region = Region(inside="reference", x=left, y=c * cut_bottom, w=kept, h=kept)
        transforms.insert(1 if Transform.MIRRORED in transforms else 0, Transform.CROPPED)
    return replace(m, method="region", region=region, transforms=tuple(transforms))


@dataclass(frozen=True)
class _StillCandidate:
    """A reference clip close to the query frame after frame, whose lines were all stills."""

    mirrored: bool
    pairs: "_Pairs"


def _placed_stills(query: QueryFrames, library: ReferenceFrames, stills: dict[int, list[_StillCandidate]],
                   best: dict[int, Any], motion_of: MotionLookup | None,
                   query_sha256: str | None) -> Iterator[tuple[int, Match | SceneHint]]:
    """The clips met only by stills and not in `best`, each placed by what moves (a Match) or said to be
    the same scene (a SceneHint); nothing without `motion_of`, nor for a still query but the same still
    picture as a still known clip (_still_picture_hint)."""
    if motion_of is None:
        return
    for clip_id, candidates in stills.items():
        if clip_id in best:
            continue
        placed = _place_by_motion(query, library.clips[clip_id], candidates, motion_of(clip_id),
                                  same_file=library.clips[clip_id].sha256 == query_sha256)
        if placed is not None:
            yield clip_id, placed


def _place_by_motion(query: QueryFrames, clip: ReferenceClip, candidates: list[_StillCandidate],
                     reference_motion: MotionProfile | None, *, same_file: bool) -> Match | SceneHint | None:
    """Static-camera footage: place the query in the reference by what moves, or say it is the same
    scene; when the query itself is a still picture, a hint only if the known clip's pictures are as
    still and as long (_still_picture_hint), else None (a title card, a logo: no evidence)."""
    if query.motion is None or query.motion_rows is None:
        return None
    found: list[tuple[motion.Placement, _StillCandidate]] = []
    moving = False
    for candidate in candidates:
        rows = query.motion_rows[np.unique(candidate.pairs.qidx)]
        if motion.energy(query.motion, rows, mirrored=candidate.mirrored) < motion.MOTION_MIN_ENERGY:
            continue
        moving = True
        if reference_motion is None:
            continue
        placement = motion.place(query.motion, reference_motion, query_rows=rows, mirrored=candidate.mirrored)
        if placement is not None:
            found.append((placement, candidate))
    if not moving:
        return _still_picture_hint(query, clip, candidates, reference_motion)
    long_enough = [c for c in candidates if _spans_a_scene(query, c) and _met_share(c, query) >= SCENE_MIN_SHARE]
    if not found and not long_enough:
        return None  # a title card over moving footage, a shared sting: no evidence of a scene
    closest = min(long_enough or candidates, key=lambda c: float(c.pairs.dist.mean()))
    similarity = _similarity(closest.pairs.dist)
    query_frames = int(np.unique(closest.pairs.qidx).size)
    if not found:
        reason = ("the pictures match frame after frame, but what moves in them does not line up at any "
                  "offset: the same scene or camera, at a moment not established"
                  if reference_motion is not None else
                  "the pictures match frame after frame; the known clip was stored without a motion profile "
                  "(ingest it again to place the moment)")
        return SceneHint(sha256=clip.sha256, similarity=similarity, query_frames=query_frames, reason=reason)
    placement, candidate = max(found, key=lambda f: f[0].correlation)
    line = _inliers(candidate.pairs, placement.speed, placement.offset_s)
    if line is None:
        if not long_enough:
            return None
        return SceneHint(sha256=clip.sha256, similarity=similarity, query_frames=query_frames,
                         reason="what moves lines up, but too few frames sit on that line")
    return _match_from_lines(query, clip, [line], mirrored=candidate.mirrored, same_file=same_file,
                             method="motion", confidence=placement.correlation)


# A same-scene hint needs the query frames that meet the known clip to span at least SCENE_MIN_S, and
# the known clip's frames they meet too: a title card shared by two clips, over footage that moves
# (bench/heldout.py's title_a and its card_only negative: 2.5 s, spans 2.25-2.5 s), was a "same
# scene" on the held-out tune half (matcher version 8), and a logo sting or black is as short. The
# tune half's shortest right hint, a 4-s excerpt sampled at 4 fps, spans 3.73 s; three compilation
# pieces of the same presenter at another moment, 2.5-3.3 s, lose theirs.
SCENE_MIN_S = 3.25


# ... and most of the query's frames to meet it in one orientation: "the pictures match frame after
# frame". On the held-out tune half (matcher version 10, 2026-12-02) footage never in the library (a coin
# and a pen on a table, node-opencv) met a mouse cage's pale floor with 34-53% of its frames and was called
# the same scene; the same cameras at other moments met their clips with 62-100% (a goldfish pond's
# 360p re-encode, 53%, loses its hint: a missed hint is no claim, a wrong one is).
SCENE_MIN_SHARE = 0.6


def _met_share(candidate: _StillCandidate, query: QueryFrames) -> float:
    return float(np.unique(candidate.pairs.qidx).size) / max(1, query.times.size)


def _spans_a_scene(query: QueryFrames, candidate: _StillCandidate) -> bool:
    return (float(np.ptp(query.times[np.unique(candidate.pairs.qidx)])) >= SCENE_MIN_S
            and float(np.ptp(candidate.pairs.tr)) >= SCENE_MIN_S)


# Footage in which nothing moves above MOTION_MIN_ENERGY (a sleeping baby, a face held still, an empty
# room: the held-out tune half's vidmag baby, whose every frame is within 0-2 bits of every other and
# whose breathing stays under the re-encoding noise) cannot be placed by its frames or by what moves,
# and the same camera at another moment looks exactly the same. It is said as what it is, a hint that
# the known clip shows the same still picture, when the still is long in both clips and nothing moves
# in the known clip either; a title card, a logo sting or black shared by two clips (2-2.5 s in
# bench/heldout.py, OPENING_S: shorter than SCENE_MIN_S) and a freeze frame of moving footage stay no
# evidence at all. STILL_SCENE_MIN_SHARE: of the query's usable frames, so that a still lead before
# other footage (a shared logo) is not the query's evidence; the baby's copies and other moments: 1.0.
STILL_SCENE_MIN_SHARE = 0.8


def _still_picture_hint(query: QueryFrames, clip: ReferenceClip, candidates: list[_StillCandidate],
                        reference_motion: MotionProfile | None) -> SceneHint | None:
    """A still query whose frames meet a known clip's still frames all along: the same still picture,
    the moment and even the recording not established; None for a title card, a logo, a freeze frame."""
    if reference_motion is None:
        return None
    for candidate in sorted(candidates, key=lambda c: float(c.pairs.dist.mean())):
        rows = np.unique(candidate.pairs.qidx)
        if rows.size < STILL_SCENE_MIN_SHARE * query.times.size:
            continue
        if not _spans_a_scene(query, candidate):
            continue
        lo, hi = float(candidate.pairs.tr.min()), float(candidate.pairs.tr.max())
        stretch = (reference_motion.times >= lo) & (reference_motion.times <= hi)
        # The stretch on its own: each cell's floor taken over the whole clip would make a still
        # stretch of a clip that moves elsewhere (a logo sting before footage) look as if it moved.
        held = MotionProfile(times=reference_motion.times[stretch], cells=reference_motion.cells[stretch])
        if motion.energy(held) >= motion.MOTION_MIN_ENERGY:
            continue  # a freeze frame of footage that moves: no evidence
        return SceneHint(sha256=clip.sha256, similarity=_similarity(candidate.pairs.dist),
                         query_frames=int(rows.size),
                         reason="the same still picture as the known clip, frame after frame; nothing moves in "
                                "either, so neither the moment nor whether it is the same recording can be "
                                "established (a fixed camera on a still scene looks the same at any time)")
    return None


# A reference clip is a candidate for the local-features look when at least this many query frames
# met it within FRAME_MATCH_MAX_DISTANCE in some view (first or second look). On the held-out tune half
# (bench/heldout.py, 2026-11-30) the insets and kept corners the first two looks missed met their
# reference with 2-40 frames; 2 keeps a single chance pair in a large library from costing a decode.
LOCAL_MIN_MET = 2
# An inset whose border was not found, or a corner cut other than the views', is met by no view within
# FRAME_MATCH_MAX_DISTANCE: for candidates only, the second-look views of this many query frames are
# also compared with every library row within LOCAL_CANDIDATE_DISTANCE bits (held-out tune half and
# tests' insets: 14-16 bits from their reference at the nearest corner view; unrelated footage 18 and
# more, so a few chance rows in a large library, and the keypoints decide). The cost is linear in the
# library: 6 frames x 18 views against 100,000 rows ~10 ms, against 10M rows ~1 s, paid only by
# checks no look settled.
LOCAL_CANDIDATE_FRAMES = 6
# Clips met by the whole-picture views get the third look too, this many (_local_candidates). Decoding
# a candidate's window is most of the look's cost; one keeps a check that no look settled to at most
# LOCAL_MAX_CANDIDATES + 1 windows.
LOCAL_WHOLE_CANDIDATES = 1
LOCAL_CANDIDATE_DISTANCE = 16
# A local-features match needs this much strength (matched frames x similarity), more than
# MIN_MATCH_STRENGTH: its rectangles were chosen to fit, one more hypothesis per candidate, and keypoints
# find the same object at any moment. On the held-out tune half (2026-11-30) a hand-held shot of a
# printed target at another moment, cut to a corner, made a 1.25-s line of strength 3.3 between the
# fitted rectangles; the insets it placed had 31.6 (and the tests' soft-edged inset 34.8). 8 is 2 s of
# frames at similarity 1.
LOCAL_MIN_STRENGTH = 8.0
# Whether the third look may place a line beyond COMMON_SPEEDS. FAR_SPEED_MIN_SIMILARITY was chosen on
# whole pictures of moving film; a keypoint rectangle of a fixed camera is mostly its unchanging
# background, so its frames' closeness tells less about the moment. Matcher version 15 placed the corner
# of another moment of such a camera as a copy slowed to 0.5x (12 frames within 4 bits: tests/
# test_static_camera.py), and neither half's tune queries hold a third-look line beyond those speeds,
# true or false (2026-12-03): slowed crops are left to the other looks.
LOCAL_FAR_SPEEDS = False
# The reason given when what moves inside the third look's rectangles would place a still line
# (_place_local): a hint of the moment, not proof of it (matcher version 15).
LOCAL_MOTION_UNPROVEN = ("what moves inside the two rectangles keypoints chose lines up at one offset, but that "
                         "is not taken as proof of the moment: the same scene, at a moment not established")


@dataclass(frozen=True)
class _Met:
    """How a reference clip was met by the query in a look: candidates for the local-features look."""

    frames: int  # distinct query frames within FRAME_MATCH_MAX_DISTANCE of it
    score: float  # how specifically they met it (meeting_scores): candidates are ranked by it
    ref_t: float  # median reference time of those pairs: where to read the reference
    query_t: float
    mirrored: bool  # met through mirrored views: the keypoints are looked for in the mirrored query


def meeting_scores(group: np.ndarray, frame: np.ndarray, column: np.ndarray, dist: np.ndarray,
                    starts: np.ndarray, radius: int) -> np.ndarray:
    """Per run of equal `group` (a reference clip; runs start at `starts`): how specifically the query
    met it. Each query frame counts once, by its closest pair (1 at 0 bits, falling to 0 past `radius`),
    shared out among the distinct views of it that met the clip: footage sits in one place in a
    picture, so a clip met through many different parts of one frame (a pale or flat clip, met by
    whatever is pale in them) is met by what those parts share, not by its footage."""
    run = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, group.size]))
    n_frames = int(frame.max()) + 1
    cell, inverse = np.unique(run.astype(np.int64) * n_frames + frame, return_inverse=True)
    closest = np.zeros(cell.size)
    np.maximum.at(closest, inverse, 1.0 - dist / (radius + 1.0))
    views = np.bincount(np.unique(np.stack([inverse, column.astype(np.int64)], 1), axis=0)[:, 0], minlength=cell.size)
    return np.bincount(cell // n_frames, weights=closest / views, minlength=starts.size)


def _note_met(met: dict[int, _Met], frames_met: np.ndarray, scores: np.ndarray, starts: np.ndarray,
              ends: np.ndarray, order: np.ndarray, clip_sorted: np.ndarray, tq: np.ndarray, tr: np.ndarray, *,
              mirrored: bool, clips: Mapping[int, ReferenceClip]) -> None:
    """Keep the few clips met most specifically (only those: a large library meets many by chance).
    A clip kept frame by frame where it changes fast (frames.densify) is met by chance as many times
    more often as it keeps frames: its score is divided by that."""
    scores = scores / np.array([_kept_per_sample(clips.get(int(clip_sorted[s]))) for s in starts])
    eligible = np.flatnonzero(frames_met >= LOCAL_MIN_MET)
    for g in eligible[np.argsort(-scores[eligible], kind="stable")][:localfeat.LOCAL_MAX_CANDIDATES]:
        sel = order[starts[g]:ends[g]]
        clip_id = int(clip_sorted[starts[g]])
        found = _Met(int(frames_met[g]), float(scores[g]), float(np.median(tr[sel])), float(np.median(tq[sel])),
                     mirrored)
        if clip_id not in met or found.score > met[clip_id].score:
            met[clip_id] = found


def _kept_per_sample(clip: ReferenceClip | None) -> float:
    """How many frames a clip keeps per sampled frame (1, or more with frames between samples)."""
    if clip is None or clip.duration_s <= 0:
        return 1.0
    return max(1.0, clip.usable_frames / (clip.duration_s * SAMPLE_FPS))


def _widen_candidates(query: QueryFrames, library: ReferenceFrames, met: dict[int, _Met]) -> None:
    """More candidates for the local-features look: a few query frames' second-look views against
    every library row, at LOCAL_CANDIDATE_DISTANCE (see there)."""
    if query.region_hashes is None:
        return
    frames = np.unique(np.linspace(0, query.times.size - 1, LOCAL_CANDIDATE_FRAMES).round().astype(np.int64))
    for mirrored in (False, True):
        columns = [i for i, v in enumerate(SECOND_LOOK_VARIANTS) if v.mirrored == mirrored]
        views = query.region_hashes[np.ix_(frames, columns)]
        qi, ri, dist = pairs_within_brute(views.reshape(-1), library.hashes, LOCAL_CANDIDATE_DISTANCE)
        if qi.size == 0:
            continue
        frame, column = frames[qi // views.shape[1]], qi % views.shape[1]
        clip_of_pair = library.clip_ids[ri]
        order = np.argsort(clip_of_pair, kind="stable")
        clip_sorted = clip_of_pair[order]
        starts = np.flatnonzero(np.r_[True, clip_sorted[1:] != clip_sorted[:-1]])
        ends = np.r_[starts[1:], clip_sorted.size]
        frames_met = _distinct_per_group(clip_sorted, frame[order], starts)
        scores = meeting_scores(clip_sorted, frame[order], column[order], dist[order].astype(np.float64), starts,
                                 LOCAL_CANDIDATE_DISTANCE)
        _note_met(met, frames_met, scores, starts, ends, order, clip_sorted, query.times[frame], library.times[ri],
                  mirrored=mirrored, clips=library.clips)


def _local_candidates(met: dict[int, _Met], whole: dict[int, _Met]) -> dict[int, _Met]:
    """The third look's candidates: the LOCAL_MAX_CANDIDATES clips met most specifically through part
    of the picture only, and the LOCAL_WHOLE_CANDIDATES met most specifically by the whole-picture
    views, which no look placed (this runs only then): a band, a ticker or a fill laid over footage
    that barely moves leaves its pictures close to the clip's but no line settled; keypoints find the
    picture again and its rectangle, hashed without LOCAL_MARGIN of each side, leaves most of a band out.
    The two are counted apart: a clip the whole picture meets by chance (a pale picture behind an
    inset) would otherwise take an inset's place."""
    def top(found: dict[int, _Met], n: int) -> list[tuple[int, _Met]]:
        return sorted(found.items(), key=lambda kv: kv[1].score, reverse=True)[:n]

    chosen = dict(top({c: m for c, m in met.items() if c not in whole}, localfeat.LOCAL_MAX_CANDIDATES))
    for clip_id, m in top(whole, LOCAL_WHOLE_CANDIDATES):
        chosen.setdefault(clip_id, m)
    return chosen


def _local_look(query: QueryFrames, library: ReferenceFrames, met: dict[int, _Met],
                best: dict[int, Match], pictures: localfeat.Pictures,
                query_sha256: str | None) -> tuple[dict[int, Match], list[SceneHint]]:
    """The third look, on the clips the hash index met most: where the reference's picture sits in the
    query's (keypoints), then when (hashes of the two matching rectangles, aligned as in the first look).
    Clips placed, and clips whose rectangle shows the same scene at a moment not established."""
    ranked = sorted(met.items(), key=lambda kv: kv[1].score, reverse=True)
    if not ranked:
        return {}, []
    q0 = 0.0
    if query.duration_s > localfeat.LOCAL_MAX_QUERY_S:
        q0 = max(0.0, ranked[0][1].query_t - localfeat.LOCAL_MAX_QUERY_S / 2)
    query_pictures: localfeat.Frames | None = None
    out: dict[int, Match] = {}
    hints: list[SceneHint] = []
    for clip_id, hit in ranked:
        clip = library.clips[clip_id]
        path = pictures.reference(clip_id)
        if path is None:
            continue
        # The reference around where it was met, as long as the query (a retimed copy a little longer).
        span = min(localfeat.LOCAL_MAX_REFERENCE_S, query.duration_s + 2 * localfeat.LOCAL_REFERENCE_SLACK_S)
        r0 = min(max(0.0, hit.ref_t - (hit.query_t - q0) - localfeat.LOCAL_REFERENCE_SLACK_S),
                 max(0.0, clip.duration_s - span))
        reference = localfeat.read_frames(path, r0, r0 + span, 1.0 / query.step_s)
        if query_pictures is None:
            query_pictures = pictures.read_query(q0, q0 + localfeat.LOCAL_MAX_QUERY_S, 1.0 / query.step_s)
        placement = localfeat.locate(query_pictures, reference, mirrored_first=hit.mirrored)
        if placement is None:
            continue
        found = _place_local(query, clip, query_pictures, reference, placement,
                             same_file=clip.sha256 == query_sha256)
        if isinstance(found, Match):
            out[clip_id] = found
        elif found is not None:
            hints.append(found)
    return out, hints


def _hash_boxes(frames: localfeat.Frames, box: tuple[float, float, float, float], *,
                mirrored: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times and pHashes of the `box` part of each frame, frames too flat to hash left out, and which
    frames were kept."""
    times, thumbs, kept = [], [], []
    for k, (t, grey) in enumerate(frames):
        part = localfeat.crop(grey, box, mirrored=mirrored)
        if min(part.shape) < 8 or float(part.std()) / QUALITY_FULL_STD < MIN_QUALITY:
            continue
        times.append(t)
        kept.append(k)
        thumbs.append(cv2.resize(np.ascontiguousarray(part), (PHASH_INPUT, PHASH_INPUT), interpolation=cv2.INTER_AREA))
    hashes = np.array(phash_many(thumbs) if thumbs else [], dtype=np.uint64)
    return np.array(times, dtype=np.float64), hashes, np.array(kept, dtype=np.int64)


def _box_motion(frames: localfeat.Frames, box: tuple[float, float, float, float]) -> MotionProfile:
    """What moves inside `box` of consecutive frames (read one every query step, as stored profiles are)."""
    track = motion.MotionTrack()
    for t, grey in frames:
        part = localfeat.crop(grey, box)
        track.add(t, part if min(part.shape) >= 8 else None)
    return track.profile()


def _place_local(query: QueryFrames, clip: ReferenceClip, query_pictures: localfeat.Frames,
                 reference: localfeat.Frames, placement: localfeat.KeypointFit, *,
                 same_file: bool) -> Match | SceneHint | None:
    """Place in time the footage a local-features placement located: the query's rectangle (mirrored
    back when it was mirrored) against the reference's, frame by frame, with the first look's rules; when
    every line is a still, at most a SceneHint naming the rectangle (never placed by what moves)."""
    in_query, in_reference = localfeat.inner(placement.in_query), localfeat.inner(placement.in_reference)
    tq, hq, kept = _hash_boxes(query_pictures, in_query, mirrored=placement.mirrored)
    tr, hr, _ = _hash_boxes(reference, in_reference, mirrored=False)
    if tq.size < MIN_MATCHED_FRAMES or tr.size == 0:
        return None
    qi, ri, dist = pairs_within_brute(hq, hr, FRAME_MATCH_MAX_DISTANCE)
    if qi.size == 0:
        return None
    qi, ri = qi.astype(np.int64), ri.astype(np.int64)
    pairs = _Pairs(tq[qi], tr[ri], dist.astype(np.float64), qi, hq[qi], np.zeros(qi.size))
    local = QueryFrames(times=tq, hashes=hq[:, None], letterbox=np.zeros(tq.size), pillarbox=np.zeros(tq.size),
                        duration_s=query.duration_s, step_s=query.step_s)
    # A close line through a fixed camera's pictures must agree in what moves inside the two rectangles,
    # as in the first look (_moves_elsewhere): keypoints find the same scene at any moment.
    # The reference's profile is read only when such a line needs it.
    reference_motion = functools.cache(lambda _clip_id: _box_motion(reference, in_reference))
    query_motion = _box_motion(query_pictures, in_query)
    moves = _Moves(query_motion, kept, clip.clip_id, reference_motion)
    found, still = _align(local, clip, pairs, mirrored=placement.mirrored, same_file=same_file, moves=moves,
                          far_speeds=LOCAL_FAR_SPEEDS)
    region = placement.region()
    if found is None and still is not None:
        # Every line was a still (a fixed camera): as the first look's stills, judged by what moves inside
        # the two rectangles, but said to be the same scene only, the rectangle named. The motion rules
        # (provenance.motion) were chosen on whole pictures and on the fourth look's bordered insets; the
        # held-out tune half holds no keypoint rectangle they place, and on the report half (matcher
        # version 14) they placed a dancer's other moment as a copy inside one: a hint, not proof.
        judged = _place_by_motion(replace(local, motion=query_motion, motion_rows=kept), clip, [still],
                                  reference_motion(clip.clip_id), same_file=same_file)
        if isinstance(judged, Match):
            return SceneHint(sha256=clip.sha256, similarity=judged.similarity, query_frames=judged.matched_frames,
                             reason=f"{LOCAL_MOTION_UNPROVEN}; {_where(region)}")
        if isinstance(judged, SceneHint):
            return replace(judged, reason=f"{judged.reason}; {_where(region)}")
        return None
    if not isinstance(found, Match) or strength(found) < LOCAL_MIN_STRENGTH:
        return None
    transforms = list(found.transforms)
    if region is not None and region.inside == "reference":
        transforms.insert(1 if Transform.MIRRORED in transforms else 0, Transform.CROPPED)
    if placement.inset:
        transforms.append(Transform.PICTURE_IN_PICTURE)
    return replace(found, method="local_features", region=region, transforms=tuple(transforms))


def _where(region: Region | None) -> str:
    """Where keypoints found the known clip's picture, in words."""
    if region is None:
        return "found by keypoints across the whole picture"
    box = f"x {region.x:.0%}, y {region.y:.0%}, {region.w:.0%} wide, {region.h:.0%} high"
    if region.inside == "query":
        return f"found by keypoints inside this clip's picture at {box}"
    return f"found by keypoints: this clip shows the part of the known clip's picture at {box}"


def look_through(query: QueryFrames, library: ReferenceFrames, views: tuple[Variant, ...],
                 query_sha256: str | None, *, motion_of: MotionLookup | None = None) -> dict[int, Match]:
    """The first look's matching, with all its rules, through other pictures of the query's frames
    (provenance.insets: a rectangle of each): `query.hashes` holds one column per view, `views` being
    MATCH_VARIANTS members (marked `inset` or not). The best match per reference clip. A clip met only
    by stills (static-camera footage) is placed by what moves, as in the first look, when `motion_of`
    is given and `query` carries the motion profile of those pictures; a same-scene hint is not kept."""
    pairing = _CROP_OF_PAIRING[[MATCH_VARIANTS.index(replace(v, inset=False)) for v in views]]
    stills: dict[int, list[_StillCandidate]] = {}
    found = _look(query, library, query.hashes, views, pairing, query_sha256, stills, region=False,
                  motion_of=motion_of)
    best = {clip_id: m for clip_id, m in found.items() if isinstance(m, Match)}
    best.update({clip_id: placed for clip_id, placed in _placed_stills(query, library, stills, best, motion_of,
                                                                       query_sha256) if isinstance(placed, Match)})
    return best


def _distinct_per_group(group: np.ndarray, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """How many distinct `values` each run of equal `group` (starting at `starts`) holds."""
    key = np.unique(np.stack([np.repeat(np.arange(starts.size), np.diff(np.r_[starts, group.size])), values], 1),
                    axis=0)
    return np.bincount(key[:, 0], minlength=starts.size)


def candidate_pairs(query_hashes: np.ndarray, library_hashes: np.ndarray,
                    max_distance: int = FRAME_MATCH_MAX_DISTANCE, *, search: Any = None) -> tuple[np.ndarray, ...]:
    """(query frame, library row, distance, query column) of every pair within `max_distance` bits,
    sorted by query frame, then row.

    `query_hashes` is (frames, columns): several views of each query frame. Where several views of
    one frame meet the same library row, the closest is kept (the first column on a tie). `search`
    (ReferenceFrames.search, from provenance.index) finds the pairs without comparing every row;
    without it every row is compared. Both are exact, so the result is the same.
    """
    flat = query_hashes.reshape(-1)
    n_cols = query_hashes.shape[1]
    if search is not None:
        flat_q, r, d = search.pairs_within(flat, max_distance)
    else:
        flat_q, r, d = pairs_within_brute(flat, library_hashes, max_distance)
    d = d.astype(np.float64)
    frame, column = np.divmod(flat_q, n_cols)
    if frame.size == 0:
        return frame, r, d, column
    order = np.lexsort((column, d, r, frame))
    keep = order[np.r_[True, (np.diff(frame[order]) != 0) | (np.diff(r[order]) != 0)]]
    return frame[keep], r[keep], d[keep], column[keep]


@dataclass(frozen=True)
class _Pairs:
    """Candidate (query frame, reference frame) pairs of one reference clip, as parallel arrays."""

    tq: np.ndarray
    tr: np.ndarray
    dist: np.ndarray
    qidx: np.ndarray
    query_hash: np.ndarray  # the query frame's whole-picture hash, to tell stills from footage
    crop: np.ndarray  # the crop of the original each pairing implies

    def subset(self, index: np.ndarray) -> "_Pairs":
        return _Pairs(self.tq[index], self.tr[index], self.dist[index], self.qidx[index], self.query_hash[index],
                      self.crop[index])


@dataclass(frozen=True)
class _Line:
    speed: float
    offset: float
    pairs: _Pairs  # one pair per matched query frame, in query time order

    @property
    def query_t(self) -> np.ndarray:
        return self.pairs.tq

    @property
    def ref_t(self) -> np.ndarray:
        return self.pairs.tr


def _align(query: QueryFrames, clip: ReferenceClip, pairs: _Pairs, *, mirrored: bool,
           same_file: bool, region: bool = False,
           rivals: "_Rivals | None" = None, moves: "_Moves | None" = None,
           far_speeds: bool = True) -> tuple["Match | _RegionMatch | None", _StillCandidate | None]:
    """The lines of frames that place the query in this reference; when every line found was a still
    (the same picture at every offset: a title card, or a static camera), the pairs for a second look.
    `rivals`: the same query frames' pairs with this reference through the other orientation (mirrored
    or not), another explanation of each frame (_ambiguous_share). `moves`: what moves in the query and
    in this reference (_moves_elsewhere). `far_speeds`: whether lines beyond COMMON_SPEEDS may place."""
    lines: list[_Line] = []
    stills = 0
    remaining = np.ones(pairs.tq.size, dtype=bool)
    for _ in range(MAX_LINES_PER_REFERENCE + MAX_STILL_LINES):
        line = _best_line(pairs.subset(np.flatnonzero(remaining)))
        if line is None:
            break
        remaining &= ~np.isin(pairs.qidx, line.pairs.qidx)
        if (_distinct_pictures(line.pairs.query_hash) < MIN_DISTINCT_FRAMES
                or _is_still(line, pairs, rivals, moves, mirrored=mirrored)):
            stills += 1
        elif _strong_enough(line, far_speeds=far_speeds):
            lines.append(line)
        if len(lines) == MAX_LINES_PER_REFERENCE or remaining.sum() < MIN_MATCHED_FRAMES:
            break
    if all(_lone_chance(line) for line in lines):
        lines = []
    if not lines:
        return None, (_StillCandidate(mirrored=mirrored, pairs=pairs) if stills else None)
    if region:
        # The pairing's code rides in `crop`; the crop transform is decided by _as_region instead.
        match = _match_from_lines(query, clip, lines, mirrored=mirrored, same_file=same_file, crop_known=False)
        matched = _concat([line.pairs for line in lines])
        code = int(np.bincount(matched.crop.astype(np.int64)).argmax())
        boxes = query.insets[matched.qidx] if query.insets is not None else np.full((1, 4), np.nan)
        boxes = boxes[~np.isnan(boxes).any(axis=1)]
        inset = tuple(float(v) for v in np.median(boxes, axis=0)) if boxes.size else None
        return (None if match is None else _RegionMatch(match, code, inset)), None  # type: ignore[arg-type]
    return _match_from_lines(query, clip, lines, mirrored=mirrored, same_file=same_file), None


def _match_from_lines(query: QueryFrames, clip: ReferenceClip, lines: list[_Line], *, mirrored: bool,
                      same_file: bool, method: str = "frames", confidence: float | None = None,
                      crop_known: bool = True) -> Match | None:
    segments = sorted((seg for line in lines for seg in _segments(line, query.step_s, query.duration_s, clip.duration_s)),
                      key=lambda s: s.query_start_s)
    if not segments:
        return None
    matched = _concat([line.pairs for line in lines])
    main = max(lines, key=lambda ln: ln.pairs.tq.size)
    query_cov = _union_length([(s.query_start_s, s.query_end_s) for s in segments]) / query.duration_s
    ref_cov = _union_length([(s.reference_start_s, s.reference_end_s) for s in segments]) / max(clip.duration_s, query.step_s)
    similarity = _similarity(matched.dist)
    if matched.tq.size * similarity < MIN_MATCH_STRENGTH:
        return None
    return Match(
        sha256=clip.sha256,
        similarity=similarity,
        query_coverage=round(min(1.0, query_cov), 4),
        reference_coverage=round(min(1.0, ref_cov), 4),
        transforms=_transforms(query, clip, matched, main.speed, ref_cov, mirrored=mirrored, same_file=same_file,
                               crop_known=crop_known),
        segments=tuple(segments),
        matched_frames=int(matched.tq.size),
        offset_s=round(float((main.speed - 1.0) * main.query_t[0] + main.offset), 3),
        speed=round(main.speed, 3),
        method=method,
        confidence=similarity if confidence is None else round(float(confidence), 4),
    )


def _similarity(dist: np.ndarray) -> float:
    return round(float(np.clip(1.0 - dist.mean() / UNRELATED_DISTANCE, 0.0, 1.0)), 4)


@dataclass(frozen=True)
class _Rivals:
    """Pairs of the query's frames with one reference through the other orientation: query frame and
    distance only (where in the reference they fall does not matter, any of them explains the frame)."""

    qidx: np.ndarray
    dist: np.ndarray


def _is_still(line: _Line, pairs: _Pairs, rivals: _Rivals | None = None, moves: "_Moves | None" = None, *,
              mirrored: bool = False) -> bool:
    """A line through frames that match the reference about as well elsewhere places no moment. A close
    line at a common speed counts whatever its ambiguity, unless what moves along it shows another moment
    (_moves_elsewhere; without `moves` its ambiguity is not computed)."""
    close = _is_close(line)
    if close and moves is None:
        return False
    if _ambiguous_share(line, pairs, rivals) < MAX_AMBIGUOUS_SHARE:
        return False
    return not close or _moves_elsewhere(line, moves, mirrored=mirrored)


def _is_close(line: _Line) -> bool:
    """A line whose frames sit within AMBIGUITY_CLOSE_BITS of the reference (median) at a common speed:
    a copy's, or a fixed camera's at another moment, which only what moves along it tells apart."""
    return (float(np.median(line.pairs.dist)) <= AMBIGUITY_CLOSE_BITS
            and COMMON_SPEEDS[0] <= line.speed <= COMMON_SPEEDS[1])


@dataclass(frozen=True)
class _Moves:
    """The query's motion profile, and one reference clip's, read only when a line needs it."""

    query: MotionProfile
    rows: np.ndarray  # per usable query frame, its row in the profile
    clip_id: int
    motion_of: MotionLookup

    def reference(self) -> MotionProfile | None:
        return self.motion_of(self.clip_id)


def _moves_elsewhere(line: _Line, moves: "_Moves | None", *, mirrored: bool) -> bool:
    """Whether what moves in the line's query frames disagrees with what moves in the reference where the
    line puts them: a fixed camera at another moment shows the same picture, so its frames sit as close
    to the reference as a copy's, but its people, cars and hands move elsewhere. A line that cannot be
    judged (nothing moves, too few frames, no reference profile) is not contradicted."""
    reference = moves.reference() if moves is not None else None
    if moves is None or reference is None:
        return False
    rows = moves.rows[line.pairs.qidx]
    if motion.energy(moves.query, rows, mirrored=mirrored) < motion.MOTION_MIN_ENERGY:
        return False
    agreed = motion.agreement(moves.query, reference, query_rows=rows, reference_times=line.pairs.tr,
                              mirrored=mirrored)
    if agreed is None:
        return False
    return (agreed.correlation < LINE_MOTION_MIN_CORRELATION
            or (agreed.peak_z is not None and agreed.peak_z < LINE_MOTION_MIN_Z))


def _ambiguous_share(line: _Line, pairs: _Pairs, rivals: _Rivals | None = None) -> float:
    """The share of the line's frames that match the reference about as well far from the line, or
    through the other orientation: in static-camera footage every frame looks like every other, so a
    line through such frames places nothing (the same camera at another moment makes one just as well).
    The other orientation counts because a scene seen from above or head-on is often near-symmetric:
    a line through the mirrored view of such footage is one more chance line among the plain view's
    (matcher version 10: the held-out tune half's mouse cage, 2026-12-02)."""
    predicted = line.speed * pairs.tq + line.offset
    off_line = np.abs(pairs.tr - predicted) > AMBIGUITY_OFF_LINE_S
    has_rivals = rivals is not None and rivals.qidx.size > 0
    if not off_line.any() and not has_rivals:
        return 0.0
    n_query = int(max(pairs.qidx.max(), line.pairs.qidx.max(), rivals.qidx.max() if has_rivals else 0)) + 1
    best_off = np.full(n_query, np.inf)
    np.minimum.at(best_off, pairs.qidx[off_line], pairs.dist[off_line])
    if has_rivals:
        np.minimum.at(best_off, rivals.qidx, rivals.dist)
    ambiguous = best_off[line.pairs.qidx] <= line.pairs.dist + AMBIGUITY_MARGIN_BITS
    return float(ambiguous.mean())


def _strong_enough(line: _Line, *, far_speeds: bool = True) -> bool:
    """Reposts are retimed by 0.8-1.25x; a line at a speed beyond that (slow motion, double speed) is
    one of many more hypotheses, so it needs closer frames to be believed. A short line whose typical
    frame sits at the edge of the frame threshold is what chance pairs make."""
    if line.pairs.tq.size < WEAK_LINE_MIN_FRAMES and float(np.median(line.pairs.dist)) >= WEAK_LINE_BITS:
        return False
    if COMMON_SPEEDS[0] <= line.speed <= COMMON_SPEEDS[1]:
        return True
    return far_speeds and 1.0 - float(line.pairs.dist.mean()) / UNRELATED_DISTANCE >= FAR_SPEED_MIN_SIMILARITY


def _lone_chance(line: _Line) -> bool:
    """A short line at a distance chance pairs reach: believed beside a line that is neither, not alone."""
    return line.pairs.tq.size < WEAK_LINE_MIN_FRAMES and float(np.median(line.pairs.dist)) >= LONE_LINE_BITS


def _concat(parts: list[_Pairs]) -> _Pairs:
    return _Pairs(*(np.concatenate([getattr(p, name) for p in parts])
                    for name in ("tq", "tr", "dist", "qidx", "query_hash", "crop")))


def _distinct_pictures(hashes: np.ndarray) -> int:
    """How many different pictures a run of frames shows: a still (title card, freeze frame) is one."""
    kept: list[int] = []
    for h in hashes.tolist():
        if all((h ^ k).bit_count() > STILL_MAX_DISTANCE for k in kept):
            kept.append(h)
            if len(kept) >= MIN_DISTINCT_FRAMES:
                break
    return len(kept)


def _best_line(pairs: _Pairs) -> _Line | None:
    tq, tr, dist, qidx = pairs.tq, pairs.tr, pairs.dist, pairs.qidx
    if tq.size == 0 or np.unique(qidx).size < MIN_MATCHED_FRAMES:
        return None
    weight = 1.0 - dist / (FRAME_MATCH_MAX_DISTANCE + 1)
    best_score, best = 0.0, None
    n_query = int(qidx.max()) + 1
    # Try speed 1.0 first so that it wins ties: most reposts are not retimed.
    for speed in sorted(SPEEDS, key=lambda s: abs(s - 1.0)):
        offset = tr - speed * tq
        # Two grids of bins, the second shifted by half a bin, so that a true offset near a bin edge
        # still has all its votes in one bin of one grid.
        for shift in (0.0, OFFSET_BIN_S / 2):
            bins = np.floor((offset + shift) / OFFSET_BIN_S).astype(np.int64)
            lo = int(bins.min())
            # One vote per query frame and bin: a static shot must not vote many times for one offset.
            key = (bins - lo) * n_query + qidx
            order = np.lexsort((-weight, key))
            kept = order[np.r_[True, key[order][1:] != key[order][:-1]]]
            votes = np.bincount(bins[kept] - lo, weights=weight[kept])
            peak = int(votes.argmax())
            if votes[peak] > best_score + 1e-9:
                in_peak = kept[bins[kept] - lo == peak]
                # The median vote, not the bin centre: a bin centre sits up to half a bin off and
                # would make neighbouring frames look as close to the line as the true pairs.
                best_score, best = float(votes[peak]), (speed, float(np.median(offset[in_peak])))
    if best is None:
        return None
    speed, offset = best
    line = _inliers(pairs, speed, offset)
    if line is None:
        return None
    # Refine: least squares on the inliers gives sub-bin offset (and speed over a long enough span).
    if np.ptp(line.query_t) >= 2.0:
        fit_speed, fit_offset = np.polyfit(line.query_t, line.ref_t, 1)
        if abs(fit_speed - 1.0) < SPEED_SNAP:
            fit_speed, fit_offset = 1.0, float(np.median(line.ref_t - line.query_t))
        if SPEEDS[0] - 0.01 <= fit_speed <= SPEEDS[-1] + 0.01:
            refined = _inliers(pairs, float(fit_speed), float(fit_offset))
            if refined is not None and refined.pairs.tq.size >= line.pairs.tq.size:
                line = refined
    else:
        refined = _inliers(pairs, speed, float(np.median(line.ref_t - speed * line.query_t)))
        if refined is not None and refined.pairs.tq.size >= line.pairs.tq.size:
            line = refined
    return line


def _inliers(pairs: _Pairs, speed: float, offset: float) -> _Line | None:
    residual = np.abs(pairs.tr - (speed * pairs.tq + offset))
    on_line = np.flatnonzero(residual <= INLIER_TOLERANCE_S)
    if on_line.size == 0:
        return None
    # One pair per query frame: the closest to the line, then the most similar.
    order = on_line[np.lexsort((pairs.dist[on_line], residual[on_line], pairs.qidx[on_line]))]
    first = np.r_[True, pairs.qidx[order][1:] != pairs.qidx[order][:-1]]
    chosen = order[first]
    if chosen.size < MIN_MATCHED_FRAMES:
        return None
    return _Line(speed=speed, offset=offset, pairs=pairs.subset(chosen[np.argsort(pairs.tq[chosen])]))


def _segments(line: _Line, step: float, query_duration: float, ref_duration: float) -> list[Segment]:
    breaks = np.flatnonzero(np.diff(line.query_t) > SEGMENT_GAP_S) + 1
    out = []
    for part in np.split(np.arange(line.query_t.size), breaks):
        if part.size < 2:
            continue
        q0, q1 = float(line.query_t[part[0]]), min(float(line.query_t[part[-1]]) + step, query_duration)
        r0 = max(0.0, line.speed * q0 + line.offset)
        r1 = min(ref_duration, line.speed * q1 + line.offset)
        out.append(Segment(query_start_s=round(q0, 3), query_end_s=round(q1, 3),
                           reference_start_s=round(r0, 3), reference_end_s=round(max(r0, r1), 3),
                           speed=round(line.speed, 3)))
    return out


def _transforms(query: QueryFrames, clip: ReferenceClip, matched: _Pairs, speed: float, ref_cov: float, *,
                mirrored: bool, same_file: bool, crop_known: bool = True) -> tuple[Transform, ...]:
    """What was done to the reference to make the query, judged on the matched frames only."""
    if same_file:
        return (Transform.IDENTICAL,)
    found = []
    if mirrored:
        found.append(Transform.MIRRORED)
    if crop_known and float(np.median(matched.crop)) >= CROP_MIN:
        found.append(Transform.CROPPED)
    ref_letterbox, ref_pillarbox = _bars(clip.content_box)
    if float(np.median(query.letterbox[matched.qidx])) - ref_letterbox > BOX_CHANGE_MIN:
        found.append(Transform.LETTERBOXED)
    if float(np.median(query.pillarbox[matched.qidx])) - ref_pillarbox > BOX_CHANGE_MIN:
        found.append(Transform.PILLARBOXED)
    if abs(speed - 1.0) > SPEED_CHANGE_MIN:
        found.append(Transform.SPEED_CHANGED)
    if ref_cov < EXCERPT_MAX_COVERAGE:
        found.append(Transform.EXCERPT)
    return tuple(found)


def strength(match: Match) -> float:
    """How much evidence a match holds: matched frames weighted by their similarity (the sort order)."""
    return match.matched_frames * match.similarity


def keep_stronger(best: dict[int, Match], found: Mapping[int, Match]) -> None:
    """Per clip, the stronger of the match kept so far and the one a later look found."""
    for clip_id, m in found.items():
        if clip_id not in best or strength(m) > strength(best[clip_id]):
            best[clip_id] = m


def _union_length(spans: Sequence[tuple[float, float]]) -> float:
    total, end = 0.0, -np.inf
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def matcher_constants() -> dict[str, object]:
    """Every named constant of the matching steps (decode, content, frames, motion, localfeat, insets,
    match), by module: what a stored check needs to be explained or reproduced later. Read from the
    modules themselves, so a constant added there is recorded without being listed here."""
    import sys
    from dataclasses import asdict, is_dataclass

    from . import content, decode, frames, insets

    def plain(value: object) -> object:
        if is_dataclass(value) and not isinstance(value, type):
            return asdict(value)
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value

    out: dict[str, object] = {}
    for module in (decode, content, frames, motion, localfeat, insets, sys.modules[__name__]):
        for name, value in sorted(vars(module).items()):
            if name.isupper() and not name.startswith("_") and isinstance(value, (int, float, str, tuple)):
                out[f"{module.__name__.rsplit('.', 1)[-1]}.{name}"] = plain(value)
    return out
