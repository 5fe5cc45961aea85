"""The library's frame-hash index kept on disk, beside the database: a new process opens it without
reading or sorting a row.

Why: a `provenance check` is one process per clip. Reading every usable frame hash from the database
and sorting the multi-index tables took 3 s per million hashes and 36-41 s at 10 million
(bench/README.md, "Scale"), in every process. Here the columns (clip id, time, view, hash) and the
tables of provenance.hashindex are plain little-endian arrays in files, memory-mapped read-only: opening
is reading a small JSON manifest and mapping the files, and the operating system's page cache shares
the pages between every process that has them open.

Layout of the folder (`location(url)`: `<library file>.index/` beside an SQLite file; for PostgreSQL
the user cache folder, `~/.cache/provenance/index/<database>-<digest of its URL>/`, one copy per
machine):
- `manifest.json`: what the snapshot holds (rows, clips, the segments and their plans, the files) and
  which database it was built from. It is the only file ever replaced, and atomically (written to a
  temporary file, fsync, os.replace, fsync of the folder): a reader sees the old snapshot or the new,
  never half of one.
- `g<generation>-<column>.bin`: the columns, append-only. A catch-up appends past the rows the
  manifest names, then publishes the new manifest; a reader maps only the rows its manifest names, so
  appends never change what it sees. A crash mid-append leaves bytes past that count, which the next
  writer cuts off. A rebuild starts a new generation of files.
- `s<segment>-f<field>-<part>.bin`: the multi-index tables of one segment (a range of rows), written
  once and never changed. Rows past the last segment (at most TAIL_MAX_ROWS) are compared one by one;
  past that they become a segment with tables of its own, absorbing the segments before it while those
  are at most MERGE_RATIO times its size, so a library of n rows has O(log n) segments and a row is
  sorted again O(log n) times over its life, never the whole library for one new clip.
- `g<generation>-audio_clip_ids.bin`, `g<generation>-audio_values.bin`: the library's sound (issue 13),
  its Chromaprint sub-fingerprints (table audio_items) as two more columns, each clip's items
  together and in time order, written, appended and published with the frame columns under the same
  manifest (`audio_rows`), so a snapshot's sound holds exactly the clips its pictures do. Their key
  tables (provenance.audiomatch.build_library) are not kept: each check with sound sorts them, 16-bit
  keys in linear time, about 0.1 s of CPU per million items (35 hours of sound).
- `lock`: writers (a catch-up, a rebuild) take it with flock; readers never wait for it.

Kept current like the in-memory index (provenance.index): one cheap SELECT (schema revision, clip
count, largest and summed clip id) tells whether the snapshot holds exactly the library's clips; when
clips were added the ids are listed and the clips not held are read and appended (the set of ids, not
a high-water mark: PostgreSQL sequences can commit out of order). The snapshot is built again from the
database when it cannot be trusted: another schema revision, a clip it holds is gone, the SHA-256 of
its first or last clip differs (a database replaced by another at the same place), another quality
threshold or format, or a manifest that cannot be read. The folder is a cache: deleting it costs one
rebuild. Each machine sharing a PostgreSQL library keeps its own copy and catches up on its own.

When the folder cannot be written (a read-only library, a full disk), the process falls back to the
in-memory index and says so in the log; nothing fails because of the cache.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import hashindex, index
from . import db
from .match import FRAME_MATCH_MAX_DISTANCE
from .records import ContentBox, LibraryState, ReferenceClip, ReferenceFrames

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL

    from .db.reads import Reads

log = logging.getLogger("provenance.diskindex")

# Bumped when the files change meaning; an index of another format is rebuilt (2: sound; 3: the end
# clips are known by their frames too, db.repository.clip_identity).
FORMAT = 3
MANIFEST = "manifest.json"
LOCK = "lock"
# Rows past the last segment with tables are compared one by one, up to this many: as in the in-memory
# index (provenance.index.TAIL_MAX_ROWS), a 28-s query's 672 hashes take ~0.05 s against 65,536 rows.
TAIL_MAX_ROWS = 1 << 16
# A new segment absorbs the one before it while that one holds at most this many times its rows: the
# segment sizes then at least double from the newest to the oldest (O(log n) segments, each probed
# once per query hash), and a row is sorted again only when its segment is absorbed.
MERGE_RATIO = 2
# The distance the tables are built for: the matcher's. A search with a larger one compares every row.
SEARCH_DISTANCE = FRAME_MATCH_MAX_DISTANCE
# A reader that opened a manifest just before a rebuild removed its files reads the new one.
_OPEN_ATTEMPTS = 3

COLUMNS: tuple[tuple[str, str], ...] = (("clip_ids", "<i8"), ("times", "<f8"), ("variants", "<i1"),
                                       ("hashes", "<u8"))
# The sound's columns (audio_items: clip id and sub-fingerprint), in the order of the clips' items.
AUDIO_COLUMNS: tuple[tuple[str, str], ...] = (("audio_clip_ids", "<i8"), ("audio_values", "<u4"))
CLIP_DTYPE = np.dtype([("clip_id", "<i8"), ("sha256", "S64"), ("duration_s", "<f8"), ("usable_frames", "<i8"),
                       ("left", "<f8"), ("top", "<f8"), ("right", "<f8"), ("bottom", "<f8")])
_TABLE_PARTS = ("order", "sorted", "starts", "counts")


# --- where it lives ------------------------------------------------------------------------------


def location(url: str | URL) -> Path | None:
    """The folder of the on-disk index of the database at `url`; None for an in-memory SQLite database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return sqlite_index_folder(database)
    import platformdirs

    # Keyed by the URL without its password: the same server and database from this machine. A
    # database replaced at the same URL is caught by the manifest's checks, not by the folder name.
    identity = db.shown_url(parsed)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", parsed.database or "db")[:40]
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return Path(platformdirs.user_cache_dir("provenance", appauthor=False)) / "index" / f"{slug}-{digest}"

