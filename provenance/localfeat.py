"""Local features: a second look that finds *where* known footage sits in a picture.

Frame pHashes see a whole picture (or a few fixed views of it). When a repost shows the footage in
part of its picture (an inset: picture-in-picture) or shows only part of the footage's picture (a
corner kept), those views are met at 16-20 bits or not at all. Local features (OpenCV ORB keypoints)
do not care where in the picture they are: a few frames of the query and of a candidate reference clip
are matched keypoint by keypoint, and a RANSAC fit of a similarity transform (scale, rotation, shift:
cv2.estimateAffinePartial2D) says where the reference's picture lies in the query's.

The transform then gives the two rectangles that show the same thing: the reference's picture seen in
the query (Rq) and that part of the reference (Rr). Cropped to them, both clips are hashed again, and
the usual alignment (provenance.match) places the footage in time with all its rules (a still proves
nothing, a static camera's frames that fit every moment place nothing). So local features decide only
*where*; *when* is decided as for any other match.

Which reference clips get this look is bounded: at most LOCAL_MAX_CANDIDATES that the hash index met
through part of the picture, and match.LOCAL_WHOLE_CANDIDATES that it met whole, each the ones met most
specifically (match._local_candidates), never the whole library. Keypoints are recomputed from
the evidence copies on demand rather than stored: at 4 frames a second, ORB descriptors would take
about 30 KB a frame, more than the video, for a look that runs on a few clips of a few checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .frames import small_grey
from .records import Region

# Frames for keypoints are shrunk to this long side: a half-size inset of a 1280x720 repost keeps
# 320 px, where ORB still finds hundreds of corners; twice the 256-px hashing size. (On the held-out
# tune half, bench/heldout.py, 2026-11-30, 480 px found the mire-2 insets with 30-200 inliers.)
LOCAL_WORK_SIZE = 480
# ORB keypoints per frame (OpenCV's default). Matching costs grow with the square: at 1000 a pairing
# of two frames cost 50 ms on the shared 2-vCPU bench machine, at 500 about a quarter of that.
LOCAL_FEATURES = 500
# Lowe's ratio test: a keypoint match counts when its best partner is clearly better than the second.
LOCAL_RATIO = 0.8
# Frames tried for the transform: this many query frames, evenly spaced, each against every
# LOCAL_REFERENCE_STRIDE-th frame of the reference window (2 a second: footage that moves, a hand-held
# or aerial shot, looks different half a second away). A pairing of two frames costs ~1.3 ms at 500
# keypoints (match and RANSAC), ORB ~5 ms a frame (2 shared vCPUs).
LOCAL_QUERY_PROBES = 6
LOCAL_REFERENCE_STRIDE = 2
# A transform is believed with at least this many RANSAC inliers (at LOCAL_RANSAC_PX), within the
# scale and rotation below. On the held-out tune half unrelated pairs of frames (tune negatives against
# every library clip) reached at most 11 inliers; insets and kept corners of library footage 30-400.
LOCAL_MIN_INLIERS = 20
LOCAL_RANSAC_PX = 4.0
# A query probe whose best transform has this many inliers settles the search (3x the minimum: no
# chance pairing came near it), sparing the other probes' matching.
LOCAL_SURE_INLIERS = 60
# Scale of the reference's picture in the query's: an inset down to 1/5 of the width, a crop up to 3x.
LOCAL_MIN_SCALE = 0.2
LOCAL_MAX_SCALE = 3.0
# Reposts do not rotate footage (a tilted screen filmed by a phone is another matter, and not placed).
LOCAL_MAX_ROTATION_DEG = 5.0
# Rectangles are compared as shares of the frame: this close to a whole side counts as the whole side.
LOCAL_EDGE_SLACK = 0.04
# The common rectangle must keep at least this share of each side, or there is too little to hash.
LOCAL_MIN_SIDE = 0.2
# The two rectangles are hashed without this share of each side: an inset's border, a soft (faded)
# edge and the transform's last pixel of error sit there. On the tests' soft-edged inset (tests/
# test_localfeat.py) the rectangles' frames were 14 bits apart whole, 6 with 5% cut, 2 with 10%.
LOCAL_MARGIN = 0.1
# Reference frames are read for as long as the query, this much more on each side, from where the
# hash index met them (a query 0.8x slower than the reference spans 25% more of it: an 8-s query
# 2 s more), and never more than LOCAL_MAX_REFERENCE_S. Decoding is most of the look's cost.
LOCAL_REFERENCE_SLACK_S = 2.0
LOCAL_MAX_REFERENCE_S = 30.0
# Query frames are read from at most this much of the query (longer queries: around where met).
LOCAL_MAX_QUERY_S = 90.0
# At most this many reference clips met through part of the picture get the look per check (the cost:
# decoding their windows); match.LOCAL_WHOLE_CANDIDATES more, met by the whole picture.
LOCAL_MAX_CANDIDATES = 2

Frames = list[tuple[float, np.ndarray]]  # (seconds, grey picture at LOCAL_WORK_SIZE)


@dataclass(frozen=True)
class Pictures:
    """Where the pictures of a check come from: the query file, and each reference clip's evidence copy
    (None when it is not on this machine: the look is then skipped for that clip)."""

    query: Path
    reference: Callable[[int], Path | None]
    # The query's frames last read (read_query): the third and fourth looks (provenance.insets) read
    # the same stretch, and decoding it is most of either look's cost.
    _read: dict[tuple[float, float, float], Frames] = field(default_factory=dict, compare=False, repr=False)

    def read_query(self, start_s: float, end_s: float, fps: float) -> Frames:
        """The query's frames as read_frames gives them, decoded once per check."""
        key = (start_s, end_s, fps)
        if key not in self._read:
            self._read.clear()
            self._read[key] = read_frames(self.query, start_s, end_s, fps)
        return self._read[key]


