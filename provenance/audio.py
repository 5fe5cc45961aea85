"""Audio fingerprints: the sound of a clip as Chromaprint sub-fingerprints, one per time step.

ffmpeg's `chromaprint` muxer (Debian's ffmpeg is built with it) writes the raw fingerprint: one
32-bit sub-fingerprint per ITEM_S of audio. It runs as its own ffmpeg process, so that it works on
another core while the frames decode (pipeline.analyse starts it first).

Chromaprint describes pitch (12 chroma bands an octave), so a repost sped up with its pitch
(asetrate, as most editors and platforms' "speed" do) has other sub-fingerprints: measured on Big
Buck Bunny, 1% of speed and pitch takes the bit error rate from 0.04 to 0.17, 3% to 0.25 (unrelated
sound: about 0.4-0.5). A query is therefore also fingerprinted with its speed undone at each of
QUERY_SPEEDS (3.1% apart: never more than 1.55% off); a library clip only as it is.
"""

from __future__ import annotations

import logging
import math
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MediaError

log = logging.getLogger("provenance.audio")

# Chromaprint's default configuration (algorithm 1, "TEST2", the muxer's default): audio at 11025 Hz
# mono, frames of 4096 samples every 1365 samples (4096 - 4096 * 2/3), one sub-fingerprint a frame.
SAMPLE_RATE = 11025
ALGORITHM = 1
ITEM_S = 1365 / SAMPLE_RATE  # 0.12381 s; measured: bbb.mp4 60 s gives 463 items, 30 s 221: 30/242 = 0.1240 s
# Query corrections: the speeds a repost may have been played at (reference seconds per query
# second), 3.1% apart from 0.912 to 1.096, so that every speed of 0.898-1.113 (+/-10%, the issue's
# range) is within half a step (1.55%) of one. Measured on bench/audio.py's tune set (5 library clips,
# 20-s queries at AAC 64 kbit/s, speed and pitch off a print's speed by +/-d, the 1.0 print alone):
# d = 1% and 1.5% found and placed within 0.2 s 10/10, 2% found 10/10 but placed 9/10, 2.5% 7/10,
# 3% found 7/10. Each print costs CPU (about 0.015-0.02 s for 28 s of sound, beside 0.13 s to start
# ffmpeg at all): 7 prints instead of the 11 of a 2% grid.
QUERY_SPEED_STEP = 1.031
QUERY_SPEEDS = tuple(round(QUERY_SPEED_STEP ** k, 6) for k in range(-3, 4))
# Loudest sample under this is silence (dBFS): digital silence is -inf, the hiss of a quiet room
# recorded on a phone -60 to -45 dBFS, speech and music peaks above -30. Chromaprint normalises
# its chroma, so a silent track still yields sub-fingerprints of its noise: they must not count.
SILENCE_MAX_VOLUME_DB = -50.0
# Fewer sub-fingerprints than this is too little sound to place (8 items: about 1 s past the
# 2.7-s span of the first item).
MIN_ITEMS = 8
# An ffmpeg that runs this long has hung (a 2-hour file takes about 15 s on one core).
TIMEOUT_S = 600.0


class AudioStatus(StrEnum):
    """Whether a clip has audio evidence. Members are the strings stored and written in JSON."""

    OK = "ok"  # sub-fingerprints were computed and can be matched
    NO_AUDIO = "no_audio"  # the file has no audio stream
    SILENT = "silent"  # an audio stream, but silence only
    TOO_SHORT = "too_short"  # sound too short to fingerprint (MIN_ITEMS)
    FAILED = "failed"  # the audio stream would not decode; the picture is still checked


@dataclass(frozen=True)
class AudioPrint:
    """A clip's sub-fingerprints with its speed undone: `speed` reference seconds per query second
    (1.0: as it is). Item i starts at i x ITEM_S of the corrected audio, so at i x ITEM_S / speed of
    the clip."""

    speed: float
    values: Any = field(compare=False)  # np.ndarray[uint32], one per ITEM_S


@dataclass(frozen=True)
class AudioFingerprint:
    status: AudioStatus
    prints: tuple[AudioPrint, ...] = ()  # the first is at speed 1.0
    max_volume_db: float | None = None
    detail: str = ""  # why there is no audio evidence, in words

    @property
    def items(self) -> Any:
        """The sub-fingerprints as they are (speed 1.0): what the library stores."""
        return self.prints[0].values if self.prints else np.zeros(0, dtype=np.uint32)

    @property
    def has_evidence(self) -> bool:
        return self.status is AudioStatus.OK


