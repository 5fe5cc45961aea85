"""Index benchmark (issue 12): the on-disk index (provenance.diskindex) at 100,000, 1,000,000 and
10,000,000 frame hashes. Per library size, on SQLite:

    python bench/index_speed.py                              # 100k and 1M, 3 rounds
    python bench/index_speed.py --sizes 10000000 --repeat 3  # 10M (building the library takes minutes, once)

  1. the library: bench/scale.py's (samples/bigbuckbunny.mp4 and bikes.mp4 ingested, then random 64-bit
     filler hashes; cached in bench/data/scale), copied into the work folder so the cached one stays as
     it was;
  2. the index built from nothing: `provenance index rebuild` (a process of its own), and its size on disk;
  3. opening it in a new process: a subprocess that times `pipeline.load_library(engine)` alone (the
     imports before it are timed apart), then matches the 28-s query once and reports how much of its
     memory is file pages (the mapped index, shared with every process that maps it: RssFile) and how
     much its own (RssAnon);
  4. R interleaved rounds of `ffmpeg -i clip -f null -` (decode) and the CLI check end to end
     (`provenance check CLIP --no-record --json --quiet`, a new process each time), with the ratio of
     each round and the median, wall and CPU, and the load average at each round's start; with
     `--also base=COMMAND`, another checkout's CLI in the same rounds, for a comparison on a shared
     machine whose load changes from minute to minute;
  5. one more 28-s clip ingested (the query mirrored, so a new SHA-256), then one CLI check timed: the
     index is caught up (the new clip's rows read and appended), not rebuilt; the manifest says so.

The 28-s 1280x720 query clip is bench/check_speed.py's. Random filler is what bench/README.md says
it is under "Check speed": it costs the search what real hashes cost, without near misses.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import check_speed  # noqa: E402 - the query clip, the CLI and decode commands, the machine
import scale  # noqa: E402 - the libraries

_OPEN = """
import json, sys, time
t0 = time.perf_counter()
from provenance import pipeline
from provenance.frames import MIN_QUALITY
from provenance.match import find_evidence, query_frames
from provenance.settings import Settings
t1 = time.perf_counter()
engine = pipeline.open_library(Settings(db_url=sys.argv[1], store_dir=sys.argv[2]))
t2 = time.perf_counter()
library = pipeline.load_library(engine)
t3 = time.perf_counter()
from provenance import index
index.forget()  # opened again: the same, without the process's first ORM query (mapper set-up)
again0 = time.perf_counter()
pipeline.load_library(engine)
again = time.perf_counter() - again0
from provenance.frames import fingerprint
from provenance.probe import probe
fp = fingerprint(sys.argv[3], duration_s=probe(sys.argv[3]).duration_s, query=True)
t4 = time.perf_counter()
evidence = find_evidence(query_frames(fp, min_quality=MIN_QUALITY), library, query_sha256="",
                         motion_of=lambda clip_id: None)
t5 = time.perf_counter()
status = dict(line.split(":", 1) for line in open("/proc/self/status") if line.startswith("Rss"))
kb = {k: int(v.split()[0]) for k, v in status.items()}
print(json.dumps({"imports_s": t1 - t0, "connect_s": t2 - t1, "open_s": t3 - t2, "reopen_s": again,
                  "match_s": t5 - t4,
                  "rows": int(library.hashes.size), "matches": len(evidence.matches),
                  "rss_file_mb": kb.get("RssFile", 0) / 1024, "rss_anon_mb": kb.get("RssAnon", 0) / 1024}))
