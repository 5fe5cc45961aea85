"""Decode step: the frame nearest each sampling time of a video file, as OpenCV decodes it (BGR).

A check samples 4 frames a second and the decode is most of its cost: a 30-fps clip decodes 7 frames for
every one it keeps. Many of the others are frames no other frame is predicted from (H.264's and HEVC's
non-reference frames): skipping them changes no kept frame. OpenCV decodes them all and has no way to
skip, so a clean file is decoded through PyAV (the same FFmpeg, 8.0, as OpenCV's own wheel) and the
decoder is told, packet by packet, to drop the non-reference frames not kept. The frames kept are
OpenCV's bit for bit, at OpenCV's times (tests/test_decode.py compares both on real footage); the
28-s 720p clip of bench/check_speed.py decodes 523 of its 840 frames (bench/README.md, "Skipping what
no sampled frame needs").

A file that is not clean (a packet without a time, two packets at one time, a container without frame
times or that PyAV cannot read; a frame that is interlaced, turned, HDR or damaged; a packet the
decoder rejects) is decoded by OpenCV as before, frame by frame, from the start. One difference is
left: damage inside a skipped frame goes unseen, where OpenCV would have ended the file there.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import MediaError
from .probe import MAX_FRAME_PIXELS

log = logging.getLogger("provenance.decode")

TakeFn = Callable[[float, np.ndarray], None]
Windows = tuple[tuple[float, float], ...]  # (start, end) seconds, sorted and disjoint
ProgressFn = Callable[[str, float | None], None]


# Containers that store each frame's presentation time, so the plan (made from packet times) is the
# decoder's. AVI stores none with B-frames (its frames' times are guessed: tests/test_decode.py has one),
# and what is not listed here is decoded by OpenCV as before.
TIMED_CONTAINERS = frozenset({"mov", "mp4", "matroska", "webm", "mpegts"})

# Frames PyAV converts to BGR as OpenCV does, bit for bit (tests/test_decode.py): progressive, upright,
# these pixel formats, standard-range colour (unspecified, BT.709, BT.601). PyAV's conversion honours
# an interlaced frame's fields and an HDR frame's transfer (BT.2020, PQ, HLG), OpenCV's does not; such a
# file is decoded by OpenCV from the start (OpenCVNeeded).
PLAIN_PIXEL_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv420p10le"})
STANDARD_COLOUR = frozenset({1, 2, 5, 6})  # AVCOL_PRI/AVCOL_SPC: BT.709, unspecified, BT.470BG, SMPTE 170M
STANDARD_TRANSFER = frozenset({1, 2, 4, 5, 6})  # AVCOL_TRC: BT.709, unspecified, gamma 2.2, gamma 2.8, SMPTE 170M


class OpenCVNeeded(Exception):
    """A frame PyAV cannot give as OpenCV would: the caller forgets the frames it was handed and
    samples the file again with `opencv=True`."""


class _Picker:
    """Which decoded frames are kept: the first frame at most half a frame before each time
    k/sample_fps, with times kept moving forward (some streams report nonsense). The one rule for
    both decoders, and for planning which frames PyAV must not skip."""

    def __init__(self, sample_fps: float, stream_fps: float, within: Windows = ()) -> None:
        self.step = 1.0 / sample_fps
        self.half_frame = 0.5 / stream_fps if 1.0 <= stream_fps <= 240.0 else 1.0 / 60
        self.next_t = 0.0
        self.last_t = -1.0
        self.within = within
        self.within_starts = [start for start, _ in within]

    def time_of(self, t: float) -> float:
        if t < self.last_t:
            t = self.last_t + 1e-3
        self.last_t = t
        return t

    def wants(self, t: float) -> bool:
        if self.within:
            # The last window starting at or before t (windows are sorted and disjoint).
            i = bisect_right(self.within_starts, t + 1e-6) - 1
            if i < 0 or t > self.within[i][1] + 1e-6:
                return False
        return t + 1e-6 >= self.next_t - self.half_frame

    def took(self, t: float) -> None:
        while self.next_t - self.half_frame <= t + 1e-6:
            self.next_t += self.step


def sample(path: Path, sample_fps: float, take: TakeFn, *, progress: ProgressFn | None = None,
           duration_s: float | None = None, opencv: bool = False, within: Windows = ()) -> float:
    """Hand `take` (time in seconds, BGR frame) the frame nearest each time k/sample_fps, in order;
    the time of the last frame in the file. MediaError when the file cannot be decoded at all or its
    frames are too large to decode; OpenCVNeeded (after some frames were handed) when a frame turns
    out to need OpenCV's decode (`opencv`: decode with OpenCV from the start). `within`: only frames
    inside these time windows are handed (at `sample_fps` within each)."""
    plan = None if opencv else _plan(Path(path), sample_fps, within)
    if plan is None:
        return _sample_opencv(Path(path), sample_fps, take, progress=progress, duration_s=duration_s, within=within)
    return _sample_pyav(Path(path), plan, take, progress=progress, duration_s=duration_s)


@dataclass(frozen=True)
class _Plan:
    """What a clean file's packets say before any is decoded: how their times read as seconds, and
    which of them (pts values) the sampling keeps."""

    sample_fps: float
    stream_fps: float
    start: int
    time_base: tuple[int, int]
    wanted: frozenset[int] = frozenset()
    last_t: float = 0.0
    frames: int = 0
    within: Windows = ()

    def seconds(self, pts: int) -> float:
        # OpenCV's CAP_PROP_POS_MSEC, to the bit: (pts - start) * time base, in milliseconds, then back.
        num, den = self.time_base
        return (pts - self.start) * (num / den) * 1000.0 / 1000.0


def _plan(path: Path, sample_fps: float, within: Windows = ()) -> _Plan | None:
    """The plan for a clean file, or None: then OpenCV decodes it as it always did."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video or not TIMED_CONTAINERS & set(container.format.name.split(",")):
                return None
            stream = container.streams.video[0]
            rate, start, base = stream.average_rate, stream.start_time, stream.time_base
            if not rate or start is None or not base or stream.codec_context is None:
                return None
            _refuse_huge_frames(stream.codec_context.width, stream.codec_context.height, path)
            # Packets an edit list cuts off are decoded (others may refer to them) but never shown.
            pts = [packet.pts for packet in container.demux(stream) if packet.size and not packet.is_discard]
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - any PyAV failure: OpenCV decodes it as before
        log.debug("PyAV cannot plan %s (%s); OpenCV decodes it", path.name, exc)
        return None
    if not pts or None in pts or len(set(pts)) != len(pts):
        return None
    plan = _Plan(sample_fps, float(rate), start, (base.numerator, base.denominator), within=within)
    picker = _Picker(sample_fps, plan.stream_fps, within)
    wanted = set()
    for p in sorted(pts):
        t = picker.time_of(plan.seconds(p))
        if picker.wants(t):
            wanted.add(p)
            picker.took(t)
    return replace(plan, wanted=frozenset(wanted), last_t=picker.last_t, frames=len(pts))


