"""How ambiguous the lines are that the matcher weighs: the numbers behind match.MAX_AMBIGUOUS_SHARE.

A line is no placement when too many of its frames match the reference about as well elsewhere
(match._ambiguous_share; version 19 set the share at 0.45, chosen on the tune half). This runs
bench/heldout.py as it is (the same queries, the same matcher), records every line the matcher asks
about (match._is_still: its share of ambiguous frames, its median distance, whether it is close and
what the motion check says), then, for each candidate share, counts the lines a share of 0.5 keeps
as placements that this share turns into stills:
  - in positives (mostly the copies' own lines: a still there can lose a copy), and
  - in negatives (every one wrong: each can end as a false match),
per split, and names the most ambiguous of them. The counts are per line the run weighed at the
matcher's own constant, so a share far from it is an estimate (other lines could come next); rerun
heldout.py with the constant moved to be sure.

    python bench/ambiguous_share.py --split tune [--json out.json]    # about 12 minutes on 2 cores
    python bench/ambiguous_share.py --split both                      # about 42 minutes

(with the queries already made; a first run makes them, 10-20 minutes more). Needs bench/setup.sh
fetch_heldout. Writes the heldout JSON (--json) and the line log beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import heldout  # noqa: E402
import robustness as R  # noqa: E402

from provenance import match  # noqa: E402

SWEEP = (0.40, 0.42, 0.44, 0.45, 0.46, 0.48, 0.50)
# Negatives' lines at least this ambiguous are named one by one (below it there are dozens of 5-frame
# chance lines).
NAME_FROM = 0.44


def record_lines(log_path: Path) -> None:
    """Wrap the matcher's still test and the bench's query runner so that every line weighed is logged
    with the query it came from. The verdicts are the matcher's own; the wrapper only reads."""
    log = log_path.open("w")
    current = {"query": None}
    run_one = R.run_one

    def run_logged(q, *args, **kwargs):
        current["query"] = q.name
        return run_one(q, *args, **kwargs)

    is_still = match._is_still

    def is_still_logged(line, pairs, rivals=None, moves=None, *, mirrored=False):
        verdict = is_still(line, pairs, rivals, moves, mirrored=mirrored)
        close = match._is_close(line)
        log.write(json.dumps({
            "query": current["query"], "frames": int(line.pairs.tq.size), "speed": round(float(line.speed), 4),
            "median_bits": float(np.median(line.pairs.dist)), "close": close,
            "share": match._ambiguous_share(line, pairs, rivals), "has_motion": moves is not None,
            "moves_elsewhere": match._moves_elsewhere(line, moves, mirrored=mirrored) if moves is not None else None,
            "mirrored": mirrored, "still": bool(verdict)}) + "\n")
        log.flush()
        return verdict

    R.run_one = heldout.R.run_one = run_logged
    match._is_still = is_still_logged


def still_at(line: dict, share: float) -> bool:
    """match._is_still's verdict for a logged line with MAX_AMBIGUOUS_SHARE at `share`."""
    if line["close"] and not line["has_motion"]:
        return False
    if line["share"] < share:
        return False
    return not line["close"] or bool(line["moves_elsewhere"])


def summarise(lines: list[dict], queries: list[dict], split: str) -> None:
    by_name = {q["query"]: q for q in queries if q["split"] == split}
    negative = {n for n, q in by_name.items() if q["family"] == "negative"}
    # Lines that the widest share in the sweep keeps as placements; a narrower share can only take some
    # away. In a positive such a line is mostly the copy's own (a chance line there is rare); in a
    # negative every one is wrong, and each can end as a false match.
    mine = [ln for ln in lines if ln["query"] in by_name and not still_at(ln, max(SWEEP))]
    positive_lines = [ln for ln in mine if ln["query"] not in negative]
    negative_lines = [ln for ln in mine if ln["query"] in negative]
    false = {n for n in negative if by_name[n]["ok_any_match"] is False}
    print(f"\n{split.upper()} half: lines kept at a share of {max(SWEEP):g}: {len(positive_lines)} in positives, "
          f"{len(negative_lines)} in negatives; false matches in this run: {len(false)}")
    shares = sorted((ln["share"], ln["query"]) for ln in positive_lines if still_at(ln, 0.0))
    print("  most ambiguous lines of positives that a share could turn into stills (not close, or motion "
          "disagrees): " + "; ".join(f"{s:.3f} {q}" for s, q in shares[-4:]))
    for ln in negative_lines:
        if ln["query"] in false or ln["share"] >= NAME_FROM:
            print(f"  negative's line: {ln['query']}: {ln['frames']} frames, median {ln['median_bits']:g} bits, "
                  f"{ln['speed']:g}x, share {ln['share']:.3f}, close {ln['close']}, mirrored {ln['mirrored']}"
                  + (" (a false match in this run)" if ln["query"] in false else ""))
    print("  share   positives' lines made stills (queries)   negatives' lines made stills (queries)")
    for share in SWEEP:
        lost = [ln for ln in positive_lines if still_at(ln, share)]
        dropped = [ln for ln in negative_lines if still_at(ln, share)]
        mark = "   <- matcher constant" if share == match.MAX_AMBIGUOUS_SHARE else ""
        print(f"  {share:<7.2f} {len(lost):>5} ({len({ln['query'] for ln in lost})}){'':30}"
              f"{len(dropped):>5} ({len({ln['query'] for ln in dropped})}){mark}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("tune", "report", "both"), default="tune")
    ap.add_argument("--json", type=Path, default=BENCH / "out" / "heldout" / "ambiguous_share.json")
    args = ap.parse_args(argv)
    log_path = args.json.with_suffix(".lines.jsonl")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    record_lines(log_path)
    rc = heldout.main(["--split", args.split, "--no-vpdq", "--json", str(args.json)])
    if rc:
        return rc
    lines = [json.loads(row) for row in log_path.read_text().splitlines()]
    queries = json.loads(args.json.read_text())["queries"]
    print(f"\nmatch.MAX_AMBIGUOUS_SHARE = {match.MAX_AMBIGUOUS_SHARE} (matcher version {match.MATCHER_VERSION})")
    for split in ("tune", "report") if args.split == "both" else (args.split,):
        summarise(lines, queries, split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
