"""Robustness benchmark: real footage, edited the ways reposts are edited, checked by our matcher and by
Meta's vPDQ side by side. One table: recall per family, false matches on negatives, localisation error,
time per query, and the time of one query against a library of 1,000,000 frame hashes.

    bash bench/setup.sh                         # once: fetches the footage (moviepy sdist), builds vpdq
    python bench/robustness.py                  # the full run (~20-25 min on 2 cores, first run)
    python bench/robustness.py --quick          # one strength per family, two sources (a few minutes)
    python bench/robustness.py --families crop,pip --no-vpdq
    python bench/robustness.py --million        # add the 1,000,000-hash row

What it does (see bench/README.md, "Robustness"):
  1. the library, in a fresh SQLite file in the work folder (rebuilt when the hashing code changes):
     the Big Buck Bunny film's first 300 s, samples/bigbuckbunny.mp4, bikes.mp4, carphone_pristine.mp4,
     and two clips that open with a title card / 2 s of black; the film's second half is held out;
  2. the queries, derived with ffmpeg from the real clips by bench/families.py (seeded, cached in the work
     folder), each with its ground truth: which footage sits where in the query and in the reference;
     plus the moviepy trailer (a real edit of the film) and negatives made only of held-out footage;
  3. every query through `pipeline.check(record=False)` in-process, and through vPDQ (hash + match);
  4. the threshold: every match gets one strength number (match.strength, or matched_frames x similarity);
     the operating threshold is set just above the strongest match on any negative (zero false matches),
     once for all families; a positive counts when its right match is above it, the right reference is the
     top match and every true segment is placed within 1 s (query and reference times, both ends);
  5. prints the table and writes <workdir>/robustness.json with every query's details.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# This checkout's package, not whichever the venv's editable install points at: the code hashed and
# named (code_hash, git_state) must be the code that runs.
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import families as F  # noqa: E402

TOLERANCE_S = 1.0  # a true segment is placed when all four of its ends are within this
MILLION = 1_000_000
VPDQ_FILLER_ROWS_PER_CLIP = 1_000


# --- small helpers -------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def code_hash(exclude: tuple[str, ...] = ()) -> str:
    """Hash of the package's source that decides what the library holds (not the matcher: match.py)."""
    h = hashlib.sha256()
    for root in (REPO / "provenance", REPO / "db", REPO / "migrations"):
        for p in sorted(root.rglob("*.py")):
            if p.name in exclude:
                continue
            h.update(str(p.relative_to(REPO)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def strength_fn():
    """The matcher's own single strength number when it exposes one, else matched_frames x similarity."""
    from provenance import match as pm

    fn = getattr(pm, "strength", None)
    if callable(fn):
        return fn, "provenance.match.strength"
    return (lambda m: m.matched_frames * m.similarity), "matched_frames x similarity"


def machine() -> dict[str, str]:
    import cv2

    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ff = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {"cpu": cpu, "nproc": str(os.cpu_count()), "os": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "opencv": cv2.__version__, "ffmpeg": ff}


def git_state() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "provenance", "db"],
                               capture_output=True, text=True).stdout.strip()
        return head + (" + uncommitted changes in provenance/ or db/" if dirty else "")
    except OSError:
        return "?"


# --- 1. the library ------------------------------------------------------------------------------


@dataclass
class Library:
    settings: Any
    refs: dict[str, F.Reference]  # name -> reference
    name_of: dict[str, str]  # sha256 -> name
    files: dict[str, Path]  # name -> file
    frames: int
    built_s: float | None


