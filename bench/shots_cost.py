"""What finding shots costs a check: provenance.shots.ShotTracker.add on every sampled frame of the
28-s 1280x720 clip of bench/check_speed.py, beside the whole fingerprint step of the same clip.

    python bench/shots_cost.py [--repeat 3] [--workdir /tmp/bench-shots]

CPU time (this process), not wall time: on a shared machine CPU time is the steadier figure, and the
tracker runs in the decode loop's own thread. Prints the machine, the clip, both medians and the ratio.
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
sys.path.insert(0, str(REPO / "bench"))

import cv2  # noqa: E402

from check_speed import make_clip  # noqa: E402
from provenance.frames import SAMPLE_FPS, fingerprint, small_grey  # noqa: E402
from provenance.shots import ShotTracker  # noqa: E402


def sampled_frames(path: Path) -> list[tuple[float, object, object]]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    step = max(1, round(fps / SAMPLE_FPS))
    out, i = [], 0
    while cap.grab():
        if i % step == 0:
            ok, image = cap.retrieve()
            if ok:
                out.append((i / fps, image, small_grey(image)))
        i += 1
    cap.release()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-shots"))
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    clip = args.workdir / "clip28s720p.mp4"
    if not clip.exists():
        make_clip(clip)
    frames = sampled_frames(clip)
    tracker_s, fingerprint_s, shots = [], [], ()
    for _ in range(args.repeat):
        started = time.process_time()
        tracker = ShotTracker()
        for t, image, grey in frames:
            tracker.add(t, image, grey)
        shots = tracker.shots(end_s=frames[-1][0] + 1 / SAMPLE_FPS)
        tracker_s.append(time.process_time() - started)
        started = time.process_time()
        fingerprint(clip, query=True)
        fingerprint_s.append(time.process_time() - started)
    tracker_med, fingerprint_med = statistics.median(tracker_s), statistics.median(fingerprint_s)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}, "
          f"OpenCV {cv2.__version__}")
    print(f"clip: {clip.name}, {len(frames)} sampled frames at {SAMPLE_FPS:g} fps, {len(shots)} shots found")
    print(f"shot tracking: {tracker_med * 1000:.0f} ms CPU ({tracker_med / len(frames) * 1000:.2f} ms a frame); "
          f"fingerprint of the query (decode + hash + shots): {fingerprint_med:.2f} s CPU; "
          f"share {tracker_med / fingerprint_med:.1%} (median of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
