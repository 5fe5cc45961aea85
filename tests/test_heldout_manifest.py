"""The held-out corpus's manifest (bench/heldout.tsv, read by bench/heldout_corpus.py): its split column
follows the rule, a later deal never moves a clip that an earlier deal dealt (footage seen while tuning
stays on tune), and every window lies inside its clip. Reads the manifest only: no footage is needed."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

CORPUS_PY = Path(__file__).resolve().parent.parent / "bench" / "heldout_corpus.py"


@pytest.fixture(scope="module")
def corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("heldout_corpus", CORPUS_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_split_column_follows_the_rule(corpus: ModuleType) -> None:
    assert corpus.check(corpus.load_manifest()) == []


def test_a_later_deal_moves_no_clip_of_an_earlier_one(corpus: ModuleType) -> None:
    clips = corpus.load_manifest()
    full = corpus.rule_splits(clips)
    for deal in sorted(corpus.DEALS):
        earlier = [c for c in clips if c.deal <= deal]
        assert corpus.rule_splits(earlier) == {c.file: full[c.file] for c in earlier}, deal


def test_a_moved_clip_is_caught(corpus: ModuleType) -> None:
    """The check above can fail: dealing deal 3's units as part of deal 1 moves deal-1 clips."""
    clips = corpus.load_manifest()
    merged = [replace(c, deal=1) if c.deal == 3 else c for c in clips]
    moved = {f for f, s in corpus.rule_splits(merged).items() if s != corpus.rule_splits(clips)[f]}
    assert moved & {c.file for c in clips if c.deal == 1}


def test_windows_lie_inside_their_clip(corpus: ModuleType) -> None:
    for c in corpus.load_manifest():
        for a, b in [*([c.library_s] if c.library_s else []), *c.negative_s]:
            assert 0 <= a < b <= c.duration_s + 0.01, (c.file, a, b, c.duration_s)


def test_deal_3_gives_the_report_half_fresh_positives(corpus: ModuleType) -> None:
    clips = corpus.load_manifest()
    fresh = [c for c in clips if c.deal == 3 and c.role == "reference" and c.split == "report"]
    assert fresh, "deal 3 was added for fresh report footage"
    seen = {c.unit for c in clips if c.deal < 3}
    assert all(c.unit not in seen for c in clips if c.deal == 3)


def test_deal_4_puts_every_reference_unit_on_report(corpus: ModuleType) -> None:
    """Deal 4 is fresh footage for the report half: all its reference units land there, from packages
    that no earlier deal used, and each is long enough for a same-camera negative window."""
    clips = corpus.load_manifest()
    deal4 = [c for c in clips if c.deal == 4]
    refs = [c for c in deal4 if c.role == "reference"]
    assert len({c.unit for c in refs}) >= 2
    assert all(c.split == "report" for c in refs)
    assert all(c.negative_s for c in refs), "each deal-4 reference keeps a window for 'another moment'"
    earlier_sources = {c.source.split("==")[0].split("=")[0] for c in clips if c.deal < 4}
    assert not {c.source.split("==")[0].split("=")[0] for c in deal4} & earlier_sources


def test_without_references_all_first_deal_4_would_alternate(corpus: ModuleType) -> None:
    """The rule, not the manifest, puts deal 4's references on report: alternating them would move one."""
    clips = corpus.load_manifest()
    deal4 = [c for c in clips if c.deal == 4]
    alternated = corpus._deal(deal4, corpus.DEALS[4])
    assert "tune" in {alternated[c.file] for c in deal4 if c.role == "reference"}
    assert corpus.rule_splits(clips) == {c.file: c.split for c in clips}


def test_deal_5_gives_the_tune_half_its_first_reference_unit(corpus: ModuleType) -> None:
    """Deal 5 is dealt tune first (the tune half had no fixed camera whose other moments look like its
    library window): its first reference unit lands on tune, every deal-5 reference keeps a same-camera
    negative window, and its footage comes from packages no earlier deal used."""
    clips = corpus.load_manifest()
    deal5 = [c for c in clips if c.deal == 5]
    refs = [c for c in deal5 if c.role == "reference"]
    assert corpus.DEALS[5] == "tune" and 5 not in corpus.REFERENCES_ALL_FIRST
    assert any(c.split == "tune" and c.kind in corpus.STILL_KINDS for c in refs)
    assert all(c.negative_s for c in refs), "each deal-5 reference keeps a window for 'another moment'"
    earlier_sources = {c.source.split("==")[0].split("=")[0] for c in clips if c.deal < 5}
    assert not {c.source.split("==")[0].split("=")[0] for c in deal5} & earlier_sources


