"""Meta's vPDQ as a baseline for the robustness benchmark.

Hashing is Meta's own code (the PyPI package ``vpdq``, a Cython binding of the C++
reference implementation, built by ``bench/setup.sh``). Matching is our numpy
re-implementation of python-threatexchange's brute-force matcher, so that it can be timed
on its own and needs nothing beyond numpy:

* hashing: ``vpdq.computeHash(path, seconds_per_hash=1.0)`` -- one frame per second, the
  default of ``vpdq.computeHash`` itself, of ``hash_file_compact`` and
  ``VPDQSignal.hash_from_file`` in python-threatexchange, and the "1 frame/second" of
  vpdq/README.md. (Meta's C++ ``vpdq-hash-video`` CLI starts from ``secondsPerHash = 0``,
  every frame, but every Python entry point and the docs use 1 s.) ``thread_count`` is left
  at its default 0 (the hasher picks the thread count).
* matching: python-threatexchange ``extensions/vpdq/vpdq_brute_matcher.py``
  ``match_VPDQ_hash_brute``: each side is deduplicated (identical hashes, first one kept),
  THEN quality-filtered (``quality >= 50``); a frame counts as matched when ANY frame of the
  other side is within Hamming distance ``<= 31``; percentages are over the filtered,
  deduplicated counts.
* decision: ``query_pct >= 80`` and ``reference_pct >= 0`` (python-threatexchange
  ``vpdq_util.py``: ``VPDQ_QUERY_MATCH_THRESHOLD_PERCENT = 80.0``,
  ``VPDQ_INDEX_MATCH_THRESHOLD_PERCENT = 0.0``; compared with ``>=`` in
  ``VPDQSignal.compare_hash``).

``python bench/vpdq_baseline.py [VIDEO]`` prints the hashes of VIDEO (default
samples/bikes.mp4) and runs the sanity checks (re-encode ~100 %, mirror ~0 %, other clip
~0 %), cross-checking the numpy matcher against a plain-Python transcription of Meta's loop.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# python-threatexchange threatexchange/extensions/vpdq/vpdq_util.py
VPDQ_QUALITY_THRESHOLD = 50
VPDQ_DISTANCE_THRESHOLD = 31  # inclusive: distance <= 31 matches (vpdq_brute_matcher.py)
VPDQ_QUERY_MATCH_THRESHOLD_PERCENT = 80.0  # the 80; see bench/README.md
VPDQ_INDEX_MATCH_THRESHOLD_PERCENT = 0.0
# vpdq.computeHash / hash_file_compact default
SECONDS_PER_HASH = 1.0
# The version bench/setup.sh installs and this module was checked against.
VPDQ_PINNED_VERSION = "0.2.5"

# Bound on the (query x reference x 4 words) XOR intermediate, in uint64 elements (~32 MB).
_CHUNK_ELEMENTS = 4_000_000


def available() -> tuple[bool, str]:
    """(True, vpdq version) when Meta's vpdq imports, else (False, why not)."""
    try:
        import vpdq  # noqa: F401
    except Exception as exc:  # ImportError, or OSError from a missing libav* .so
        return False, (
            f"vpdq is not importable ({type(exc).__name__}: {exc}); run "
            f"`VENV=<your venv> bash bench/setup.sh` (apt libav*-dev packages, then "
            f"pip install vpdq=={VPDQ_PINNED_VERSION})"
        )
    try:
        from importlib.metadata import version

        return True, version("vpdq")
    except Exception:
        return True, "unknown"


@dataclass(frozen=True)
class VpdqFrame:
    """One vPDQ feature as computeHash returns it (the hash as 64 hex digits)."""

    frame_number: int
    quality: int
    timestamp: float  # seconds: frame_number / stream frame rate, as vpdq computes it
    hex: str


