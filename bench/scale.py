"""Scale benchmark: the in-memory index (provenance.index) on libraries of 100,000, 1,000,000 and
10,000,000 frame hashes, on SQLite and PostgreSQL. Goals (issue 6, 2 vCPUs): a 28-s clip matched against
1M hashes in under 0.2 s, against 10M in under 2 s and within 2 GB.

    python bench/scale.py                          # 100k and 1M, SQLite (+ PostgreSQL with --pg URL)
    python bench/scale.py --start-postgres         # also starts a throwaway PostgreSQL in bench/data/pg
    python bench/scale.py --ten-million --start-postgres --methods

For each backend and size, in a fresh subprocess (so memory figures are its own):
  - index load: the first `pipeline.load_library(engine)` of the process (reads every row, builds the
    multi-index tables), wall time; then a second call with nothing changed (one small SELECT);
  - memory: the process's RSS after the load minus before it (VmRSS, /proc/self/status; the imports
    and the query are already in), and the bytes of the index's numpy arrays and tables;
  - matching: `match.find_matches(query, library)` for the 28-s clip of bench/check_speed.py (Big Buck
    Bunny + letterboxed bikes, 1280x720), median of 5 after one warm-up. The query's fingerprinting
    (decode + hash) is NOT included: it is done once, before, and costs the same at every size;
  - found: whether both true references (samples/bigbuckbunny.mp4 and samples/bikes.mp4, ingested with
    pipeline.ingest) are among the matches, and whether the matches equal those of comparing every row
    (`--brute`, on by default up to 1M);
  - with --methods: the candidate search alone (the query's 672 hashes within 12 bits) by comparing
    every row with numpy, by FAISS's IndexBinaryFlat (exhaustive, C++, if faiss-cpu is installed), and
    by our multi-index hashing, with each method's recall against numpy's every-row search.

Libraries are built once and kept under bench/data/scale (gitignored): real clips ingested the normal
way, then random 64-bit filler hashes in filler clips of 999 rows (3 views x 333 frames), bulk-written
(SQLite executemany, PostgreSQL COPY). Random filler costs the search what real hashes cost, except near
misses (see bench/README.md, "Check speed").
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import check_speed  # noqa: E402 - the 28-s query clip is made the same way

DATA = REPO / "bench" / "data" / "scale"
SIZES = (100_000, 1_000_000)
TEN_MILLION = 10_000_000
FILLER_CLIP_ROWS = 999  # 333 sampled frames x 3 views, as a real 83-s clip
BATCH_ROWS = 200_000
SEED = 20261125
PG_PORT = 55432
REFERENCES = (check_speed.BBB, check_speed.BIKES)


# --- PostgreSQL, throwaway ---------------------------------------------------------------------------


def start_postgres(root: Path) -> str:
    """initdb + pg_ctl into `root` (as user nobody when run as root: postgres refuses root), listening on
    a Unix socket there only. Returns a URL; the server keeps running until `stop_postgres`."""
    bindir = _pg_bindir()
    data, sock = root / "data", root / "sock"
    as_user: list[str] = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    root.mkdir(parents=True, exist_ok=True)
    sock.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "nobody", "nogroup")
        shutil.chown(sock, "nobody", "nogroup")
    if not (data / "PG_VERSION").exists():
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "bench", "--auth=trust",
                        "-E", "UTF8", "--no-sync"], check=True, stdout=subprocess.DEVNULL)
    status = subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "status"], capture_output=True)
    if status.returncode != 0:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
                        "-o", f"-k {sock} -p {PG_PORT} -c listen_addresses='' -c fsync=off "
                        "-c shared_buffers=256MB -c synchronous_commit=off", "start"],
                       check=True, stdout=subprocess.DEVNULL)
    return f"postgresql+psycopg://bench@/postgres?host={sock}&port={PG_PORT}"


def stop_postgres(root: Path) -> None:
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_user, str(_pg_bindir() / "pg_ctl"), "-D", str(root / "data"), "-w", "stop"],
                   check=False, stdout=subprocess.DEVNULL)


def _pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        sys.exit("PostgreSQL is not installed: apt-get install postgresql (Debian), or give --pg URL")
    return found[-1].parent


def pg_database_url(server_url: str, name: str) -> str:
    """A database `name` on the server (created when missing)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.replace("/postgres?", f"/{name}?")


