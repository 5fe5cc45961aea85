"""Picture-in-picture at other sizes and places, on the held-out TUNE half only (issue 10): a study to
choose on, never a figure to quote. bench/heldout.py's pip family puts each library window at half
width, top right or bottom left; here each tune library window is put at 50%, 40% and 33% of the
1280x720 canvas width, in each corner and the centre (15 insets a window, 45 in all), over tune
negative windows, and checked once each.

    VENV=.venv bash bench/setup.sh fetch_heldout        # once: the clips
    python bench/pip_positions.py                       # ~5 min on 2 cores; needs heldout.py's work folder

Prints one line per query (found or not, the top match's method and strength, why not) and the
count. The queries and the library are heldout.py's machinery (same masters, same library, cached
in bench/out/heldout); the queries go to bench/out/heldout/pip_positions/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import families as F  # noqa: E402
import heldout as HO  # noqa: E402
import heldout_corpus as H  # noqa: E402
import robustness as R  # noqa: E402

PLACES = {"top_left": "32:32", "top_right": "W-w-32:32", "bottom_left": "32:H-h-32",
          "bottom_right": "W-w-32:H-h-32", "centre": "(W-w)/2:(H-h)/2"}
WIDTHS = (640, 512, 420)  # 50%, 40% and 33% of the canvas width


def inset(src: F.Source, bg: F.Source, place: str, width: int) -> F.Query:
    cw, ch = HO.CANVAS
    graph = (f"[1:v]setpts=PTS-STARTPTS,scale={cw}:{ch}:force_original_aspect_ratio=increase,crop={cw}:{ch},"
             f"fps={src.fps:.4f},tpad=stop_mode=clone:stop_duration={HO.QUERY_MAX_S:g},setsar=1[bg];"
             f"[0:v]setpts=PTS-STARTPTS,scale={width}:{F._even(src.height * width / src.width)},setsar=1[fg];"
             f"[bg][fg]overlay={PLACES[place]}:shortest=1,format=yuv420p[out]")
    strength = f"{width * 100 // cw}%_{place}"
    return F.Query(name=F._name("pip_positions", strength, src.label), family="pip", strength=strength,
                   source=src.label, inputs=[F._input(src), F._input(bg)], graph=graph,
                   output=[*F.X264, "-crf", "23"], truth=[F._truth(src, 0.0, src.duration)],
                   note=f"background: {bg.label} (a tune negative window)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=BENCH / "out" / "heldout")
    args = ap.parse_args(argv)
    work = args.workdir.resolve()
    clips = H.load_manifest()
    missing = [c.file for c in clips if not c.path.exists()]
    if missing:
        print(f"missing {', '.join(missing)}: run `bash bench/setup.sh fetch_heldout`", file=sys.stderr)
        return 2
    HO.prepare_masters(work, clips)
    lib_w, neg_w = HO.library_windows(clips), HO.negative_windows(clips)
    lib = HO.build_library(work, HO.references(work, lib_w, HO.openings(HO.opening_window(clips), neg_w)[0]), False)
    queries = []
    for w in (w for w in lib_w if w.clip.split == "tune"):
        stem = Path(w.clip.file).stem
        others = [n for n in neg_w if n.clip.split == "tune" and n.clip.unit != w.clip.unit and n.clip.deal == 1]
        src = HO.sub_source(w, HO.QUERY_MAX_S, f"pip_positions|{stem}")
        for k, (width, place) in enumerate((w_, p) for w_ in WIDTHS for p in PLACES):
            bg = HO.sub_source(others[k % len(others)], HO.QUERY_MAX_S, f"pip_positions|{stem}|bg{k}", "bg")
            queries.append(inset(src, bg, place, width))
    paths = R.make_queries(queries, work / "pip_positions", 2)
    strength, _ = R.strength_fn()
    vp = R.Vpdq(work, False)
    found = 0
    for q in queries:
        o = R.run_one(q, paths[q.name], lib, vp, None, strength)
        ok, why = R.score_ours(o, q, lib.refs, float("-inf"))
        found += bool(ok)
        top = o.found[0] if o.found else None
        print(f"{q.source[:30]:30s} {q.strength:18s} {'found' if ok else 'MISSED':6s} "
              + (f"top {top.ref} by {top.method or 'frames'}, strength {top.strength:.1f}" if top else "no match")
              + (f"; {why}" if not ok and why else ""), flush=True)
    print(f"tune half, picture-in-picture at 3 sizes x 5 places: {found}/{len(queries)} found and placed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
