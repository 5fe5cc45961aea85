"""Shots and keyframes: where the picture cuts to another shot, found on the frames the hash step
decodes anyway (no second decode), and one representative frame per shot for reverse image search.

A cut is a jump in the colour histogram between two sampled frames. Histograms, not pHashes: a pHash
moves 20+ bits within one shot of fast hand-held footage, while the colours of a shot stay put.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Bhattacharyya distance between the HSV histograms (8x4x4 bins over every n-th pixel, ~64 across) of two frames
# 1/4 s apart above which the picture cut to another shot. Measured on the samples and the held-out
# clips (bench/data): within one shot, the largest distance was 0.19 (an animated title), 0.15 for
# hand-held footage, 0.06 for a slowly turning globe; the Big Buck Bunny trailer's cuts are 0.6-0.96.
# Reverse image search only needs a frame per shot, so a missed soft cut costs one keyframe, nothing else.
SHOT_CUT_MIN_DISTANCE = 0.35
# A "shot" shorter than this is a fade, a flash or a fast transition: it joins the shot after it.
MIN_SHOT_S = 1.0
# More keyframes than this for one clip (a long compilation): the longest shots are kept.
MAX_KEYFRAMES = 40
_HIST_SIDE = 64


@dataclass(frozen=True)
class Shot:
    start_s: float
    end_s: float
    keyframe_s: float  # the sharpest sampled frame of the shot: the one to search for


class ShotTracker:
    """Fed every sampled frame in time order (frames.fingerprint), gives the clip's shots."""

    def __init__(self) -> None:
        self._times: list[float] = []
        self._cut_before: list[bool] = []
        self._sharpness: list[float] = []
        self._previous: np.ndarray | None = None

    def add(self, t: float, image: np.ndarray, grey: np.ndarray) -> None:
        """`image`: the decoded BGR frame; `grey`: its small grey copy (frames.small_grey)."""
        hist = _histogram(image)
        cut = (self._previous is not None
               and cv2.compareHist(self._previous, hist, cv2.HISTCMP_BHATTACHARYYA) > SHOT_CUT_MIN_DISTANCE)
        self._previous = hist
        self._times.append(t)
        self._cut_before.append(bool(cut))
        # Spread of the Laplacian: high for a sharp, detailed frame, low for motion blur or a fade.
        self._sharpness.append(float(cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S))[1][0, 0]) if grey.size else 0.0)

    def shots(self, end_s: float) -> tuple[Shot, ...]:
        """The shots found, `end_s` being where the clip's decoded footage ends."""
        n = len(self._times)
        if not n:
            return ()
        stops = self._times[1:] + [max(end_s, self._times[-1])]  # where each sampled frame's time ends
        starts = [0] + [i for i in range(1, n) if self._cut_before[i]]
        pieces = list(zip(starts, starts[1:] + [n], strict=True))  # [first frame, after the last frame)
        merged: list[tuple[int, int]] = []
        for a, b in pieces:
            if merged and stops[merged[-1][1] - 1] - self._times[merged[-1][0]] < MIN_SHOT_S:
                merged[-1] = (merged[-1][0], b)  # the one before was too short: it joins this one
            else:
                merged.append((a, b))
        if len(merged) > 1 and stops[merged[-1][1] - 1] - self._times[merged[-1][0]] < MIN_SHOT_S:
            merged[-2:] = [(merged[-2][0], merged[-1][1])]  # a short last piece joins the shot before it
        shots = [Shot(start_s=self._times[a], end_s=stops[b - 1],
                      keyframe_s=self._times[max(range(a, b), key=lambda i: self._sharpness[i])])
                 for a, b in merged]
        if len(shots) > MAX_KEYFRAMES:
            longest = sorted(shots, key=lambda s: s.end_s - s.start_s, reverse=True)[:MAX_KEYFRAMES]
            shots = sorted(longest, key=lambda s: s.start_s)
        return tuple(shots)


def _histogram(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    # Every n-th pixel, not an area shrink: a histogram needs a sample of the colours, not a
    # smooth picture, and shrinking a 720p frame would cost more than the rest of this step.
    step = max(1, max(image.shape[0], image.shape[1]) // _HIST_SIDE)
    small = np.ascontiguousarray(image[::step, ::step])
    hist = cv2.calcHist([cv2.cvtColor(small, cv2.COLOR_BGR2HSV)], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, hist).flatten()
