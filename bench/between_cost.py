"""What keeping the frames between samples costs (frames.densify, matcher version 8): per clip, the frames
the library keeps with and without them, and the CPU time of adding the clip's frames (fingerprint, then
densify) beside the fingerprint alone.

    python bench/between_cost.py [FILE ...] [--repeat 3] [--check-clip]

Without files: the repository's samples/ and, when fetched, bench/data/trailer_bbb.mp4 and the held-out
goldfish pond (bench/data/heldout/shady_fish_pond.mp4). --check-clip adds bench/check_speed.py's 28-s
720p clip (made in --workdir): what a recorded `check` of it now decodes twice. CPU time of this process (the decode threads
included), median of --repeat runs; prints the machine and each clip's figures.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from provenance.frames import densify, fast_stretches, fingerprint  # noqa: E402

DEFAULT_FILES = (*sorted((REPO / "samples").glob("*.mp4")), REPO / "bench" / "data" / "trailer_bbb.mp4",
                 REPO / "bench" / "data" / "heldout" / "shady_fish_pond.mp4")


def cpu_of(fn) -> tuple[float, object]:
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--check-clip", action="store_true", help="add bench/check_speed.py's 28-s 720p clip")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench-between"))
    args = ap.parse_args(argv)
    files = [f for f in (args.files or DEFAULT_FILES) if f.exists()]
    if args.check_clip:
        sys.path.insert(0, str(REPO / "bench"))
        from check_speed import make_clip

        clip = args.workdir / "clip_28s_720p.mp4"
        if not clip.exists():
            args.workdir.mkdir(parents=True, exist_ok=True)
            make_clip(clip)
        files.append(clip)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}")
    print(f"{'clip':34s} {'sampled':>8s} {'between':>8s} {'kept x':>7s} {'fast s':>7s} "
          f"{'fp CPU s':>9s} {'+between':>9s} {'ratio':>6s}")
    for path in files:
        plain, dense = [], []
        for _ in range(args.repeat):
            t_fp, fp = cpu_of(lambda: fingerprint(path))
            t_between, out = cpu_of(lambda: densify(path, fp))  # noqa: B023 - called at once
            plain.append(t_fp)
            dense.append(t_fp + t_between)
        stretches = fast_stretches(fp.frames)
        fast_s = sum(end - start for start, end in stretches)
        a, b = statistics.median(plain), statistics.median(dense)
        kept = (len(fp.frames) + len(out.between)) / len(fp.frames)
        print(f"{path.name[:34]:34s} {len(fp.frames):8d} {len(out.between):8d} {kept:7.2f} {fast_s:7.1f} "
              f"{a:9.2f} {b:9.2f} {b / a:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
