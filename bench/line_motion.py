"""What moves along a line: copies of fixed-camera footage against the same cameras at other moments.

The numbers behind match.LINE_MOTION_MIN_CORRELATION and LINE_MOTION_MIN_Z (matcher versions 12 and 18). A close
line through fixed-camera frames is a placement only when what moves along it agrees with the reference
there (provenance.motion.agreement). This measures that agreement, on the held-out corpus's fixed and
low-motion cameras (bench/heldout.tsv kinds static and low_motion), for
  - true lines: every piece of a whole-picture positive query (the families whose picture still lines up
    with the reference's grid; not crop_corner or pip) placed where its ground truth says, and
  - other-moment lines: every negative query cut from another moment of a library camera (not its
    compilations), laid at every whole second of the library clip at 1x (the lines another moment could
    make, close or not),
for the tune half (where the thresholds were chosen) and the report half (never used to choose).

Needs bench/out/heldout made by `python bench/heldout.py --split both --make-only` (the library and the
queries); reads the library's stored motion profiles. Takes about 3 minutes a half on 2 cores.

    python bench/line_motion.py [--split tune|report|both]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import heldout_corpus as H  # noqa: E402

from provenance import match, motion  # noqa: E402
from provenance.frames import fingerprint  # noqa: E402

WORK = BENCH / "out" / "heldout"
WHOLE_PICTURE = ("reencode", "colour", "overlay", "mirror_excerpt", "compilation", "speed", "letterbox",
                 "vertical_fill", "mirror_overlay")
SWEEP_R = (0.1, 0.15, 0.2)
SWEEP_Z = (None, 1.5, 1.75, 2.0)


def library_profiles(work: Path) -> dict[str, motion.MotionProfile]:
    name_of = json.loads((work / "library.key.json").read_text())["name_of"]
    db = sqlite3.connect(f"file:{work / 'library.db'}?mode=ro", uri=True)
    out = {}
    for clip_id, sha in db.execute("SELECT id, sha256 FROM clips"):
        row = db.execute("SELECT times, cells FROM clip_motion WHERE clip_id = ?", (clip_id,)).fetchone()
        if row and sha in name_of:
            out[name_of[sha]] = motion.MotionProfile.from_bytes(np.frombuffer(row[0], dtype=np.float64), row[1])
    return out


def cameras(clips: list[H.Clip], split: str) -> tuple[set[str], dict[str, str]]:
    """Library clips of fixed or low-motion cameras on `split`, and each such camera's clip stems -> its
    library clip (another recording of one unit counts as another moment)."""
    fixed = [c for c in clips if c.split == split and c.kind in ("static", "low_motion")]
    library = {c.unit: Path(c.file).stem for c in fixed if c.role == "reference"}
    return set(library.values()), {Path(c.file).stem: library[c.unit] for c in fixed if c.unit in library}


def true_lines(work: Path, profiles: dict, library: set[str]) -> list[tuple[str, motion.Agreement]]:
    out = []
    for meta in sorted((work / "queries").glob("*.mp4.json")):
        name = meta.name[:-len(".json")]
        if name.startswith("neg__") or name.split("__")[0] not in WHOLE_PICTURE:
            continue
        spec = json.loads(meta.read_text())
        pieces = [t for t in spec["truth"] if t["footage"] in library]
        if not pieces:
            continue
        profile = fingerprint(work / "queries" / name).motion
        mirrored = "hflip" in " ".join(spec["cmd"])
        for t in pieces:
            speed = (t["f1"] - t["f0"]) / (t["q1"] - t["q0"])
            rows = np.flatnonzero((profile.times >= t["q0"]) & (profile.times <= t["q1"]))
            if motion.energy(profile, rows[rows > 0], mirrored=mirrored) < motion.MOTION_MIN_ENERGY:
                continue  # nothing moves: the rule does not judge such a line
            agreed = motion.agreement(profile, profiles[t["footage"]], query_rows=rows, mirrored=mirrored,
                                      reference_times=t["f0"] + speed * (profile.times[rows] - t["q0"]))
            if agreed is not None:
                out.append((name, agreed))
    return out


def other_moment_lines(work: Path, profiles: dict, library_of: dict[str, str]) -> list[tuple[str, motion.Agreement]]:
    out = []
    for path in sorted((work / "queries").glob("neg__*.mp4")):
        kind = path.name.split("__")[1]
        stem = next((s for s in library_of if f"__{s}at" in path.name), None)
        if stem is None or kind.startswith("comp"):
            continue
        profile, reference = fingerprint(path).motion, profiles[library_of[stem]]
        rows = np.arange(1, profile.cells.shape[0])
        span = profile.times[-1] - profile.times[1]
        for mirrored in (False, True):
            if motion.energy(profile, rows, mirrored=mirrored) < motion.MOTION_MIN_ENERGY:
                continue
            for start in np.arange(0.0, reference.times[-1] - span, 1.0):
                agreed = motion.agreement(profile, reference, query_rows=rows, mirrored=mirrored,
                                          reference_times=start + profile.times[rows] - profile.times[1])
                if agreed is not None:
                    out.append((path.name, agreed))
    return out


def passes(a: motion.Agreement, r_min: float, z_min: float | None) -> bool:
    return a.correlation >= r_min and (z_min is None or a.peak_z is None or a.peak_z >= z_min)


def report(split: str, trues: list, others: list) -> None:
    r = np.array([a.correlation for _, a in trues])
    z = np.array([a.peak_z for _, a in trues if a.peak_z is not None])
    n_r = np.array([a.correlation for _, a in others])
    print(f"\n{split.upper()} half")
    print(f"  true lines: {len(trues)} (r {r.min():.2f}..{r.max():.2f}; z {z.min():.2f}..{z.max():.2f} "
          f"for the {z.size} with room for shifts)")
    print(f"  other-moment lines: {len(others)} from {len({n for n, _ in others})} queries "
          f"(r {n_r.min():.2f}..{n_r.max():.2f})")
    print("  r >=   z >=   true lines kept   other-moment lines passing")
    for r_min in SWEEP_R:
        for z_min in SWEEP_Z:
            chosen = (r_min, z_min) == (match.LINE_MOTION_MIN_CORRELATION, match.LINE_MOTION_MIN_Z)
            kept = sum(passes(a, r_min, z_min) for _, a in trues)
            passing = sum(passes(a, r_min, z_min) for _, a in others)
            print(f"  {r_min:<6g} {'-' if z_min is None else z_min:<6} {kept:>4}/{len(trues):<12} {passing:>5}/{len(others)}"
                  + ("   <- matcher constants" if chosen else ""))
    lowest = sorted(trues, key=lambda t: t[1].correlation)[:4]
    print("  lowest true lines: " + "; ".join(f"{n[:-4]} r {a.correlation:.2f} z {a.peak_z}" for n, a in lowest))
    lost = [(n, a) for n, a in trues if not passes(a, match.LINE_MOTION_MIN_CORRELATION, match.LINE_MOTION_MIN_Z)]
    for n, a in lost:
        print(f"  true line failing the matcher's thresholds: {n} (r {a.correlation:.2f}, z {a.peak_z})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("tune", "report", "both"), default="both")
    ap.add_argument("--workdir", type=Path, default=WORK)
    args = ap.parse_args(argv)
    if not (args.workdir / "library.key.json").exists():
        print(f"no library in {args.workdir}: run `python bench/heldout.py --split both --make-only` first",
              file=sys.stderr)
        return 2
    clips = H.load_manifest()
    profiles = library_profiles(args.workdir)
    for split in ("tune", "report") if args.split == "both" else (args.split,):
        library, library_of = cameras(clips, split)
        report(split, true_lines(args.workdir, profiles, library), other_moment_lines(args.workdir, profiles, library_of))
    return 0


if __name__ == "__main__":
    sys.exit(main())
