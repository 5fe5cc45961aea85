"""Audio evidence benchmark: recall, false matches and placement of provenance.audiomatch.

Real sound only, under free licences:
- Big Buck Bunny (CC BY 3.0, Blender Foundation): the film from moviepy's sdist (bench/setup.sh
  fetch_data), cut into 60-s library clips and 20-s unrelated stretches;
- speech: Asterisk's English prompts (asterisk-core-sounds-en-wav, CC BY-SA 3.0; one speaker,
  Allison Smith), joined into 60-s tracks: a library track, and others of the same voice saying
  other words as negatives;
- music: Frozen Bubble's two-player theme (fb-music-high, GPL-2+; an XM module ffmpeg plays with
  libopenmpt), a library piece and the music laid under the "music_under" family;
- espeak-ng's synthetic speech: negatives only.
`bash scripts/install.sh test` installs the Debian packages (as root).

Sources are split in two: the TUNE set chose every constant of audiomatch (say so where they are);
the REPORT set is run to be quoted. Each query is an edit of a library clip (families below); each
negative must match nothing.

    .venv/bin/python bench/audio.py [--set tune|report|both] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance import audio, audiomatch  # noqa: E402

BBB = ROOT / "bench" / "data" / "bbb.mp4"
SPEECH_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
MUSIC = Path("/usr/share/games/frozen-bubble/snd/frozen-mainzik-2p.xm")


@dataclass(frozen=True)
class Source:
    name: str
    make: list[str]  # ffmpeg input arguments giving the sound
    duration_s: float


@dataclass(frozen=True)
class Family:
    name: str
    start_s: float  # where in the reference the query starts
    length_s: float
    speed: float  # reference seconds per query second
    filters: str  # audio filters after the speed change ("" none)
    codec: list[str]
    music_under: bool = False


FAMILIES = (
    Family("aac32", 10, 30, 1.0, "", ["-c:a", "aac", "-b:a", "32k"]),
    Family("opus32_mono", 10, 30, 1.0, "", ["-c:a", "libopus", "-b:a", "32k", "-ac", "1"]),
    Family("resample_mono_22k", 5, 40, 1.0, "aresample=22050", ["-c:a", "aac", "-b:a", "64k", "-ac", "1"]),
    Family("excerpt_5s", 31.3, 5, 1.0, "", ["-c:a", "aac", "-b:a", "64k"]),
    Family("speed_plus10", 12, 20, 1.1, "", ["-c:a", "aac", "-b:a", "64k"]),
    Family("speed_minus10", 12, 20, 0.9, "", ["-c:a", "aac", "-b:a", "64k"]),
    Family("speed_plus4", 20, 20, 1.04, "", ["-c:a", "aac", "-b:a", "64k"]),
    Family("speed_minus7", 20, 20, 0.93, "", ["-c:a", "aac", "-b:a", "64k"]),
    Family("music_under_12db", 15, 30, 1.0, "", ["-c:a", "aac", "-b:a", "64k"], music_under=True),
)


def _speech(files: list[Path]) -> list[str]:
    concat = "".join(f"file '{f}'\n" for f in files)
    listing = Path(tempfile.mkstemp(suffix=".txt", prefix="speech-")[1])
    listing.write_text(concat)
    return ["-f", "concat", "-safe", "0", "-i", str(listing)]


def _speech_sets() -> list[list[Path]]:
    files = sorted(p for p in SPEECH_DIR.glob("*.wav"))
    # Four interleaved sets of prompts, each well over 60 s of speech.
    return [files[k::4] for k in range(4)]


def sources() -> dict[str, dict[str, list[Source]]]:
    """{"tune"|"report": {"library": [...], "negatives": [...]}}"""
    sp = _speech_sets()

    def bbb(a: float, d: float) -> Source:
        return Source(f"bbb_{a:g}", ["-ss", str(a), "-t", str(d), "-i", str(BBB)], d)

    def speech(k: int, d: float) -> Source:
        return Source(f"speech_{k}", [*_speech(sp[k]), "-t", str(d)], d)

    def music(a: float, d: float) -> Source:
        return Source(f"music_{a:g}", ["-ss", str(a), "-t", str(d), "-i", str(MUSIC)], d)

    def espeak(text: str, name: str) -> Source:
        wav = Path(tempfile.mkstemp(suffix=".wav", prefix="espeak-")[1])
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
        return Source(name, ["-i", str(wav)], 20)

    return {
        "tune": {"library": [bbb(0, 60), bbb(120, 60), bbb(240, 60), speech(0, 60), music(0, 60)],
                 "negatives": [bbb(60, 20), bbb(190, 20), bbb(310, 20), speech(2, 20), music(130, 20),
                               espeak("The quick brown fox jumps over the lazy dog. " * 4, "espeak_a")]},
        "report": {"library": [bbb(360, 60), bbb(480, 60), speech(1, 60), music(65, 60)],
                   "negatives": [bbb(430, 20), bbb(550, 20), speech(3, 20), music(180, 20),
                                 espeak("Breaking news from the city centre tonight, where crowds gathered. " * 3,
                                        "espeak_b")]},
    }


def _render(src: Source, out: Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *src.make, "-vn", "-ac", "2", "-ar", "44100",
                    "-c:a", "pcm_s16le", str(out)], check=True)


def _edit(ref_wav: Path, fam: Family, out: Path, music_wav: Path) -> None:
    chain = [f"atrim=start={fam.start_s}:duration={fam.length_s * fam.speed}", "asetpts=PTS-STARTPTS"]
    if fam.speed != 1.0:  # speed and pitch together, as a repost's "speed" does (atempo would keep pitch)
        chain += [f"asetrate={44100 * fam.speed:.2f}", "aresample=44100"]
    if fam.filters:
        chain.append(fam.filters)
    if fam.music_under:
        # "Under at -12 dB": 12 dB below the footage's own sound (mean levels), not below full scale,
        # which would drown a quiet scene.
        gain = _mean_volume(ref_wav) - _mean_volume(music_wav) - 12.0
        graph = (f"[0:a]{','.join(chain)}[v];[1:a]volume={gain:.1f}dB[m];"
                 "[v][m]amix=inputs=2:duration=first:normalize=0[out]")
        cmd = ["-i", str(ref_wav), "-i", str(music_wav), "-filter_complex", graph, "-map", "[out]"]
    else:
        cmd = ["-i", str(ref_wav), "-af", ",".join(chain)]
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *cmd, *fam.codec, str(out)], check=True)


def _mean_volume(path: Path) -> float:
    err = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(path), "-af", "volumedetect",
                          "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    return float(err.split("mean_volume:")[1].split("dB")[0])


def run(which: str, work: Path) -> dict[str, object]:
    conf = sources()[which]
    lib_ids, lib_vals, sha_of = [], [], {}
    refs = {}
    for k, src in enumerate(conf["library"]):
        wav = work / f"{which}-{src.name}.wav"
        _render(src, wav)
        fp = audio.fingerprint_audio(wav, has_audio=True)
        assert fp.has_evidence, (src.name, fp.detail)
        lib_ids += [k] * fp.items.size
        lib_vals += fp.items.tolist()
        sha_of[k] = src.name
        refs[src.name] = wav
    library = audiomatch.build_library(lib_ids, lib_vals, sha_of)
    # Music laid under: a stretch of the music no library clip holds.
    under = work / f"{which}-under.wav"
    _render(Source("under", ["-ss", "30" if which == "report" else "140", "-t", "40", "-i", str(MUSIC)], 40), under)
    rows = []
    for name, wav in refs.items():
        for fam in FAMILIES:
            out = work / f"{which}-{name}-{fam.name}.{'ogg' if 'opus' in fam.name else 'm4a'}"
            _edit(wav, fam, out, under)
            t0 = time.perf_counter()
            fp = audio.fingerprint_audio(out, has_audio=True, query=True)
            found = audiomatch.find_audio(fp, library)
            took = time.perf_counter() - t0
            top = found[0] if found else None
            hit = top is not None and top.sha256 == name
            err = abs(top.offset_s - fam.start_s) if hit else None
            rows.append({"ref": name, "family": fam.name, "found": hit, "placement_error_s": err,
                         "similarity": top.similarity if top else None, "speed": top.speed if top else None,
                         "matched_s": top.matched_s if top else None, "wrong": [m.sha256 for m in found if m.sha256 != name],
                         "seconds": round(took, 3)})
    negatives = []
    for src in conf["negatives"]:
        wav = work / f"{which}-neg-{src.name}.m4a"
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *src.make, "-vn", "-c:a", "aac", "-b:a", "64k",
                        str(wav)], check=True)
        fp = audio.fingerprint_audio(wav, has_audio=True, query=True)
        found = audiomatch.find_audio(fp, library)
        negatives.append({"negative": src.name, "status": fp.status.value,
                          "false_matches": [(m.sha256, m.similarity, m.matched_s) for m in found]})
    n = len(rows)
    placed = [r for r in rows if r["found"] and r["placement_error_s"] is not None and r["placement_error_s"] <= 0.2]
    return {"set": which, "queries": n, "found": sum(r["found"] for r in rows), "placed_0_2s": len(placed),
            "recall": round(sum(r["found"] for r in rows) / n, 3),
            "false_matches": sum(len(r["wrong"]) for r in rows) + sum(len(x["false_matches"]) for x in negatives),
            "negatives": len(negatives),
            "max_placement_error_s": max((r["placement_error_s"] for r in rows if r["found"]), default=None),
            "rows": rows, "negative_rows": negatives}


def cost(repeat: int, frames: int, extra_grids: dict[str, tuple[float, ...]]) -> None:
    """The check's extra time for sound: bench/check_speed.py's 28-s 720p clip checked in-process
    with and without a soundtrack (same video stream), against its library, interleaved rounds;
    `extra_grids`: also with sound under other query speed grids (label -> speeds)."""
    import os
    import statistics

    load0 = f"{os.getloadavg()[0]:.1f}"

    import check_speed as cs

    from provenance import pipeline
    from provenance.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bench-audio-cost-") as tmp:
        work = Path(tmp)
        silent = work / "clip_28s_720p.mp4"
        cs.make_clip(silent)
        sounding = cs.with_sound(silent)
        db_url = f"sqlite:///{work / 'library.db'}"
        cs.build_library(db_url, work / "evidence", frames, cs.SEED)
        settings = Settings(db_url=db_url, store_dir=work / "evidence")
        runs = [("no sound", silent, audio.QUERY_SPEEDS), ("with sound", sounding, audio.QUERY_SPEEDS)]
        for label, speeds in extra_grids.items():
            runs.append((f"with sound, {label}", sounding, speeds))
        times: dict[str, list[float]] = {name: [] for name, _, _ in runs}
        cpus: dict[str, list[float]] = {name: [] for name, _, _ in runs}
        kept = audio.QUERY_SPEEDS
        try:
            for k in range(repeat + 1):
                for name, clip, speeds in runs:
                    audio.QUERY_SPEEDS = speeds
                    c0, t0 = _cpu(), time.perf_counter()
                    result = pipeline.check(str(clip), settings=settings, record=False)
                    if k:  # the first round warms up
                        times[name].append(time.perf_counter() - t0)
                        cpus[name].append(_cpu() - c0)
        finally:
            audio.QUERY_SPEEDS = kept
        med = {k: statistics.median(v) for k, v in times.items()}
        cpu = {k: statistics.median(v) for k, v in cpus.items()}
        print(f"check of a 28-s 1280x720 clip, {frames:,} frame hashes, medians of {repeat} interleaved rounds, "
              f"load average before/after {load0} / {os.getloadavg()[0]:.1f}:")
        base_wall, base_cpu = med["no sound"], cpu["no sound"]
        for name in times:
            print(f"  {name:32s} wall {med[name]:6.2f} s ({(med[name] / base_wall - 1) * 100:+5.1f}%)   "
                  f"CPU {cpu[name]:6.2f} s ({(cpu[name] / base_cpu - 1) * 100:+5.1f}%)")
        print("  paired CPU differences with sound - no sound (s), per round:",
              [round(a - b, 2) for a, b in zip(cpus["with sound"], cpus["no sound"])])
        print(f"  runs (wall) {times}\n  runs (CPU) {cpus}\n  sound: {result.sound.status if result.sound else None}, "
              f"{len(result.sound.matches) if result.sound else 0} audio matches")


def _cpu() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("tune", "report", "both"), default="tune")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--cost", action="store_true", help="measure the check's extra time for sound instead")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--with-2pct-grid", action="store_true",
                    help="with --cost: also time the query speed grid used before (11 prints, 2%% apart)")
    args = ap.parse_args()
    if args.cost:
        sys.path.insert(0, str(ROOT / "bench"))
        grids = {"11 prints 2% apart (before)": tuple(round(1.02 ** k, 6) for k in range(-5, 6))}
        cost(args.repeat, args.frames, grids if args.with_2pct_grid else {})
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp:
        for which in (("tune", "report") if args.set == "both" else (args.set,)):
            res = run(which, Path(tmp))
            results.append(res)
            for r in res["rows"]:
                if not r["found"] or r["wrong"] or (r["placement_error_s"] or 0) > 0.2:
                    print("  MISS" if not r["found"] else "  NOTE", r)
            for x in res["negative_rows"]:
                if x["false_matches"]:
                    print("  FALSE", x)
            print(f"{which}: {res['found']}/{res['queries']} found (recall {res['recall']}), "
                  f"{res['placed_0_2s']} placed within 0.2 s (worst {res['max_placement_error_s']}), "
                  f"{res['false_matches']} false matches ({res['negatives']} negatives)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