@dataclass(frozen=True)
class KeypointFit:
    """Where the reference's picture sits in the query's, found from keypoints."""

    mirrored: bool
    inliers: int
    scale: float
    # Shares of each frame (left, top, right, bottom): the part of the query showing the reference,
    # and the part of the reference shown.
    in_query: tuple[float, float, float, float]
    in_reference: tuple[float, float, float, float]

    def region(self) -> Region | None:
        """The rectangle to report: the inset in the query, or the part of the reference kept."""
        qw, qh = self.in_query[2] - self.in_query[0], self.in_query[3] - self.in_query[1]
        rw, rh = self.in_reference[2] - self.in_reference[0], self.in_reference[3] - self.in_reference[1]
        if qw < 1.0 - LOCAL_EDGE_SLACK or qh < 1.0 - LOCAL_EDGE_SLACK:
            return Region(inside="query", x=round(self.in_query[0], 4), y=round(self.in_query[1], 4),
                          w=round(qw, 4), h=round(qh, 4))
        if rw < 1.0 - LOCAL_EDGE_SLACK or rh < 1.0 - LOCAL_EDGE_SLACK:
            return Region(inside="reference", x=round(self.in_reference[0], 4), y=round(self.in_reference[1], 4),
                          w=round(rw, 4), h=round(rh, 4))
        return None

    @property
    def inset(self) -> bool:
        """Picture-in-picture: the reference fills neither the query's width nor its height (bars or a
        fill span one of them)."""
        qw, qh = self.in_query[2] - self.in_query[0], self.in_query[3] - self.in_query[1]
        return qw < 1.0 - LOCAL_EDGE_SLACK and qh < 1.0 - LOCAL_EDGE_SLACK