def test_deal_5_reference_units_alternate_tune_first(corpus: ModuleType) -> None:
    """The rule, not the manifest, places deal 5: its reference units alternate tune, report, tune... in
    the rule's order, and dealing them report first would move the first one."""
    clips = corpus.load_manifest()
    deal5 = [c for c in clips if c.deal == 5]
    assert corpus._deal(deal5, "tune") == {c.file: c.split for c in deal5}
    flipped = corpus._deal(deal5, "report")
    assert any(flipped[c.file] != c.split for c in deal5 if c.role == "reference")


def test_deal_5_backgrounds_come_from_the_references_own_half() -> None:
    """bench/heldout.py puts only footage of the reference's own half around or behind a deal-5 positive
    (on tune: deals 1 and 5). Builds the query specs only: no footage is read or made."""
    heldout, clips = _heldout_with_clips()
    lib, neg = heldout.library_windows(clips), heldout.negative_windows(clips)
    deal_of = {Path(c.file).stem: c for c in clips}
    seen = 0
    for q, split in heldout.positives([w for w in lib if w.clip.deal == 5], neg, ("compilation", "pip")):
        own = q.source.split("@")[0]
        args = [a for inp in q.inputs for a in (inp if isinstance(inp, list) else [inp])]
        stems = {Path(a).stem for a in args if Path(a).stem in deal_of}
        assert own in stems, q.name
        for stem in stems - {own}:
            other = deal_of[stem]
            assert other.split == split, (q.name, stem)
            assert other.deal in ((1, 5) if split == "tune" else (1, 4, 5)), (q.name, stem, other.deal)
            seen += 1
    assert seen, "deal 5's compilations and pictures-in-picture put other footage around its pieces"


# Deal 5, part 2: three clips of 10-12 s whose later moments sit 0-4 pHash bits from their first 5 s.
DEAL_5_SHORT = {"mvtb_traffic_sequence.mp4": "report", "vidmag_baby_input.mp4": "tune",
                "vidmag_face_input.mp4": "report"}


def test_deal_5_short_fixed_cameras_are_dealt_by_the_rule(corpus: ModuleType) -> None:
    """The three short clips are each their own unit, a 5-s library window from 0 s and a disjoint negative
    window of at least 4 s from 5.5 s to the end; the rule (long clips first, then sha256) puts them after
    the goldfish, alternating report, tune, report, so the goldfish stays on tune."""
    clips = corpus.load_manifest()
    by_file = {c.file: c for c in clips}
    assert by_file["shady_fish_pond.mp4"].split == "tune"
    short = [by_file[f] for f in DEAL_5_SHORT]
    assert len({c.unit for c in short}) == 3 and all(c.deal == 5 and c.role == "reference" for c in short)
    for c in short:
        assert c.duration_s < corpus.TWO_WINDOWS_MIN_S and c.kind in corpus.STILL_KINDS, c.file
        assert c.library_s == (0.0, 5.0), c.file
        ((a, b),) = c.negative_s
        assert a == 5.5 and b - a >= 4.0 and b <= c.duration_s, c.file
    rule = corpus.rule_splits(clips)
    assert {f: rule[f] for f in DEAL_5_SHORT} == DEAL_5_SHORT
    assert {f: by_file[f].split for f in DEAL_5_SHORT} == DEAL_5_SHORT


def _cut(inp: list[str]) -> tuple[str, float, float]:
    """(clip stem, first second, last second) of one ffmpeg input `-ss A -t D -i PATH`."""
    ss, t = float(inp[inp.index("-ss") + 1]), float(inp[inp.index("-t") + 1])
    return Path(inp[inp.index("-i") + 1]).stem, ss, ss + t


def _heldout_with_clips() -> tuple[ModuleType, list]:
    heldout = _load_bench_module("heldout")
    clips = sys.modules["heldout_corpus"].load_manifest()
    if not all(c.path.exists() for c in clips):
        pytest.skip("the held-out clips are not fetched (bash bench/setup.sh fetch_heldout)")
    return heldout, clips