def sqlite_index_folder(database: str) -> Path:
    """The index folder of the SQLite file `database` (a URL's path part): beside it, named after it."""
    path = Path(database).expanduser().absolute()
    return path.with_name(path.name + ".index")



# --- the manifest --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSegment:
    """Rows [start, end) with multi-index tables of their own."""

    id: int
    start: int
    end: int
    fields: tuple[tuple[int, int, int], ...]  # hashindex.Plan.fields
    index_dtype: str  # of the order and starts tables

    @property
    def rows(self) -> int:
        return self.end - self.start

    def files(self) -> list[str]:
        return [f"s{self.id}-f{k}-{part}.bin" for k in range(len(self.fields)) for part in _TABLE_PARTS]


@dataclass(frozen=True)
class Manifest:
    format: int
    database: str  # the URL without password it was built from (shown, not used to connect)
    revision: str | None
    min_quality: float
    max_distance: int
    generation: int
    rows: int
    clips: int
    max_clip_id: int
    clip_id_sum: int
    first_clip: tuple[int, str] | None  # (id, db.repository.clip_identity) of the lowest and highest clip id held
    last_clip: tuple[int, str] | None
    segments: tuple[TableSegment, ...]
    next_segment: int
    built_at: str
    updated_at: str
    catch_ups: int  # appends since the last rebuild
    audio_rows: int = 0  # sub-fingerprints held (AUDIO_COLUMNS)

    @property
    def state(self) -> LibraryState:
        return LibraryState(revision=self.revision, clips=self.clips, max_clip_id=self.max_clip_id,
                            clip_id_sum=self.clip_id_sum)

    @property
    def indexed_rows(self) -> int:
        return self.segments[-1].end if self.segments else 0

    def column_file(self, name: str) -> str:
        return f"g{self.generation}-{name}.bin"

    def files(self) -> list[str]:
        names = [self.column_file(n) for n, _ in (*COLUMNS, *AUDIO_COLUMNS)] + [self.column_file("clips")]
        return names + [f for s in self.segments for f in s.files()]

    def to_json(self) -> str:
        data: dict[str, Any] = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["segments"] = [dict(s.__dict__) for s in self.segments]
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        data = json.loads(text)
        data["segments"] = tuple(
            TableSegment(id=s["id"], start=s["start"], end=s["end"], index_dtype=s["index_dtype"],
                    fields=tuple(tuple(f) for f in s["fields"]))  # type: ignore[misc]
            for s in data["segments"])
        for key in ("first_clip", "last_clip"):
            data[key] = tuple(data[key]) if data[key] is not None else None
        return cls(**data)


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest; None when there is none or it cannot be read (then the index is rebuilt)."""
    try:
        return Manifest.from_json((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("the index manifest in %s cannot be read (%s): it will be rebuilt", folder, e)
        return None


def _write_manifest(folder: Path, manifest: Manifest) -> None:
    tmp = folder / f"{MANIFEST}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(manifest.to_json())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _writer_lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# --- files ---------------------------------------------------------------------------------------


def _map(path: Path, dtype: str | np.dtype, count: int) -> np.ndarray:
    """The first `count` items of a file, memory-mapped read-only (nothing is read until used)."""
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,))


def _write_new(path: Path, array: np.ndarray, dtype: str | np.dtype) -> None:
    """A whole new file, put in place by rename: a process that still maps a file of that name (left by
    a writer that died, or of a generation whose manifest was lost) keeps its own, intact."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.ascontiguousarray(array, dtype=dtype).tofile(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _append(path: Path, keep_bytes: int, array: np.ndarray, dtype: str | np.dtype) -> None:
    """Append past the first `keep_bytes` (what the published manifest names; anything beyond was
    left by a writer that died before publishing, and no reader maps it)."""
    with open(path, "r+b" if path.exists() else "wb") as f:
        f.truncate(keep_bytes)
        f.seek(keep_bytes)
        np.ascontiguousarray(array, dtype=dtype).tofile(f)
        f.flush()
        os.fsync(f.fileno())