def build_library(work: Path, rebuild: bool) -> Library:
    from provenance import pipeline
    from provenance.settings import Settings

    refs = {r.name: r for r in F.references(work)}
    files = {}
    for name, ref in refs.items():
        files[name] = F.make_reference(ref)
    key = {"code": code_hash(exclude=("match.py", "localfeat.py", "insets.py", "results.py", "cli.py")),
           "refs": {n: sha256_of(p) for n, p in files.items()}}
    db_file, store, key_file = work / "library.db", work / "evidence", work / "library.key.json"
    settings = Settings(db_url=f"sqlite:///{db_file}", store_dir=store)
    if not rebuild and db_file.exists() and key_file.exists():
        stored = json.loads(key_file.read_text())
        if stored.get("key") == key:
            log(f"library: reusing {db_file} (hashing code and references unchanged)")
            return Library(settings, refs, stored["name_of"], files, stored["frames"], None)
    db_file.unlink(missing_ok=True)
    key_file.unlink(missing_ok=True)
    t0 = time.perf_counter()
    name_of, frames = {}, 0
    for name, path in files.items():
        log(f"library: ingesting {name} ({path.name})")
        res = pipeline.ingest(str(path), settings=settings, post_url=f"https://bench.invalid/{name}")
        name_of[res.clip.media.sha256] = name
        frames += len(res.clip.fingerprint.frames)
    built = time.perf_counter() - t0
    frames = _count_frame_rows(settings.db_url) or frames
    key_file.write_text(json.dumps({"key": key, "name_of": name_of, "frames": frames}))
    return Library(settings, refs, name_of, files, frames, built)


def _count_frame_rows(db_url: str) -> int | None:
    try:
        from sqlalchemy import func, select

        from provenance.db import connect
        from provenance.db import models as orm

        engine = connect(db_url)
        with engine.connect() as conn:
            n = conn.scalar(select(func.count()).select_from(orm.Frame.__table__))
        engine.dispose()
        return int(n or 0)
    except Exception:  # noqa: BLE001 - a count for the report only
        return None


# --- 2./3. queries, checks, vPDQ -------------------------------------------------------------------


def make_queries(qs: list[F.Query], out_dir: Path, jobs: int) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    todo = len(qs)
    t0 = time.perf_counter()

    def one(q: F.Query) -> tuple[str, Path]:
        return q.name, F.make(q, out_dir)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for k, (name, path) in enumerate(pool.map(one, qs), 1):
            paths[name] = path
            if k % 20 == 0 or k == todo:
                log(f"queries: {k}/{todo} ready ({time.perf_counter() - t0:.0f} s)")
    return paths


class Vpdq:
    """bench/vpdq_baseline.py with hashes cached in the work folder (by file sha256)."""

    def __init__(self, work: Path, enabled: bool) -> None:
        self.reason = "disabled (--no-vpdq)"
        self.mod = None
        self.version = None
        if not enabled:
            return
        try:
            import vpdq_baseline as vb
        except Exception as exc:  # noqa: BLE001
            self.reason = f"bench/vpdq_baseline.py not importable: {type(exc).__name__}: {exc}"
            return
        ok, info = vb.available()
        if not ok:
            self.reason = info
            return
        self.mod, self.version, self.reason = vb, info, ""
        src = Path(vb.__file__).read_bytes()
        self.cache = work / "vpdq_cache" / f"{info}-{hashlib.sha256(src).hexdigest()[:12]}"
        self.cache.mkdir(parents=True, exist_ok=True)

    @property
    def on(self) -> bool:
        return self.mod is not None

    def hashes(self, path: Path):
        f = self.cache / f"{sha256_of(path)}.json"
        if f.exists():
            return self.mod.VpdqHashes.from_json(f.read_text())
        h = self.mod.hash_file(path)
        f.write_text(h.to_json())
        return h


@dataclass
class Found:
    ref: str
    strength: float
    similarity: float
    matched_frames: int
    speed: float
    transforms: list[str]
    segments: list[list[float]]  # [q0, q1, r0, r1]
    # How the matcher says it established the match, when its Match has such a field (issue 10 adds one):
    # `method` and `evidence` as the matcher gives them, else "".
    method: str = ""
    evidence: str = ""


@dataclass
class Outcome:
    name: str
    family: str
    strength: str
    source: str
    note: str
    file: str
    truth: list[dict]
    ours_s: float | None = None
    ours_error: str | None = None
    verdict: str = ""  # the check's verdict (reused / earliest_known / no_match)
    found: list[Found] = field(default_factory=list)
    # The check's same-scene hints (known clips whose pictures match but whose moment was not
    # established: a hint, never a verdict), by reference name.
    scenes: list[str] = field(default_factory=list)
    vpdq_s: float | None = None
    vpdq_hash_s: float | None = None
    vpdq_ranked: list[list] = field(default_factory=list)  # [name, query_pct, ref_pct, is_match]
    vpdq_error: str | None = None
    # filled by scoring
    ours_ok_native: bool | None = None
    ours_ok: bool | None = None
    ours_reason: str = ""
    loc_errors: list[float] = field(default_factory=list)
    wrong_refs: list[str] = field(default_factory=list)
    vpdq_ok: bool | None = None
    vpdq_reason: str = ""


