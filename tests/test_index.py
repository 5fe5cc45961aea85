"""The in-memory index: exact search (same pairs as comparing every row), kept current incrementally,
seeing clips written by other processes, starting again when clips disappear."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import delete

from provenance import diskindex, hashindex, index, pipeline
from provenance.db import models as orm
from provenance.db import session_scope
from provenance.frames import MIN_QUALITY
from provenance.match import FRAME_MATCH_MAX_DISTANCE, candidate_pairs, find_matches, query_frames
from tests.conftest import SAMPLES


def _planted(n: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random library hashes with rows planted at every distance 0..16 from some queries."""
    rng = np.random.default_rng(seed)
    lib = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    q = rng.integers(0, 2**64, size=queries, dtype=np.uint64)
    for i in range(min(n, 300)):
        x = int(q[i % queries])
        for b in rng.choice(64, size=i % 17, replace=False):
            x ^= 1 << int(b)
        lib[rng.integers(n)] = x
    return lib, q


def _triples(found: tuple[np.ndarray, ...]) -> set[tuple[int, int, int]]:
    return set(zip(*(a.tolist() for a in found), strict=True))


@pytest.mark.parametrize("m", [3, 4, 5, 6])
def test_multi_index_finds_exactly_the_pairs_that_comparing_every_row_finds(m):
    lib, q = _planted(40_000, 300, seed=m)
    brute = hashindex.pairs_within_brute(q, lib, FRAME_MATCH_MAX_DISTANCE)
    mih = hashindex.MultiIndex(lib, hashindex.make_plan(m, FRAME_MATCH_MAX_DISTANCE)).pairs_within(q)
    assert len(brute[0]) >= 150  # the planted pairs within 12 bits are there to be found
    assert _triples(mih) == _triples(brute)
    assert len(mih[0]) == len(set(zip(mih[0].tolist(), mih[1].tolist(), strict=True)))  # each pair once


def test_the_cost_model_compares_every_row_of_a_small_library_and_indexes_a_large_one():
    assert hashindex.best_plan(10_000, 12) is None
    assert hashindex.best_plan(1_000_000, 12) is not None
    assert sum(w for _, w, _ in hashindex.best_plan(10_000_000, 12).fields) == 64


@pytest.fixture
def always_indexed(monkeypatch):
    """Multi-index tables over every row, however small the library (real clips are a few thousand rows)."""
    monkeypatch.setattr(hashindex, "best_plan", lambda rows, distance: hashindex.make_plan(4, distance))
    monkeypatch.setattr(index, "TAIL_MAX_ROWS", 0)
    monkeypatch.setattr(diskindex, "TAIL_MAX_ROWS", 0)
    index.forget()
    yield
    index.forget()


def _ingest(settings, name: str):
    return pipeline.ingest(str(SAMPLES / name), settings=settings)


def _library(settings):
    return pipeline.load_library(pipeline.open_library(settings))


def _stats(settings):
    return index.library_index(pipeline.open_library(settings), min_quality=MIN_QUALITY).stats()


def test_matches_through_the_index_equal_matches_comparing_every_row(settings, derived, always_indexed):
    for name in ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4"):
        _ingest(settings, name)
    library = _library(settings)
    assert library.search is not None and _stats(settings).indexed_rows == library.hashes.size
    for query_file in ("bikes_mirrored.mp4", "bikes_cropped_15pct.mp4", "compilation_bbb_then_boxed_bikes.mp4",
                       "bikes_speed_1.2x.mp4"):
        clip, _ = pipeline.analyse(str(derived(query_file)), settings=settings, query=True)
        query = query_frames(clip.fingerprint, min_quality=MIN_QUALITY)
        for columns in (slice(0, 3), slice(3, 6)):
            fast = candidate_pairs(query.hashes[:, columns], library.hashes, search=library.search)
            slow = candidate_pairs(query.hashes[:, columns], library.hashes)
            assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))
        fast_matches = find_matches(query, library)
        assert fast_matches, query_file
        assert fast_matches == find_matches(query, dataclasses.replace(library, search=None))


def test_a_clip_ingested_later_is_found_and_only_its_rows_are_read(settings, derived, always_indexed):
    _ingest(settings, "bikes.mp4")
    first = _library(settings)
    stats = _stats(settings)
    assert (stats.full_loads, stats.incremental_loads, stats.rows_fetched) == (1, 0, first.hashes.size)
    assert _library(settings) is first  # nothing changed: nothing read

    added = _ingest(settings, "carphone_pristine.mp4")
    second = _library(settings)
    stats = _stats(settings)
    carphone_rows = int(np.count_nonzero(second.clip_ids == added.clip_id))
    assert carphone_rows > 0
    assert (stats.full_loads, stats.incremental_loads) == (1, 1)
    assert stats.rows_fetched == first.hashes.size + carphone_rows  # no rescan of bikes
    assert first.hashes.size == stats.rows - carphone_rows  # the first snapshot is untouched

    clip, _ = pipeline.analyse(str(SAMPLES / "carphone_distorted.mp4"), settings=settings, query=True)
    matches = find_matches(query_frames(clip.fingerprint, min_quality=MIN_QUALITY), second)
    assert [m.sha256 for m in matches] == [added.clip.media.sha256]


def test_a_clip_written_by_another_process_is_seen(settings):
    _ingest(settings, "bikes.mp4")
    before = _library(settings)
    subprocess.run([sys.executable, "-m", "provenance.cli", "ingest", str(SAMPLES / "bigbuckbunny.mp4"),
                    "--db", settings.db_url, "--quiet"], check=True,
                   env={"PROVENANCE_STORE": str(settings.store_dir), "PATH": "/usr/bin:/bin"})
    after = _library(settings)
    assert len(after.clips) == len(before.clips) + 1
    assert _stats(settings).incremental_loads == 1
    result = pipeline.check(str(SAMPLES / "bigbuckbunny.mp4"), settings=settings, record=False)
    assert [m.transforms for m in result.matches] == [("identical",)]


def test_a_removed_clip_makes_the_index_read_everything_again(settings):
    kept = _ingest(settings, "bikes.mp4")
    gone = _ingest(settings, "carphone_pristine.mp4")
    assert len(_library(settings).clips) == 2
    engine = pipeline.open_library(settings)
    with session_scope(engine) as session:
        session.execute(delete(orm.Frame).where(orm.Frame.clip_id == gone.clip_id))
        session.execute(delete(orm.Sighting).where(orm.Sighting.clip_id == gone.clip_id))
        session.execute(delete(orm.Clip).where(orm.Clip.id == gone.clip_id))
    library = _library(settings)
    assert set(library.clips) == {kept.clip_id}
    assert set(np.unique(library.clip_ids).tolist()) == {kept.clip_id}
    assert _stats(settings).full_loads == 2


def test_snapshots_stay_valid_when_the_columns_grow_past_their_buffer():
    def frames(start: int, n: int):
        h = np.arange(start, start + n, dtype=np.uint64)
        return pipeline.ReferenceFrames(clip_ids=h.astype(np.int64), times=h.astype(np.float64),
                                        variants=np.zeros(n, dtype=np.int64), hashes=h, clips={})

    columns = index._Columns(frames(0, 10), slack=2)
    first = columns.view("hashes")
    columns.append(frames(10, 50))  # past the buffer: moved to a bigger one
    second = columns.view("hashes")
    columns.append(frames(60, 5))
    assert first.tolist() == list(range(10))
    assert second.tolist() == list(range(60)) and columns.view("hashes").tolist() == list(range(65))
    assert columns.view("clip_ids").tolist() == list(range(65))