def _sample_pyav(path: Path, plan: _Plan, take: TakeFn, *, progress: ProgressFn | None,
                 duration_s: float | None) -> float:
    duration_s = duration_s or plan.last_t
    picker = _Picker(plan.sample_fps, plan.stream_fps, plan.within)
    frames_decoded = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        # Frame and slice threads, one per core, as OpenCV's backend asks of the same decoder.
        stream.thread_type = "AUTO"
        context.thread_count = min(16, cv2.getNumberOfCPUs())
        for packet in container.demux(stream):
            if packet.pts is not None:
                wanted = packet.pts in plan.wanted
                context.skip_frame = "DEFAULT" if wanted else "NONREF"
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as exc:
                # OpenCV ends a file at its first damaged packet (and a truncated download decodes to
                # less than it says): what it does then is its own, so it decodes the file.
                log.debug("%s: the decoder failed (%s)", path.name, exc)
                raise OpenCVNeeded("damaged") from exc
            for frame in decoded:
                frames_decoded += 1
                _require_plain(frame, path)
                if frame.pts is None or plan.seconds(frame.pts) < picker.last_t:
                    # Times that stop or go back (an MPEG-TS clock wrapping): the plan, made from
                    # packet times in order, is not the decoder's; OpenCV keeps its own times moving.
                    log.debug("%s: frame times out of order; OpenCV decodes the file", path.name)
                    raise OpenCVNeeded("untimed")
                t = picker.time_of(plan.seconds(frame.pts))
                if not picker.wants(t):
                    continue
                take(t, frame.to_ndarray(format="bgr24", interpolation="BICUBIC"))
                picker.took(t)
                if progress and duration_s:
                    progress("hash", min(1.0, t / duration_s))
    if not frames_decoded:
        return _sample_opencv(path, plan.sample_fps, take, progress=progress, duration_s=duration_s,
                              within=plan.within)
    log.debug("%s: %d of %d frames decoded", path.name, frames_decoded, plan.frames)
    # The last frame's time as OpenCV would see it: a skipped frame still counts as decoded, so it is
    # the plan's (every packet decoded without error, or OpenCVNeeded was raised).
    return max(picker.last_t, plan.last_t)