def read_frames(path: Path, start_s: float, end_s: float, fps: float) -> Frames:
    """Grey frames of `path` between `start_s` and `end_s`, one every 1/fps s, shrunk to LOCAL_WORK_SIZE."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        return []
    out: Frames = []
    try:
        if start_s > 0:
            cap.set(cv2.CAP_PROP_POS_MSEC, start_s * 1000.0)
        next_t = start_s
        while cap.grab():
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if t > end_s:
                break
            if t + 1e-6 < next_t - 0.5 / fps:
                continue
            ok, image = cap.retrieve()
            if not ok or image is None:
                continue
            out.append((t, small_grey(image, LOCAL_WORK_SIZE)))
            while next_t - 0.5 / fps <= t + 1e-6:
                next_t += 1.0 / fps
    finally:
        cap.release()
    return out


@dataclass(frozen=True)
class _Keypoints:
    points: np.ndarray  # (n, 2) float32, pixels
    descriptors: np.ndarray | None
    size: tuple[int, int]  # width, height


def _keypoints(grey: np.ndarray, orb: cv2.ORB) -> _Keypoints:
    kps, desc = orb.detectAndCompute(grey, None)
    points = np.array([k.pt for k in kps], dtype=np.float32).reshape(-1, 2)
    return _Keypoints(points, desc, (grey.shape[1], grey.shape[0]))


def _probes(frames: Frames, n: int) -> Frames:
    if len(frames) <= n:
        return frames
    return [frames[int(i)] for i in np.linspace(0, len(frames) - 1, n).round()]


def locate(query: Frames, reference: Frames, *, mirrored_first: bool = False) -> KeypointFit | None:
    """Where the reference's picture sits in the query's, or in the mirrored query's (tried first with
    `mirrored_first`, the other way only when the first finds none): the transform with the most
    RANSAC inliers over every pairing of probe frames, if it is believable."""
    if not query or not reference:
        return None
    orb = cv2.ORB_create(nfeatures=LOCAL_FEATURES)
    refs = [_keypoints(g, orb) for _, g in reference[::LOCAL_REFERENCE_STRIDE]]
    refs = [r for r in refs if r.descriptors is not None and len(r.points) >= LOCAL_MIN_INLIERS]
    for mirrored in (mirrored_first, not mirrored_first) if refs else ():
        found = _locate(query, refs, orb, mirrored=mirrored)
        if found is not None:
            return found
    return None


def _locate(query: Frames, refs: list[_Keypoints], orb: cv2.ORB, *, mirrored: bool) -> KeypointFit | None:
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    best: KeypointFit | None = None
    for _, grey in _probes(query, LOCAL_QUERY_PROBES):
        q = _keypoints(grey[:, ::-1].copy() if mirrored else grey, orb)
        if q.descriptors is None or len(q.points) < LOCAL_MIN_INLIERS:
            continue
        for r in refs:
            found = _fit(q, r, matcher, mirrored=mirrored)
            if found is not None and (best is None or found.inliers > best.inliers):
                best = found
        if best is not None and best.inliers >= LOCAL_SURE_INLIERS:
            break
    return best


def _fit(q: _Keypoints, r: _Keypoints, matcher: cv2.BFMatcher, *, mirrored: bool) -> KeypointFit | None:
    pairs = matcher.knnMatch(r.descriptors, q.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < LOCAL_RATIO * p[1].distance]
    if len(good) < LOCAL_MIN_INLIERS:
        return None
    src = r.points[[m.queryIdx for m in good]]
    dst = q.points[[m.trainIdx for m in good]]
    transform, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                  ransacReprojThreshold=LOCAL_RANSAC_PX)
    if transform is None or mask is None:
        return None
    inliers = int(mask.sum())
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    rotation = float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0])))
    if (inliers < LOCAL_MIN_INLIERS or not LOCAL_MIN_SCALE <= scale <= LOCAL_MAX_SCALE
            or abs(rotation) > LOCAL_MAX_ROTATION_DEG):
        return None
    rw, rh = r.size
    qw, qh = q.size
    corners = np.array([[0, 0], [rw, 0], [0, rh], [rw, rh]], dtype=np.float64)
    projected = corners @ transform[:, :2].T + transform[:, 2]
    ql, qt = max(0.0, projected[:, 0].min()), max(0.0, projected[:, 1].min())
    qr, qb = min(float(qw), projected[:, 0].max()), min(float(qh), projected[:, 1].max())
    if qr - ql < LOCAL_MIN_SIDE * qw or qb - qt < LOCAL_MIN_SIDE * qh:
        return None
    inverse = cv2.invertAffineTransform(transform)
    back = np.array([[ql, qt], [qr, qb]]) @ inverse[:, :2].T + inverse[:, 2]
    rl, rt = max(0.0, back[:, 0].min()), max(0.0, back[:, 1].min())
    rr, rb = min(float(rw), back[:, 0].max()), min(float(rh), back[:, 1].max())
    if rr - rl < LOCAL_MIN_SIDE * rw or rb - rt < LOCAL_MIN_SIDE * rh:
        return None
    in_query = (ql / qw, qt / qh, qr / qw, qb / qh)
    if mirrored:  # found on the mirrored query: back to the query's own left and right
        in_query = (1.0 - in_query[2], in_query[1], 1.0 - in_query[0], in_query[3])
    in_reference = (rl / rw, rt / rh, rr / rw, rb / rh)
    return KeypointFit(mirrored=mirrored, inliers=inliers, scale=round(scale, 4), in_query=_rounded(in_query),
                     in_reference=_rounded(in_reference))


def _rounded(box: tuple[float, ...]) -> tuple[float, float, float, float]:
    left, top, right, bottom = (round(float(v), 4) for v in box)
    return left, top, right, bottom


def crop(grey: np.ndarray, box: tuple[float, float, float, float], *, mirrored: bool = False) -> np.ndarray:
    """The part of a picture inside `box` (shares: left, top, right, bottom), mirrored if asked."""
    h, w = grey.shape
    part = grey[round(box[1] * h):round(box[3] * h), round(box[0] * w):round(box[2] * w)]
    return part[:, ::-1] if mirrored else part


def inner(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """`box` without LOCAL_MARGIN of each side (the same part of the picture on both sides of a
    similarity transform)."""
    w, h = box[2] - box[0], box[3] - box[1]
    return (box[0] + LOCAL_MARGIN * w, box[1] + LOCAL_MARGIN * h, box[2] - LOCAL_MARGIN * w, box[3] - LOCAL_MARGIN * h)