def no_audio(status: AudioStatus, detail: str) -> AudioFingerprint:
    return AudioFingerprint(status=status, detail=detail)


def fingerprint_audio(path: Path, *, has_audio: bool, query: bool = False) -> AudioFingerprint:
    """The clip's audio fingerprint; for a query also at each of QUERY_SPEEDS undone.

    Raises MediaError when ffmpeg cannot decode the audio stream."""
    if not has_audio:
        return no_audio(AudioStatus.NO_AUDIO, "the file has no audio stream")
    speeds = QUERY_SPEEDS if query else (1.0,)
    speeds = (1.0, *[s for s in speeds if s != 1.0])
    with tempfile.TemporaryDirectory(prefix="provenance-audio-") as tmp:
        outputs = [Path(tmp) / f"{i}.raw" for i in range(len(speeds))]
        stderr = _run_ffmpeg(_command(path, speeds, outputs), path)
        max_volume = _max_volume(stderr)
        prints = tuple(AudioPrint(speed=s, values=np.fromfile(o, dtype="<u4").astype(np.uint32))
                       for s, o in zip(speeds, outputs))
    return _judged(prints, max_volume)


def _judged(prints: tuple[AudioPrint, ...], max_volume: float | None) -> AudioFingerprint:
    if max_volume is None or max_volume < SILENCE_MAX_VOLUME_DB:
        shown = "no sample at all" if max_volume is None or math.isinf(max_volume) else f"{max_volume:.0f} dBFS"
        return AudioFingerprint(status=AudioStatus.SILENT, max_volume_db=_finite(max_volume),
                                detail=f"the audio is silence only (loudest: {shown})")
    if prints[0].values.size < MIN_ITEMS:
        return AudioFingerprint(status=AudioStatus.TOO_SHORT, max_volume_db=max_volume,
                                detail=f"too little sound to fingerprint ({prints[0].values.size} of "
                                       f"{MIN_ITEMS} sub-fingerprints)")
    return AudioFingerprint(status=AudioStatus.OK, prints=prints, max_volume_db=max_volume)


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _command(path: Path, speeds: tuple[float, ...], outputs: list[Path]) -> list[str]:
    # One decode for every speed: mono at Chromaprint's rate, measured once by volumedetect, then
    # split; asetrate relabels the rate, which undoes speed and pitch together, and Chromaprint's own
    # resampler brings it back to SAMPLE_RATE (cheaper than an aresample per speed: on a 28-s clip,
    # 0.43-0.48 s of CPU for all 11 speeds instead of 0.56; one speed alone takes 0.25).
    n = len(speeds)
    graph = (f"[0:a:0]aformat=sample_fmts=s16:channel_layouts=mono,aresample={SAMPLE_RATE},volumedetect,"
             f"asplit={n}" + "".join(f"[s{i}]" for i in range(n)))
    for i, s in enumerate(speeds):
        step = "anull" if s == 1.0 else f"asetrate={round(SAMPLE_RATE / s)}"
        graph += f";[s{i}]{step}[o{i}]"
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-v", "info", "-i", str(path),
           "-filter_complex", graph]
    for i, out in enumerate(outputs):
        cmd += ["-map", f"[o{i}]", "-f", "chromaprint", "-fp_format", "raw", "-algorithm", str(ALGORITHM),
                "-y", str(out)]
    return cmd


def _run_ffmpeg(cmd: list[str], path: Path) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise MediaError(f"cannot fingerprint the audio of {path}: {e}; check that ffmpeg is installed") from e
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "no message")
        raise MediaError(f"cannot decode the audio of {path}: {last[:200]}")
    return stderr


_MAX_VOLUME = re.compile(r"max_volume:\s*(-?inf|-?[0-9.]+) dB")


def _max_volume(stderr: str) -> float | None:
    """volumedetect's loudest sample (dBFS); None when it saw no sample."""
    found = _MAX_VOLUME.findall(stderr)
    return float(found[-1]) if found else None


def safely(path: Path, *, has_audio: bool, query: bool = False) -> AudioFingerprint:
    """fingerprint_audio, with an audio stream that does not decode turned into "no audio evidence"
    (FAILED, with ffmpeg's reason): the picture can still be checked, and the result says why the
    sound could not."""
    try:
        return fingerprint_audio(path, has_audio=has_audio, query=query)
    except MediaError as e:
        log.warning("%s", e.message)
        return no_audio(AudioStatus.FAILED, e.message)