def _require_plain(frame: av.VideoFrame, path: Path) -> None:
    """OpenCVNeeded unless PyAV converts `frame` as OpenCV would."""
    standard = (frame.color_primaries in STANDARD_COLOUR and frame.colorspace in STANDARD_COLOUR
                and frame.color_trc in STANDARD_TRANSFER)
    why = ("damaged" if frame.is_corrupt else
           "interlaced" if frame.interlaced_frame else
           "turned" if frame.rotation else
           frame.format.name if frame.format.name not in PLAIN_PIXEL_FORMATS else
           "wide-gamut or HDR colour" if not standard else
           None)
    if why is not None:
        log.debug("%s: a frame is %s; OpenCV decodes the file", path.name, why)
        raise OpenCVNeeded(why)


def _sample_opencv(path: Path, sample_fps: float, take: TakeFn, *, progress: ProgressFn | None,
                   duration_s: float | None, within: Windows = ()) -> float:
    """Decode every frame with OpenCV, keeping those `_Picker` wants."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise MediaError(f"cannot decode video: {path.name}; check it is a complete video file")
        _refuse_huge_frames(cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT), path)
        stream_fps = cap.get(cv2.CAP_PROP_FPS)
        if not duration_s and 1.0 <= stream_fps <= 240.0:  # for the progress shown: the stream's own length
            duration_s = cap.get(cv2.CAP_PROP_FRAME_COUNT) / stream_fps
        picker = _Picker(sample_fps, stream_fps, within)
        while cap.grab():
            t = picker.time_of(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
            if not picker.wants(t):
                continue
            ok, image = cap.retrieve()
            if not ok or image is None:
                continue
            take(t, image)
            picker.took(t)
            if progress and duration_s:
                progress("hash", min(1.0, t / duration_s))
        return picker.last_t
    finally:
        cap.release()


def _refuse_huge_frames(width: float, height: float, path: Path) -> None:
    """probe.MAX_FRAME_PIXELS, checked here too: a check decodes while ffprobe runs, not after it."""
    if width * height > MAX_FRAME_PIXELS:
        raise MediaError(f"frames too large: {width:.0f}x{height:.0f} ({width * height / 1e6:.0f} megapixels) in "
                         f"{path.name}; the most decoded is 8192x4320 ({MAX_FRAME_PIXELS / 1e6:.0f} MP): scale it "
                         "down first, e.g. ffmpeg -i IN -vf scale=3840:-2 OUT")