def run_one(q: F.Query, path: Path, lib: Library, vp: Vpdq, vlib: dict | None, strength) -> Outcome:
    from provenance import pipeline

    out = Outcome(name=q.name, family=q.family, strength=q.strength, source=q.source, note=q.note,
                  file=str(path), truth=[asdict(t) for t in q.truth])
    t0 = time.perf_counter()
    try:
        res = pipeline.check(str(path), settings=lib.settings, record=False)
        out.ours_s = time.perf_counter() - t0
        out.verdict = str(res.verdict)
        for m in res.matches:
            out.found.append(Found(
                ref=lib.name_of.get(m.sha256, m.sha256[:12]), strength=round(float(strength(m)), 3),
                similarity=m.similarity, matched_frames=m.matched_frames, speed=m.speed,
                transforms=list(m.transforms),
                segments=[[s.query_start_s, s.query_end_s, s.reference_start_s, s.reference_end_s]
                          for s in m.segments],
                method=_as_text(getattr(m, "method", "")), evidence=_as_text(getattr(m, "evidence", ""))))
        out.found.sort(key=lambda f: f.strength, reverse=True)
        out.scenes = [lib.name_of.get(h.sha256, h.sha256[:12]) for h in res.scenes]
    except Exception as exc:  # noqa: BLE001 - one failing query must not stop the run
        out.ours_s = time.perf_counter() - t0
        out.ours_error = f"{type(exc).__name__}: {exc}"
        log(f"  ! {q.name}: check failed: {out.ours_error}")
    if vp.on and vlib is not None:
        try:
            h = vp.hashes(path)
            t1 = time.perf_counter()
            ranked = vp.mod.best_matches(h, vlib)
            match_s = time.perf_counter() - t1
            out.vpdq_hash_s = h.seconds
            out.vpdq_s = h.seconds + match_s
            out.vpdq_ranked = [[n, round(qp, 1), round(rp, 1), bool(vp.mod.is_match(qp, rp))] for n, qp, rp in ranked]
        except Exception as exc:  # noqa: BLE001
            out.vpdq_error = f"{type(exc).__name__}: {exc}"
            log(f"  ! {q.name}: vPDQ failed: {out.vpdq_error}")
    return out