# --- building a library ------------------------------------------------------------------------------


def library_url(backend: str, size: int, pg_server: str | None) -> str:
    if backend == "sqlite":
        return f"sqlite:///{DATA / f'library-{size}.db'}"
    assert pg_server is not None
    return pg_database_url(pg_server, f"scale_{size}")


def build_library(url: str, size: int) -> dict[str, Any]:
    """Real references ingested, then random filler up to `size` rows; reused when already built."""
    from sqlalchemy import func, select

    from provenance import pipeline
    from provenance.db import connect, ensure_schema
    from provenance.db import models as orm
    from provenance.settings import Settings

    engine = connect(url)
    ensure_schema(engine)
    with engine.connect() as conn:
        have = conn.scalar(select(func.count()).select_from(orm.Frame.__table__)) or 0
    if have >= size:
        engine.dispose()
        return {"built_s": None, "rows": have}
    t0 = time.perf_counter()
    settings = Settings(db_url=url, store_dir=DATA / "evidence")
    for src, when in zip(REFERENCES, (datetime(2008, 5, 30, tzinfo=UTC), datetime(2015, 3, 1, tzinfo=UTC)),
                         strict=True):
        pipeline.ingest(str(src), settings=settings, post_url=f"https://example.org/{src.stem}", posted_at=when)
    with engine.connect() as conn:
        have = conn.scalar(select(func.count()).select_from(orm.Frame.__table__)) or 0
    rng = np.random.default_rng(SEED + size)
    filler = size - have
    if engine.url.get_backend_name() == "sqlite":
        _fill_sqlite(engine, rng, filler)
    else:
        _fill_postgres(engine, rng, filler)
    engine.dispose()
    return {"built_s": time.perf_counter() - t0, "rows": size}


def _filler_clips(n_rows: int) -> list[int]:
    whole, rest = divmod(n_rows, FILLER_CLIP_ROWS)
    return [FILLER_CLIP_ROWS] * whole + ([rest] if rest else [])


def _clip_tuple(rows: int, when: str) -> tuple:
    return (secrets.token_hex(32), 10_000_000, None, "mov,mp4", rows / 12.0, 1280, 720, 30.0, "h264", 0,
            '{"filler": true}', 4.0, "phash64", 0.0, 0.0, 1.0, 1.0, rows, when)


_CLIP_COLUMNS = ("sha256, size_bytes, evidence_path, container, duration_s, width, height, fps, video_codec, "
                 "has_audio, probe, sample_fps, hash_algo, content_left, content_top, content_right, "
                 "content_bottom, usable_frames, first_observed_at")


