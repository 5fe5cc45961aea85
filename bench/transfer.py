"""Transfer benchmark: `provenance export` / `import` of a large library, SQLite -> file -> PostgreSQL
-> file -> SQLite, with rates and the file's size per frame hash.

    python bench/transfer.py                        # 1,000,000 frame hashes, a throwaway PostgreSQL
    python bench/transfer.py --frames 100000 --pg postgresql+psycopg://me@localhost/postgres

The library: N random 64-bit frame hashes in clips of 1,000 frames (250 s at 4 fps), one sighting
per clip, bulk-inserted through SQLAlchemy Core into a fresh SQLite file. Random bits are the worst
case for the file's gzip compression (real hashes of similar frames compress a little better).
Without --pg it starts a throwaway server as the tests do (tests/conftest_pg.py: Debian's
postgresql binaries, fsync off, so PostgreSQL's write figures are an upper bound for a durable
server). --pg takes a superuser URL; a database is created and dropped there.
Needs the test extra (psycopg, pytest): bash scripts/install.sh test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import insert  # noqa: E402

from provenance.db import connect, ensure_schema, export_library, import_library, session_scope  # noqa: E402
from provenance.db import models as orm  # noqa: E402
from provenance.db.repository import row_counts  # noqa: E402

FRAMES_PER_CLIP = 1_000
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def build(url: str, frames: int) -> None:
    engine = connect(url)
    ensure_schema(engine)
    rng = secrets.SystemRandom()
    clips = max(1, frames // FRAMES_PER_CLIP)
    with session_scope(engine) as s:
        for c in range(1, clips + 1):
            s.execute(insert(orm.Clip), [dict(
                id=c, sha256=f"{c:064x}", size_bytes=1, evidence_path=f"/evidence/{c}.mp4", container="mp4",
                duration_s=250.0, width=1280, height=720, fps=30.0, video_codec="h264", has_audio=False,
                probe={"container": "mp4"}, sample_fps=4.0, hash_algo="phash64", content_left=0.0,
                content_top=0.0, content_right=1.0, content_bottom=1.0, usable_frames=FRAMES_PER_CLIP,
                first_observed_at=T0)])
            s.execute(insert(orm.Sighting), [dict(clip_id=c, source="ingest", url=f"https://example.org/{c}",
                                                  url_sha256=orm.url_sha256(f"https://example.org/{c}"),
                                                  observed_at=T0)])
            s.execute(insert(orm.Frame), [dict(clip_id=c, t=i / 4, variant=0, phash=rng.getrandbits(64) - (1 << 63),
                                               quality=0.9) for i in range(FRAMES_PER_CLIP)])
    engine.dispose()


@contextlib.contextmanager
def postgres_database(admin_url: str | None) -> Iterator[str]:
    from tests.conftest_pg import PgServer, throwaway_server

    with contextlib.ExitStack() as stack:
        url = admin_url or stack.enter_context(throwaway_server())
        server = PgServer(url)
        stack.callback(server.dispose)
        db = server.create_database()
        stack.callback(server.drop_database, db)
        yield db


def timed(label: str, fn, *args) -> tuple[str, float, dict[str, int]]:  # noqa: ANN001
    start = time.perf_counter()
    counts = fn(*args)
    return label, time.perf_counter() - start, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--pg", metavar="URL", help="a PostgreSQL superuser URL (default: start a throwaway server)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="provenance-transfer-") as tmp, postgres_database(args.pg) as pg:
        work = Path(tmp)
        first, back = f"sqlite:///{work / 'first.db'}", f"sqlite:///{work / 'back.db'}"
        t = time.perf_counter()
        build(first, args.frames)
        build_s = time.perf_counter() - t
        a, b = work / "a.jsonl.gz", work / "b.jsonl.gz"
        steps = [
            timed("export SQLite -> file", export_library, first, a),
            timed("import file -> PostgreSQL", import_library, pg, a),
            timed("export PostgreSQL -> file", export_library, pg, b),
            timed("import file -> SQLite", import_library, back, b),
        ]
        engine = connect(back)
        with session_scope(engine) as s:
            final = row_counts(session=s)
        engine.dispose()
        rows = sum(steps[0][2].values())
        assert all(step[2] == steps[0][2] for step in steps) and final == steps[0][2], "rows lost"
        print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"library: {final['frames']:,} frame hashes in {final['clips']:,} clips, {rows:,} rows "
              f"(built in {build_s:.1f} s)")
        print(f"file: {a.stat().st_size / 1e6:.1f} MB, {a.stat().st_size / final['frames']:.1f} bytes per frame hash")
        print(f"{'step':<28}{'seconds':>10}{'rows/s':>14}{'frames/s':>14}")
        for label, secs, _ in steps:
            print(f"{label:<28}{secs:>10.1f}{rows / secs:>14,.0f}{final['frames'] / secs:>14,.0f}")
        print("round trip: every row arrived (counts equal at every step)")


if __name__ == "__main__":
    main()