def _clip_records(clips: dict[int, ReferenceClip]) -> np.ndarray:
    out = np.zeros(len(clips), dtype=CLIP_DTYPE)
    for i, cid in enumerate(sorted(clips)):
        c = clips[cid]
        b = c.content_box
        out[i] = (cid, c.sha256.encode(), c.duration_s, c.usable_frames, b.left, b.top, b.right, b.bottom)
    return out


def _clips_from_records(records: np.ndarray) -> dict[int, ReferenceClip]:
    """The clips as the matcher wants them. This is most of what opening a large index costs (a 10M-row
    library of 1,000-row clips holds 10,000), so: one conversion of the array to Python values, and one
    ContentBox per distinct box (most clips share the whole frame)."""
    boxes: dict[tuple[float, float, float, float], ContentBox] = {}
    out = {}
    for cid, sha, dur, usable, *box in records.tolist():
        key = tuple(box)
        shared = boxes.get(key)  # type: ignore[call-overload]
        if shared is None:
            shared = boxes[key] = ContentBox(*box)  # type: ignore[index]
        out[cid] = ReferenceClip(cid, sha.decode(), dur, usable, shared)
    return out


def _write_tables(folder: Path, segment_id: int, hashes: np.ndarray) -> TableSegment | None:
    """Build the tables over `hashes` (a segment's rows) and write them; None when comparing every
    row is cheaper (hashindex.best_plan)."""
    plan = hashindex.best_plan(int(hashes.size), SEARCH_DISTANCE)
    if plan is None:
        return None
    built = hashindex.MultiIndex(np.ascontiguousarray(hashes), plan)
    index_dtype = built.tables[0][0].dtype.str
    segment = TableSegment(id=segment_id, start=0, end=int(hashes.size), fields=plan.fields, index_dtype=index_dtype)
    names = iter(segment.files())
    for order, sorted_hashes, starts, counts in built.tables:
        for array, dtype in ((order, index_dtype), (sorted_hashes, "<u8"), (starts, index_dtype), (counts, "<i4")):
            _write_new(folder / next(names), array, dtype)
    return segment


def _open_tables(folder: Path, segment: TableSegment, hashes: np.ndarray) -> hashindex.MultiIndex:
    names = iter(segment.files())
    tables = []
    for _, width, _ in segment.fields:
        buckets = 1 << width
        tables.append((_map(folder / next(names), segment.index_dtype, segment.rows),
                       _map(folder / next(names), "<u8", segment.rows),
                       _map(folder / next(names), segment.index_dtype, buckets),
                       _map(folder / next(names), "<i4", buckets)))
    plan = hashindex.Plan(fields=segment.fields, max_distance=SEARCH_DISTANCE)
    return hashindex.MultiIndex.from_tables(hashes[segment.start:segment.end], plan, tables)


def _remove_unlisted(folder: Path, manifest: Manifest) -> None:
    """Files no published manifest names: an earlier generation or merged segments (a reader that still
    maps them keeps its pages until it closes them), or what a writer that died left."""
    keep = set(manifest.files()) | {MANIFEST, LOCK}
    for path in folder.iterdir():
        if path.name not in keep:
            try:
                path.unlink()
            except FileNotFoundError:
                pass


# --- search over the segments --------------------------------------------------------------------


class SegmentedSearch:
    """Exact search over rows [0, n): each segment through its tables, the rows after the last one
    compared one by one. The same pairs as comparing every row (and as provenance.index's search)."""

    def __init__(self, hashes: np.ndarray, segments: list[tuple[int, hashindex.MultiIndex]]) -> None:
        self.hashes = hashes
        self.segments = segments
        self.indexed = segments[-1][0] + segments[-1][1].hashes.size if segments else 0

    def pairs_within(self, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if max_distance > SEARCH_DISTANCE:
            return hashindex.pairs_within_brute(queries, self.hashes, max_distance)
        qs, rs, ds = [], [], []
        for start, tables in self.segments:
            q, r, d = tables.pairs_within(queries)
            if max_distance < SEARCH_DISTANCE:
                keep = d <= max_distance
                q, r, d = q[keep], r[keep], d[keep]
            qs.append(q)
            rs.append(r + start)
            ds.append(d)
        q, r, d = hashindex.pairs_within_brute(queries, self.hashes[self.indexed:], max_distance,
                                               row_offset=self.indexed)
        return np.concatenate([*qs, q]), np.concatenate([*rs, r]), np.concatenate([*ds, d])


# --- building and catching up --------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _manifest_for(engine: Engine, frames_clips: dict[int, ReferenceClip], *, revision: str | None,
                  min_quality: float, generation: int, rows: int, segments: tuple[TableSegment, ...],
                  next_segment: int, built_at: str, catch_ups: int, audio_rows: int) -> Manifest:
    ids = sorted(frames_clips)
    with db.session_scope(engine) as session:
        ends = [(i, db.repository.clip_identity(i, session=session)) for i in (ids[:1] + ids[-1:])]
    return Manifest(
        format=FORMAT, database=db.shown_url(engine.url), revision=revision, min_quality=float(min_quality),
        max_distance=SEARCH_DISTANCE, generation=generation, rows=rows, clips=len(ids),
        max_clip_id=ids[-1] if ids else 0, clip_id_sum=sum(ids),
        first_clip=ends[0] if ends else None,
        last_clip=ends[-1] if ends else None,
        segments=segments, next_segment=next_segment, built_at=built_at, updated_at=_now(), catch_ups=catch_ups,
        audio_rows=audio_rows)


