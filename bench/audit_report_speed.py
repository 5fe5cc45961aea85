"""Audit report speed: seconds to make `provenance report --audit ID` (HTML, JSON, Markdown) for audits of N posts.

    python bench/audit_report_speed.py                       # audits of 10 and 50 posts, 3 rounds each
    python bench/audit_report_speed.py --posts 10 50 200 --repeat 2 --workdir /tmp/rbench --keep

What it does (see bench/README.md, "Audit report speed"):
  1. makes the clips, pages and RSS feed of bench/audit_speed.py (5-s 640x360 H.264 windows of the
     samples, some mirrored or cropped: an account reposting its own footage) and serves them on
     127.0.0.1 with `python -m http.server`;
  2. for each N: a fresh SQLite library, then one `provenance.audit.audit` of the feed's first N posts
     (workers 2, --sleep 0), not timed;
  3. times `provenance.reporting.render_audit(ID, fmt=...)` for html, json and md, R rounds interleaved,
     in-process (library opening, loading every check, frame pairs and thumbnails, rendering);
  4. prints the machine, and per N and format the median seconds, ms per checked post and the size.

The HTML cuts a thumbnail per post and two per frame pair from the evidence files (OpenCV seeks):
that is most of its time. JSON and Markdown decode frames only for mirrored matches.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_speed import machine, make_clips, serve, write_feed  # noqa: E402

FORMATS = ("html", "json", "md")


def audited_library(feed: str, workdir: Path, n: int):  # noqa: ANN201 - Settings, imported late
    from provenance.audit import AuditOptions, audit
    from provenance.settings import Settings

    run_dir = workdir / f"library-{n}"
    shutil.rmtree(run_dir, ignore_errors=True)
    settings = Settings(db_url=f"sqlite:///{run_dir / 'library.db'}", store_dir=run_dir / "evidence")
    result = audit(feed, settings=settings, options=AuditOptions(workers=2, sleep_s=0.0, limit=n))
    return settings, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, nargs="+", default=[10, 50], help="audit sizes (default 10 50)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per format; medians are shown (default 3)")
    ap.add_argument("--workdir", type=Path, help="where clips, feed and libraries go (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)

    from provenance import reporting

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="audit-report-bench-"))
    www = workdir / "www"
    print("machine (shared: other jobs may run beside this one)")
    for k, v in machine():
        print(f"  {k:<22} {v}")
    clips = make_clips(www, max(args.posts))
    server, base = serve(www)
    rows = []
    try:
        feed = write_feed(www, base, clips)
        print(f"inputs: the feed of bench/audit_speed.py ({max(args.posts)} posts, 5-s 640x360 H.264 clips from "
              "samples/), audited with workers 2 into a fresh SQLite library per size; then each report format "
              f"{args.repeat} times, interleaved")
        for n in args.posts:
            settings, result = audited_library(feed, workdir, n)
            checked = sum(1 for i in result.items if i.check_id is not None)
            reused = sum(1 for i in result.items if i.verdict == "reused")
            reporting.render_audit(result.audit_id, settings=settings, fmt="md")  # warm-up: imports, file cache
            times: dict[str, list[float]] = {f: [] for f in FORMATS}
            sizes: dict[str, int] = {}
            for _ in range(args.repeat):
                for fmt in FORMATS:
                    t0 = time.perf_counter()
                    text = reporting.render_audit(result.audit_id, settings=settings, fmt=fmt)
                    times[fmt].append(time.perf_counter() - t0)
                    sizes[fmt] = len(text.encode("utf-8"))
            for fmt in FORMATS:
                med = statistics.median(times[fmt])
                rows.append((n, checked, reused, fmt, med, times[fmt], med / max(checked, 1) * 1000, sizes[fmt]))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print()
    print(f"| posts | checked | reused | format | s (median of {args.repeat}) | runs | ms per checked post | size |")
    print("| ---: | ---: | ---: | --- | ---: | --- | ---: | ---: |")
    for n, checked, reused, fmt, med, runs, per, size in rows:
        print(f"| {n} | {checked} | {reused} | {fmt} | {med:.2f} | {', '.join(f'{x:.2f}' for x in runs)} | "
              f"{per:.0f} | {size / 1e6:.2f} MB |")
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