def test_deal_5_short_library_windows_give_every_family() -> None:
    """A 5-s library window is enough for every family x strength, and every piece of the clip a positive
    uses lies inside its library window. Builds the query specs only: no footage is read or made."""
    heldout, clips = _heldout_with_clips()
    lib, neg = heldout.library_windows(clips), heldout.negative_windows(clips)
    short = [w for w in lib if w.clip.file in DEAL_5_SHORT]
    assert len(short) == 3
    for w in short:
        qs = heldout.positives([w], neg, tuple(heldout.FAMILIES))
        stem = Path(w.clip.file).stem
        assert {(q.family, q.strength) for q, _ in qs} == {
            (f, s) for f, ss in heldout.FAMILIES.items() for s in ss}, stem
        for q, split in qs:
            assert split == DEAL_5_SHORT[w.clip.file]
            own = [_cut(inp) for inp in q.inputs if _cut(inp)[0] == stem]
            assert own, q.name
            for _, a, b in own:
                assert w.start <= a < b <= w.end, (q.name, a, b)


def test_deal_5_short_negative_windows_keep_a_plain_excerpt() -> None:
    """Each short deal-5 (and deal-7) negative window gets one plain 4-s excerpt of the same camera at
    another moment (inside that window), besides its edits; the short windows of deals 1-4 still get none."""
    heldout, clips = _heldout_with_clips()
    neg = heldout.negative_windows(clips)
    lib_open, neg_open = heldout.openings(heldout.opening_window(clips), neg)
    qs = heldout.negatives(neg, neg_open)
    for w in neg:
        stem = Path(w.clip.file).stem
        plain = [q for q, _ in qs if q.name.startswith("neg__plain__") and q.source.split("@")[0] == stem]
        if w.clip.file in DEAL_5_SHORT or (w.clip.deal == 7 and w.duration < heldout.NEG_LONG_S
                                           and w.duration >= heldout.EXCERPT_S + 2 * heldout.EDGE_S):
            assert len(plain) == 1, stem
            ((_, a, b),) = [_cut(inp) for inp in plain[0].inputs]
            assert w.start <= a < b <= w.end and b - a == pytest.approx(heldout.EXCERPT_S), (stem, a, b)
        elif w.duration < heldout.NEG_LONG_S:
            assert not plain, stem


def _load_bench_module(name: str) -> ModuleType:
    path = CORPUS_PY.parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# Deal 6: fresh report footage (every report clip of deals 1-5 had been run and its failures described).
DEAL_6_SOURCES = {"hachoir", "Mastodon.py"}


def test_deal_6_puts_every_reference_unit_on_report(corpus: ModuleType) -> None:
    """Deal 6 is dealt report first with every reference unit on report (REFERENCES_ALL_FIRST): its
    positives are footage nobody has seen results for. Its sources are packages no earlier deal used, and
    each reference keeps a later window of the same scene for negatives."""
    assert corpus.DEALS[6] == "report" and 6 in corpus.REFERENCES_ALL_FIRST
    clips = corpus.load_manifest()
    deal6 = [c for c in clips if c.deal == 6]
    assert {c.source.split("==")[0] for c in deal6} == DEAL_6_SOURCES
    refs = [c for c in deal6 if c.role == "reference"]
    assert refs and all(c.split == "report" for c in refs)
    assert all(c.negative_s for c in refs), "each deal-6 reference keeps a window for 'another moment'"
    earlier_sources = {c.source.split("==")[0].split("=")[0] for c in clips if c.deal < 6}
    assert not DEAL_6_SOURCES & earlier_sources
    rule = corpus.rule_splits(clips)
    assert all(rule[c.file] == "report" for c in refs)


def test_deal_6_dealt_tune_first_would_move_its_reference(corpus: ModuleType) -> None:
    """The rule, not the manifest, puts deal 6 on report: the same units dealt tune first would land on
    tune, so a wrong DEALS entry is caught by `heldout_corpus.py check`."""
    clips = corpus.load_manifest()
    deal6 = [c for c in clips if c.deal == 6]
    flipped = corpus._deal(deal6, "tune", True)
    assert all(flipped[c.file] == "tune" for c in deal6 if c.role == "reference")
    assert corpus.check([replace(c, split="tune") if c.deal == 6 else c for c in clips])