def _rebuild(folder: Path, engine: Engine, session: Any, old: Manifest | None, *, min_quality: float,
             revision: str | None) -> tuple[Manifest, int]:
    """Everything read again into a new generation of files; returns the manifest and the rows read."""
    frames = db.repository.load_reference_frames(session=session, min_quality=min_quality)
    generation = (old.generation + 1) if old else 1
    next_segment = old.next_segment if old else 1
    names = {n: folder / f"g{generation}-{n}.bin" for n, _ in COLUMNS}
    for name, dtype in COLUMNS:
        _write_new(names[name], getattr(frames, name), dtype)
    _write_new(folder / f"g{generation}-clips.bin", _clip_records(frames.clips), CLIP_DTYPE)
    sound = db.repository.load_audio_items(session=session)
    for (name, dtype), column in zip(AUDIO_COLUMNS, sound, strict=True):
        _write_new(folder / f"g{generation}-{name}.bin", column, dtype)
    rows = int(frames.hashes.size)
    segments: tuple[TableSegment, ...] = ()
    if rows > TAIL_MAX_ROWS:
        built = _write_tables(folder, next_segment, frames.hashes)
        if built is not None:
            segments = (built,)
            next_segment += 1
    manifest = _manifest_for(engine, frames.clips, revision=revision, min_quality=min_quality,
                             generation=generation, rows=rows, segments=segments, next_segment=next_segment,
                             built_at=_now(), catch_ups=0, audio_rows=int(sound[0].size))
    _fsync_dir(folder)
    _write_manifest(folder, manifest)
    _remove_unlisted(folder, manifest)
    return manifest, rows + int(sound[0].size)


def _catch_up(folder: Path, engine: Engine, session: Any, old: Manifest, new_ids: np.ndarray, *,
              known: dict[int, ReferenceClip]) -> tuple[Manifest, int]:
    """Append the clips `new_ids` to the snapshot `old`; returns the new manifest and the rows read."""
    frames = db.repository.load_reference_frames(session=session, min_quality=old.min_quality,
                                              clip_ids=new_ids.tolist())
    added = int(frames.hashes.size)
    for name, dtype in COLUMNS:
        _append(folder / old.column_file(name), old.rows * np.dtype(dtype).itemsize, getattr(frames, name), dtype)
    _append(folder / old.column_file("clips"), old.clips * CLIP_DTYPE.itemsize, _clip_records(frames.clips),
            CLIP_DTYPE)
    sound = db.repository.load_audio_items(session=session, clip_ids=new_ids.tolist())
    for (name, dtype), column in zip(AUDIO_COLUMNS, sound, strict=True):
        _append(folder / old.column_file(name), old.audio_rows * np.dtype(dtype).itemsize, column, dtype)
    rows = old.rows + added
    segments, next_segment = _compacted(folder, old, rows)
    clips = {**known, **frames.clips}
    manifest = _manifest_for(engine, clips, revision=old.revision, min_quality=old.min_quality,
                             generation=old.generation, rows=rows, segments=segments, next_segment=next_segment,
                             built_at=old.built_at, catch_ups=old.catch_ups + 1,
                             audio_rows=old.audio_rows + int(sound[0].size))
    _fsync_dir(folder)
    _write_manifest(folder, manifest)
    _remove_unlisted(folder, manifest)
    return manifest, added + int(sound[0].size)


def _compacted(folder: Path, old: Manifest, rows: int) -> tuple[tuple[TableSegment, ...], int]:
    """The segments once `rows` are held: unchanged while the rows after the last segment are at most
    TAIL_MAX_ROWS; else those rows become a segment, absorbing the segments before it that are at most
    MERGE_RATIO times its size."""
    segments = list(old.segments)
    start = old.indexed_rows
    if rows - start <= TAIL_MAX_ROWS:
        return tuple(segments), old.next_segment
    while segments and segments[-1].rows <= MERGE_RATIO * (rows - start):
        start = segments.pop().start
    hashes = _map(folder / old.column_file("hashes"), "<u8", rows)[start:rows]
    built = _write_tables(folder, old.next_segment, hashes)
    if built is None:  # too few rows to be worth tables: they stay compared one by one
        return tuple(old.segments), old.next_segment
    built = TableSegment(id=built.id, start=start, end=rows, fields=built.fields, index_dtype=built.index_dtype)
    return (*segments, built), old.next_segment + 1


