"""Audit speed: posts per minute of `provenance audit` over a local RSS feed of 20 clips, 1 worker against 4.

    python bench/audit_speed.py                        # 20 posts, workers 1 and 4, 2 rounds each
    python bench/audit_speed.py --posts 40 --workers 1 2 4 --repeat 3 --workdir /tmp/abench --keep

What it does (see bench/README.md, "Audit speed"):
  1. makes N short clips from samples/ with ffmpeg: 5-s windows of bigbuckbunny.mp4, bikes.mp4 and
     carphone_pristine.mp4, each scaled to 640x360 (padded to keep the aspect), some mirrored or cropped,
     libx264 -preset veryfast -crf 26, 25 fps, no audio: an account that reposts its own footage;
  2. writes an RSS 2.0 feed of N posts, each a page naming its clip in og:video, and serves the folder
     with `python -m http.server` on 127.0.0.1 in its own process (so serving takes no time from the
     audit's own threads);
  3. for each worker count, in R interleaved rounds: a fresh SQLite library and evidence store, then
     `provenance.audit.audit(FEED, options=AuditOptions(workers=W, sleep_s=0))` in-process, timed from
     the listing to the last recorded post (library opening and listing included);
  4. prints the machine, the inputs and, per worker count, the median wall time, CPU time (user+sys of
     this process; ffprobe children included), posts per minute and the speed-up over the first count.

Downloads come from the loopback interface, so this measures the audit's own work (fetch bookkeeping,
probe, decode and hashing, matching, recording) and how well workers overlap it, not a real site's
network. `--sleep 0` removes the per-site pause a real audit keeps (1 s by default).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
# (sample, its length in seconds): windows of CLIP_SECONDS are cut from these.
SOURCES = [(SAMPLES / "bigbuckbunny.mp4", 5.3), (SAMPLES / "bikes.mp4", 10.0), (SAMPLES / "carphone_pristine.mp4", 4.0)]
# Picture changes a reposting account makes, in turn.
LOOKS = ["", "hflip,", "crop=iw*0.8:ih*0.8,", ""]
CLIP_SECONDS = 5.0
W, H, FPS = 640, 360, 25


def make_clips(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(n):
        src, length = SOURCES[i % len(SOURCES)]
        start = (i // len(SOURCES)) * 1.5 % max(length - CLIP_SECONDS, 0.1) if length > CLIP_SECONDS else 0.0
        out = folder / f"post{i:03d}.mp4"
        if not out.exists():
            vf = (f"{LOOKS[i % len(LOOKS)]}scale={W}:{H}:force_original_aspect_ratio=decrease,"
                  f"pad={W}:{H}:(ow-iw)/2:(oh-ih)/2:black,fps={FPS}")
            subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", f"{start:.2f}", "-i", str(src),
                            "-t", str(CLIP_SECONDS), "-vf", vf, "-c:v", "libx264", "-preset", "veryfast",
                            "-crf", "26", "-pix_fmt", "yuv420p", "-an", str(out)], check=True)
        clips.append(out)
    return clips


def write_feed(folder: Path, base: str, clips: list[Path]) -> str:
    t0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
    items = []
    for i, clip in enumerate(clips):
        page = folder / f"{clip.stem}.html"
        page.write_text(f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{clip.stem}</title>
<meta property="og:title" content="{clip.stem}"><meta property="og:type" content="video.other">
<meta property="og:video" content="{base}/{clip.name}"><meta property="og:video:type" content="video/mp4">
</head><body></body></html>""", encoding="utf-8")
        when = format_datetime(t0 + timedelta(days=i), usegmt=True)
        items.append(f"<item><title>{clip.stem}</title><link>{base}/{page.name}</link><pubDate>{when}</pubDate></item>")
    (folder / "feed.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>bench</title>'
        f"<link>{base}/</link><description>bench</description>{''.join(reversed(items))}</channel></rss>",
        encoding="utf-8")
    return f"{base}/feed.xml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}"


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def one_audit(feed: str, workdir: Path, workers: int) -> tuple[float, float, dict[str, int]]:
    from provenance.audit import AuditOptions, audit
    from provenance.settings import Settings

    run_dir = workdir / f"run-w{workers}"
    shutil.rmtree(run_dir, ignore_errors=True)
    settings = Settings(db_url=f"sqlite:///{run_dir / 'library.db'}", store_dir=run_dir / "evidence")
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    result = audit(feed, settings=settings, options=AuditOptions(workers=workers, sleep_s=0.0))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    outcomes: dict[str, int] = {}
    for i in result.items:
        key = i.verdict or i.state
        outcomes[key] = outcomes.get(key, 0) + 1
    return wall, cpu, outcomes


def machine() -> list[tuple[str, str]]:
    import cv2
    import numpy as np

    ff = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    cpu = platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return [("cpu", cpu), ("cores", str(os.cpu_count())), ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
            ("os", platform.platform()), ("python", platform.python_version()), ("numpy", np.__version__),
            ("opencv", f"{cv2.__version__} (cv2.getNumThreads()={cv2.getNumThreads()})"), ("ffmpeg", ff)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=20, help="posts in the feed (default 20)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 4], help="worker counts to compare (default 1 4)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds per worker count; medians are shown (default 2)")
    ap.add_argument("--workdir", type=Path, help="where clips, feed and libraries go (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="audit-bench-"))
    www = workdir / "www"
    print("machine (shared: other jobs may run beside this one)")
    for k, v in machine():
        print(f"  {k:<22} {v}")
    clips = make_clips(www, args.posts)
    server, base = serve(www)
    try:
        feed = write_feed(www, base, clips)
        print(f"inputs: RSS 2.0 feed of {len(clips)} posts on 127.0.0.1 (python -m http.server), each a page with "
              f"og:video -> a {CLIP_SECONDS:.0f}-s {W}x{H} {FPS}-fps H.264 clip cut from samples/ "
              f"(bigbuckbunny, bikes, carphone; some mirrored or cropped); fresh SQLite library per run; --sleep 0")
        walls: dict[int, list[float]] = {w: [] for w in args.workers}
        cpus: dict[int, list[float]] = {w: [] for w in args.workers}
        found: dict[int, dict[str, int]] = {}
        one_audit(feed, workdir, args.workers[0])  # warm-up: imports, OS file cache
        for _ in range(args.repeat):
            for w in args.workers:  # interleaved, so a busy neighbour slows every count alike
                wall, cpu, outcomes = one_audit(feed, workdir, w)
                walls[w].append(wall)
                cpus[w].append(cpu)
                found[w] = outcomes
    finally:
        server.terminate()
        server.wait(timeout=10)
    first = statistics.median(walls[args.workers[0]])
    print()
    print(f"| workers | wall s (median of {args.repeat}) | runs | CPU s | posts/min | speed-up | outcomes |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | --- |")
    for w in args.workers:
        wall = statistics.median(walls[w])
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(found[w].items()))
        print(f"| {w} | {wall:.1f} | {', '.join(f'{x:.1f}' for x in walls[w])} | {statistics.median(cpus[w]):.1f} "
              f"| {len(clips) / wall * 60:.0f} | {first / wall:.2f}x | {outcomes} |")
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