def _frame_columns(sizes: list[int], first_clip_id: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    clip_ids = np.repeat(np.arange(first_clip_id, first_clip_id + len(sizes)), sizes)
    within = np.concatenate([np.arange(k) for k in sizes])
    hashes = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=clip_ids.size, dtype=np.int64,
                          endpoint=True)
    return clip_ids, (within // 3) / 4.0, within % 3, hashes


def _fill_sqlite(engine, rng: np.random.Generator, n_rows: int) -> None:  # noqa: ANN001
    when = (datetime.now(UTC) - timedelta(days=1)).replace(tzinfo=None).isoformat(sep=" ")
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        sizes = _filler_clips(n_rows)
        per_batch = max(1, BATCH_ROWS // FILLER_CLIP_ROWS)
        for b in range(0, len(sizes), per_batch):
            batch = sizes[b:b + per_batch]
            first = (cur.execute("SELECT coalesce(max(id), 0) FROM clips").fetchone()[0]) + 1
            cur.executemany(f"INSERT INTO clips (id, {_CLIP_COLUMNS}) VALUES ({', '.join('?' * 20)})",
                            [(first + i, *_clip_tuple(k, when)) for i, k in enumerate(batch)])
            clip_ids, t, variant, hashes = _frame_columns(batch, first, rng)
            cur.executemany("INSERT INTO frames (clip_id, t, variant, phash, quality) VALUES (?, ?, ?, ?, 1.0)",
                            zip(clip_ids.tolist(), t.tolist(), variant.tolist(), hashes.tolist()))
            raw.commit()
    finally:
        raw.close()


def _fill_postgres(engine, rng: np.random.Generator, n_rows: int) -> None:  # noqa: ANN001
    when = (datetime.now(UTC) - timedelta(days=1)).replace(tzinfo=None).isoformat(sep=" ")
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        sizes = _filler_clips(n_rows)
        per_batch = max(1, BATCH_ROWS // FILLER_CLIP_ROWS)
        for b in range(0, len(sizes), per_batch):
            batch = sizes[b:b + per_batch]
            ids = []
            with cur.copy(f"COPY clips ({_CLIP_COLUMNS}) FROM STDIN") as copy:
                for k in batch:
                    row = list(_clip_tuple(k, when))
                    row[9] = False
                    copy.write_row(row)
            cur.execute("SELECT id FROM clips ORDER BY id DESC LIMIT %s", (len(batch),))
            ids = sorted(r[0] for r in cur.fetchall())
            clip_ids, t, variant, hashes = _frame_columns(batch, 0, rng)
            clip_ids = np.asarray(ids, dtype=np.int64)[clip_ids]
            buf = io.StringIO()
            np.savetxt(buf, np.column_stack([clip_ids, variant, hashes]), fmt="%d\t%d\t%d")
            lines = buf.getvalue().splitlines()
            text = "".join(f"{c}\t{tt!r}\t{rest}\t1.0\n"
                           for c, tt, rest in zip(clip_ids.tolist(), t.tolist(),
                                                  (ln.split("\t", 1)[1] for ln in lines)))
            with cur.copy("COPY frames (clip_id, t, variant, phash, quality) FROM STDIN") as copy:
                copy.write(text)
            raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


# --- the query --------------------------------------------------------------------------------------


def query_file() -> Path:
    """The 28-s clip's query frames (fingerprinted once; fingerprinting is not what is measured here)."""
    out = DATA / "query28.npz"
    if out.exists():
        return out
    from provenance.frames import MIN_QUALITY, fingerprint
    from provenance.match import query_frames

    clip = DATA / "clip28.mp4"
    if not clip.exists():
        check_speed.make_clip(clip)
    q = query_frames(fingerprint(clip, query=True), min_quality=MIN_QUALITY)
    np.savez(out, times=q.times, hashes=q.hashes, letterbox=q.letterbox, pillarbox=q.pillarbox,
             duration_s=q.duration_s, step_s=q.step_s)
    return out


def load_query(path: Path):  # noqa: ANN201
    from provenance.match import QueryFrames

    z = np.load(path)
    return QueryFrames(times=z["times"], hashes=z["hashes"], letterbox=z["letterbox"], pillarbox=z["pillarbox"],
                       duration_s=float(z["duration_s"]), step_s=float(z["step_s"]))


# --- one measurement, in its own process ----------------------------------------------------------


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(url: str, query_path: Path, brute: bool, methods: bool) -> dict[str, Any]:
    import dataclasses

    from provenance import index, pipeline
    from provenance.db import connect
    from provenance.frames import MIN_QUALITY
    from provenance.match import FRAME_MATCH_MAX_DISTANCE, find_matches

    query = load_query(query_path)
    engine = connect(url)
    want = {hashlib.sha256(p.read_bytes()).hexdigest() for p in REFERENCES}
    rss0 = rss_bytes()
    c0, t0 = time.process_time(), time.perf_counter()
    library = pipeline.load_library(engine)
    load_s, load_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss1 = rss_bytes()
    stats = index.library_index(engine, min_quality=MIN_QUALITY).stats()
    refresh = []
    for _ in range(5):
        t0 = time.perf_counter()
        pipeline.load_library(engine)
        refresh.append(time.perf_counter() - t0)
    matches = find_matches(query, library)
    times, cpu = [], []
    for _ in range(5):
        c0, t0 = time.process_time(), time.perf_counter()
        matches = find_matches(query, library)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    out: dict[str, Any] = {
        "rows": stats.rows, "clips": stats.clips, "fields": stats.fields, "load_s": load_s,
        "refresh_s": statistics.median(refresh), "rss_delta": rss1 - rss0, "index_bytes": stats.bytes,
        "match_s": statistics.median(times), "match_min_s": min(times), "match_cpu_s": statistics.median(cpu),
        "load_cpu_s": load_cpu,
        "found": want <= {m.sha256 for m in matches}, "matches": len(matches)}
    if brute:
        t0 = time.perf_counter()
        slow = find_matches(query, dataclasses.replace(library, search=None))
        out["brute_match_s"] = time.perf_counter() - t0
        out["same_as_brute"] = slow == matches
    if methods:
        out["methods"] = compare_methods(library, query.hashes.reshape(-1), FRAME_MATCH_MAX_DISTANCE, brute)
    return out


def compare_methods(library, queries: np.ndarray, distance: int, brute: bool) -> dict[str, Any]:  # noqa: ANN001
    from provenance import hashindex

    res: dict[str, Any] = {}

    def run(name: str, fn) -> set[tuple[int, int]]:  # noqa: ANN001
        best, best_cpu, found = float("inf"), float("inf"), None
        for _ in range(3 if name != "numpy" else 1):
            c0, t0 = time.process_time(), time.perf_counter()
            found = fn()
            best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
        res[name] = {"s": best, "cpu_s": best_cpu, "pairs": len(found)}
        return found

    mih = run("mih", lambda: set(zip(*(a.tolist() for a in library.search.pairs_within(queries, distance)[:2]))))
    truth = None
    if brute:
        truth = run("numpy", lambda: set(zip(*(a.tolist() for a in
                                             hashindex.pairs_within_brute(queries, library.hashes, distance)[:2]))))
    try:
        import faiss
    except ImportError:
        res["faiss"] = {"s": None, "why": "faiss-cpu not installed"}
    else:
        flat = faiss.IndexBinaryFlat(64)
        t0 = time.perf_counter()
        flat.add(np.ascontiguousarray(library.hashes).view(np.uint8).reshape(-1, 8))
        add_s = time.perf_counter() - t0
        qc = np.ascontiguousarray(queries).view(np.uint8).reshape(-1, 8)

        def faiss_search() -> set[tuple[int, int]]:
            lims, _, ids = flat.range_search(qc, distance + 1)  # FAISS keeps distances < radius
            return set(zip(np.repeat(np.arange(qc.shape[0]), np.diff(lims).astype(np.int64)).tolist(), ids.tolist()))

        got = run("faiss_flat", faiss_search)
        res["faiss_flat"]["add_s"] = add_s
        truth = truth if truth is not None else got  # FAISS's flat index is exhaustive: exact too
        del flat
    for name in ("mih", "numpy", "faiss_flat"):
        if name in res and truth is not None and res[name].get("s") is not None:
            found = mih if name == "mih" else (got if name == "faiss_flat" else truth)
            res[name]["recall"] = len(found & truth) / max(1, len(truth))
    return res


# --- main -----------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs, {mem:.0f} GB RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}, numpy {np.__version__}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="library sizes in rows (default 100k,1M)")
    ap.add_argument("--ten-million", action="store_true", help="add 10,000,000 rows (builds for minutes)")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--pg", metavar="URL", help="a PostgreSQL server URL (database 'postgres'); else skipped")
    ap.add_argument("--start-postgres", action="store_true", help="start a throwaway server in bench/data/pg")
    ap.add_argument("--brute", choices=("auto", "yes", "no"), default="auto",
                    help="also match by comparing every row (auto: up to 1M rows)")
    ap.add_argument("--methods", action="store_true", help="compare numpy, FAISS and multi-index search alone")
    ap.add_argument("--measure", nargs=2, metavar=("URL", "BRUTE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        url, flags = args.measure
        print(json.dumps(measure(url, DATA / "query28.npz", "b" in flags, "m" in flags)))
        return 0

    DATA.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([TEN_MILLION] if args.ten_million else [])
    backends = [b for b in args.backends.split(",") if b]
    pg = args.pg
    if "postgresql" in backends and not pg and args.start_postgres:
        pg = start_postgres(REPO / "bench" / "data" / "pg")
    if "postgresql" in backends and not pg:
        print("PostgreSQL skipped: give --pg URL or --start-postgres", file=sys.stderr)
        backends.remove("postgresql")
    qpath = query_file()
    print(f"machine: {machine()}")
    print(f"load average at start: {os.getloadavg()}")
    print(f"query: 28-s clip, {load_query(qpath).hashes.size} query hashes "
          f"({load_query(qpath).times.size} frames x {load_query(qpath).hashes.shape[1]} views)")
    rows = []
    for backend in backends:
        for size in sizes:
            url = library_url(backend, size, pg)
            built = build_library(url, size)
            if built["built_s"] is not None:
                print(f"built {backend} {size:,} rows in {built['built_s']:.0f} s", file=sys.stderr)
            brute = args.brute == "yes" or (args.brute == "auto" and size <= 1_000_000)
            flags = ("b" if brute else "") + ("m" if args.methods else "") or "-"
            cp = subprocess.run([sys.executable, __file__, "--measure", url, flags], capture_output=True, text=True)
            if cp.returncode != 0:
                print(cp.stderr[-3000:], file=sys.stderr)
                return 1
            r = json.loads(cp.stdout)
            r.update(backend=backend, size=size)
            rows.append(r)
            print(json.dumps(r), file=sys.stderr)
    print(f"load average at end: {os.getloadavg()}")
    print()
    print("| backend | rows | index load s (CPU s) | refresh, unchanged s | RSS delta MB | index arrays MB "
          "| substrings | match s, median of 5 (min) | match CPU s | every-row match s | true matches found "
          "| same as every-row |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |")
    for r in rows:
        print(f"| {r['backend']} | {r['rows']:,} | {r['load_s']:.2f} ({r['load_cpu_s']:.2f}) | {r['refresh_s']:.4f} | "
              f"{r['rss_delta'] / 2**20:.0f} | {r['index_bytes'] / 2**20:.0f} | {'/'.join(map(str, r['fields'])) or 'none'} | "
              f"{r['match_s']:.3f} ({r['match_min_s']:.3f}) | {r['match_cpu_s']:.3f} | "
              f"{r.get('brute_match_s', float('nan')):.2f} | {'yes' if r['found'] else 'NO'} | "
              f"{r.get('same_as_brute', 'n/a')} |")
    if args.methods:
        print()
        print("| backend | rows | method | search s, best of 3 | CPU s | pairs | recall vs exhaustive |")
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
        for r in rows:
            for name, m in r["methods"].items():
                s = "n/a" if m.get("s") is None else f"{m['s']:.3f}"
                c = "" if m.get("cpu_s") is None else f"{m['cpu_s']:.3f}"
                rec = m.get("recall")
                print(f"| {r['backend']} | {r['rows']:,} | {name} | {s} | {c} | {m.get('pairs', '')} | "
                      f"{'' if rec is None else f'{rec:.4f}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