# --- the snapshot a process holds -----------------------------------------------------------------


@dataclass(frozen=True)
class SoundColumns:
    """The library's sub-fingerprints as db.repository.load_audio_library gives them: one clip id and
    one value per item, each clip's items together and in time order (clips in the order they were
    indexed), and the SHA-256 of each clip that has any."""

    clip_ids: np.ndarray  # int64
    values: np.ndarray  # uint32
    sha256_of: dict[int, str]


@dataclass(frozen=True)
class Snapshot:
    manifest: Manifest
    frames: ReferenceFrames
    search: SegmentedSearch
    sound: SoundColumns


def open_snapshot(folder: Path, manifest: Manifest) -> Snapshot:
    """Map the files the manifest names; reads nothing but the clips' small records."""
    columns = {name: _map(folder / manifest.column_file(name), dtype, manifest.rows) for name, dtype in COLUMNS}
    clips = _clips_from_records(_map(folder / manifest.column_file("clips"), CLIP_DTYPE, manifest.clips))
    hashes = columns["hashes"]
    search = SegmentedSearch(hashes, [(s.start, _open_tables(folder, s, hashes)) for s in manifest.segments])
    frames = ReferenceFrames(clip_ids=columns["clip_ids"], times=columns["times"], variants=columns["variants"],
                             hashes=hashes, clips=clips, search=search)
    sound = {name: _map(folder / manifest.column_file(name), dtype, manifest.audio_rows)
             for name, dtype in AUDIO_COLUMNS}
    sound_ids = sound["audio_clip_ids"]
    # Every clip is in the clip records (with or without usable frames), so their SHA-256 is known.
    sha256_of = {int(c): clips[int(c)].sha256 for c in np.unique(sound_ids)}
    return Snapshot(manifest=manifest, frames=frames, search=search,
                    sound=SoundColumns(clip_ids=sound_ids, values=sound["audio_values"], sha256_of=sha256_of))


def _usable(manifest: Manifest | None, *, min_quality: float, revision: str | None) -> bool:
    # Not the URL: one SQLite file is reached by several spellings of its path, and the folder is
    # already the database's own (beside the file, or named by the PostgreSQL URL).
    return (manifest is not None and manifest.format == FORMAT
            and manifest.min_quality == float(min_quality) and manifest.max_distance == SEARCH_DISTANCE
            and manifest.revision == revision)


def _ends_match(manifest: Manifest, identity: Callable[[int], str]) -> bool:
    """The first and last clip the snapshot holds are still those clips (same SHA-256, same frame
    rows, by `identity`, repository.clip_identity): a database replaced by another at the same place,
    with clips of the same ids (the same files ingested again by a version that samples them
    differently), is not taken for this one."""
    for end in (manifest.first_clip, manifest.last_clip):
        if end is None:
            continue
        try:
            if identity(end[0]) != end[1]:
                return False
        except KeyError:
            return False
    return True


def _identity(session: Any) -> Callable[[int], str]:
    return lambda clip_id: db.repository.clip_identity(clip_id, session=session)


def open_current(folder: Path, reads: Reads, *, min_quality: float) -> Snapshot | None:
    """The snapshot in `folder` when it holds the library exactly as `reads` sees it, opened without
    writing anything or reading a frame row (a check that records nothing, provenance.readonly);
    None when the index must first be caught up or rebuilt, which `DiskIndex.refresh` does."""
    state = reads.library_state()
    manifest = read_manifest(folder)
    if not (_usable(manifest, min_quality=min_quality, revision=state.revision) and manifest.state == state
            and _ends_match(manifest, reads.clip_identity)):
        return None
    try:
        return open_snapshot(folder, manifest)
    except (FileNotFoundError, ValueError):  # replaced meanwhile by a rebuild, or damaged: refresh mends it
        return None