def test_deal_6_backgrounds_come_from_the_report_half() -> None:
    """bench/heldout.py puts only report-half footage of deals 1, 4, 5 and 6 around or behind a deal-6
    positive, never the reference's own clip at another moment. Builds the query specs only."""
    heldout, clips = _heldout_with_clips()
    lib, neg = heldout.library_windows(clips), heldout.negative_windows(clips)
    deal_of = {Path(c.file).stem: c for c in clips}
    seen = 0
    for q, split in heldout.positives([w for w in lib if w.clip.deal == 6], neg, ("compilation", "pip")):
        assert split == "report", q.name
        own = q.source.split("@")[0]
        stems = {_cut(inp)[0] for inp in q.inputs if "-ss" in inp}
        assert own in stems, q.name
        for stem in stems - {own}:
            other = deal_of[stem]
            assert other.split == "report" and other.deal in (1, 4, 5, 6), (q.name, stem, other.deal)
            assert other.unit != deal_of[own].unit, (q.name, stem)
            seen += 1
    assert seen, "deal 6's compilations and pictures-in-picture put other footage around its pieces"


@pytest.mark.parametrize("deal", [6, 7, 8])
def test_no_earlier_query_uses_a_later_deals_footage(deal: int) -> None:
    """Earlier deals' queries stay as they were: no positive of an earlier deal and no negative compilation
    of earlier deals takes a piece of deal 6's (7's, 8's) footage. Builds the query specs only."""
    heldout, clips = _heldout_with_clips()
    lib, neg = heldout.library_windows(clips), heldout.negative_windows(clips)
    lib_open, neg_open = heldout.openings(heldout.opening_window(clips), neg)
    later = {Path(c.file).stem for c in clips if c.deal >= deal}
    earlier = heldout.positives([w for w in lib if w.clip.deal < deal], neg, tuple(heldout.FAMILIES))
    earlier += [(q, s) for q, s in heldout.negatives(neg, neg_open)
                if not any(stem in q.name for stem in later)
                and not any(q.name.startswith(f"neg__comp_d{d}_") for d in range(deal, max(heldout.BACKGROUND_DEALS) + 1))]
    assert earlier
    for q, _ in earlier:
        stems = {_cut(inp)[0] for inp in q.inputs if "-ss" in inp}
        assert not stems & later, q.name


# Deal 7: fresh fixed cameras for the report half, and the one unit a fix is chosen on, on tune by name.
DEAL_7_SOURCES = {"animapp", "python-nbsphinx-doc", "python3-mecavideo", "python3-imageio", "pd-extendedview",
                  "python3-hug-doc", "node-opencv"}


def test_deal_7_puts_the_mouse_cage_on_tune_and_every_other_reference_on_report(corpus: ModuleType) -> None:
    """The mouse cage, whose other moment matcher 9 called `reused` in a hand test before deal 7 was added,
    is tune footage by name (TUNE_UNITS); every other deal-7 reference is fresh report footage, from packages
    no earlier deal used (not opencv-doc: its box and cup clips stay out), each with a later window of the
    same scene for negatives."""
    assert corpus.DEALS[7] == "report" and 7 in corpus.REFERENCES_ALL_FIRST
    assert corpus.TUNE_UNITS[7] == {"animapp_cage"}
    clips = corpus.load_manifest()
    deal7 = [c for c in clips if c.deal == 7]
    names = {c.source.split("==")[0].split("=")[0] for c in deal7}
    assert names == DEAL_7_SOURCES and "opencv-doc" not in names
    earlier_sources = {c.source.split("==")[0].split("=")[0] for c in clips if c.deal < 7}
    assert not DEAL_7_SOURCES & earlier_sources
    refs = [c for c in deal7 if c.role == "reference"]
    assert {c.unit for c in refs if c.split == "tune"} == {"animapp_cage"}
    assert sum(c.split == "report" for c in refs) == 4
    assert all(c.negative_s for c in refs), "each deal-7 reference keeps a window for 'another moment'"
    assert any(c.kind in corpus.STILL_KINDS for c in refs if c.split == "report")
    rule = corpus.rule_splits(clips)
    assert all(rule[c.file] == c.split for c in deal7)


