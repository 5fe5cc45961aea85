"""Ingest throughput: hours of 720p footage ingested per hour of wall time, `provenance ingest DIR` with
1 and 2 workers.

    python bench/ingest_speed.py                        # 8 clips x 45 s, workers 1 and 2
    python bench/ingest_speed.py --clips 12 --seconds 60 --workers 1,2 --repeat 2

1. The footage (made once, kept in bench/data/ingest720, gitignored): `--clips` files of `--seconds` s,
   1280x720, 30 fps, H.264 (libx264 -preset veryfast -crf 23, yuv420p, no audio), each a loop of one
   of samples/bigbuckbunny.mp4, bikes.mp4, carphone_pristine.mp4 scaled and padded to 720p, with a
   different hue per file so that every file is distinct footage (and a distinct SHA-256).
2. For each worker count: a fresh SQLite library and evidence store in a temporary folder, then the CLI
   as a subprocess, `provenance ingest DIR --workers N --quiet --db URL` (Python start-up, the pool's
   start-up, SHA-256, the copy into the evidence store, probe, decode + hash at 4 frames/s in 3 views,
   and the database writes all included). Wall time and CPU time (user + sys of the process and its
   children).
3. For scale: ffmpeg decoding the same files one after the other (`ffmpeg -i f -f null -`, its default
   threads), the decode alone.
Output: footage hours per wall-clock hour for each, and the speed-up of 2 workers over 1.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from scale import machine  # noqa: E402

SAMPLES = REPO / "samples"
SOURCES = (SAMPLES / "bigbuckbunny.mp4", SAMPLES / "bikes.mp4", SAMPLES / "carphone_pristine.mp4")
DATA = REPO / "bench" / "data" / "ingest720"


def make_footage(clips: int, seconds: float) -> list[Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(clips):
        path = DATA / f"clip{i:03d}_{seconds:g}s.mp4"
        if not path.exists():
            src = SOURCES[i % len(SOURCES)]
            tmp = path.with_suffix(".part.mp4")
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(src),
                            "-t", f"{seconds}", "-vf",
                            "scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,"
                            f"setsar=1,hue=h={i * 27 % 360},format=yuv420p", "-r", "30", "-c:v", "libx264",
                            "-preset", "veryfast", "-crf", "23", "-an", str(tmp)], check=True)
            tmp.rename(path)
        out.append(path)
    return out


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def duration(path: Path) -> float:
    cp = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                        capture_output=True, text=True, check=True)
    return float(cp.stdout)


def cli() -> list[str]:
    script = Path(sys.executable).with_name("provenance")
    return [str(script)] if script.exists() else [sys.executable, "-m", "provenance.cli"]


def run_ingest(folder: Path, workers: int) -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as work:
        env = dict(os.environ, PROVENANCE_STORE=str(Path(work) / "evidence"), PROVENANCE_HOME=work)
        c0, t0 = children_cpu(), time.perf_counter()
        cp = subprocess.run([*cli(), "ingest", str(folder), "--workers", str(workers), "--quiet",
                             "--db", f"sqlite:///{work}/library.db"], capture_output=True, text=True, env=env)
        wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    if cp.returncode != 0:
        sys.exit(f"ingest failed ({cp.returncode}): {cp.stderr[-2000:]}")
    return wall, cpu, cp.stdout.splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=1, help="rounds per worker count (the best is shown)")
    args = ap.parse_args(argv)

    files = make_footage(args.clips, args.seconds)
    footage = sum(duration(f) for f in files)
    with tempfile.TemporaryDirectory(prefix="ingest-folder-") as tmp:
        folder = Path(tmp) / "archive"
        folder.mkdir()
        for f in files:  # only this run's files, whatever else bench/data holds
            os.link(f, folder / f.name) if f.stat().st_dev == folder.stat().st_dev else shutil.copy(f, folder)
        print(f"machine: {machine()}")
        print(f"load average at start: {os.getloadavg()}")
        print(f"footage: {len(files)} files, {footage / 60:.1f} min of 1280x720 30 fps H.264 "
              f"({sum(f.stat().st_size for f in files) / 2**20:.0f} MB)")
        rows = []
        c0, t0 = children_cpu(), time.perf_counter()
        for f in files:
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(f), "-f", "null", "-"], check=True)
        rows.append(("ffmpeg decode alone, one file after another", time.perf_counter() - t0, children_cpu() - c0, ""))
        for workers in [int(w) for w in args.workers.split(",")]:
            best = min((run_ingest(folder, workers) for _ in range(args.repeat)), key=lambda r: r[0])
            rows.append((f"provenance ingest DIR --workers {workers}", *best))
        print(f"load average at end: {os.getloadavg()}")
    print()
    print("| run | wall s | CPU s | footage h per wall h | summary |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, wall, cpu, summary in rows:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {footage / wall:.1f} | {summary.split(';')[0]} |")
    ingests = [r for r in rows if r[0].startswith("provenance")]
    if len(ingests) >= 2:
        print(f"\nspeed-up, {ingests[-1][0].split()[-1]} workers over {ingests[0][0].split()[-1]}: "
              f"{ingests[0][1] / ingests[-1][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