class DiskIndex:
    """One database's on-disk index as this process holds it, kept current by `refresh`."""

    def __init__(self, folder: Path, min_quality: float) -> None:
        self.folder = folder
        self.min_quality = min_quality
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._state: LibraryState | None = None
        self._full_loads = 0
        self._incremental_loads = 0
        self._rows_fetched = 0
        self._opens = 0
        self._memory: index.LibraryIndex | None = None  # when the folder cannot be written

    def refresh(self, engine: Engine) -> ReferenceFrames:
        if self._memory is None:
            try:
                return self._refresh(engine)
            except OSError as e:
                if not is_unwritable(e):
                    raise
                log.warning("the index in %s cannot be kept (%s): this process holds the library in memory",
                            self.folder, e)
                self._memory = index.LibraryIndex(self.min_quality)
        return self._memory.refresh(engine)

    def _refresh(self, engine: Engine) -> ReferenceFrames:
        with self._lock:
            with db.session_scope(engine) as session:
                state = db.repository.library_state(session=session)
                if self._snapshot is not None and state == self._state:
                    return self._snapshot.frames
                manifest = read_manifest(self.folder)
                fresh = (_usable(manifest, min_quality=self.min_quality, revision=state.revision)
                         and manifest.state == state and _ends_match(manifest, _identity(session)))
            if not fresh:
                manifest = self._write(engine, self._update)
            assert manifest is not None
            try:
                self._snapshot = self._open(manifest)
            except (FileNotFoundError, ValueError) as e:  # ValueError: a file shorter than its manifest says
                log.warning("the index in %s is damaged (%s): rebuilding it", self.folder, e)
                self._snapshot = self._open(self._write(engine, self._full))
            self._state = state
            return self._snapshot.frames

    def _write(self, engine: Engine, step: Any) -> Manifest:
        """Run `step(engine, session, manifest, state)` under the writer lock, in a transaction begun
        after the lock was taken: it sees every clip the writers before it indexed (an SQLite reader
        begun earlier would not, and would take their clips for removed ones)."""
        with _writer_lock(self.folder), db.session_scope(engine) as session:
            state = db.repository.library_state(session=session)
            return step(engine, session, read_manifest(self.folder), state)

    def _update(self, engine: Engine, session: Any, manifest: Manifest | None, state: LibraryState) -> Manifest:
        """Under the writer lock: the manifest made current (another writer may have done it meanwhile)."""
        if not _usable(manifest, min_quality=self.min_quality, revision=state.revision):
            return self._full(engine, session, manifest, state)
        assert manifest is not None
        if manifest.state == state and _ends_match(manifest, _identity(session)):
            return manifest
        present = db.repository.clip_ids(session=session)
        try:
            known = _clips_from_records(_map(self.folder / manifest.column_file("clips"), CLIP_DTYPE,
                                             manifest.clips))
        except (OSError, ValueError) as e:
            log.warning("index files in %s cannot be read (%s): rebuilding it", self.folder, e)
            return self._full(engine, session, manifest, state)
        held = np.fromiter(known, dtype=np.int64, count=len(known))
        if np.setdiff1d(held, present, assume_unique=True).size or not _ends_match(manifest, _identity(session)):
            log.info("clips the index holds are gone from the library: rebuilding it")
            return self._full(engine, session, manifest, state)
        new = np.setdiff1d(present, held, assume_unique=True)
        if new.size == 0:
            return manifest
        manifest, rows = _catch_up(self.folder, engine, session, manifest, new, known=known)
        self._incremental_loads += 1
        self._rows_fetched += rows
        return manifest

    def _full(self, engine: Engine, session: Any, old: Manifest | None, state: LibraryState) -> Manifest:
        manifest, rows = _rebuild(self.folder, engine, session, old, min_quality=self.min_quality,
                                  revision=state.revision)
        self._full_loads += 1
        self._rows_fetched += rows
        return manifest

    def _open(self, manifest: Manifest) -> Snapshot:
        for attempt in range(_OPEN_ATTEMPTS):
            try:
                snapshot = open_snapshot(self.folder, manifest)
                self._opens += 1
                return snapshot
            except FileNotFoundError:
                # A rebuild by another process replaced the manifest and removed the files of this one.
                newer = read_manifest(self.folder)
                if newer is None or attempt == _OPEN_ATTEMPTS - 1:
                    raise
                manifest = newer
        raise AssertionError("unreachable")

    def sound(self, engine: Engine) -> SoundColumns | None:
        """The library's sound from the snapshot, current as of this call (as `refresh`); None when
        this process holds the library in memory instead (the folder cannot be written): then the
        caller reads it from the database."""
        self.refresh(engine)
        with self._lock:
            if self._memory is not None or self._snapshot is None:
                return None
            return self._snapshot.sound

    def rebuild(self, engine: Engine) -> Manifest:
        """Build the index again from the database, whatever it holds now."""
        with self._lock:
            manifest = self._write(engine, self._full)
            self._snapshot, self._state = None, None
            return manifest

    def stats(self) -> index.IndexStats:
        """As the in-memory index's: full_loads are rebuilds and incremental_loads catch-ups made by this
        process, rows_fetched the rows it read from the database, bytes the snapshot's files on disk
        (mapped, so shared with every process that has them open)."""
        if self._memory is not None:
            return self._memory.stats()
        with self._lock:
            snap = self._snapshot
            m = snap.manifest if snap else None
            return index.IndexStats(
                rows=m.rows if m else 0, clips=m.clips if m else 0, indexed_rows=m.indexed_rows if m else 0,
                fields=tuple(w for _, w, _ in m.segments[0].fields) if m and m.segments else (),
                full_loads=self._full_loads, incremental_loads=self._incremental_loads,
                rows_fetched=self._rows_fetched, bytes=folder_bytes(self.folder, m))

    @property
    def opens(self) -> int:
        """Snapshots this process mapped (a new one after each change of the library)."""
        return self._opens


