"""What capturing the post's page costs a check: `provenance check URL` of a local post page (served on
127.0.0.1, the 28-s 1280x720 clip of bench/check_speed.py in its og:video), with and without
--no-capture, through the CLI as a user runs it (a new process each time, --no-record).

    python bench/capture_cost.py [--repeat 3] [--workdir /tmp/bench-capture]
    git archive 650c086 provenance | tar -x -C /tmp/before     # another revision's package, then:
    python bench/capture_cost.py --compare /tmp/before          # its capture runs as a third variant

The goal (issue 16): a check with capture costs at most 2 s more wall time than without. The capture
runs in a thread beside the download and decode, so its wall cost is what it adds after the decode
ends; its CPU time (Chromium's processes included, as children of the check) is printed too, since
on a shared machine the CPU it takes is taken from the decode. Runs alternate, medians are quoted.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from check_speed import make_clip  # noqa: E402

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>A post with a video</title>
<meta property="og:title" content="A post with a video">
<meta property="og:type" content="video.other">
<meta property="og:video" content="{video}">
<meta property="og:video:type" content="video/mp4">
</head><body><h1>Someone posted this</h1><p>{text}</p>
<video src="{video}" width="640" controls></video></body></html>
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def one_check(url: str, home: Path, capture: bool, code: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the check process and its children) of one CLI check; `code`: the
    folder holding the `provenance` package to run (this checkout's by default). Every variant is
    started the same way, so that they differ only in their code."""
    env = {**os.environ, "PROVENANCE_HOME": str(home)}
    code = code or REPO
    args = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(code)!r}); sys.argv[0] = 'provenance'; "
                                  "from provenance.cli import main; main()",
            "check", url, "--no-record", "--allow-private-urls", "--quiet"]
    if not capture:
        args.append("--no-capture")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or (capture and "page not captured" in done.stderr):
        raise SystemExit(f"check failed ({done.returncode}): {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-capture"))
    parser.add_argument("--compare", type=Path, default=None,
                        help="a folder holding another revision's provenance package: its check with capture runs too")
    opts = parser.parse_args()
    www = opts.workdir / "www"
    www.mkdir(parents=True, exist_ok=True)
    clip = www / "clip.mp4"
    if not clip.exists():
        make_clip(clip)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    (www / "post.html").write_text(PAGE.format(video=f"{base}/clip.mp4", text="lorem ipsum " * 200), encoding="utf-8")
    url = f"{base}/post.html"
    # variant name -> (capture, code); each its own library (another revision's may not open this one's)
    variants = {"without capture": (False, None), "with capture": (True, None)}
    if opts.compare is not None:
        variants[f"with capture ({opts.compare})"] = (True, opts.compare)
    homes = {name: opts.workdir / f"home-{i}" for i, name in enumerate(variants)}
    for name, (capture, code) in variants.items():  # warm-up: creates the libraries, fills the page cache
        one_check(url, homes[name], capture, code)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    loads = []
    for _ in range(opts.repeat):
        loads.append(os.getloadavg()[0])
        for name, (capture, code) in variants.items():
            runs[name].append(one_check(url, homes[name], capture, code))
    server.shutdown()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average at each round {', '.join(f'{x:.1f}' for x in loads)}")
    print(f"clip: {clip.stat().st_size / 1e6:.1f} MB, 28 s 1280x720; page {url}; {opts.repeat} runs each")
    med = {n: (statistics.median(w for w, _ in r), statistics.median(c_ for _, c_ in r)) for n, r in runs.items()}
    for name, (wall, cpu) in med.items():
        print(f"{name:15}  wall {wall:6.2f} s   CPU {cpu:6.2f} s   "
              f"(runs: {', '.join(f'{w:.2f}' for w, _ in runs[name])})")
    base_wall, base_cpu = med["without capture"]
    for name, (wall, cpu) in med.items():
        if name != "without capture":
            print(f"{name} adds: wall {wall - base_wall:+.2f} s (goal: at most +2 s), CPU {cpu - base_cpu:+.2f} s")


if __name__ == "__main__":
    main()
