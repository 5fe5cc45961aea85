"""Sustained load on `provenance serve`: N checks submitted by C clients at once; nothing may be lost,
every check must be done exactly once. Reports the throughput and the latency of GET /api/checks/{id}.

    python bench/serve_load.py                        # 50 checks, 8 clients, 2 job workers, SQLite
    python bench/serve_load.py --checks 200 --clients 16 --workers 4 --db postgresql+psycopg://...

What it does:
  1. makes the clip with ffmpeg: the first 3 s of samples/carphone_pristine.mp4 (176x144), re-encoded
     with libx264, so that a check costs about a second of CPU and the bench measures the server;
  2. starts the real server in a subprocess (`provenance serve` on 127.0.0.1, a free port) over a new
     library (SQLite in the work folder unless --db), with a token made by `provenance token create`,
     and samples/carphone_pristine.mp4 ingested first through POST /api/ingest so each check matches;
  3. C client threads share the N checks: each uploads its clip (POST /api/checks, multipart, a
     distinct posted_at per check), then polls GET /api/checks/{id} every 0.2 s until done or failed,
     timing every GET;
  4. checks the outcome: every job done, each with its own check id, and the library holding exactly N
     new checks (so no job ran twice or not at all); prints throughput and GET latencies (p50, p95, max).

The machine may be shared: the figures are what this run saw, printed with the machine's CPU count and
load average at the start.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
POLL_S = 0.2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-m", "provenance.cli", *args], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checks", type=int, default=50)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="job workers of the server (serve --workers)")
    ap.add_argument("--db", help="library URL (default: a new SQLite file in the work folder)")
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="serve-load-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(SAMPLES / "carphone_pristine.mp4"), "-t", "3",
                    "-c:v", "libx264", "-an", str(clip)], check=True)
    db = args.db or f"sqlite:///{work / 'library.db'}"
    env = dict(os.environ, PROVENANCE_DB=db, PROVENANCE_STORE=str(work / "evidence"))
    token = _cli("token", "create", "bench", env=env)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "provenance.cli", "serve", "--port", str(port),
                               "--workers", str(args.workers)], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(work / "server.log", "w"))
    headers = {"authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            for _ in range(200):
                try:
                    c.get("/api/checks")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            r = c.post("/api/ingest", files={"file": ("o.mp4", (SAMPLES / "carphone_pristine.mp4").read_bytes())},
                       data={"posted_at": "2019-01-01T00:00:00Z", "url": "https://example.org/original"})
            while c.get(r.json()["status_url"]).json()["status"] not in ("done", "failed"):
                time.sleep(POLL_S)
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start (shared machine)")
        data = clip.read_bytes()
        todo = list(range(args.checks))
        lock = threading.Lock()
        latencies: list[float] = []
        finished: dict[int, dict] = {}
        errors: list[str] = []

        def client() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
                while True:
                    with lock:
                        if not todo:
                            return
                        n = todo.pop()
                    r = c.post("/api/checks", files={"file": ("c.mp4", data)},
                               data={"posted_at": f"2024-01-01T00:{n // 60:02d}:{n % 60:02d}Z"})
                    if r.status_code != 202:
                        errors.append(f"submit {n}: {r.status_code} {r.text[:200]}")
                        continue
                    url = r.json()["status_url"]
                    while True:
                        t0 = time.perf_counter()
                        job = c.get(url).json()
                        with lock:
                            latencies.append(time.perf_counter() - t0)
                        if job["status"] in ("done", "failed"):
                            with lock:
                                finished[n] = job
                            break
                        time.sleep(POLL_S)

        start = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        done = [j for j in finished.values() if j["status"] == "done"]
        failed = [j for j in finished.values() if j["status"] != "done"]
        check_ids = [j["check_id"] for j in done]
        from sqlalchemy import create_engine, text

        engine = create_engine(db)
        with engine.connect() as conn:
            in_library = conn.execute(text("SELECT count(*) FROM checks")).scalar_one()
        engine.dispose()
        print(f"checks: {args.checks} submitted by {args.clients} clients, server with {args.workers} job workers")
        print(f"done {len(done)}, failed {len(failed)}, lost {args.checks - len(finished)}, submit errors {len(errors)}")
        print(f"distinct check ids {len(set(check_ids))}; checks in the library {in_library} (expected {args.checks})")
        print(f"wall {wall:.1f} s; throughput {len(done) / wall * 60:.1f} checks/min")
        print(f"GET /api/checks/{{id}}: {len(latencies)} requests, p50 {statistics.median(latencies) * 1000:.1f} ms, "
              f"p95 {_percentile(latencies, 95) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
        for e in errors[:5] + [str(j.get("error")) for j in failed[:5]]:
            print("  ", e)
        ok = (len(done) == args.checks and len(set(check_ids)) == args.checks and in_library == args.checks
              and not errors)
        print("OK: nothing lost, every check done once" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