def folder_bytes(folder: Path, manifest: Manifest | None) -> int:
    """Bytes of the files a manifest names (0 for files missing)."""
    if manifest is None:
        return 0
    total = 0
    for name in [MANIFEST, *manifest.files()]:
        try:
            total += (folder / name).stat().st_size
        except FileNotFoundError:
            pass
    return total


def is_unwritable(error: OSError) -> bool:
    """An error that means the index folder cannot be kept (read-only, full, no permission)."""
    return error.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)


# --- status, verify, rebuild (the `provenance index` commands) ----------------------------------


@dataclass(frozen=True)
class IndexStatus:
    """Where a database's index lives and whether it holds exactly the library's clips."""

    folder: Path | None  # None: the database has no place for one (an in-memory SQLite database)
    exists: bool
    size_bytes: int  # of the files the manifest names
    rows: int
    clips: int
    audio_rows: int  # sub-fingerprints of the clips' sound
    segments: tuple[tuple[int, tuple[int, ...]], ...]  # (rows, substring widths) of each segment with tables
    generation: int
    built_at: str | None
    updated_at: str | None
    catch_ups: int
    library_clips: int | None  # clips in the database (None when it could not be asked)
    state: str  # "current" | "behind" | "mismatch" | "missing" | "none" | "unknown" (not compared)
    detail: str  # why, in words

    def to_dict(self) -> dict[str, object]:
        return {"folder": str(self.folder) if self.folder else None, "exists": self.exists,
                "size_bytes": self.size_bytes, "rows": self.rows, "clips": self.clips, "audio_rows": self.audio_rows,
                "segments": [{"rows": r, "fields": list(f)} for r, f in self.segments],
                "generation": self.generation, "built_at": self.built_at, "updated_at": self.updated_at,
                "catch_ups": self.catch_ups, "library_clips": self.library_clips, "state": self.state,
                "detail": self.detail}


def describe_folder(url: str | URL) -> IndexStatus:
    """Where the index of the database at `url` is, and what its manifest says; asks the database nothing."""
    return _describe(url, None, min_quality=None)


def describe(engine: Engine, *, min_quality: float) -> IndexStatus:
    """The index of the database behind `engine`, compared with it. Reads only."""
    return _describe(engine.url, engine, min_quality=min_quality)


def _describe(url: str | URL, engine: Engine | None, *, min_quality: float | None) -> IndexStatus:
    folder = location(url)
    manifest = read_manifest(folder) if folder else None
    base = dict(folder=folder, exists=manifest is not None, size_bytes=folder_bytes(folder, manifest) if folder else 0,
                rows=manifest.rows if manifest else 0, clips=manifest.clips if manifest else 0,
                audio_rows=manifest.audio_rows if manifest else 0,
                segments=tuple((s.rows, tuple(w for _, w, _ in s.fields)) for s in manifest.segments) if manifest else (),
                generation=manifest.generation if manifest else 0,
                built_at=manifest.built_at if manifest else None, updated_at=manifest.updated_at if manifest else None,
                catch_ups=manifest.catch_ups if manifest else 0)
    if folder is None:
        return IndexStatus(**base, library_clips=None, state="none",
                           detail="an in-memory database: the index is held in memory")
    if engine is None or min_quality is None:
        return IndexStatus(**base, library_clips=None, state="missing" if manifest is None else "unknown",
                           detail="")
    with db.session_scope(engine) as session:
        state = db.repository.library_state(session=session)
        if manifest is None:
            return IndexStatus(**base, library_clips=state.clips, state="missing",
                               detail="not built yet: the next check builds it (or: provenance index rebuild)")
        if not _usable(manifest, min_quality=min_quality, revision=state.revision):
            return IndexStatus(**base, library_clips=state.clips, state="mismatch",
                               detail="built by another version or schema: the next check rebuilds it")
        if not _ends_match(manifest, _identity(session)):
            return IndexStatus(**base, library_clips=state.clips, state="mismatch",
                               detail="its clips are not this database's: the next check rebuilds it")
        if manifest.state == state:
            return IndexStatus(**base, library_clips=state.clips, state="current", detail="holds every clip")
        present = db.repository.clip_ids(session=session)
    held = _map(folder / manifest.column_file("clips"), CLIP_DTYPE, manifest.clips)["clip_id"]
    gone = np.setdiff1d(held, present).size
    if gone:
        return IndexStatus(**base, library_clips=state.clips, state="mismatch",
                           detail=f"{gone} clip(s) it holds are gone from the library: the next check rebuilds it")
    new = np.setdiff1d(present, held).size
    return IndexStatus(**base, library_clips=state.clips, state="behind",
                       detail=f"{new} clip(s) added since: the next check reads only those")


