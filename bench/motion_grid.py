"""A finer motion profile for near-still footage: what a larger thumbnail and grid would separate.

provenance.motion differences each sampled frame with the one before on a 32x32 thumbnail, pooled to an
8x8 grid. On the held-out tune half's sleeping baby (an Eulerian video magnification sample: motion
made to be barely visible) nothing moves at that size, so none of its copies is placed. This measures,
without changing the matcher, how a profile taken at other sizes would judge lines: it patches
motion.MOTION_THUMB, MOTION_GRID and MOTION_MATCH_GRID, remakes the motion profiles of the library's
fixed and low-motion cameras and of the queries, and runs bench/line_motion.py's comparison: every true
line of a whole-picture copy against every line another moment of the same camera could make
(motion.agreement, the same frames and times as line_motion.py). The energy rule
(motion.MOTION_MIN_ENERGY, chosen at 32/8) is off here, so every line is judged.

Needs bench/out/heldout made by `python bench/heldout.py --split both --make-only`. About 4-5 minutes a
setting and half on 2 cores (each setting decodes every query again).

    python bench/motion_grid.py [--split tune|report] [--setting 32/8 128/16 ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import heldout_corpus as H  # noqa: E402
import line_motion as L  # noqa: E402

from provenance import match, motion  # noqa: E402
from provenance.frames import fingerprint  # noqa: E402

# (r >=, z >=) pairs to count lines at: the matcher's own first (match.LINE_MOTION_*).
RULES = ((match.LINE_MOTION_MIN_CORRELATION, match.LINE_MOTION_MIN_Z), (0.1, 1.75), (0.15, 2.5), (0.1, 3.0))


def measure(library: set[str], library_of: dict[str, str], thumb: int, grid: int) -> tuple[list, list]:
    motion.MOTION_THUMB, motion.MOTION_GRID, motion.MOTION_MATCH_GRID = thumb, grid, grid
    motion.MOTION_MIN_ENERGY = 0.0
    profiles = {name: fingerprint(L.WORK / "library_src" / f"{name}.mp4").motion for name in library}
    return L.true_lines(L.WORK, profiles, library), L.other_moment_lines(L.WORK, profiles, library_of)


def source_of(name: str, stems: dict[str, str]) -> str:
    """The library clip a query was cut from (`stems`: clip stem -> its camera's library clip)."""
    return next((stems[s] for s in sorted(stems, key=len, reverse=True) if f"__{s}at" in name), "?")


def show(split: str, library: set[str], library_of: dict[str, str], thumb: int, grid: int, trues: list,
         others: list) -> None:
    own = {name: name for name in library}
    print(f"\n{split.upper()} half, thumbnail {thumb}x{thumb}, grid {grid}x{grid}: {len(trues)} true lines, "
          f"{len(others)} other-moment lines")
    for r_min, z_min in RULES:
        kept = sum(L.passes(a, r_min, z_min) for _, a in trues)
        passing = sum(L.passes(a, r_min, z_min) for _, a in others)
        print(f"  r >= {r_min:<5g} z >= {z_min:<5g} true {kept:>3}/{len(trues):<4} other-moment {passing:>4}/{len(others)}")
    print("  true lines by camera: r min / median / max")
    for source in sorted({source_of(n, own) for n, _ in trues}):
        r = np.array([a.correlation for n, a in trues if source_of(n, own) == source])
        o = np.array([a.correlation for n, a in others if source_of(n, library_of) == source])
        beside = f"; its other moments' r max {o.max():.2f}" if o.size else ""
        print(f"    {source:<28} {r.min():5.2f} {np.median(r):5.2f} {r.max():5.2f}  ({r.size} lines){beside}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("tune", "report"), default="tune")
    ap.add_argument("--setting", nargs="+", default=["32/8", "64/16", "128/16"],
                    help="thumbnail/grid pairs (the matcher's: 32/8)")
    args = ap.parse_args(argv)
    if not (L.WORK / "library.key.json").exists():
        print(f"no library in {L.WORK}: run `python bench/heldout.py --split both --make-only` first", file=sys.stderr)
        return 2
    library, library_of = L.cameras(H.load_manifest(), args.split)
    for setting in args.setting:
        thumb, grid = (int(v) for v in setting.split("/"))
        if thumb % grid:
            print(f"--setting {setting}: the thumbnail must be a multiple of the grid", file=sys.stderr)
            return 2
        show(args.split, library, library_of, thumb, grid, *measure(library, library_of, thumb, grid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