def _as_text(value: Any) -> str:
    """A Match field of any shape (str, enum, dataclass, dict, list) as one line of text for the JSON."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    if hasattr(value, "value") and isinstance(value.value, str):
        return value.value
    try:
        return json.dumps(asdict(value) if hasattr(value, "__dataclass_fields__") else value, default=str)
    except (TypeError, ValueError):
        return str(value)


# --- 4. scoring ----------------------------------------------------------------------------------


def right_refs(truth: list[F.Truth], refs: dict[str, F.Reference]) -> set[str]:
    """References holding footage of any true segment (the film's first half and the sample hold the same)."""
    out = set()
    for t in truth:
        for r in refs.values():
            for p in r.pieces:
                lo = max(t.f0, p.footage_start)
                hi = min(t.f1, p.footage_start + (p.ref_end - p.ref_start))
                if p.footage == t.footage and hi - lo >= min(0.5, (t.f1 - t.f0) / 2):
                    out.add(r.name)
    return out


def to_footage(ref: F.Reference, r0: float, r1: float) -> tuple[str, float, float] | None:
    mid = (r0 + r1) / 2
    for p in ref.pieces:
        if p.ref_start - 0.5 <= mid <= p.ref_end + 0.5:
            return p.footage, p.to_footage(r0), p.to_footage(r1)
    return None


def place(t: F.Truth, found: list[Found], refs: dict[str, F.Reference]) -> tuple[list[float] | None, Found | None, int]:
    """The found segment closest to true segment `t`: its errors (q0, q1, f0, f1), the match, and how many
    found segments overlap `t` (more than one: the matcher split it, or found it twice)."""
    best, best_m, pieces = None, None, 0
    for m in found:
        ref = refs.get(m.ref)
        if ref is None:
            continue
        for q0, q1, r0, r1 in m.segments:
            mapped = to_footage(ref, r0, r1)
            if mapped is None or mapped[0] != t.footage:
                continue
            # It must overlap the true segment in the query and (with TOLERANCE_S of slack) in the footage:
            # a segment elsewhere in the footage is a wrong placement, not this one found badly.
            if min(q1, t.q1) - max(q0, t.q0) <= 0 or \
                    min(mapped[2], t.f1) - max(mapped[1], t.f0) <= -TOLERANCE_S:
                continue
            pieces += 1
            err = [q0 - t.q0, q1 - t.q1, mapped[1] - t.f0, mapped[2] - t.f1]
            if best is None or max(map(abs, err)) < max(map(abs, best)):
                best, best_m = err, m
    return best, best_m, pieces


def wrong_match(m: Found, truth: list[F.Truth], refs: dict[str, F.Reference]) -> bool:
    """A match none of whose segments shows true footage where the query has it (an unrelated reference,
    or the right reference at the wrong place)."""
    ref = refs.get(m.ref)
    if ref is None:
        return True
    for q0, q1, r0, r1 in m.segments:
        mapped = to_footage(ref, r0, r1)
        if mapped is None:
            continue
        for t in truth:
            if mapped[0] == t.footage and min(q1, t.q1) - max(q0, t.q0) > 0 and \
                    min(mapped[2], t.f1) - max(mapped[1], t.f0) > -TOLERANCE_S:
                return False
    return True


def score_ours(o: Outcome, q: F.Query, refs: dict[str, F.Reference], threshold: float) -> tuple[bool, str]:
    """(recalled at `threshold`, why not)."""
    if o.ours_error:
        return False, f"check failed: {o.ours_error}"
    kept = [m for m in o.found if m.strength > threshold]
    if q.negative:
        if kept:
            return False, f"false match: {kept[0].ref} (strength {kept[0].strength:g})"
        return True, ""
    right = right_refs(q.truth, refs)
    if not o.found:
        return False, "no match"
    if not kept:
        return False, f"matched only below the threshold (best {o.found[0].ref}, strength {o.found[0].strength:g})"
    reasons = []
    if kept[0].ref not in right:
        reasons.append(f"top match {kept[0].ref} is the wrong reference")
    for t in q.truth:
        err, m, pieces = place(t, kept, refs)
        where = f"q {t.q0:g}-{t.q1:g} s = {t.footage} {t.f0:g}-{t.f1:g} s"
        if err is None:
            reasons.append(f"segment {where} not found")
            continue
        if max(map(abs, err)) > TOLERANCE_S:
            split = f", found in {pieces} pieces" if pieces > 1 else ""
            reasons.append(f"segment {where} off by " + "/".join(f"{e:+.1f}" for e in err)
                           + f" s (q start/end, ref start/end){split}")
    return not reasons, "; ".join(reasons)


def loc_errors(o: Outcome, q: F.Query, refs: dict[str, F.Reference], threshold: float) -> list[float]:
    """Mean absolute boundary error of every true segment that was found (above the threshold)."""
    kept = [m for m in o.found if m.strength > threshold]
    out = []
    for t in q.truth:
        err, _, _ = place(t, kept, refs)
        if err is not None:
            out.append(float(np.mean(np.abs(err))))
    return out


def score_vpdq(o: Outcome, q: F.Query, refs: dict[str, F.Reference]) -> tuple[bool | None, str]:
    if o.vpdq_error:
        return False, f"vPDQ failed: {o.vpdq_error}"
    if not o.vpdq_ranked:
        return None, ""
    hits = [r for r in o.vpdq_ranked if r[3]]
    if q.negative:
        return (not hits), (f"false match: {hits[0][0]} ({hits[0][1]:g}% of query)" if hits else "")
    right = right_refs(q.truth, refs)
    top = o.vpdq_ranked[0]
    if not hits:
        return False, f"no match (best {top[0]}: {top[1]:g}% of query < 80%)"
    if top[0] not in right or not top[3]:
        return False, f"top match {top[0]} is the wrong reference"
    # A compilation: every piece's footage must be identified by some matching reference.
    for t in q.truth:
        if not any(r[3] and r[0] in right_refs([t], refs) for r in o.vpdq_ranked):
            return False, f"piece {t.footage} {t.f0:g}-{t.f1:g} s not identified"
    return True, ""


def strongest_wrong(outcomes: list[Outcome], by_name: dict[str, F.Query], refs: dict[str, F.Reference]
                    ) -> tuple[float, Outcome | None, Found | None]:
    """The strongest match on a positive query that shows no true footage (see wrong_match)."""
    worst, worst_o, worst_m = 0.0, None, None
    for o in outcomes:
        q = by_name[o.name]
        if q.negative:
            continue
        for m in o.found:
            if m.strength > worst and wrong_match(m, q.truth, refs):
                worst, worst_o, worst_m = m.strength, o, m
    return worst, worst_o, worst_m


def choose_threshold(outcomes: list[Outcome]) -> tuple[float, Outcome | None]:
    worst, worst_o = 0.0, None
    for o in outcomes:
        if o.family == "negative" and o.found and o.found[0].strength > worst:
            worst, worst_o = o.found[0].strength, o
    return worst, worst_o


# --- 5. the 1,000,000-hash row -------------------------------------------------------------------


def million_row(work: Path, lib: Library, vp: Vpdq, vlib: dict | None, strength) -> dict[str, Any]:
    from provenance import pipeline
    from provenance.settings import Settings

    src = F.film_window("million", 10.0)
    q = F.plain("million", "10s", src)
    path = F.make(q, work / "queries")
    db = work / "million.db"
    shutil.copyfile(work / "library.db", db)
    settings = Settings(db_url=f"sqlite:///{db}", store_dir=lib.settings.store_dir)
    out: dict[str, Any] = {"query": f"{src.label}, 10 s (plain re-encode)",
                           "right": sorted(right_refs(q.truth, lib.refs))}
    log("million: padding a copy of the library to 1,000,000 frame hashes with random filler (check_speed.py)")
    try:
        import check_speed

        info = check_speed.build_library(settings.db_url, settings.store_dir, MILLION, F.SEED)
        out["frames"], out["fill_s"] = info["frames"], info["fill_s"]
    except Exception as exc:  # noqa: BLE001
        out["error"] = f"could not build the 1M library with check_speed.build_library: {type(exc).__name__}: {exc}"
        log("  ! " + out["error"])
        return out
    times, res = [], None
    for k in range(4):  # one warm-up, three timed
        t0 = time.perf_counter()
        res = pipeline.check(str(path), settings=settings, record=False)
        if k:
            times.append(time.perf_counter() - t0)
    out["ours_s"] = statistics.median(times)
    out["ours_runs"] = times
    top = res.matches[0] if res and res.matches else None
    out["ours_top"] = lib.name_of.get(top.sha256, top.sha256[:12]) if top else None
    out["ours_ok"] = bool(top and out["ours_top"] in out["right"])
    db.unlink(missing_ok=True)

    if vp.on and vlib is not None:
        h = vp.hashes(path)
        rng = np.random.default_rng(F.SEED)
        real_rows = sum(len(v.words) for v in vlib.values())
        n_fill = max(0, MILLION - real_rows)
        big = dict(vlib)
        t0 = time.perf_counter()
        for k in range(0, n_fill, VPDQ_FILLER_ROWS_PER_CLIP):
            rows = min(VPDQ_FILLER_ROWS_PER_CLIP, n_fill - k)
            big[f"filler{k // VPDQ_FILLER_ROWS_PER_CLIP}"] = _vpdq_filler(vp.mod, rng.integers(
                0, np.iinfo(np.uint64).max, size=(rows, 4), dtype=np.uint64, endpoint=True))
        out["vpdq_fill_s"] = time.perf_counter() - t0
        out["vpdq_rows"] = real_rows + n_fill
        vt = []
        ranked = None
        for k in range(3):
            t0 = time.perf_counter()
            ranked = vp.mod.best_matches(h, big)
            vt.append(time.perf_counter() - t0)
        out["vpdq_match_s"] = statistics.median(vt)
        out["vpdq_hash_s"] = h.seconds
        out["vpdq_s"] = h.seconds + out["vpdq_match_s"]
        out["vpdq_top"] = ranked[0][0] if ranked else None
        out["vpdq_top_pct"] = round(ranked[0][1], 1) if ranked else 0.0
        out["vpdq_ok"] = bool(ranked and ranked[0][0] in out["right"] and vp.mod.is_match(ranked[0][1], ranked[0][2]))
    return out


def _vpdq_filler(vb, words: np.ndarray):
    """A VpdqHashes holding random 256-bit features (best_matches reads only `.words`)."""
    h = object.__new__(vb.VpdqHashes)
    object.__setattr__(h, "frames", ())
    object.__setattr__(h, "duration_s", float(len(words)))
    object.__setattr__(h, "seconds", 0.0)
    object.__setattr__(h, "words", words)
    return h


# --- output --------------------------------------------------------------------------------------


def pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f}%)" if n else "-"