def verify(engine: Engine, *, min_quality: float) -> list[str]:
    """Compare the index with the database, row by row, and check its tables; the problems found, in
    words ([] when it is sound). Clips added since it was caught up are not problems (status says so)."""
    folder = location(engine.url)
    if folder is None:
        return []
    manifest = read_manifest(folder)
    if manifest is None:
        return [f"no index in {folder} (it is built by the next check, or: provenance index rebuild)"]
    try:
        snap = open_snapshot(folder, manifest)
    except (OSError, ValueError) as e:
        return [f"its files cannot be read: {e}"]
    problems: list[str] = []
    index_frames = snap.frames
    with db.session_scope(engine) as session:
        if manifest.revision != db.repository.library_state(session=session).revision:
            problems.append(f"built for schema {manifest.revision}, the database is at another")
        stored = db.repository.load_reference_frames(session=session, min_quality=manifest.min_quality,
                                                     clip_ids=sorted(index_frames.clips))
        db_sound = db.repository.load_audio_items(session=session, clip_ids=sorted(index_frames.clips))
    if stored.clips != index_frames.clips:
        missing = set(index_frames.clips) - set(stored.clips)
        changed = sum(1 for k, v in index_frames.clips.items() if k in stored.clips and stored.clips[k] != v)
        problems.append(f"clips differ from the database's: {len(missing)} gone, {changed} changed")
    ours = np.argsort(np.asarray(index_frames.clip_ids), kind="stable")
    theirs = np.argsort(stored.clip_ids, kind="stable")
    if ours.size != theirs.size:
        problems.append(f"holds {ours.size:,} frame hashes of its clips, the database {theirs.size:,}")
    else:
        for name, _ in COLUMNS:
            a = np.asarray(getattr(index_frames, name))[ours]
            b = np.asarray(getattr(stored, name)).astype(a.dtype)[theirs]
            if not np.array_equal(a, b):
                problems.append(f"column {name}: {int(np.count_nonzero(a != b)):,} rows differ from the database")
    problems += _sound_problems(snap.sound, db_sound)
    problems += _table_problems(snap)
    return problems


def _sound_problems(sound: SoundColumns, stored: tuple[np.ndarray, np.ndarray]) -> list[str]:
    """The snapshot's sub-fingerprints against the database's, clip by clip (the snapshot keeps clips
    in the order they were indexed, the database's come by clip id; each clip's items are in time
    order in both)."""
    ours = np.argsort(np.asarray(sound.clip_ids), kind="stable")
    theirs = np.argsort(stored[0], kind="stable")
    if ours.size != theirs.size:
        return [f"holds {ours.size:,} sub-fingerprints of its clips' sound, the database {theirs.size:,}"]
    problems = []
    for (name, _), ours_col, db_col in zip(AUDIO_COLUMNS, (sound.clip_ids, sound.values), stored, strict=True):
        a, b = np.asarray(ours_col)[ours], np.asarray(db_col).astype(np.asarray(ours_col).dtype)[theirs]
        if not np.array_equal(a, b):
            problems.append(f"column {name}: {int(np.count_nonzero(a != b)):,} rows differ from the database")
    return problems


def _table_problems(snap: Snapshot) -> list[str]:
    problems = []
    for segment, (start, tables) in zip(snap.manifest.segments, snap.search.segments, strict=True):
        hashes = np.asarray(tables.hashes)
        for k, ((shift, width, _), (order, sorted_hashes, starts, counts)) in enumerate(
                zip(tables.plan.fields, tables.tables, strict=True)):
            where = f"segment {segment.id} (rows {start:,}-{segment.end:,}) field {k}"
            order = np.asarray(order)
            if order.size != hashes.size or np.bincount(order, minlength=hashes.size).max(initial=1) != 1:
                problems.append(f"{where}: the row order is not a permutation")
                continue
            if not np.array_equal(np.asarray(sorted_hashes), hashes[order]):
                problems.append(f"{where}: the sorted hashes are not the rows'")
                continue
            key = ((hashes[order] >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
            expected = np.bincount(key, minlength=1 << width)
            if np.any(np.diff(key) < 0) or not np.array_equal(np.asarray(counts), expected) or \
                    not np.array_equal(np.asarray(starts), np.cumsum(expected) - expected):
                problems.append(f"{where}: the buckets do not match the rows")
    return problems


def rebuild(engine: Engine, *, min_quality: float) -> IndexStatus:
    """Build the index of the database behind `engine` again from its rows."""
    from . import index as memory_index

    found = memory_index.library_index(engine, min_quality=min_quality)
    if isinstance(found, DiskIndex):
        found.rebuild(engine)
    return describe(engine, min_quality=min_quality)
