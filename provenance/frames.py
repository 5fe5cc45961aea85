"""Sample and hash step: frames at a fixed rate (provenance.decode), bars and fills cut off, a quality score and pHashes."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import median

import cv2
import numpy as np

from . import decode, motion
from .content import content_box, fill_box, inset_box
from .errors import MediaError
from .records import ContentBox, Fingerprint, FrameHash
from .shots import ShotTracker

log = logging.getLogger("provenance.frames")

# 4 frames a second: at most 1/8 s between a query frame and the nearest reference frame whatever the
# sampling phase (1 fps on both sides can be 0.5 s apart, a known cause of missed matches), while a
# library of 100,000 hashes still holds hours of footage.
SAMPLE_FPS = 4.0

# Frames are shrunk before bar detection and hashing: pHash looks at a 32x32 thumbnail anyway, and
# 256 px keeps bar edges to within 0.4% of the frame.
WORK_SIZE = 256

# imagehash's pHash: 8x8 low frequencies of the DCT of a 32x32 thumbnail (hash_size 8, highfreq_factor 4).
PHASH_INPUT = 32

# Fills and bands are judged over stretches of this many sampled frames (8 s): long enough to see what
# moves, short enough to follow a compilation whose pieces are framed differently.
FILL_WINDOW_FRAMES = 32

# Quality 0..1 from the grey-level spread of the content area: std 64 counts as fully textured.
# Below MIN_QUALITY (std < 4.5: black, white, flat colour, the last frames of a fade) a frame's pHash
# is noise and never counts as evidence. The samples' real frames sit at std 25..70, black frames at
# 0..3; a fixed camera over a pale tank (held-out tune clip idtrackerai_test_A) at 6.9..7.6, which the
# earlier limit (std 9.6) threw away whole. A faded or low-contrast picture hashes like itself at full
# contrast (pHash compares DCT terms with their median), so such frames are evidence like any other.
QUALITY_FULL_STD = 64.0
MIN_QUALITY = 0.07
# A content area below this share of the frame (after bars are cut) is too small to hash.
MIN_CONTENT_SHARE = 0.05


@dataclass(frozen=True)
class Variant:
    """One way of looking at a frame: a centre crop (share cut off each side), a mirror image, and
    `raw`: the frame with black bars cut but fills and bands left in (in case they were not fills);
    `window`: shares cut off (left, top, right, bottom) before all that, for an off-centre view."""

    crop: float = 0.0
    mirrored: bool = False
    raw: bool = False
    window: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    inset: bool = False  # the picture-in-picture inset found in the frame (content.inset_box), if any


# pHash moves ~6 bits when the picture is cropped 2.5% more per side, ~10-14 bits at 5% (median / 90th
# percentile over 40 frames of the Big Buck Bunny film; unrelated frames sit at 18 and above). So a repost
# cropped 5-20% per side is met half-way: the library keeps each frame whole and cut by 10% and 20% per
# side, and the query adds its own frame cut by 5.6% more (5% of the original for a 5% crop), so that every
# crop from 0 to 20% per side is within 2.5% of one (query, reference) pairing.
REFERENCE_VARIANTS = (Variant(), Variant(crop=0.10), Variant(crop=0.20))
QUERY_ZOOM = 0.0556
# What the query is matched with: whole and zoomed, each also mirrored; and the raw frame, for a
# caption band laid over the picture, which cutting would only make worse.
# And the query's centre cut by 20% per side, plain and mirrored: a logo, a watermark or a caption laid
# over the edge of the picture (where reposts put them) is cut away, and meets the reference's own 20%
# view. On a pale fixed-camera picture (held-out tune clip idtrackerai_test_A) a logo near the edge
# moved the whole picture's hash by 16-24 bits, the 20% views by 0-2.
MATCH_VARIANTS = (Variant(), Variant(crop=QUERY_ZOOM), Variant(mirrored=True), Variant(crop=QUERY_ZOOM, mirrored=True),
                  Variant(raw=True), Variant(raw=True, mirrored=True), Variant(crop=0.20),
                  Variant(crop=0.20, mirrored=True))
# Off-centre crops (a corner kept, the picture cut from two sides): the query then holds the reference's
# centre-cropped view off its own centre. A repost keeping the top-left (1-c) x (1-c) of the picture
# shows the reference's view cut by r per side at [r/(1-c), 1] of its own width and height; for c = r
# that is the query cut by r/(1-r) from its left and top. So the query is also looked at cut by
# 0.111 (c = r = 10%) and 0.25 (c = r = 20%) from two sides meeting at each corner, plain and mirrored:
# crops of 5-25% from two sides are within ~2.5% of one of them. Used in the second look only
# (match.find_evidence), when the whole picture found nothing.
CORNER_CUTS = (0.111, 0.25)
_CORNERS = ((1, 1, 0, 0), (0, 1, 1, 0), (1, 0, 0, 1), (0, 0, 1, 1))  # which sides are cut
REGION_VARIANTS = tuple(Variant(mirrored=m, window=tuple(a * k for k in sides))  # type: ignore[misc]
                        for m in (False, True) for a in CORNER_CUTS for sides in _CORNERS)
# Picture-in-picture: the inset found over a stretch of frames, hashed plain and mirrored (a frame
# without one gets hash 0, which no pHash comes near: a pHash has as many bits set as not, +-few).
INSET_VARIANTS = (Variant(inset=True), Variant(inset=True, mirrored=True))
SECOND_LOOK_VARIANTS = REGION_VARIANTS + INSET_VARIANTS
# The query side hashes the reference variants too, so that a checked clip joins the library as it is.
QUERY_VARIANTS = (REFERENCE_VARIANTS + tuple(v for v in MATCH_VARIANTS if v not in REFERENCE_VARIANTS)
                  + SECOND_LOOK_VARIANTS)
# What fingerprint(query=True) hashes at once: all but the second look's views, which come last in
# QUERY_VARIANTS and are hashed only if that look runs (SecondLook). Most checks never need them: a
# plain copy, a centre crop or a mirror settles the first look (match.SECOND_LOOK_COVERAGE), and they
# were two thirds of a query's views, about half its hashing CPU (bench/README.md, "speed3").
_FIRST_QUERY_VARIANTS = QUERY_VARIANTS[:len(QUERY_VARIANTS) - len(SECOND_LOOK_VARIANTS)]
# The small grey frames kept for the second look, at most (a 256x144 frame is 36 KB: ~7 minutes of
# a 16:9 clip at SAMPLE_FPS); past it, the rest of a long clip's second-look views are hashed at once,
# as all of them were before, so memory stays bounded whatever the clip's length.
_SECOND_LOOK_KEEP_BYTES = 64 * 2 ** 20

# Footage that changes faster than SAMPLE_FPS follows: two samples further apart than FAST_STEP_BITS
# leave the frames between them ~8+ bits from both, and a repost cut at another instant is sampled
# there, so an edit's own 4-6 bits take it past match.FRAME_MATCH_MAX_DISTANCE. Rippling water (the
# held-out tune clip shady_fish_pond) differs by 8-12 bits from one video frame to the next and by a
# median 24 between samples: a re-encode cut 0.1 s in sampled 12-22 bits from the nearest stored frame
# and 0-2 from the nearest video frame. So where two steps running are further apart than
# FAST_STEP_BITS, the library keeps the frames between too (a single far step is a cut: the frames
# between belong to one shot or the other, each close to its side's sample). On the tune half's other
# clips 0-13% of steps are so marked, on the 10-minute Big Buck Bunny film 9%; on the goldfish 97%.
FAST_STEP_BITS = 16
# The frames between are kept at most this often (every frame of 25- and 30-fps footage).
BETWEEN_FPS = 30.0

# A file whose frames stop this far before its stated duration is truncated (a broken download).
TRUNCATION_TOLERANCE_S = 1.0
TRUNCATION_MIN_SHARE = 0.8

ProgressFn = Callable[[str, float | None], None]
HashedFn = Callable[[list[FrameHash]], None]
FULL_FRAME = ContentBox()


def fingerprint(path: Path, *, duration_s: float | None = None, query: bool = False,
                sample_fps: float = SAMPLE_FPS, progress: ProgressFn | None = None,
                overlap: bool = True, hashed: HashedFn | None = None,
                keep_bytes: int = _SECOND_LOOK_KEEP_BYTES) -> Fingerprint:
    """Sample frames at `sample_fps`, cut off bars and fills, score and pHash each frame.

    Each frame is hashed in the variants of REFERENCE_VARIANTS, or with `query` of QUERY_VARIANTS
    (which include the mirror image, so a mirrored repost still matches): the second look's views
    (SECOND_LOOK_VARIANTS) then not in FrameHash.variants but in the fingerprint's `second_look`
    (SecondLook), hashed when the matcher asks, from up to `keep_bytes` of small grey frames kept
    (0: all hashed at once). With `overlap` the sampled frames are shrunk and hashed on a thread of
    their own while the decoder goes on (the same hashes, in the same order: tests/test_frames.py);
    without it, in between two decoded frames. `hashed` is called with each stretch of frames as
    soon as they are hashed (on the hashing thread).
    """
    def decode_and_hash(opencv: bool) -> tuple[float, list[FrameHash], motion.MotionTrack, ShotTracker,
                                                SecondLook | None]:
        second_look = SecondLook(keep_bytes) if query else None
        hasher = _Hasher(_FIRST_QUERY_VARIANTS if query else REFERENCE_VARIANTS, overlap=overlap, hashed=hashed,
                         second_look=second_look)
        try:
            last_t = decode.sample(Path(path), sample_fps, hasher.add, progress=progress, duration_s=duration_s,
                                   opencv=opencv)
            return (last_t, *hasher.finish(), second_look)
        finally:
            hasher.close()

    try:
        last_t, frames, moves, cuts, second_look = decode_and_hash(opencv=False)
    except decode.OpenCVNeeded:
        # What was hashed so far is dropped; what `hashed` was given stays valid (frames of this file).
        last_t, frames, moves, cuts, second_look = decode_and_hash(opencv=True)

    if not frames:
        raise MediaError(f"no frames could be decoded from {path.name}; the file is damaged or not a video")
    boxes = [f.box for f in frames if f.quality >= MIN_QUALITY and f.box is not None]
    fp = Fingerprint(sample_fps=sample_fps, frames=tuple(frames), content_box=_median_box(boxes),
                     decoded_duration_s=max(last_t, 0.0), motion=moves.profile(),
                     shots=cuts.shots(end_s=max(last_t, 0.0) + 1.0 / sample_fps), second_look=second_look)
    if duration_s:
        require_whole(fp, duration_s=duration_s, name=Path(path).name)
    return fp


def fast_stretches(frames: Sequence[FrameHash], *, sample_fps: float = SAMPLE_FPS) -> tuple[tuple[float, float], ...]:
    """The stretches (start, end seconds) between samples where the footage changes faster than the
    sampling follows: two or more steps running of more than FAST_STEP_BITS."""
    usable = [f for f in frames if f.quality >= MIN_QUALITY]
    steps = [(a.t, b.t) for a, b in zip(usable, usable[1:])
             if (a.phash ^ b.phash).bit_count() > FAST_STEP_BITS and b.t - a.t <= 1.5 / sample_fps]
    runs: list[tuple[float, float, int]] = []  # start, end, steps
    for start, end in steps:
        if runs and abs(runs[-1][1] - start) < 1e-6:
            runs[-1] = (runs[-1][0], end, runs[-1][2] + 1)
        else:
            runs.append((start, end, 1))
    return tuple((start, end) for start, end, count in runs if count >= 2)


# The progress stage of densify's decode (a second pass over the file, shown as such).
BETWEEN_STAGE = "hash (fast footage, frame by frame)"


def densify(path: Path, fp: Fingerprint, *, progress: ProgressFn | None = None) -> Fingerprint:
    """`fp` with the frames between its samples where the footage changes faster than the sampling
    (fast_stretches), hashed as a reference's frames are: one more decode of the file, only for such
    footage. What the library keeps of a clip, so that a copy cut at any instant meets a stored frame."""
    stretches = fast_stretches(fp.frames, sample_fps=fp.sample_fps)
    if not stretches:
        return fp
    sampled = [f for f in fp.frames if f.quality >= MIN_QUALITY]
    sampled_t = np.array([f.t for f in sampled])
    between: list[FrameHash] = []

    def take(t: float, image: np.ndarray) -> None:
        after = int(np.searchsorted(sampled_t, t))
        nearest = min((i for i in (after - 1, after) if 0 <= i < sampled_t.size), key=lambda i: abs(sampled_t[i] - t))
        if abs(sampled_t[nearest] - t) < 1e-6:
            return  # a sampled frame: hashed already
        # The nearest sample's picture area (its fill and bars), so both are hashed over the same part.
        between.append(hash_frame(image, t, variants=REFERENCE_VARIANTS, fill=sampled[nearest].box or FULL_FRAME))

    shown = (lambda _stage, fraction: progress(BETWEEN_STAGE, fraction)) if progress else None
    try:
        decode.sample(Path(path), BETWEEN_FPS, take, within=stretches, progress=shown)
    except decode.OpenCVNeeded:
        between.clear()
        decode.sample(Path(path), BETWEEN_FPS, take, within=stretches, opencv=True, progress=shown)
    return replace(fp, between=tuple(between))


def require_whole(fp: Fingerprint, *, duration_s: float, name: str) -> None:
    """A file whose frames stop well before its stated duration is a broken download (MediaError)."""
    last_t = fp.decoded_duration_s
    if last_t < TRUNCATION_MIN_SHARE * duration_s - TRUNCATION_TOLERANCE_S:
        raise MediaError(f"truncated video: {name} decodes to {last_t:.1f} s of its stated {duration_s:.1f} s;"
                         " download it again")


# Sampled frames waiting for the hashing thread at most: the decoder runs ahead by this much (2 s of
# 720p frames, ~22 MB), not by a whole film when hashing is the slower of the two.
_FRAMES_IN_FLIGHT = 8


class _Hasher:
    """Sampled frames shrunk, gathered into stretches of FILL_WINDOW_FRAMES and hashed, one at a time
    and in order, on one worker thread (or at once without `overlap`). The decoder releases the GIL,
    and so do OpenCV's and numpy's inner loops: on 2 cores the hashing then costs the check little
    wall time beyond the decode (bench/README.md, "Index on disk and start-up")."""

    def __init__(self, variants: tuple[Variant, ...], *, overlap: bool, hashed: HashedFn | None,
                 second_look: "SecondLook | None" = None) -> None:
        self.variants = variants
        self.hashed = hashed
        self.second_look = second_look
        self.frames: list[FrameHash] = []
        self.moves = motion.MotionTrack()
        self.cuts = ShotTracker()
        self.window: list[tuple[float, np.ndarray]] = []
        self.fill = FULL_FRAME
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="provenance-hash") if overlap else None
        self.pending: deque[Future[None]] = deque()

    def add(self, t: float, image: np.ndarray) -> None:
        self._run(self._add, t, image)

    def finish(self) -> tuple[list[FrameHash], motion.MotionTrack, ShotTracker]:
        self._run(self._flush)
        while self.pending:
            self.pending.popleft().result()
        return self.frames, self.moves, self.cuts

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, fn: Callable[..., None], *args: object) -> None:
        if self.pool is None:
            fn(*args)
            return
        self.pending.append(self.pool.submit(fn, *args))
        while len(self.pending) > _FRAMES_IN_FLIGHT or (self.pending and self.pending[0].done()):
            self.pending.popleft().result()  # a hashing error stops the decode here

    def _add(self, t: float, image: np.ndarray) -> None:
        grey = small_grey(image)
        self.cuts.add(t, image, grey)
        if self.window and (len(self.window) >= FILL_WINDOW_FRAMES or grey.shape != self.window[0][1].shape):
            self._flush()
        self.window.append((t, grey))

    def _flush(self) -> None:
        if self.window:
            done = len(self.frames)
            self.fill = _hash_window(self.window, self.frames, self.variants, self.fill, self.moves)
            if self.second_look is not None:
                self.second_look.add(self.window, self.frames[done:])
            self.window = []
            if self.hashed is not None:
                self.hashed(self.frames[done:])


def _hash_window(window: list[tuple[float, np.ndarray]], out: list[FrameHash], variants: tuple[Variant, ...],
                 previous_fill: ContentBox, moves: motion.MotionTrack) -> ContentBox:
    """Hash a stretch of frames with the fill found in it (a short tail keeps the previous stretch's),
    and follow what moves inside the picture."""
    greys = [g for _, g in window]
    fill = fill_box(greys) if len(window) >= FILL_WINDOW_FRAMES // 4 else previous_fill
    inset = inset_box(greys) if any(v.inset for v in variants) else None
    hashed = [hash_frame(g, t, variants=variants, fill=fill, inset=inset) for t, g in window]
    out.extend(hashed)
    # One box for the stretch, so that the differences compare the same part of the picture.
    boxes = [h.box for h in hashed if h.quality >= MIN_QUALITY and h.box is not None]
    box = _median_box(boxes) if boxes else fill
    for t, grey in window:
        picture = _cut(grey, box)
        moves.add(t, picture if min(picture.shape) >= 8 else grey)
    return fill


def small_grey(image: np.ndarray, size: int = WORK_SIZE) -> np.ndarray:
    """The picture in grey, shrunk (never enlarged) to `size` pixels on its long side."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    h, w = grey.shape
    scale = size / max(h, w)
    if scale < 1.0:
        grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return grey


def hash_frame(image: np.ndarray, t: float, *, variants: tuple[Variant, ...] = (Variant(),),
               fill: ContentBox = FULL_FRAME, inset: ContentBox | None = None) -> FrameHash:
    """Hash one frame: `phash` of its content (inside `fill`, then inside black bars), and
    `variants[1:]` in FrameHash.variants."""
    grey = small_grey(image)
    framed = _cut(grey, fill)
    bars = content_box(framed)
    box = _within(fill, bars)
    content = _hashable_content(grey, box)
    if content is None:
        return FrameHash(t=t, phash=0, quality=0.0, variants=(0,) * (len(variants) - 1), box=box)
    quality = min(1.0, float(content.std()) / QUALITY_FULL_STD)
    # Without a fill, the raw view (black bars cut, nothing else) is the content itself: the same
    # box of the same pixels, so not looked for again.
    raw = content if fill == FULL_FRAME else None
    hashes, inset_found = _hash_views(grey, content, variants, inset, raw=raw)
    return FrameHash(t=t, phash=hashes[0], quality=quality, variants=tuple(hashes[1:]), box=box, inset=inset_found)


def _hashable_content(grey: np.ndarray, box: ContentBox) -> np.ndarray | None:
    """The picture inside `box`, or None when too little of the frame is left to hash."""
    content = _cut(grey, box)
    if content.size < MIN_CONTENT_SHARE * grey.size or min(content.shape) < 8:
        return None
    return content


def _hash_views(grey: np.ndarray, content: np.ndarray, variants: tuple[Variant, ...],
                inset: ContentBox | None, *, raw: np.ndarray | None = None) -> tuple[list[int], ContentBox | None]:
    """The pHash of each of `variants` of a frame (0 for an inset view without an inset), and the
    inset when one was hashed. `raw`: the frame with only its black bars cut, when known."""
    if raw is None and any(v.raw for v in variants):
        raw = _cut(grey, content_box(grey))
    inset_view = inset_picture(grey, inset) if inset is not None else None
    pictures = [raw if v.raw else inset_view if v.inset else content for v in variants]
    # Every view (3 stored ones; up to 24 for a query) is hashed in one batch: imagehash's pHash bit for
    # bit (tests/test_frames.py), without a Python call and two scipy FFTs per view, which were most of
    # the hashing time, nor scipy's import (~0.2 s of every check: bench/README.md, "Index").
    hashes = [0] * len(variants)
    views = [i for i, p in enumerate(pictures) if p is not None]
    if views:
        for i, h in zip(views, phash_many([_thumb(_view(pictures[i], variants[i])) for i in views]), strict=True):
            hashes[i] = h
    return hashes, (inset if inset_view is not None else None)


class SecondLook:
    """The second look's views (SECOND_LOOK_VARIANTS) of a query's frames, hashed when the matcher
    first asks for them (match.find_evidence runs that look only when the first look settled
    nothing), from the stretches of small grey frames kept here, each with the fill and boxes its
    frames were hashed with: the same hashes, bit for bit, as hashing them with the others
    (tests/test_frames.py). Past `keep_bytes` of kept frames, a stretch is hashed at once instead."""

    def __init__(self, keep_bytes: int) -> None:
        self.keep_bytes = keep_bytes
        self.kept_bytes = 0
        # Per stretch, in frame order: its frames' hashes and boxes, and its grey frames (None once hashed).
        self._stretches: list[_Stretch] = []

    def add(self, window: list[tuple[float, np.ndarray]], hashed: list[FrameHash]) -> None:
        """A stretch of sampled frames (time, small grey) and their FrameHash, in frame order."""
        greys = [g for _, g in window]
        size = sum(g.nbytes for g in greys)
        stretch = _Stretch(boxes=[f.box for f in hashed], greys=greys)
        if self.kept_bytes + size > self.keep_bytes:
            stretch.hash()
        else:
            self.kept_bytes += size
        self._stretches.append(stretch)

    def views(self, rows: Sequence[int]) -> tuple[np.ndarray, list[ContentBox | None]]:
        """uint64 (len(rows), len(SECOND_LOOK_VARIANTS)) hashes of the fingerprint's frames `rows`,
        and each one's inset (None: no inset hashed)."""
        hashes: list[tuple[int, ...]] = []
        insets: list[ContentBox | None] = []
        starts = np.cumsum([0] + [len(s.boxes) for s in self._stretches])
        for row in rows:
            k = int(np.searchsorted(starts, row, side="right")) - 1
            stretch = self._stretches[k]
            stretch.hash()
            hashes.append(stretch.hashes[row - starts[k]])
            insets.append(stretch.insets[row - starts[k]])
        out = np.array(hashes, dtype=np.uint64).reshape(len(rows), len(SECOND_LOOK_VARIANTS))
        return out, insets


class _Stretch:
    """One stretch of SecondLook: hashed at most once (then its grey frames are let go)."""

    def __init__(self, *, boxes: list[ContentBox | None], greys: list[np.ndarray]) -> None:
        self.boxes, self.greys = boxes, greys
        self.hashes: list[tuple[int, ...]] = []
        self.insets: list[ContentBox | None] = []

    def hash(self) -> None:
        if self.greys is None:
            return
        # The inset is found over the whole stretch, as _hash_window finds the fill.
        inset = inset_box(self.greys) if any(v.inset for v in SECOND_LOOK_VARIANTS) else None
        for grey, box in zip(self.greys, self.boxes, strict=True):
            # The frames hash_frame found too small to hash got zeros for every view (and quality 0).
            content = _hashable_content(grey, box) if box is not None else None
            if content is None:
                self.hashes.append((0,) * len(SECOND_LOOK_VARIANTS))
                self.insets.append(None)
                continue
            hashes, found = _hash_views(grey, content, SECOND_LOOK_VARIANTS, inset)
            self.hashes.append(tuple(hashes))
            self.insets.append(found)
        self.greys = None  # type: ignore[assignment]


# The inset's own border (a frame line, a shadow) is left out: cut this share more on each side.
INSET_MARGIN = 0.02


def inset_picture(grey: np.ndarray, inset: ContentBox) -> np.ndarray | None:
    """The picture inside `inset` (its own border and black bars cut), or None when too small to hash."""
    margin = ContentBox(left=INSET_MARGIN, top=INSET_MARGIN, right=1 - INSET_MARGIN, bottom=1 - INSET_MARGIN)
    picture = _cut(grey, _within(inset, margin))
    if min(picture.shape) < 16:
        return None
    picture = _cut(picture, content_box(picture))  # the inset may hold letterboxed footage
    return picture if min(picture.shape) >= 8 else None




def _cut(grey: np.ndarray, box: ContentBox) -> np.ndarray:
    h, w = grey.shape
    return grey[round(box.top * h):round(box.bottom * h), round(box.left * w):round(box.right * w)]


def _within(outer: ContentBox, inner: ContentBox) -> ContentBox:
    """`inner` (fractions of `outer`) as fractions of the whole frame."""
    w, h = outer.right - outer.left, outer.bottom - outer.top
    return ContentBox(left=outer.left + inner.left * w, top=outer.top + inner.top * h,
                      right=outer.left + inner.right * w, bottom=outer.top + inner.bottom * h)


def _view(content: np.ndarray, variant: Variant) -> np.ndarray:
    if any(variant.window):
        h, w = content.shape
        left, top, right, bottom = variant.window
        content = content[round(top * h):h - round(bottom * h), round(left * w):w - round(right * w)]
    h, w = content.shape
    dy, dx = round(h * variant.crop), round(w * variant.crop)
    view = content[dy:h - dy, dx:w - dx] if variant.crop else content
    return view[:, ::-1] if variant.mirrored else view


def _thumb(grey: np.ndarray) -> np.ndarray:
    # imagehash.phash shrinks to 32x32 first; OpenCV's area shrink does that 20x faster than PIL's
    # Lanczos (0.24 ms a view, the largest cost of hashing: bench/check_speed.py), and then
    # imagehash's own resize is a no-op. Both sides hash the same way, so hashes stay comparable.
    return cv2.resize(np.ascontiguousarray(grey), (PHASH_INPUT, PHASH_INPUT), interpolation=cv2.INTER_AREA)


# imagehash.phash is DCT-II (scipy.fftpack, unnormalised: 2 * sum x[n] cos(pi k (2n+1) / 2N)) over
# the 32x32 thumbnail, of which it keeps the 8x8 lowest frequencies: as matrices, C X C^T with C the
# first 8 rows of that transform. One call per view costs ~0.24 ms, mostly call overhead; a frame's
# 21 query views as one batched product cost a fraction of it. tests/test_frames.py checks that
# both give the same bits.
_DCT_LOW = 2.0 * np.cos(np.pi * np.arange(8)[:, None] * (2 * np.arange(PHASH_INPUT)[None, :] + 1) / (2 * PHASH_INPUT))


def phash_many(thumbs: list[np.ndarray]) -> list[int]:
    """imagehash's pHash of many 32x32 thumbnails at once."""
    stack = np.stack(thumbs).astype(np.float64)
    low = (_DCT_LOW @ stack @ _DCT_LOW.T).reshape(len(thumbs), 64)
    bits = low > np.median(low, axis=1, keepdims=True)
    packed = np.packbits(bits, axis=1)
    return [int.from_bytes(row.tobytes(), "big") for row in packed]


def _median_box(boxes: list[ContentBox]) -> ContentBox:
    if not boxes:
        return ContentBox()
    return ContentBox(left=median(b.left for b in boxes), top=median(b.top for b in boxes),
                      right=median(b.right for b in boxes), bottom=median(b.bottom for b in boxes))