"""


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return check_speed.run([*check_speed.cli_command(), *args], env=env, capture_output=True, text=True)


def manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def one_size(size: int, clip: Path, mirrored: Path, work: Path, repeat: int,
             also: dict[str, list[str]] | None = None) -> dict[str, Any]:
    from provenance.diskindex import location

    built = scale.build_library(scale.library_url("sqlite", size, None), size)
    source = scale.DATA / f"library-{size}.db"
    db = work / f"library-{size}.db"
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    import sqlite3

    with sqlite3.connect(source) as src, sqlite3.connect(db) as dst:  # the WAL's pages included
        src.backup(dst)
    url = f"sqlite:///{db}"
    store = work / "evidence"
    env = check_speed.cli_env(work, store)
    folder = location(url)
    shutil.rmtree(folder, ignore_errors=True)
    out: dict[str, Any] = {"size": size, "library_built_s": built["built_s"]}

    t0 = time.perf_counter()
    cli(["index", "rebuild", "--db", url], env)
    out["build_s"] = time.perf_counter() - t0
    m = manifest(folder)
    out["index_mb"] = folder_size(folder) / 1e6
    out["segments"] = [(s["end"] - s["start"], [f[1] for f in s["fields"]]) for s in m["segments"]]
    print(f"  index built in {out['build_s']:.1f} s (a process of its own), {out['index_mb']:.0f} MB", flush=True)

    opens = []
    for _ in range(repeat):
        cp = check_speed.run([sys.executable, "-c", _OPEN, url, str(store), str(clip)], env=env,
                             capture_output=True, text=True)
        opens.append(json.loads(cp.stdout))
    out["opens"] = opens
    print("  open in a new process: " + ", ".join(f"{o['open_s']:.3f}" for o in opens) + " s; again in it: "
          + ", ".join(f"{o['reopen_s']:.3f}" for o in opens) + " s", flush=True)

    check = ["check", str(clip), "--no-record", "--json", "--quiet", "--db", url]
    cli(check, env)  # warm-up: byte-code, page cache
    others = {name: [*command, *check] for name, command in (also or {}).items()}
    for command in others.values():
        check_speed.run(command, env=env, capture_output=True, text=True)
    dec, chk = check_speed.Clock(), check_speed.Clock()
    other_clocks = {name: check_speed.Clock() for name in others}
    loads = []
    for i in range(repeat):
        loads.append(os.getloadavg()[0])
        dec(lambda: check_speed.run(check_speed.decode_cmd(clip)))
        # This CLI and the others take turns going first: the first after the decode may find fewer of
        # the index's pages in the page cache (a busy machine evicts them), which would favour the second.
        if i % 2:
            for name, command in others.items():
                other_clocks[name](lambda: check_speed.run(command, env=env, capture_output=True, text=True))
        result = chk(lambda: cli(check, env))
        if not i % 2:
            for name, command in others.items():
                other_clocks[name](lambda: check_speed.run(command, env=env, capture_output=True, text=True))
        print(f"  round {i + 1}/{repeat} (load {loads[-1]:.1f}): decode {dec.wall[-1]:.2f} s, CLI check {chk.wall[-1]:.2f} s, "
              f"ratio {chk.wall[-1] / dec.wall[-1]:.2f}x (CPU {dec.cpu[-1]:.2f} / {chk.cpu[-1]:.2f} s, "
              f"{chk.cpu[-1] / dec.cpu[-1]:.2f}x)"
              + "".join(f"; {name} {c.wall[-1]:.2f} s, {c.wall[-1] / dec.wall[-1]:.2f}x (CPU {c.cpu[-1] / dec.cpu[-1]:.2f}x)"
                        for name, c in other_clocks.items()), flush=True)
    out["decode"], out["check"], out["loads"] = dec.wall, chk.wall, loads
    out["decode_cpu"], out["check_cpu"] = dec.cpu, chk.cpu
    out["also"] = {name: {"wall": c.wall, "cpu": c.cpu} for name, c in other_clocks.items()}
    out["matches"] = len(json.loads(result.stdout)["matches"])

    before = manifest(folder)
    cli(["ingest", str(mirrored), "--db", url, "--quiet", "--url", "https://example.org/mirrored"], env)
    d = check_speed.Clock()
    d(lambda: check_speed.run(check_speed.decode_cmd(clip)))
    c = check_speed.Clock()
    c(lambda: cli(check, env))
    after = manifest(folder)
    out["add_one"] = {"decode_s": d.wall[0], "check_s": c.wall[0], "decode_cpu": d.cpu[0], "check_cpu": c.cpu[0],
                      "rows_added": after["rows"] - before["rows"],
                      "rebuilt": after["generation"] != before["generation"],
                      "catch_ups": after["catch_ups"] - before["catch_ups"]}
    print(f"  one clip added ({out['add_one']['rows_added']} rows), next check {c.wall[0]:.2f} s "
          f"(decode {d.wall[0]:.2f} s); rebuilt: {out['add_one']['rebuilt']}", flush=True)
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    return out


def report(results: list[dict[str, Any]], repeat: int) -> None:
    print()
    print("provenance on-disk index")
    print("=" * 24)
    for k, v in check_speed.machine():
        print(f"{k:<8} {v}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print()
    print("| hashes | index build s | index MB | segments | open in a new process s (runs) | open again s | RssFile / RssAnon MB "
          "| decode s (runs) | CLI check s (runs) | ratio per run | median ratio | CPU ratio per run "
          "| add one clip: check s, ratio (CPU ratio), rebuilt |")
    print("| ---: | ---: | ---: | --- | --- | --- | --- | --- | --- | --- | ---: | --- | --- |")
    for r in results:
        ratios = [c / d for c, d in zip(r["check"], r["decode"], strict=True)]
        opens = [o["open_s"] for o in r["opens"]]
        seg = "; ".join(f"{n:,} rows {'/'.join(map(str, f))}" for n, f in r["segments"]) or "none"
        last = r["opens"][-1]
        add = r["add_one"]
        print(f"| {r['size']:,} | {r['build_s']:.1f} | {r['index_mb']:.0f} | {seg} | "
              f"{statistics.median(opens):.3f} ({', '.join(f'{x:.3f}' for x in opens)}) | "
              f"{statistics.median(o['reopen_s'] for o in r['opens']):.3f} | "
              f"{last['rss_file_mb']:.0f} / {last['rss_anon_mb']:.0f} | "
              f"{statistics.median(r['decode']):.2f} ({', '.join(f'{x:.2f}' for x in r['decode'])}) | "
              f"{statistics.median(r['check']):.2f} ({', '.join(f'{x:.2f}' for x in r['check'])}) | "
              f"{', '.join(f'{x:.2f}x' for x in ratios)} | {statistics.median(ratios):.2f}x | "
              f"{', '.join(f'{c / d:.2f}x' for c, d in zip(r['check_cpu'], r['decode_cpu'], strict=True))} | "
              f"{add['check_s']:.2f} s, {add['check_s'] / add['decode_s']:.2f}x "
              f"({add['check_cpu'] / add['decode_cpu']:.2f}x), {add['rebuilt']} |")
    if any(r["also"] for r in results):
        print()
        print("| hashes | load average per round | this CLI: ratio / CPU ratio per run | "
              + " | ".join(f"{name}: ratio / CPU ratio per run" for name in results[0]["also"]) + " |")
        print("| ---: | --- | --- |" + " --- |" * len(results[0]["also"]))
        for r in results:
            cells = [_ratios(r["check"], r["check_cpu"], r)] + [_ratios(o["wall"], o["cpu"], r) for o in r["also"].values()]
            print(f"| {r['size']:,} | {', '.join(f'{x:.1f}' for x in r['loads'])} | " + " | ".join(cells) + " |")
    print()
    print(f"{repeat} rounds per size, decode and CLI check interleaved; 'open' is pipeline.load_library alone in a "
          "new process (imports apart); RssFile is the mapped index (page cache, shared), RssAnon the process's own.")


def _ratios(wall: list[float], cpu: list[float], r: dict[str, Any]) -> str:
    walls = [w / d for w, d in zip(wall, r["decode"], strict=True)]
    cpus = [c / d for c, d in zip(cpu, r["decode_cpu"], strict=True)]
    return (f"{', '.join(f'{x:.2f}x' for x in walls)} (median {statistics.median(walls):.2f}x) / "
            f"{', '.join(f'{x:.2f}x' for x in cpus)} (median {statistics.median(cpus):.2f}x)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000", help="library sizes in frame hashes, comma-separated")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per measurement (default 3)")
    ap.add_argument("--workdir", type=Path, help="work folder (default: a new temporary folder)")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=COMMAND",
                    help="another `provenance` command (e.g. an older checkout's) timed in the same rounds, "
                         "its ratios shown beside this one's; repeatable")
    args = ap.parse_args(argv)
    also = {name: command.split() for name, command in (a.split("=", 1) for a in args.also)}
    work = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="provenance-index-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "clip_28s_720p.mp4"
    if not clip.exists():
        print("making the 28-s 1280x720 clip...", flush=True)
        check_speed.make_clip(clip)
    mirrored = work / "clip_28s_720p_mirrored.mp4"
    if not mirrored.exists():
        check_speed.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-vf", "hflip", "-c:v", "libx264",
                         "-preset", "veryfast", "-crf", "23", "-an", str(mirrored)])
    scale.DATA.mkdir(parents=True, exist_ok=True)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"{size:,} frame hashes:", flush=True)
        results.append(one_size(size, clip, mirrored, work, args.repeat, also))
    report(results, args.repeat)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
