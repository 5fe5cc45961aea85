"""Workers: audit posts per minute and ingest hours of footage per hour with 1, 2 and 4 `provenance
worker` processes on one PostgreSQL library, and the CPU each worker used.

    python bench/workers.py                                  # 16 posts, 16 files, workers 1 2 4
    python bench/workers.py --posts 40 --files 40 --workers 1 2 4 8 --workdir /tmp/wbench --keep

What it does (see bench/README.md, "Workers"):
  1. makes N 5-s 640x360 clips as bench/audit_speed.py does, writes an RSS feed of them and serves
     the folder on 127.0.0.1 (python -m http.server, its own process);
  2. starts a throwaway PostgreSQL as the tests do (tests/conftest_pg.py), or uses --pg URL;
  3. for each worker count W, on a fresh database (`db upgrade`, which creates the job queue):
     starts W `provenance worker --concurrency 1` processes (one per "machine", each with its own
     index cache folder), waits until each has registered, then
     - audit: `provenance audit FEED --queue --sleep 0 --detach`, timed until no post is pending;
     - ingest: a folder of the same N clips under new names (new SHA-256s: a few bytes appended to
       each MP4 are ignored by decoders), `ingest DIR --queue --detach`, timed until every job ended;
     then stops the workers (SIGTERM) and reads each one's CPU time (user + sys, its ffprobe children
     included) from wait4;
  4. prints, per W: wall time, posts per minute, hours of footage ingested per hour, each worker's
     CPU seconds, and the rows written per checked post (for the projection in bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from audit_speed import CLIP_SECONDS, machine, make_clips, serve, write_feed  # noqa: E402
from sqlalchemy import text  # noqa: E402

from provenance.db import connect, repository, session_scope  # noqa: E402
from provenance.settings import Settings  # noqa: E402


def provenance(*args: str, env: dict[str, str]) -> str:
    cp = subprocess.run([sys.executable, "-m", "provenance.cli", *args], env=env, capture_output=True, text=True)
    if cp.returncode != 0:
        raise SystemExit(f"provenance {' '.join(args)} failed: {cp.stderr[-2000:]}")
    return cp.stdout + cp.stderr


def start_workers(n: int, env: dict[str, str], workdir: Path) -> list[subprocess.Popen]:
    procs = []
    for i in range(n):
        log = open(workdir / f"worker{i}.log", "wb")  # noqa: SIM115 - lives as long as the worker
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "provenance.cli", "worker", "--concurrency", "1"],
            env={**env, "XDG_CACHE_HOME": str(workdir / f"cache{i}")}, stdout=log, stderr=subprocess.STDOUT))
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> list[float]:
    """SIGTERM each worker and return the CPU seconds each used (its children included)."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    cpu = []
    for p in procs:
        _, _, usage = os.wait4(p.pid, 0)
        p.returncode = 0
        cpu.append(usage.ru_utime + usage.ru_stime)
    return cpu


def wait_until(engine, sql: str, params: dict, done, timeout: float = 3600) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            if done(conn.execute(text(sql), params).scalar()):
                return
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.25)


def one_round(url: str, workers: int, feed: str, footage: Path, workdir: Path) -> dict[str, object]:
    run_dir = workdir / f"run-w{workers}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    env = {**os.environ, "PROVENANCE_DB": url, "PROVENANCE_STORE": str(run_dir / "evidence"),
           "PYTHONPATH": str(REPO)}
    provenance("db", "upgrade", env=env)
    engine = connect(url)
    procs = start_workers(workers, env, run_dir)
    try:
        wait_until(engine, "SELECT count(*) FROM procrastinate_workers", {}, lambda n: n >= workers, timeout=120)
        t0 = time.perf_counter()
        out = provenance("audit", feed, "--queue", "--detach", "--sleep", "0", env=env)
        audit_id = int(out.split("audit ", 1)[1].split(":", 1)[0])
        wait_until(engine, "SELECT count(*) FROM audit_items WHERE audit_id = :a AND state = 'pending'",
                   {"a": audit_id}, lambda n: n == 0)
        audit_s = time.perf_counter() - t0
        with session_scope(engine) as session:
            rows = repository.row_counts(session=session)
        with engine.connect() as conn:
            posts = conn.scalar(text("SELECT count(*) FROM audit_items WHERE state = 'done'"))
        t0 = time.perf_counter()
        out = provenance("ingest", str(footage), "--queue", "--detach", env=env)
        batch = out.split("(batch ", 1)[1].split(")", 1)[0]
        wait_until(engine, "SELECT count(*) FROM procrastinate_jobs WHERE args->>'batch' = :b "
                   "AND status IN ('todo', 'doing')", {"b": batch}, lambda n: n == 0)
        ingest_s = time.perf_counter() - t0
    finally:
        cpu = stop_workers(procs)
        engine.dispose()
    return {"audit_s": audit_s, "ingest_s": ingest_s, "cpu": cpu, "rows": rows, "posts": posts}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=16, help="posts in the feed, and files in the ingest folder")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--pg", metavar="URL", help="a PostgreSQL server's superuser URL (default: a throwaway one)")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="provenance-workers-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    from tests.conftest_pg import PgServer, throwaway_server

    with ExitStack() as stack:
        clips = make_clips(workdir / "feed", args.posts)
        server, base = serve(workdir / "feed")
        stack.callback(server.terminate)
        feed = write_feed(workdir / "feed", base, clips)
        footage = workdir / "footage"
        footage.mkdir(exist_ok=True)
        for clip in clips:
            copy = footage / f"archive-{clip.name}"
            shutil.copy(clip, copy)
            with open(copy, "ab") as f:
                f.write(b"\0archive copy")  # another SHA-256, the same pictures
        admin = args.pg or stack.enter_context(throwaway_server())
        pg = PgServer(admin)
        print("machine:")
        for k, v in machine():
            print(f"  {k:24} {v}")
        print(f"inputs: {args.posts} posts and {args.posts} files of {CLIP_SECONDS:g} s, 640x360, 25 fps; "
              "each worker --concurrency 1; audit --sleep 0 (loopback)")
        print(f"{'workers':>7} {'audit s':>8} {'posts/min':>9} {'ingest s':>8} {'h/h':>6}  cpu s per worker")
        results = {}
        for w in args.workers:
            url = pg.create_database()
            r = one_round(url, w, feed, footage, workdir)
            pg.drop_database(url)
            results[w] = r
            hours = args.posts * CLIP_SECONDS / 3600
            print(f"{w:>7} {r['audit_s']:>8.1f} {r['posts'] / r['audit_s'] * 60:>9.1f} {r['ingest_s']:>8.1f} "
                  f"{hours / (r['ingest_s'] / 3600):>6.1f}  {' '.join(f'{c:.1f}' for c in r['cpu'])}", flush=True)
        first = results[args.workers[0]]
        per_post = {k: v / max(first["posts"], 1) for k, v in first["rows"].items() if v}
        print("rows in the library after the audit, per checked post:",
              ", ".join(f"{k} {v:.1f}" for k, v in sorted(per_post.items())))
        pg.dispose()
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
