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