@dataclass(frozen=True)
class VpdqHashes:
    frames: tuple[VpdqFrame, ...]
    duration_s: float  # container duration (ffprobe); last timestamp + 1 s without ffprobe
    seconds: float  # wall time of vpdq.computeHash
    # The frames Meta's matcher compares (dedupe, then quality >= 50) as 4 uint64 words
    # each; prepared once here so that match() / best_matches() time only the matching.
    words: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", _prepare(self.frames))

    def to_json(self) -> str:
        return json.dumps(
            {
                "frames": [[f.frame_number, f.quality, f.timestamp, f.hex] for f in self.frames],
                "duration_s": self.duration_s,
                "seconds": self.seconds,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> "VpdqHashes":
        d = json.loads(text)
        frames = tuple(VpdqFrame(int(n), int(q), float(t), str(h)) for n, q, t, h in d["frames"])
        return cls(frames, float(d["duration_s"]), float(d["seconds"]))


def _prepare(frames: tuple[VpdqFrame, ...]) -> np.ndarray:
    """Meta's order: dedupe(all frames) first, then quality_filter (vpdq_brute_matcher.py)."""
    seen: set[str] = set()
    kept: list[bytes] = []
    for f in frames:
        if f.hex in seen:
            continue
        seen.add(f.hex)
        if f.quality >= VPDQ_QUALITY_THRESHOLD:
            kept.append(bytes.fromhex(f.hex))
    if not kept:
        return np.zeros((0, 4), dtype=np.uint64)
    return np.frombuffer(b"".join(kept), dtype=np.uint64).reshape(-1, 4).copy()


if hasattr(np, "bitwise_count"):  # numpy >= 2.0

    def _popcount_sum(x: np.ndarray) -> np.ndarray:
        return np.bitwise_count(x).sum(axis=-1, dtype=np.uint16)

else:  # numpy 1.x: byte lookup table
    _POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def _popcount_sum(x: np.ndarray) -> np.ndarray:
        b = x.view(np.uint8).reshape(*x.shape[:-1], 32)
        return _POP8[b].sum(axis=-1, dtype=np.uint16)


def _within(q: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query row has a reference row within distance, reference row has a query row within)."""
    q_hit = np.zeros(len(q), dtype=bool)
    r_hit = np.zeros(len(r), dtype=bool)
    if len(q) == 0 or len(r) == 0:
        return q_hit, r_hit
    step = max(1, _CHUNK_ELEMENTS // (4 * len(r)))
    for i in range(0, len(q), step):
        d = _popcount_sum(q[i : i + step, None, :] ^ r[None, :, :])
        m = d <= VPDQ_DISTANCE_THRESHOLD
        q_hit[i : i + step] = m.any(axis=1)
        r_hit |= m.any(axis=0)
    return q_hit, r_hit


def match(query: VpdqHashes, reference: VpdqHashes) -> tuple[float, float]:
    """(query_match_percent, reference_match_percent) as match_VPDQ_hash_brute computes them.

    Meta's Python divides by zero when a side has no frame left after filtering; we return
    (0.0, 0.0) then, as Meta's C++ matchTwoHashBrute does.
    """
    q, r = query.words, reference.words
    if len(q) == 0 or len(r) == 0:
        return 0.0, 0.0
    q_hit, r_hit = _within(q, r)
    return int(q_hit.sum()) * 100 / len(q), int(r_hit.sum()) * 100 / len(r)


def is_match(query_pct: float, reference_pct: float) -> bool:
    """VPDQSignal.compare_hash's decision with the default thresholds (80 % / 0 %)."""
    return (
        query_pct >= VPDQ_QUERY_MATCH_THRESHOLD_PERCENT
        and reference_pct >= VPDQ_INDEX_MATCH_THRESHOLD_PERCENT
    )


def best_matches(query: VpdqHashes, library: dict[str, VpdqHashes]) -> list[tuple[str, float, float]]:
    """Every reference scored with match(), best first (query_pct, then reference_pct, desc).

    All references are stacked into one array so a query is compared with the whole library
    in a few vectorised passes; the result is identical to calling match() per reference.
    """
    names = list(library)
    scores: dict[str, tuple[float, float]] = {n: (0.0, 0.0) for n in names}
    q = query.words
    live = [n for n in names if len(library[n].words)]
    if len(q) and live:
        lib = np.concatenate([library[n].words for n in live])
        sizes = np.array([len(library[n].words) for n in live])
        owner = np.repeat(np.arange(len(live)), sizes)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        q_hits = np.zeros(len(live), dtype=np.int64)  # query rows matched, per reference
        r_hit = np.zeros(len(lib), dtype=bool)
        step = max(1, _CHUNK_ELEMENTS // (4 * len(lib)))
        for i in range(0, len(q), step):
            m = _popcount_sum(q[i : i + step, None, :] ^ lib[None, :, :]) <= VPDQ_DISTANCE_THRESHOLD
            r_hit |= m.any(axis=0)
            # for each query row: does it hit any row of reference k?
            per_ref = np.logical_or.reduceat(m, starts, axis=1)
            q_hits += per_ref.sum(axis=0)
        r_hits = np.bincount(owner, weights=r_hit, minlength=len(live))
        for k, n in enumerate(live):
            scores[n] = (int(q_hits[k]) * 100 / len(q), int(r_hits[k]) * 100 / int(sizes[k]))
    ranked = [(n, *scores[n]) for n in names]
    ranked.sort(key=lambda t: (-t[1], -t[2]))
    return ranked


def _duration(path: Path) -> float | None:
    if not shutil.which("ffprobe"):
        return None
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        return float(out)
    except (subprocess.CalledProcessError, ValueError):
        return None


def hash_file(path: Path) -> VpdqHashes:
    """vpdq.computeHash(path, seconds_per_hash=1.0) with every other argument at its default."""
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    import vpdq

    path = Path(path)
    t0 = time.perf_counter()
    feats = vpdq.computeHash(str(path), seconds_per_hash=SECONDS_PER_HASH)
    seconds = time.perf_counter() - t0
    frames = tuple(
        VpdqFrame(int(f.frame_number), int(f.quality), float(f.timestamp), str(f.hex)) for f in feats
    )
    duration = _duration(path)
    if duration is None:
        duration = (frames[-1].timestamp + SECONDS_PER_HASH) if frames else 0.0
    return VpdqHashes(frames, duration, seconds)


# --------------------------------------------------------------------------- self-check


def _meta_reference(query: VpdqHashes, reference: VpdqHashes) -> tuple[float, float]:
    """Plain transcription of python-threatexchange's match_VPDQ_hash_brute, for cross-checks."""

    def prep(frames):
        seen, out = set(), []
        for f in frames:
            if f.hex not in seen:
                out.append(f)
                seen.add(f.hex)
        return [f for f in out if f.quality >= VPDQ_QUALITY_THRESHOLD]

    def count(a, b):
        return sum(
            any(bin(int(x.hex, 16) ^ int(y.hex, 16)).count("1") <= VPDQ_DISTANCE_THRESHOLD for y in b)
            for x in a
        )

    fq, fr = prep(query.frames), prep(reference.frames)
    if not fq or not fr:
        return 0.0, 0.0
    return count(fq, fr) * 100 / len(fq), count(fr, fq) * 100 / len(fr)


def _main(argv: list[str]) -> int:
    import tempfile

    ok, info = available()
    print(f"vpdq available: {ok} ({info})")
    if not ok:
        return 1
    samples = Path(__file__).resolve().parent.parent / "samples"
    video = Path(argv[0]) if argv else samples / "bikes.mp4"
    h = hash_file(video)
    print(f"{video.name}: {len(h.frames)} frames, duration {h.duration_s:.2f} s, hashed in {h.seconds:.3f} s, "
          f"{len(h.words)} left after dedupe + quality filter")
    for f in h.frames:
        print(f"  frame {f.frame_number:5d}  t={f.timestamp:8.3f}  quality {f.quality:3d}  {f.hex}")
    if argv:
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        variants = {
            "reencode 360p crf30": ["-vf", "scale=360:-2", "-crf", "30"],
            "hflip": ["-vf", "hflip"],
        }
        lib = {"bikes": h, "carphone_pristine": hash_file(samples / "carphone_pristine.mp4")}
        print("\nsanity (query vs bikes.mp4): query_pct / reference_pct / is_match")
        queries = {}
        for name, args in variants.items():
            out = Path(tmp) / f"{name.split()[0]}.mp4"
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(video), *args, str(out)], check=True)
            queries[name] = hash_file(out)
        queries["carphone_pristine (other clip)"] = lib["carphone_pristine"]
        for name, q in queries.items():
            qp, rp = match(q, h)
            assert (qp, rp) == _meta_reference(q, h), "numpy matcher disagrees with Meta's loop"
            print(f"  {name:32s} {qp:6.1f} / {rp:6.1f} / {is_match(qp, rp)}")
        t0 = time.perf_counter()
        ranked = best_matches(queries["reencode 360p crf30"], lib)
        print(f"\nbest_matches(reencode, library of {len(lib)}) in {1e3 * (time.perf_counter() - t0):.2f} ms: {ranked}")
        for n, qp, rp in ranked:
            assert (qp, rp) == match(queries["reencode 360p crf30"], lib[n])
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
