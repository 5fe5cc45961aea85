"""The first look's search, begun while the clip is still decoding.

A check's search of the library (provenance.match.candidate_pairs through the index) needs only the
query's hashes, which the fingerprint makes a stretch at a time (frames.fingerprint's `hashed`). So
each stretch's first-look hashes are searched as soon as the library is open, on the library's thread,
while the decoder goes on; the matcher then finds those pairs already there. At 10 million hashes
that search is ~1-3 s of CPU (bench/README.md, "Where a CLI check's time went"), most of a check's
cost beyond the decode. The pairs are the index's own, looked up by hash value: the same as searching when
the matcher asks (tests/test_presearch.py).
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import numpy as np

from .frames import MATCH_VARIANTS, QUERY_VARIANTS
from .records import FrameHash, ReferenceFrames

# The query views the first look searches (match.find_evidence): the fingerprint's columns
# (phash, *variants) of each MATCH_VARIANTS view. The second look's views are left to the matcher:
# it runs only when the first look settles nothing, and searching them early would add their search
# (2.25 times the first look's hashes) to every check.
FIRST_LOOK_COLUMNS = tuple(QUERY_VARIANTS.index(v) for v in MATCH_VARIANTS)

_Pairs = tuple[np.ndarray, np.ndarray]  # (rows, distances) of one query hash


class SearchedPairs:
    """`pairs_within` of a library's search, answered from pairs found earlier where it has them."""

    def __init__(self, search: Any, hashes: np.ndarray, max_distance: int, found: dict[int, _Pairs]) -> None:
        self.search, self.hashes, self.max_distance, self.found = search, hashes, max_distance, found

    def pairs_within(self, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, row, distance) of every pair within `max_distance`, sorted by query then row."""
        if max_distance != self.max_distance:
            return _search(self.search, self.hashes, queries, max_distance)
        missing = np.array([i for i, h in enumerate(queries.tolist()) if h not in self.found], dtype=np.int64)
        if missing.size:
            fresh = _by_hash(queries[missing], _search(self.search, self.hashes, queries[missing], max_distance))
            self.found.update(fresh)
        pairs = [self.found[h] for h in queries.tolist()]
        counts = np.array([rows.size for rows, _ in pairs], dtype=np.int64)
        if not counts.sum():
            z = np.zeros(0, dtype=np.int64)
            return z, z.copy(), z.copy()
        q = np.repeat(np.arange(queries.size, dtype=np.int64), counts)
        return (q, np.concatenate([rows for rows, _ in pairs]).astype(np.int64),
                np.concatenate([dist for _, dist in pairs]).astype(np.int64))


class EarlySearch:
    """Query hashes handed over by the hashing thread (`add`), searched on the thread that runs `run`
    once the library is open; `searched(library)` is the library whose search knows those pairs."""

    def __init__(self, min_quality: float) -> None:
        self.min_quality = min_quality
        self.waiting: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        self.found: dict[int, _Pairs] = {}
        self.stopped = False

    def add(self, frames: Sequence[FrameHash]) -> None:
        """A stretch of hashed frames (frames.fingerprint's `hashed`); its usable first-look views."""
        rows = [(f.phash, *f.variants) for f in frames if f.quality >= self.min_quality and f.variants]
        if rows:
            self.waiting.put(np.array(rows, dtype=np.uint64)[:, FIRST_LOOK_COLUMNS].reshape(-1))

    def stop(self) -> None:
        """No more hashes: `run` returns once it has searched those it holds (or at once, on failure)."""
        self.waiting.put(None)

    def run(self, library_opening: Future[tuple[Any, ReferenceFrames]]) -> None:
        """Search what arrives until `stop`. A library that cannot be opened is the caller's to report."""
        try:
            library = library_opening.result()[1]
        except BaseException:  # noqa: BLE001 - the caller gets the same error from library_opening
            library = None
        # The matcher's own distance (imported here, on the library's thread, with the rest of the matcher).
        from .match import FRAME_MATCH_MAX_DISTANCE

        while (hashes := self.waiting.get()) is not None:
            if library is None or library.hashes.size == 0:
                continue
            todo = np.unique(hashes)
            todo = todo[[h not in self.found for h in todo.tolist()]]
            if todo.size:
                self.found.update(_by_hash(todo, _search(library.search, library.hashes, todo,
                                                         FRAME_MATCH_MAX_DISTANCE)))

    def searched(self, library: ReferenceFrames) -> ReferenceFrames:
        from .match import FRAME_MATCH_MAX_DISTANCE

        return replace(library, search=SearchedPairs(library.search, library.hashes, FRAME_MATCH_MAX_DISTANCE,
                                                     self.found))


def _search(search: Any, hashes: np.ndarray, queries: np.ndarray,
            max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from .hashindex import pairs_within_brute

    if search is not None:
        return search.pairs_within(queries, max_distance)
    return pairs_within_brute(queries, hashes, max_distance)


def _by_hash(queries: np.ndarray, pairs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[int, _Pairs]:
    """Pairs (query index, row, distance) grouped by the query's hash value, rows in order."""
    q, r, d = pairs
    order = np.lexsort((r, q))
    q, r, d = q[order], r[order], d[order]
    bounds = np.searchsorted(q, np.arange(queries.size + 1))
    return {h: (r[bounds[i]:bounds[i + 1]], d[bounds[i]:bounds[i + 1]]) for i, h in enumerate(queries.tolist())}