def test_without_tune_units_the_mouse_cage_would_be_report_footage(corpus: ModuleType) -> None:
    """The rule, not the manifest, puts the cage on tune: dealt without its name in TUNE_UNITS, every
    deal-7 reference lands on report, and the manifest's tune row would then fail `check`."""
    clips = corpus.load_manifest()
    deal7 = [c for c in clips if c.deal == 7]
    plain = corpus._deal(deal7, corpus.DEALS[7], True)
    assert all(plain[c.file] == "report" for c in deal7 if c.role == "reference")
    named = corpus._deal(deal7, corpus.DEALS[7], True, frozenset({"animapp_cage"}))
    assert {c.file for c in deal7 if named[c.file] == "tune" and c.role == "reference"} == {
        "animapp_example_vid.mp4"}
    assert corpus.check([replace(c, split="report") if c.unit == "animapp_cage" else c for c in clips])


def test_deal_7_backgrounds_come_from_the_references_own_half() -> None:
    """bench/heldout.py puts only footage of the reference's own half, of deals 1 and 4-7, around or behind
    a deal-7 positive, never the reference's own clip at another moment. Builds the query specs only."""
    heldout, clips = _heldout_with_clips()
    lib, neg = heldout.library_windows(clips), heldout.negative_windows(clips)
    deal_of = {Path(c.file).stem: c for c in clips}
    seen = {"tune": 0, "report": 0}
    for q, split in heldout.positives([w for w in lib if w.clip.deal == 7], neg, ("compilation", "pip")):
        own = q.source.split("@")[0]
        assert split == deal_of[own].split, q.name
        stems = {_cut(inp)[0] for inp in q.inputs if "-ss" in inp}
        assert own in stems, q.name
        for stem in stems - {own}:
            other = deal_of[stem]
            assert other.split == split and other.deal in (1, 4, 5, 6, 7), (q.name, stem, other.deal)
            assert other.unit != deal_of[own].unit, (q.name, stem)
            seen[split] += 1
    assert seen["tune"] and seen["report"], seen


def test_deal_8_puts_the_road_camera_on_tune_with_a_later_window(corpus: ModuleType) -> None:
    """Deal 8 is dealt tune first: its one reference, a fixed traffic camera from a Debian source
    package no earlier deal used, is tune footage by the rule (no name in TUNE_UNITS), with a later window
    of the same camera for negatives."""
    assert corpus.DEALS[8] == "tune" and 8 not in corpus.REFERENCES_ALL_FIRST and 8 not in corpus.TUNE_UNITS
    clips = corpus.load_manifest()
    deal8 = [c for c in clips if c.deal == 8]
    assert [(c.unit, c.role, c.split) for c in deal8] == [("openshot_road", "reference", "tune")]
    earlier_sources = {c.source.split("==")[0].split("=")[0] for c in clips if c.deal < 8}
    assert "libopenshot" not in earlier_sources
    assert deal8[0].negative_s and deal8[0].kind in corpus.STILL_KINDS
    assert corpus.rule_splits(clips)[deal8[0].file] == "tune"
    assert corpus._deal(deal8, "report")[deal8[0].file] == "report"  # the rule, not the manifest, decides


def test_mirror_overlay_mirrors_then_captions_and_keeps_earlier_negatives() -> None:
    """The mirrored-and-captioned family (added with matcher version 11) flips the picture before the
    caption is drawn, so the caption reads the right way round as a repost's would; its negative is the
    13th transform of a long window, so the 12 earlier ones (and their queries) stay as they were.
    Builds query specs only: no footage is read or made."""
    heldout = _load_bench_module("heldout")
    families = sys.modules["families"]
    src = families.Source(label="cam@1", path=Path("cam.mp4"), start=1.0, duration=8.0, footage="cam",
                          footage_start=1.0, width=1280, height=720, fps=25.0)
    for strength in heldout.FAMILIES["mirror_overlay"]:
        q = heldout.single("mirror_overlay", strength, src)
        overlay = heldout.single("overlay", strength.removeprefix("hflip+"), src)
        assert q.graph.index("hflip,") < q.graph.index("drawbox")
        assert q.graph.replace("hflip,", "", 1) == overlay.graph
    assert heldout.NEG_TRANSFORMS[-1] == ("mirror_overlay", "hflip+caption_band+logo")
    assert len(heldout.NEG_TRANSFORMS) == 13 and heldout.NEG_SHORT_N < 12
