"""Speed benchmark: `provenance check` of a 28-s 1280x720 H.264 clip against >= 100,000 frame hashes,
beside the time ffmpeg alone needs to decode the same clip. Goal: the whole check within 1.5x of it.

    python bench/check_speed.py                   # 100,000 hashes, median of 3
    python bench/check_speed.py --frames 1000000 --repeat 5 --workdir /tmp/bench --keep

What it does (see bench/README.md):
  1. makes the query clip from samples/ with ffmpeg (Big Buck Bunny + letterboxed "bikes", alternating,
     cut to 28 s, 1280x720, 30 fps, libx264 -preset medium -crf 23, yuv420p, no audio);
  2. builds a fresh SQLite library in the work folder: samples/bigbuckbunny.mp4 and samples/bikes.mp4
     ingested with pipeline.ingest (so the check has real matches to find), then filled up to N frame
     hashes with RANDOM 64-bit filler hashes (bulk insert through SQLAlchemy Core);
  3./4. after one untimed warm-up round, R interleaved rounds of: `ffmpeg -i clip -f null -` (decode
     only), pipeline.check(record=False) in-process, the CLI `provenance check CLIP --no-record --json
     --db URL` as a subprocess, and the CLI's start-up alone (`provenance --version`); medians are shown.
     Then each step of the check on its own (fetch, probe, fingerprint, OpenCV decode alone, library
     load, match) and the import time of one CLI check (python -X importtime);
  5. prints the machine, the clip, the library and the times, and the ratios check/decode.

Filler hashes are random, not hashes of real footage. For the search that costs the same: the matcher
XORs and popcounts every query hash against every library row whatever the bits are. What random
filler does not reproduce is near-miss candidates: real footage of similar scenes would give more
(query, library) pairs within the distance threshold, and so more alignment work, than random bits do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
BBB = SAMPLES / "bigbuckbunny.mp4"  # 1280x720, 25 fps, 5.3 s
BIKES = SAMPLES / "bikes.mp4"  # 640x272, 25 fps, 10 s

CLIP_SECONDS = 28.0
CLIP_W, CLIP_H, CLIP_FPS = 1280, 720, 30
GOAL_RATIO = 1.5
FILLER_CLIP_FRAMES = 1_000  # filler frames per filler clip (250 s at 4 fps)
FILLER_BATCH_CLIPS = 100  # filler clips per INSERT batch
SEED = 20241019


# --- helpers -------------------------------------------------------------------------------------


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, **kw)
    except subprocess.CalledProcessError as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        sys.exit(f"command failed ({e.returncode}): {' '.join(cmd)}\n{err[-2000:]}")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def ffprobe_json(path: Path) -> dict[str, Any]:
    cp = run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
             capture_output=True, text=True)
    return json.loads(cp.stdout)


def duration_of(path: Path) -> float:
    return float(ffprobe_json(path)["format"]["duration"])


# --- 1. the clip ---------------------------------------------------------------------------------


def make_clip(out: Path) -> None:
    """Big Buck Bunny (already 1280x720) and bikes (640x272, scaled and letterboxed to 1280x720),
    alternating until 28 s, re-encoded as one 30 fps H.264 stream."""
    parts: list[Path] = []
    total = 0.0
    while total < CLIP_SECONDS:
        src = BBB if len(parts) % 2 == 0 else BIKES
        parts.append(src)
        total += duration_of(src)
    inputs: list[str] = []
    chains: list[str] = []
    for i, src in enumerate(parts):
        inputs += ["-i", str(src)]
        chains.append(
            f"[{i}:v]fps={CLIP_FPS},scale={CLIP_W}:{CLIP_H}:force_original_aspect_ratio=decrease,"
            f"pad={CLIP_W}:{CLIP_H}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[v{i}]")
    graph = ";".join(chains) + ";" + "".join(f"[v{i}]" for i in range(len(parts))) + \
        f"concat=n={len(parts)}:v=1:a=0[out]"
    run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]",
         "-t", f"{CLIP_SECONDS}", "-r", str(CLIP_FPS), "-c:v", "libx264", "-preset", "medium", "-crf", "23",
         "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-an", str(out)])


def with_sound(clip: Path) -> Path:
    """The clip with sound: Big Buck Bunny's sample's soundtrack looped under it (the video copied)."""
    out = clip.with_name(clip.stem + "_audio.mp4")
    if not out.exists():
        run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-stream_loop", "-1", "-i", str(BBB), "-map", "0:v",
             "-map", "1:a", "-t", f"{CLIP_SECONDS}", "-c:v", "copy", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
             "-movflags", "+faststart", str(out)])
    return out


# --- 2. the library ------------------------------------------------------------------------------


def build_library(db_url: str, store_dir: Path, n_frames: int, seed: int) -> dict[str, Any]:
    from sqlalchemy import func, insert, select

    from provenance import pipeline
    from provenance.db import connect, ensure_schema, repository
    from provenance.db import models as orm
    from provenance.settings import Settings

    settings = Settings(db_url=db_url, store_dir=store_dir)
    # The real references, ingested the normal way: posted long ago, so the check's verdict is "reused".
    real = []
    for src, when in ((BBB, datetime(2008, 5, 30, tzinfo=UTC)), (BIKES, datetime(2015, 3, 1, tzinfo=UTC))):
        res = pipeline.ingest(str(src), settings=settings, post_url=f"https://example.org/{src.stem}", posted_at=when)
        real.append((src.name, res.clip.usable_frames))

    engine = connect(db_url)
    ensure_schema(engine)
    with engine.connect() as conn:
        have = conn.scalar(select(func.count()).select_from(orm.Frame.__table__)) or 0
    filler = max(0, n_frames - have)

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    now = datetime.now(UTC) - timedelta(days=1)
    whole, rest = divmod(filler, FILLER_CLIP_FRAMES)
    sizes = [FILLER_CLIP_FRAMES] * whole + ([rest] if rest else [])
    with engine.begin() as conn:
        for start in range(0, len(sizes), FILLER_BATCH_CLIPS):  # batches bound memory on large libraries
            batch = sizes[start:start + FILLER_BATCH_CLIPS]
            clip_rows = [dict(
                sha256=secrets.token_hex(32), size_bytes=10_000_000, evidence_path=None, container="mov,mp4",
                duration_s=k / 4.0, width=1280, height=720, fps=30.0, video_codec="h264", has_audio=False,
                probe={"filler": True}, sample_fps=4.0, hash_algo=repository.HASH_ALGO, content_left=0.0,
                content_top=0.0, content_right=1.0, content_bottom=1.0, usable_frames=k, first_observed_at=now)
                for k in batch]
            conn.execute(insert(orm.Clip.__table__), clip_rows)
            ids = dict(conn.execute(select(orm.Clip.sha256, orm.Clip.id)
                                    .where(orm.Clip.sha256.in_([r["sha256"] for r in clip_rows]))).all())
            # Random 64-bit hashes, stored as the signed int64 the repository writes.
            hashes = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=sum(batch), dtype=np.int64,
                                  endpoint=True).tolist()
            frame_rows = []
            pos = 0
            for row, k in zip(clip_rows, batch):
                cid = ids[row["sha256"]]
                frame_rows += [{"clip_id": cid, "t": j / 4.0, "phash": hashes[pos + j], "quality": 1.0}
                               for j in range(k)]
                pos += k
            conn.execute(insert(orm.Frame.__table__), frame_rows)
    fill_s = time.perf_counter() - t0
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(orm.Frame.__table__)) or 0
        clips = conn.scalar(select(func.count()).select_from(orm.Clip.__table__)) or 0
    engine.dispose()
    return {"real": real, "filler_frames": filler, "filler_clips": len(sizes), "frames": total, "clips": clips,
            "fill_s": fill_s}


# --- 3./4. timings -------------------------------------------------------------------------------


class Clock:
    """Wall time and CPU time (this process, all its threads, plus waited-for children) of one call."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __call__(self, fn: Callable[[], Any]) -> Any:
        c0, k0, w0 = time.process_time(), _children_cpu(), time.perf_counter()
        out = fn()
        self.wall.append(time.perf_counter() - w0)
        self.cpu.append(time.process_time() - c0 + _children_cpu() - k0)
        return out

    @property
    def med(self) -> float:
        return statistics.median(self.wall)

    @property
    def med_cpu(self) -> float:
        return statistics.median(self.cpu)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def decode_cmd(clip: Path) -> list[str]:
    return ["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-f", "null", "-"]


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("provenance")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from provenance.cli import main; main()"]


