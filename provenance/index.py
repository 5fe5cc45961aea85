"""The library's frame hashes in memory, loaded once per process and kept current.

Libraries with a place on disk (an SQLite file, a PostgreSQL database) are indexed by
provenance.diskindex instead, which keeps the same arrays and tables in files a new process maps
without reading a row; `library_index` picks one or the other. This in-memory index serves in-memory
SQLite databases and libraries whose index folder cannot be written.

`load(engine, min_quality=...)` returns the library as the matcher wants it (`ReferenceFrames`, with a
`search` that finds rows within a Hamming distance without comparing every row). The first call for a
database reads every usable frame; later calls ask the database one cheap question
(`db.repository.library_state`: schema revision, clip count, largest and summed clip id) and, when it
changed, read only the clips they have not seen, so rows written by other processes are picked up too.

Keeping it current, and when it starts again:
- New clips are found by their ids, not by "frame id above the last one loaded": on PostgreSQL ids come
  from sequences, and a transaction that took a smaller id can commit after one that took a larger,
  so a high-water mark could skip a clip for good. A clip's frames are written in the clip's own
  transaction (db.repository.add_clip), so a clip that is visible has all its frames.
- A clip that disappeared (deleted, or a library replaced by another at the same URL) or a schema
  revision that changed makes the next call read everything again (`IndexStats.full_loads`).
- Clips are never rewritten in place: the project has no command that changes a clip's frames. A
  database swapped for another holding the very same clip ids (same count, largest id and sum) would
  not be noticed; `forget()` drops what is held.

Search: rows are compared by multi-index hashing (provenance.hashindex, exact) over the rows indexed
so far, plus one-by-one over the rows added since (at most TAIL_MAX_ROWS); past that the tables are
rebuilt over everything. Snapshots handed out stay valid: arrays only grow past the end of the views
they gave, and a reload or rebuild makes new arrays.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import db, hashindex
from .match import FRAME_MATCH_MAX_DISTANCE
from .records import LibraryState, ReferenceClip, ReferenceFrames

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from . import diskindex

log = logging.getLogger("provenance.index")

# Rows added since the tables were built are compared one by one, up to this many: a 28-s query's
# 672 hashes take ~0.05 s against 65,536 rows (bench/scale.py); past it the tables are rebuilt
# (1M rows: ~0.4 s; 10M: ~10 s), so an audit adding one clip per post rebuilds every ~200 clips.
TAIL_MAX_ROWS = 1 << 16
# The tables are built for the matcher's distance; a search with a larger one compares every row.
_SEARCH_DISTANCE = FRAME_MATCH_MAX_DISTANCE


@dataclass(frozen=True)
class IndexStats:
    """What an index did, for tests and benchmarks."""

    rows: int  # rows held
    clips: int
    indexed_rows: int  # rows covered by the multi-index tables (the rest are compared one by one)
    fields: tuple[int, ...]  # widths of the substrings, () when every row is compared
    full_loads: int  # times every row was read
    incremental_loads: int  # times only new clips were read
    rows_fetched: int  # rows read from the database in all
    bytes: int  # memory held by the arrays and tables (numpy nbytes, not the process's RSS)


class _Search:
    """Exact search over rows [0, n): tables over [0, indexed), one by one over the rest."""

    def __init__(self, hashes: np.ndarray, tables: hashindex.MultiIndex | None, indexed: int) -> None:
        self.hashes = hashes
        self.tables = tables
        self.indexed = indexed if tables is not None else 0

    def pairs_within(self, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.tables is None or max_distance > self.tables.plan.max_distance:
            return hashindex.pairs_within_brute(queries, self.hashes, max_distance)
        q, r, d = self.tables.pairs_within(queries)
        if max_distance < self.tables.plan.max_distance:
            keep = d <= max_distance
            q, r, d = q[keep], r[keep], d[keep]
        tq, tr, td = hashindex.pairs_within_brute(queries, self.hashes[self.indexed:], max_distance,
                                                  row_offset=self.indexed)
        return np.concatenate([q, tq]), np.concatenate([r, tr]), np.concatenate([d, td])


class _Columns:
    """Growable parallel arrays: appends write past the end of every view handed out."""

    FIELDS = (("clip_ids", np.int64), ("times", np.float64), ("variants", np.int8), ("hashes", np.uint64))

    def __init__(self, frames: ReferenceFrames, slack: int) -> None:
        self.n = int(frames.hashes.size)
        capacity = self.n + slack
        self.arrays = {}
        for name, dtype in self.FIELDS:
            buf = np.empty(capacity, dtype=dtype)
            buf[:self.n] = getattr(frames, name)
            self.arrays[name] = buf

    def append(self, frames: ReferenceFrames) -> None:
        k = int(frames.hashes.size)
        if self.n + k > self.arrays["hashes"].size:
            capacity = max(2 * self.arrays["hashes"].size, self.n + k)
            for name, dtype in self.FIELDS:
                buf = np.empty(capacity, dtype=dtype)
                buf[:self.n] = self.arrays[name][:self.n]
                self.arrays[name] = buf
        for name, _ in self.FIELDS:
            self.arrays[name][self.n:self.n + k] = getattr(frames, name)
        self.n += k

    def view(self, name: str) -> np.ndarray:
        return self.arrays[name][:self.n]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())


class LibraryIndex:
    """One database's usable frame hashes, kept current by `refresh`."""

    def __init__(self, min_quality: float) -> None:
        self.min_quality = min_quality
        self._lock = threading.Lock()
        self._state: LibraryState | None = None
        self._columns: _Columns | None = None
        self._clips: dict[int, ReferenceClip] = {}
        self._tables: hashindex.MultiIndex | None = None
        self._indexed = 0
        self._snapshot: ReferenceFrames | None = None
        self._full_loads = 0
        self._incremental_loads = 0
        self._rows_fetched = 0

    def refresh(self, engine: Engine) -> ReferenceFrames:
        with self._lock:
            with db.session_scope(engine) as session:
                state = db.repository.library_state(session=session)
                if self._snapshot is not None and state == self._state:
                    return self._snapshot
                if self._state is None or state.revision != self._state.revision:
                    self._full_load(session)
                else:
                    present = db.repository.clip_ids(session=session)
                    known = np.fromiter(self._clips, dtype=np.int64, count=len(self._clips))
                    if np.setdiff1d(known, present, assume_unique=True).size:
                        log.info("clips were removed from the library: reading it again")
                        self._full_load(session)
                    else:
                        new = np.setdiff1d(present, known, assume_unique=True)
                        if new.size:
                            self._add(db.repository.load_reference_frames(
                                session=session, min_quality=self.min_quality, clip_ids=new.tolist()))
            self._state = state
            self._snapshot = self._make_snapshot()
            return self._snapshot

    def _full_load(self, session) -> None:  # noqa: ANN001 - a SQLAlchemy Session
        frames = db.repository.load_reference_frames(session=session, min_quality=self.min_quality)
        self._full_loads += 1
        self._rows_fetched += int(frames.hashes.size)
        self._columns = _Columns(frames, slack=max(TAIL_MAX_ROWS, frames.hashes.size // 8))
        self._clips = dict(frames.clips)
        self._tables, self._indexed = None, 0
        self._maybe_rebuild()

    def _add(self, frames: ReferenceFrames) -> None:
        assert self._columns is not None
        self._incremental_loads += 1
        self._rows_fetched += int(frames.hashes.size)
        self._columns.append(frames)
        self._clips.update(frames.clips)
        self._maybe_rebuild()

    def _maybe_rebuild(self) -> None:
        assert self._columns is not None
        n = self._columns.n
        if n - self._indexed <= TAIL_MAX_ROWS:
            return
        plan = hashindex.best_plan(n, _SEARCH_DISTANCE)
        if plan is None:
            self._tables, self._indexed = None, 0
            return
        # A view, not a copy: appends never write into rows [0, n), and when they move the columns to a
        # bigger buffer the view keeps the old one alive until the next rebuild.
        self._tables = hashindex.MultiIndex(self._columns.view("hashes"), plan)
        self._indexed = n

    def _make_snapshot(self) -> ReferenceFrames:
        assert self._columns is not None
        hashes = self._columns.view("hashes")
        return ReferenceFrames(
            clip_ids=self._columns.view("clip_ids"),
            times=self._columns.view("times"),
            variants=self._columns.view("variants"),
            hashes=hashes,
            clips=dict(self._clips),
            search=_Search(hashes, self._tables, self._indexed),
        )

    def stats(self) -> IndexStats:
        with self._lock:
            n = self._columns.n if self._columns else 0
            return IndexStats(
                rows=n, clips=len(self._clips), indexed_rows=self._indexed if self._tables else 0,
                fields=tuple(w for _, w, _ in self._tables.plan.fields) if self._tables else (),
                full_loads=self._full_loads, incremental_loads=self._incremental_loads,
                rows_fetched=self._rows_fetched,
                bytes=(self._columns.nbytes if self._columns else 0) + (self._tables.nbytes if self._tables else 0))


_INDEXES: dict[tuple[str, float], "LibraryIndex | diskindex.DiskIndex"] = {}
_INDEXES_LOCK = threading.Lock()


def _key(engine: Engine, min_quality: float) -> tuple[str, float]:
    url = db.shown_url(engine.url)
    if engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:"):
        url += f"#engine{id(engine)}"  # every in-memory SQLite engine is its own database under one URL
    return url, float(min_quality)


def library_index(engine: Engine, *, min_quality: float) -> "LibraryIndex | diskindex.DiskIndex":
    """This process's index of the database behind `engine` (made empty on first use): kept on disk
    beside the database (provenance.diskindex) when it has a place for one, else in memory (an
    in-memory SQLite database)."""
    from . import diskindex

    with _INDEXES_LOCK:
        key = _key(engine, min_quality)
        found = _INDEXES.get(key)
        if found is None:
            folder = diskindex.location(engine.url)
            found = diskindex.DiskIndex(folder, min_quality) if folder else LibraryIndex(min_quality)
            _INDEXES[key] = found
        return found


def load(engine: Engine, *, min_quality: float) -> ReferenceFrames:
    """The library, current as of this call: read whole the first time, then only what is new."""
    return library_index(engine, min_quality=min_quality).refresh(engine)


def load_sound(engine: Engine, *, min_quality: float, session: Any) -> tuple[Any, Any, dict[int, str]]:
    """The library's sub-fingerprints (db.repository.load_audio_library's shape): from the on-disk index
    when the database has one (kept current as `load` keeps the frames), else read from the database."""
    from . import diskindex

    found = library_index(engine, min_quality=min_quality)
    sound = found.sound(engine) if isinstance(found, diskindex.DiskIndex) else None
    if sound is None:
        return db.repository.load_audio_library(session=session)
    return sound.clip_ids, sound.values, sound.sha256_of


def forget(engine: Engine | None = None) -> None:
    """Drop the index of one database (all of them with None): the next load reads everything."""
    with _INDEXES_LOCK:
        if engine is None:
            _INDEXES.clear()
        else:
            url = _key(engine, 0.0)[0]
            for key in [k for k in _INDEXES if k[0] == url]:
                del _INDEXES[key]
