"""Decode benchmark (issue 12): the sampling decode of a check through PyAV, skipping the frames no
sampled frame needs (provenance.decode.sample), against OpenCV decoding every frame
(provenance.decode._sample_opencv, the decode of every check before), and ffmpeg's own decode
(`ffmpeg -i clip -f null -`, the yardstick of the issue's goals).

    python bench/decode_skip.py                       # the 28-s 720p clip of check_speed.py, 5 rounds
    python bench/decode_skip.py --repeat 9 --clip samples/bikes.mp4

Each round runs the three in turn, each in a process of its own (so each pays its imports, as a check
does), and reports wall and CPU time (the process and its threads); the frames handed over must be the
same bits both ways (checked once, before the rounds). Also printed: how many of the clip's frames PyAV
decoded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import check_speed  # noqa: E402 - the query clip, the decode command, the machine

_ONE = """
import json, logging, os, sys, time
from pathlib import Path
t0, c0 = time.perf_counter(), os.times()
from provenance import decode
from provenance.frames import SAMPLE_FPS
record = []
logging.basicConfig(level=logging.DEBUG, format="%(message)s", stream=sys.stderr)
logging.getLogger().handlers[0].addFilter(lambda r: r.name == "provenance.decode")
take = lambda t, image: record.append(t)
if sys.argv[2] == "opencv":
    decode._sample_opencv(Path(sys.argv[1]), SAMPLE_FPS, take, progress=None, duration_s=None)
else:
    decode.sample(Path(sys.argv[1]), SAMPLE_FPS, take)
c1 = os.times()
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": c1.user - c0.user + c1.system - c0.system,
                  "frames": len(record)}))
"""

_SAME = """
import hashlib, sys
from pathlib import Path
from provenance import decode
from provenance.frames import SAMPLE_FPS
out = {"pyav": [], "opencv": []}
decode.sample(Path(sys.argv[1]), SAMPLE_FPS, lambda t, im: out["pyav"].append((t, hashlib.sha256(im.tobytes()).hexdigest())))
decode._sample_opencv(Path(sys.argv[1]), SAMPLE_FPS,
                      lambda t, im: out["opencv"].append((t, hashlib.sha256(im.tobytes()).hexdigest())),
                      progress=None, duration_s=None)
print(len(out["pyav"]), out["pyav"] == out["opencv"])
"""


def one(clip: Path, how: str) -> tuple[dict, str]:
    cp = subprocess.run([sys.executable, "-c", _ONE, str(clip), how], capture_output=True, text=True, check=True)
    return json.loads(cp.stdout), cp.stderr.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, help="a video file (default: check_speed.py's 28-s 720p clip, made once)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    clip = args.clip
    if clip is None:
        clip = Path(tempfile.gettempdir()) / "provenance-decode-bench" / "clip_28s_720p.mp4"
        if not clip.exists():
            clip.parent.mkdir(parents=True, exist_ok=True)
            print("making the 28-s 1280x720 clip...", flush=True)
            check_speed.make_clip(clip)
    same = subprocess.run([sys.executable, "-c", _SAME, str(clip)], capture_output=True, text=True,
                          check=True).stdout.split()
    if same[1] != "True":
        print("PyAV and OpenCV handed over different frames: nothing to time", file=sys.stderr)
        return 1
    print(f"{clip.name}: {same[0]} sampled frames, the same bits through PyAV and OpenCV", flush=True)
    rows: dict[str, list[dict]] = {"ffmpeg": [], "opencv": [], "pyav": []}
    note = ""
    for i in range(args.repeat + 1):  # round 0 warms the page cache and byte-code, and is not counted
        load = os.getloadavg()[0]
        dec = check_speed.Clock()
        dec(lambda: check_speed.run(check_speed.decode_cmd(clip)))
        got = {"ffmpeg": {"wall": dec.wall[0], "cpu": dec.cpu[0]}}
        for how in ("opencv", "pyav") if i % 2 else ("pyav", "opencv"):
            got[how], log = one(clip, how)
            note = log or note
        if i:
            for k, v in got.items():
                rows[k].append(v)
            print(f"  round {i}/{args.repeat} (load {load:.1f}): " + ", ".join(
                f"{k} {v['wall']:.2f} s wall / {v['cpu']:.2f} s CPU" for k, v in got.items()), flush=True)

    def med(k: str, f: str) -> float:
        return statistics.median(r[f] for r in rows[k])

    print("\n" + "\n".join(f"{k:8} {v}" for k, v in check_speed.machine()))
    print(f"av       {__import__('av').__version__}\nclip     {clip} (sha256 {hashlib.sha256(clip.read_bytes()).hexdigest()[:12]})")
    print(f"PyAV     {note}")
    print("\n| decode | wall s (median) | CPU s (median) | wall / ffmpeg | CPU / ffmpeg | CPU / OpenCV |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for k, name in (("ffmpeg", "ffmpeg -f null (every frame)"), ("opencv", "OpenCV, every frame (before)"),
                    ("pyav", "PyAV, skipping (now)")):
        pair_wall = statistics.median(a["wall"] / b["wall"] for a, b in zip(rows[k], rows["ffmpeg"]))
        pair_cpu = statistics.median(a["cpu"] / b["cpu"] for a, b in zip(rows[k], rows["ffmpeg"]))
        vs_cv = statistics.median(a["cpu"] / b["cpu"] for a, b in zip(rows[k], rows["opencv"]))
        print(f"| {name} | {med(k, 'wall'):.2f} | {med(k, 'cpu'):.2f} | {pair_wall:.2f}x | {pair_cpu:.2f}x | {vs_cv:.2f}x |")
    print(f"\n{args.repeat} rounds, the three in turn (OpenCV and PyAV alternating which goes first); ratios are "
          "medians of each round's own ratio; each decode a process of its own, imports included.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