def cli_env(work: Path, store_dir: Path) -> dict[str, str]:
    env = dict(os.environ, PROVENANCE_HOME=str(work / "home"), PROVENANCE_STORE=str(store_dir),
               # Byte-code cached as on a normal install (this sandbox sets PYTHONDONTWRITEBYTECODE),
               # but kept in the work folder rather than written next to the sources.
               PYTHONPYCACHEPREFIX=str(work / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def time_rounds(clip: Path, db_url: str, store_dir: Path, work: Path, repeat: int) -> dict[str, Any]:
    """One untimed warm-up round, then `repeat` rounds of: ffmpeg decode, in-process check, CLI check,
    CLI start-up alone. Interleaved, so a busy neighbour slows all of them alike rather than one."""
    from provenance import pipeline
    from provenance.settings import Settings

    settings = Settings(db_url=db_url, store_dir=store_dir)
    env = cli_env(work, store_dir)
    cli = [*cli_command(), "check", str(clip), "--no-record", "--json", "--quiet", "--db", db_url]
    clocks = {k: Clock() for k in ("decode", "check", "cli", "startup")}
    jobs = {
        "decode": lambda: run(decode_cmd(clip)),
        "check": lambda: pipeline.check(str(clip), settings=settings, record=False),
        "cli": lambda: run(cli, env=env, capture_output=True, text=True),
        "startup": lambda: run([*cli_command(), "--version"], env=env, capture_output=True),
    }
    out: dict[str, Any] = {k: job() for k, job in jobs.items()}  # warm-up
    for i in range(repeat):
        for name in jobs:
            out[name] = clocks[name](jobs[name])
        print(f"  round {i + 1}/{repeat}: " + ", ".join(f"{k} {c.wall[-1]:.2f} s" for k, c in clocks.items()),
              flush=True)
    return {"clocks": clocks, "result": out["check"], "cli_json": json.loads(out["cli"].stdout)}


def _grab_all(path: Path) -> int:
    """What fingerprint's decode alone costs: every frame grabbed (decoded), none converted or hashed."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def import_costs(clip: Path, db_url: str, store_dir: Path, work: Path) -> tuple[float, list[tuple[str, float]]]:
    """Seconds a CLI check spends importing modules (python -X importtime), in all and per top-level package.
    Lazy imports made during the check (on first use) count too."""
    env = dict(cli_env(work, store_dir), PYTHONPROFILEIMPORTTIME="1")
    cmd = [*cli_command(), "check", str(clip), "--no-record", "--json", "--quiet", "--db", db_url]
    err = run(cmd, env=env, capture_output=True, text=True).stderr
    by_root: dict[str, float] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, _cum, name = (part.strip() for part in line.replace("import time:", "|", 1).split("|"))
        root = name.split(".")[0]
        by_root[root] = by_root.get(root, 0.0) + int(self_us) / 1e6
    return sum(by_root.values()), sorted(by_root.items(), key=lambda kv: -kv[1])


def time_steps(clip: Path, db_url: str, store_dir: Path, repeat: int) -> dict[str, Clock]:
    """Each step of pipeline.check on its own, as pipeline.analyse/check call them (one warm-up each)."""
    from provenance.db import connect, ensure_schema, repository, session_scope
    from provenance.fetch import fetch
    from provenance.frames import MIN_QUALITY, fingerprint
    from provenance.match import find_matches, query_frames
    from provenance.probe import probe

    def measure(fn: Callable[[], Any]) -> tuple[Clock, Any]:
        clock, out = Clock(), fn()
        for _ in range(repeat):
            out = clock(fn)
        return clock, out

    def open_db():
        engine = connect(db_url)
        ensure_schema(engine)
        return engine

    steps: dict[str, Clock] = {}
    steps["open db + schema check"], engine = measure(open_db)
    steps["fetch (sha256, in store)"], media = measure(lambda: fetch(str(clip), store_dir=store_dir))
    steps["probe (ffprobe)"], info = measure(lambda: probe(media.path))
    steps["fingerprint (decode+hash)"], fp = measure(
        lambda: fingerprint(media.path, duration_s=info.duration_s, query=True))
    steps["  of which OpenCV decode"], _ = measure(lambda: _grab_all(media.path))

    def load():
        with session_scope(engine) as session:
            return repository.load_reference_frames(session=session, min_quality=MIN_QUALITY)

    steps["load library (SQLite)"], library = measure(load)
    query = query_frames(fp, min_quality=MIN_QUALITY)
    steps["match (find_matches)"], _ = measure(lambda: find_matches(query, library, query_sha256=media.sha256))
    engine.dispose()
    return steps


# --- 5. report -----------------------------------------------------------------------------------


def machine() -> list[tuple[str, str]]:
    import cv2

    ff = run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = f"{cpu} / {line.split(':', 1)[1].strip()}"
                break
    except OSError:
        pass
    nproc = run(["nproc"], capture_output=True, text=True).stdout.strip() if shutil.which("nproc") else str(os.cpu_count())
    return [("cpu", cpu), ("nproc", nproc), ("os", platform.platform()),
            ("python", platform.python_version()), ("numpy", np.__version__),
            ("opencv", f"{cv2.__version__} (cv2.getNumThreads()={cv2.getNumThreads()})"), ("ffmpeg", ff)]


def verdict(ratio: float) -> str:
    return "PASS" if ratio <= GOAL_RATIO else "MISS"


def runs(clock: Clock) -> str:
    return ", ".join(f"{t:.2f}" for t in clock.wall)


def sha12(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100_000, help="library size in frame hashes (default 100000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement; the median is shown (default 3)")
    ap.add_argument("--workdir", type=Path, help="work folder (default: a new temporary folder); a clip made "
                                                 "there by an earlier run is reused, the database is rebuilt")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder (clip, database, store)")
    ap.add_argument("--seed", type=int, default=SEED, help="seed for the random filler hashes")
    ap.add_argument("--audio", action="store_true",
                    help="give the clip sound (Big Buck Bunny's sample, looped; AAC 128 kbit/s stereo), so the check "
                         "also fingerprints and matches audio (bench/audio.py --cost compares with and without)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if args.frames < 0:
        ap.error("--frames must be >= 0")
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            print(f"{tool} not found; install ffmpeg", file=sys.stderr)
            return 2

    made_tmp = args.workdir is None
    work = Path(tempfile.mkdtemp(prefix="provenance-bench-")) if made_tmp else args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "clip_28s_720p.mp4"
    db_file = work / "library.db"
    store = work / "evidence"
    db_file.unlink(missing_ok=True)
    shutil.rmtree(store, ignore_errors=True)
    db_url = f"sqlite:///{db_file}"
    try:
        print(f"work folder: {work}", flush=True)
        if clip.exists() and abs(duration_of(clip) - CLIP_SECONDS) < 0.1:
            print(f"reusing {clip.name}", flush=True)
        else:
            print("making the 28-s 1280x720 clip (libx264 -preset medium -crf 23)...", flush=True)
            make_secs, _ = timed(lambda: make_clip(clip))
            print(f"  made in {make_secs:.1f} s", flush=True)
        if args.audio:
            clip = with_sound(clip)
        meta = ffprobe_json(clip)
        v = next(s for s in meta["streams"] if s["codec_type"] == "video")
        clip_facts = (f"{float(meta['format']['duration']):.2f} s, {v['width']}x{v['height']}, {v['codec_name']} "
                      f"{v.get('profile', '')}, {v['r_frame_rate']} fps, {v.get('nb_frames', '?')} frames, "
                      f"{int(meta['format']['bit_rate']) / 1e6:.2f} Mb/s, {clip.stat().st_size / 1e6:.1f} MB, "
                      + ("AAC sound" if args.audio else "no audio"))
        print(f"  {clip_facts}", flush=True)

        print(f"building the library ({args.frames:,} frame hashes)...", flush=True)
        lib = build_library(db_url, store, args.frames, args.seed)
        print(f"  {lib['frames']:,} frame hashes in {lib['clips']} clips; "
              f"{lib['filler_frames']:,} random filler hashes inserted in {lib['fill_s']:.1f} s", flush=True)

        print(f"timing decode / check / CLI / CLI start-up, interleaved (1 warm-up + {args.repeat} rounds)...",
              flush=True)
        timing = time_rounds(clip, db_url, store, work, args.repeat)
        print(f"timing each step of the check (1 warm-up + {args.repeat} each)...", flush=True)
        steps = time_steps(clip, db_url, store, args.repeat)
        imports_s, imports_top = import_costs(clip, db_url, store, work)
    finally:
        if made_tmp and not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    clocks, result, cli_json = timing["clocks"], timing["result"], timing["cli_json"]
    names = {sha12(src): src.name for src in (BBB, BIKES)}
    found = "; ".join(f"{names.get(m.sha256[:12], m.sha256[:12])} ({m.matched_frames} frames, "
                      f"query cov {m.query_coverage:.0%})" for m in result.matches) or "none"
    cli_matches = len(cli_json.get("matches", [])) if isinstance(cli_json, dict) else "?"
    dec, chk, cli, startup = (clocks[k] for k in ("decode", "check", "cli", "startup"))

    rows: list[tuple[str, str]] = []
    rows += machine()
    rows += [("clip", clip_facts),
             ("library", f"{lib['frames']:,} frame hashes in {lib['clips']} clips (SQLite): "
                         + " + ".join(f"{n} ({k})" for n, k in lib["real"])
                         + f" real + {lib['filler_frames']:,} RANDOM filler in {lib['filler_clips']} clips"),
             ("check result", f"verdict {result.verdict}, {result.clip.usable_frames} query frames, matches: {found}; "
                              f"CLI JSON: {cli_matches} matches")]
    rows.append(("", f"{'wall s':>7} {'CPU s':>7}   runs (wall s)"))
    for label, c in (("ffmpeg decode", dec), ("check in-process", chk), ("check CLI subprocess", cli),
                     ("  CLI start-up alone", startup)):
        rows.append((label, f"{c.med:7.2f} {c.med_cpu:7.2f}   {runs(c)}"))
    rows.append(("  imports in a CLI check", f"{imports_s:7.2f}           "
                 + ", ".join(f"{k} {v:.2f}" for k, v in imports_top[:6]) + " (-X importtime self times; the profiler inflates them)"))
    step_sum = sum(c.med for name, c in steps.items() if not name.startswith(" "))
    for name, c in steps.items():
        rows.append((f"  step: {name}", f"{c.med:7.3f} {c.med_cpu:7.3f}   {c.med / step_sum:4.0%} of steps"))
    rows.append(("  steps summed", f"{step_sum:7.2f}"))
    r_in, r_cli = chk.med / dec.med, cli.med / dec.med
    rows += [("ratio in-process/decode", f"{r_in:.2f}x   goal <= {GOAL_RATIO}x   {verdict(r_in)}"),
             ("ratio CLI/decode", f"{r_cli:.2f}x   goal <= {GOAL_RATIO}x   {verdict(r_cli)}")]

    width = max(len(k) for k, _ in rows)
    print()
    print("provenance check speed")
    print("=" * 22)
    for k, val in rows:
        print(f"{k:<{width}}  {val}")
    print()
    print(f"Wall-clock medians of {args.repeat} rounds after one untimed warm-up round (so imports, the OS file\n"
          "cache and the copy into the evidence store are not counted in-process; the CLI figure includes\n"
          "Python start-up and imports, with byte-code cached). CPU = user+sys of the process's threads and\n"
          "children. Decode = `ffmpeg -i clip -f null -` with ffmpeg's default threads.\n"
          "Filler hashes are random 64-bit values, not real footage: they load the search exactly like\n"
          "real hashes (XOR + popcount over every row whatever the bits) but give almost no near-miss\n"
          "candidates, so the alignment work is only what the two real references cause.")
    if made_tmp and not args.keep:
        print("(work folder removed; use --keep or --workdir to keep it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
