"""The first look's search begun during the decode (provenance.presearch): the pairs it keeps are the
index's own, and a check that used them finds what the matcher finds searching for itself."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pytest

from provenance import hashindex, index, pipeline
from provenance.frames import MIN_QUALITY
from provenance.match import FRAME_MATCH_MAX_DISTANCE, candidate_pairs, find_evidence, query_frames
from provenance.presearch import EarlySearch, SearchedPairs
from tests.conftest import SAMPLES


@pytest.fixture
def always_indexed(monkeypatch):
    """Multi-index tables over every row, however small the library (real clips are a few hundred rows)."""
    monkeypatch.setattr(hashindex, "best_plan", lambda rows, distance: hashindex.make_plan(4, distance))
    monkeypatch.setattr(index, "TAIL_MAX_ROWS", 0)
    index.forget()
    yield
    index.forget()


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def test_searched_pairs_are_the_searchs_own_in_its_order():
    rng = np.random.default_rng(7)
    library = rng.integers(0, 2 ** 63, size=80_000, dtype=np.uint64)
    queries = rng.choice(library, 300)
    # Near copies (a few bits off) and duplicates among the queries, as a clip's views give.
    library[:300] = queries ^ (np.uint64(1) << rng.integers(0, 64, 300).astype(np.uint64))
    queries = np.concatenate([queries, queries[:50]])
    search = hashindex.MultiIndex(library, hashindex.make_plan(4, FRAME_MATCH_MAX_DISTANCE))

    class Direct:
        def pairs_within(self, q, max_distance):
            return search.pairs_within(q)

    found: dict = {}
    searched = SearchedPairs(Direct(), library, FRAME_MATCH_MAX_DISTANCE, found)
    half = queries[::2]
    searched.pairs_within(half, FRAME_MATCH_MAX_DISTANCE)  # what the decode's time searched
    assert found and len(found) == np.unique(half).size
    for got, want in zip(searched.pairs_within(queries, FRAME_MATCH_MAX_DISTANCE), search.pairs_within(queries),
                         strict=True):
        assert np.array_equal(got, want)
    assert len(found) == np.unique(queries).size


@pytest.mark.slow
def test_a_check_with_the_early_search_matches_as_the_matcher_searching_itself(settings, derived, always_indexed):
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings)
    pipeline.ingest(str(SAMPLES / "bigbuckbunny.mp4"), settings=settings)
    engine, library = pipeline.open_and_load(settings)
    assert library.search is not None
    early = EarlySearch(MIN_QUALITY)
    clip, _ = pipeline.analyse(str(derived("compilation_bbb_then_boxed_bikes.mp4")), settings=settings, query=True,
                               hashed=early.add)
    early.stop()
    early.run(_done((engine, library)))
    assert early.found  # searched while hashing, before the matcher asked
    query = query_frames(clip.fingerprint, min_quality=MIN_QUALITY)
    prefetched = early.searched(library)
    for columns in (slice(0, 4), slice(4, 8)):
        a = candidate_pairs(query.hashes[:, columns], library.hashes, search=prefetched.search)
        b = candidate_pairs(query.hashes[:, columns], library.hashes, search=library.search)
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    evidence = find_evidence(query, prefetched)
    assert len(evidence.matches) == 2
    assert evidence == find_evidence(query, library)
    result = pipeline.check(str(derived("compilation_bbb_then_boxed_bikes.mp4")), settings=settings, record=False)
    assert result.matches == pipeline.check_analysed(clip, result.post, engine=engine, library=library,
                                                     record=False).matches
