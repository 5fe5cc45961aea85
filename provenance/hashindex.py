"""Exact search of 64-bit hashes within a Hamming radius: multi-index hashing over sorted tables.

Every library hash is cut into `m` substrings (bit fields). By the generalised pigeonhole principle, two
hashes within `r` bits agree within `t_i` bits on at least one substring i whenever
sum(t_i) >= r - m + 1 (were every substring off by t_i + 1 or more, the whole would be off by r + 1 or
more). So for each substring the library keeps its rows sorted by that field, with an offset table over
all 2^w field values; a query looks up every field value within t_i bits of its own (the probes), takes
the rows stored there (the candidates) and checks their full Hamming distance. Nothing within `r` is
missed: the search is exact, and gives the same pairs as comparing every row (tests/test_index.py).

Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with Multi-Index Hashing" (CVPR 2012), and
Qin et al. for the generalised (unequal) thresholds. The number of substrings is chosen per library
size from a cost model (probes vs candidates); below MIH_MIN_ROWS, or when the model says so, rows are
compared one by one (XOR + popcount in blocks), which is what small libraries do fastest.
The choice of this method over FAISS's binary indexes and plain numpy is measured in bench/scale.py
(bench/README.md, "Scale").
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np

# Rows compared per block in the one-by-one search: memory stays at (queries x block) bytes of
# distances, about 10 MB for a 28-s query's 672 hashes, and numpy's loops stay long.
BRUTE_BLOCK = 1 << 14
# Below this many rows a library is searched row by row: a 28-s query's 672 hashes take ~0.05 s
# against 65,536 rows, and no tables need building or keeping current.
MIH_MIN_ROWS = 1 << 16
# The cost model, in units of comparing one query hash with one row in the block search. Fitted on
# random 64-bit hashes, 672 queries, 1M and 10M rows (2 vCPUs AMD EPYC, numpy 2.4, 2026-11-25): one
# probe (look up a field value's bucket) ~5 row comparisons, one candidate (expand, gather, XOR,
# popcount) ~3.5. It picks 4 substrings of 16 bits at 1M rows and 3 of 21-22 bits at 10M, as measured.
PROBE_COST = 5.0
CANDIDATE_COST = 3.5
# Chunks of queries are searched on this many threads: numpy releases the GIL in the gathers, XORs
# and popcounts that make up the search, so the cores share it (bench/scale.py).
SEARCH_THREADS = min(4, os.cpu_count() or 1)
# Substrings wider than this need offset tables over 2 GB: never used.
MAX_FIELD_BITS = 28
_BITS = 64


def pairs_within_brute(queries: np.ndarray, hashes: np.ndarray, max_distance: int,
                       row_offset: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query index, row, distance) of every pair within `max_distance`, comparing every row.

    Pairs come sorted by row block, then query, then row."""
    qs, rs, ds = [], [], []
    for start in range(0, hashes.size, BRUTE_BLOCK):
        block = hashes[start:start + BRUTE_BLOCK]
        dist = np.bitwise_count(queries[:, None] ^ block[None, :])
        q, r = np.nonzero(dist <= max_distance)
        qs.append(q)
        rs.append(r + (start + row_offset))
        ds.append(dist[q, r])
    if not qs:
        return _empty()
    return (np.concatenate(qs).astype(np.int64), np.concatenate(rs).astype(np.int64),
            np.concatenate(ds).astype(np.int64))


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = np.zeros(0, dtype=np.int64)
    return z, z.copy(), z.copy()


@dataclass(frozen=True)
class Plan:
    """How the 64 bits are cut: (shift, width, threshold) per substring."""

    fields: tuple[tuple[int, int, int], ...]
    max_distance: int

    @property
    def probes(self) -> int:
        return sum(len(_masks(w, t)) for _, w, t in self.fields)

    def expected_cost(self, rows: int) -> float:
        """Cost per query hash, in row comparisons, on uniformly spread hashes."""
        probes = sum(len(_masks(w, t)) for _, w, t in self.fields)
        candidates = sum(len(_masks(w, t)) * rows / (1 << w) for _, w, t in self.fields)
        return PROBE_COST * probes + CANDIDATE_COST * candidates