def mean_or(xs: list[float], fmt: str = "{:.2f}") -> str:
    xs = [x for x in xs if x is not None]
    return fmt.format(statistics.mean(xs)) if xs else "-"


def table(outcomes: list[Outcome], fams: list[str], vp: Vpdq, threshold: float, million: dict | None) -> str:
    head = ["family", "queries", "ours recall", "ours recall (no threshold)", "vPDQ recall", "ours loc. error (s)",
            "ours s/query", "vPDQ s/query"]
    rows = []
    for fam in fams:
        os_ = [o for o in outcomes if o.family == fam]
        if not os_:
            continue
        n = len(os_)
        v = pct(sum(bool(o.vpdq_ok) for o in os_), n) if vp.on else "n/a"
        errs = [e for o in os_ for e in o.loc_errors]
        rows.append([fam, str(n), pct(sum(bool(o.ours_ok) for o in os_), n),
                     pct(sum(bool(o.ours_ok_native) for o in os_), n), v, mean_or(errs),
                     mean_or([o.ours_s for o in os_]), mean_or([o.vpdq_s for o in os_]) if vp.on else "n/a"])
    pos = [o for o in outcomes if o.family != "negative"]
    if pos:
        errs = [e for o in pos for e in o.loc_errors]
        rows.append(["**all positives**", str(len(pos)), pct(sum(bool(o.ours_ok) for o in pos), len(pos)),
                     pct(sum(bool(o.ours_ok_native) for o in pos), len(pos)),
                     pct(sum(bool(o.vpdq_ok) for o in pos), len(pos)) if vp.on else "n/a", mean_or(errs),
                     mean_or([o.ours_s for o in pos]), mean_or([o.vpdq_s for o in pos]) if vp.on else "n/a"])
    neg = [o for o in outcomes if o.family == "negative"]
    if neg:
        native_fp = sum(bool(o.found) for o in neg)
        at_fp = sum(not o.ours_ok for o in neg)
        vfp = sum(o.vpdq_ok is False for o in neg) if vp.on else None
        rows.append(["negatives: false matches", str(len(neg)), f"{at_fp} (at threshold)",
                     f"{native_fp} (no threshold)", f"{vfp}" if vp.on else "n/a", "",
                     mean_or([o.ours_s for o in neg]), mean_or([o.vpdq_s for o in neg]) if vp.on else "n/a"])
    if million:
        if "error" in million:
            rows.append(["1M-hash library", "1", million["error"][:60], "", "", "", "-", "-"])
        else:
            rows.append(["1M hashes (random filler), 10-s query", "1",
                         "top right" if million.get("ours_ok") else f"miss (top {million.get('ours_top')})", "",
                         ("top right" if million.get("vpdq_ok") else f"miss (top {million.get('vpdq_top')}, "
                          f"{million.get('vpdq_top_pct', 0):g}% < 80%)")
                         if "vpdq_s" in million else "n/a", "",
                         f"{million['ours_s']:.2f}", f"{million['vpdq_s']:.2f}" if "vpdq_s" in million else "n/a"])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=BENCH / "out", help="work folder (default bench/out): queries, "
                    "library, vPDQ hashes, results; kept between runs as a cache")
    ap.add_argument("--families", help=f"comma-separated subset of: {','.join(F.FAMILIES)} (negatives always run)")
    ap.add_argument("--quick", action="store_true", help="one strength per family, two sources, fewer negatives")
    ap.add_argument("--no-vpdq", action="store_true", help="skip the vPDQ baseline")
    ap.add_argument("--million", action="store_true", help="add the 1,000,000-hash library row (a few minutes)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the library even if the hashing code is unchanged")
    ap.add_argument("--jobs", type=int, default=2, help="parallel ffmpeg jobs making queries (default 2)")
    args = ap.parse_args(argv)

    fams = F.FAMILIES
    if args.families:
        fams = tuple(f.strip() for f in args.families.split(",") if f.strip())
        bad = [f for f in fams if f not in F.FAMILIES]
        if bad:
            ap.error(f"unknown families {bad}; known: {', '.join(F.FAMILIES)}")
    missing = [p for p in (F.FILM, F.TRAILER, F.FONT, F.LOGO) if not p.exists()]
    if missing:
        print(f"missing {', '.join(str(p.relative_to(REPO)) for p in missing)}: run `bash bench/setup.sh fetch_data`",
              file=sys.stderr)
        return 2
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            print(f"{tool} not found; install ffmpeg", file=sys.stderr)
            return 2

    t_start = time.perf_counter()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    strength, strength_name = strength_fn()

    log(f"work folder: {work}")
    lib = build_library(work, args.rebuild)
    positives = F.queries(args.quick, fams)
    negatives = F.negatives(args.quick)
    allq = positives + negatives
    log(f"queries: {len(positives)} positives, {len(negatives)} negatives")
    t_q = time.perf_counter()
    paths = make_queries(allq, work / "queries", args.jobs)
    make_s = time.perf_counter() - t_q

    vp = Vpdq(work, not args.no_vpdq)
    vlib = None
    if vp.on:
        log("vPDQ: hashing the library")
        vlib = {name: vp.hashes(path) for name, path in lib.files.items()}
    else:
        log(f"vPDQ: not run: {vp.reason}")

    outcomes: list[Outcome] = []
    t_run = time.perf_counter()
    for k, q in enumerate(allq, 1):
        o = run_one(q, paths[q.name], lib, vp, vlib, strength)
        outcomes.append(o)
        top = o.found[0] if o.found else None
        log(f"[{k}/{len(allq)}] {q.family}/{q.strength}/{q.source}: "
            + (f"top {top.ref} ({top.strength:g})" if top else "no match")
            + (f", vPDQ top {o.vpdq_ranked[0][0]} {o.vpdq_ranked[0][1]:g}%" if o.vpdq_ranked else "")
            + f"  [{o.ours_s:.2f} s]")
    run_s = time.perf_counter() - t_run

    # The threshold: just above the strongest match on any negative, once for all families.
    threshold, worst = choose_threshold(outcomes)
    by_name = {q.name: q for q in allq}
    for o in outcomes:
        q = by_name[o.name]
        o.ours_ok_native, reason_native = score_ours(o, q, lib.refs, -np.inf)
        o.ours_ok, o.ours_reason = score_ours(o, q, lib.refs, threshold)
        if o.ours_ok_native and not o.ours_ok and not q.negative:
            o.ours_reason = o.ours_reason or reason_native
        o.loc_errors = loc_errors(o, q, lib.refs, threshold)
        if not q.negative:
            o.wrong_refs = sorted({m.ref for m in o.found
                                   if m.strength > threshold and wrong_match(m, q.truth, lib.refs)})
        if vp.on:
            o.vpdq_ok, o.vpdq_reason = score_vpdq(o, q, lib.refs)

    # For information: the threshold had wrong matches on positives counted as false matches too.
    wrong_t, wrong_o, wrong_m = strongest_wrong(outcomes, by_name, lib.refs)
    strict_t = max(threshold, wrong_t)
    strict_ok = sum(score_ours(o, by_name[o.name], lib.refs, strict_t)[0]
                    for o in outcomes if not by_name[o.name].negative)

    million = million_row(work, lib, vp, vlib, strength) if args.million else None
    total_s = time.perf_counter() - t_start

    fam_rows = list(fams)
    print()
    print("provenance robustness (real footage; bench/README.md, Robustness)")
    print("=" * 66)
    m = machine()
    print(f"machine: {m['cpu']}, {m['nproc']} CPUs, {m['os']}; Python {m['python']}, numpy {m['numpy']}, "
          f"OpenCV {m['opencv']}; {m['ffmpeg']}")
    print(f"code: {git_state()}; vPDQ: {('vpdq ' + vp.version) if vp.on else 'not run: ' + vp.reason}")
    print(f"library: {', '.join(lib.refs)}; {lib.frames:,} frame-hash rows")
    print(f"mode: {'quick' if args.quick else 'full'}; {len(positives)} positive queries, {len(negatives)} negatives")
    print()
    print(table(outcomes, fam_rows, vp, threshold, million))
    print()
    if worst is not None:
        print(f"threshold (strength = {strength_name}): {threshold:g}, set by the strongest negative match: "
              f"{worst.name} -> {worst.found[0].ref}. A positive counts only above it.")
    else:
        print(f"threshold (strength = {strength_name}): none needed, no negative matched anything "
              "(the matcher's own rule gives zero false matches).")
    wrong = [o for o in outcomes if o.wrong_refs]
    if wrong:
        print(f"positives with a wrong match besides (footage not in the query, above the threshold): {len(wrong)}: "
              f"{', '.join(f'{o.name} -> {o.wrong_refs}' for o in wrong[:8])}{' ...' if len(wrong) > 8 else ''}")
        n_pos = sum(1 for q in allq if not q.negative)
        print(f"  strongest: {wrong_m.ref} (strength {wrong_t:g}, similarity {wrong_m.similarity:g}, speed "
              f"{wrong_m.speed:g}) in {wrong_o.name}; with the threshold above it too ({strict_t:g}), ours "
              f"recall would be {pct(strict_ok, n_pos)}")
    print("Recall (ours): the right reference is the top match AND every true segment is placed within "
          f"{TOLERANCE_S:g} s (query and reference start and end). vPDQ gives no time offsets: it is credited for "
          "identification only (right reference first in best_matches and is_match at Meta's defaults: >= 80% of "
          "query frames within distance 31, 1 hash/s). Loc. error = mean |error| of the 4 segment ends, over "
          "true segments found. s/query: ours = the whole in-process check (decode + hash + library load + "
          "match); vPDQ = vpdq.computeHash + best_matches.")
    if million and "error" not in million:
        print(f"1M row: ours = {million['frames']:,} frame-hash rows (the library + random 64-bit filler, "
              f"check_speed.build_library), median of 3 checks of a 10-s 720p query ({million['query']}); "
              + (f"vPDQ = {million['vpdq_rows']:,} 256-bit features (the library + random filler), median of 3 "
                 f"best_matches + the query's hashing ({million['vpdq_hash_s']:.2f} s). " if "vpdq_s" in million
                 else "")
              + "Random filler loads the search like real hashes but gives no near-miss candidates.")
    print()
    fails = [o for o in outcomes if o.ours_ok is False]
    if fails:
        print("Ours, failing queries (at the threshold):")
        for o in fails:
            print(f"  {o.family:13s} {o.strength:22s} {o.source:24s} {o.ours_reason}")
    vfails = [o for o in outcomes if o.vpdq_ok is False]
    if vfails:
        print(f"vPDQ, failing queries: {len(vfails)} (details in robustness.json)")
    print()
    print(f"time: {total_s / 60:.1f} min in all (making queries {make_s:.0f} s, checking {run_s:.0f} s"
          + (f", library built in {lib.built_s:.0f} s" if lib.built_s else ", library reused") + ")")
    result = {"machine": m, "code": git_state(), "mode": "quick" if args.quick else "full", "families": list(fams),
              "threshold": threshold, "strength": strength_name,
              "threshold_set_by": worst.name if worst else None, "vpdq": vp.version or vp.reason,
              "library": {n: {"file": str(p), "pieces": [asdict(x) for x in lib.refs[n].pieces],
                              "note": lib.refs[n].note} for n, p in lib.files.items()},
              "million": million, "seconds": {"total": total_s, "make_queries": make_s, "checks": run_s},
              "queries": [asdict(o) for o in outcomes]}
    out_json = work / "robustness.json"
    out_json.write_text(json.dumps(result, indent=1, default=str))
    print(f"details: {out_json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(1)