def make_plan(m: int, max_distance: int) -> Plan:
    """`m` substrings of near-equal width, thresholds summing to max_distance - m + 1 (wider first)."""
    widths = [_BITS // m + (1 if i < _BITS % m else 0) for i in range(m)]
    total = max_distance - m + 1
    thresholds = [total // m + (1 if i < total % m else 0) for i in range(m)]
    fields, shift = [], 0
    for w, t in zip(widths, thresholds, strict=True):
        fields.append((shift, w, t))
        shift += w
    return Plan(fields=tuple(fields), max_distance=max_distance)


def best_plan(rows: int, max_distance: int) -> Plan | None:
    """The cheapest cut for a library of `rows`, or None when comparing every row is cheaper."""
    if rows < MIH_MIN_ROWS:
        return None
    best, best_cost = None, float(rows)  # the row-by-row search costs one comparison per row
    for m in range(2, max_distance + 2):
        plan = make_plan(m, max_distance)
        if any(w > MAX_FIELD_BITS or t < 0 for _, w, t in plan.fields):
            continue
        cost = plan.expected_cost(rows)
        if cost < best_cost:
            best, best_cost = plan, cost
    return best


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=SEARCH_THREADS, thread_name_prefix="provenance-search")
        return _POOL


@lru_cache(maxsize=64)
def _masks(width: int, threshold: int) -> np.ndarray:
    """Every `width`-bit value with at most `threshold` bits set: the XOR masks of one substring's probes."""
    out = [0]
    for k in range(1, min(threshold, width) + 1):
        out.extend(sum(1 << b for b in bits) for bits in combinations(range(width), k))
    return np.array(out, dtype=np.int64)


class MultiIndex:
    """Multi-index hashing tables over a fixed array of hashes (rows 0..n-1)."""

    # Probe keys per chunk of query hashes: arrays of a few MB stay in cache (measured best for
    # both 3 and 4 substrings, bench/scale.py).
    CHUNK_KEYS = 1 << 18

    def __init__(self, hashes: np.ndarray, plan: Plan) -> None:
        self.hashes = hashes
        self.plan = plan
        # Per substring: the rows sorted by that field, their hashes in the same order (a bucket's
        # candidates are then read from contiguous memory), and [start, end) of every field value.
        self.tables: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        big = hashes.size >= (1 << 31)
        for shift, width, _ in plan.fields:
            key = ((hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.uint32)
            # The order inside a bucket does not matter (pairs are sorted at the end): no stable sort.
            order = np.argsort(key).astype(np.int64 if big else np.int32)
            counts = np.bincount(key, minlength=1 << width)
            starts = (np.cumsum(counts) - counts).astype(np.int64 if big else np.int32)
            self.tables.append((order, hashes[order], starts, counts.astype(np.int32)))

    @classmethod
    def from_tables(cls, hashes: np.ndarray, plan: Plan,
                    tables: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> "MultiIndex":
        """Tables built before (by this class, then kept on disk: provenance.diskindex), not sorted again."""
        self = cls.__new__(cls)
        self.hashes, self.plan, self.tables = hashes, plan, tables
        return self

    @property
    def nbytes(self) -> int:
        return sum(sum(a.nbytes for a in table) for table in self.tables)

    def pairs_within(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, row, distance) of every pair within the plan's distance, each pair once,
        sorted by query then row."""
        step = max(1, self.CHUNK_KEYS // self.plan.probes)
        chunks = [(queries[s:s + step], s) for s in range(0, queries.size, step)]
        if len(chunks) > 1 and SEARCH_THREADS > 1:
            parts = list(_pool().map(lambda c: self._chunk(*c), chunks))
        else:
            parts = [self._chunk(*c) for c in chunks]
        if not parts:
            return _empty()
        q = np.concatenate([p[0] for p in parts])
        r = np.concatenate([p[1] for p in parts])
        d = np.concatenate([p[2] for p in parts])
        return q, r, d

    def _chunk(self, queries: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        found_q, found_r = [], []
        for (shift, width, threshold), (order, sorted_hashes, starts_of, counts_of) in zip(self.plan.fields, self.tables,
                                                                              strict=True):
            masks = _masks(width, threshold)
            field = ((queries >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
            keys = (field[:, None] ^ masks[None, :]).reshape(-1)
            counts = counts_of[keys]
            hit = np.flatnonzero(counts)
            if hit.size == 0:
                continue
            starts, counts = starts_of[keys[hit]].astype(np.int64), counts[hit].astype(np.int64)
            ends = np.cumsum(counts)
            # Expand the ranges [start, start + count) into one array of positions in the table.
            positions = np.repeat(starts - (ends - counts), counts)
            positions += np.arange(int(ends[-1]))
            qidx = np.repeat(hit // masks.size, counts)
            close = np.flatnonzero(np.bitwise_count(sorted_hashes[positions] ^ queries[qidx]) <= self.plan.max_distance)
            found_q.append(qidx[close])
            found_r.append(order[positions[close]].astype(np.int64))
        if not found_q:
            return _empty()
        q = np.concatenate(found_q)
        r = np.concatenate(found_r)
        # A pair close in several substrings is found once per substring.
        key = np.unique(q * np.int64(self.hashes.size) + r)
        q, r = np.divmod(key, np.int64(self.hashes.size))
        d = np.bitwise_count(self.hashes[r] ^ queries[q]).astype(np.int64)
        return q + base, r, d
