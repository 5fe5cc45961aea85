"""The on-disk index (provenance.diskindex): the same matches as the in-memory index, opened by a new
process without reading a row, caught up on clips added elsewhere, rebuilt when it does not match the
database, and never half-written (a writer killed mid-update leaves the previous snapshot)."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import delete, insert, select, update

from provenance import diskindex, hashindex, index, pipeline
from provenance.db import models as orm
from provenance.db import repository, session_scope
from provenance.frames import MIN_QUALITY
from provenance.settings import Settings
from provenance.match import candidate_pairs, find_matches, query_frames
from tests.conftest import SAMPLES

QUERIES = ("bikes_mirrored.mp4", "bikes_cropped_15pct.mp4", "compilation_bbb_then_boxed_bikes.mp4",
           "bikes_speed_1.2x.mp4")


@pytest.fixture
def always_indexed(monkeypatch):
    """Multi-index tables over every row, however small the library (real clips are a few hundred rows)."""
    monkeypatch.setattr(hashindex, "best_plan", lambda rows, distance: hashindex.make_plan(4, distance))
    monkeypatch.setattr(index, "TAIL_MAX_ROWS", 0)
    monkeypatch.setattr(diskindex, "TAIL_MAX_ROWS", 0)
    index.forget()
    yield
    index.forget()


def _ingest(settings, name: str):
    return pipeline.ingest(str(SAMPLES / name), settings=settings)


def _engine(settings):
    return pipeline.open_library(settings)


def _disk(settings):
    return pipeline.load_library(_engine(settings))


def _stats(settings):
    return index.library_index(_engine(settings), min_quality=MIN_QUALITY).stats()


def _in_memory(settings):
    """The library as the in-memory index of provenance.index holds it (every row read from the database)."""
    return index.LibraryIndex(MIN_QUALITY).refresh(_engine(settings))


def _same_rows(a, b) -> None:
    for name in ("clip_ids", "times", "variants", "hashes"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.clips == b.clips


def _folder(settings):
    return diskindex.location(settings.db_url)


@pytest.mark.slow
@pytest.mark.parametrize("merge_ratio", [3, 0])  # 0: every catch-up stays a segment of its own
def test_matches_through_the_disk_index_are_those_of_the_in_memory_index(settings, derived, always_indexed,
                                                                          monkeypatch, merge_ratio):
    monkeypatch.setattr(diskindex, "MERGE_RATIO", merge_ratio)
    _ingest(settings, "carphone_pristine.mp4")
    _ingest(settings, "bigbuckbunny.mp4")
    _disk(settings)
    # Caught up: a second segment, merged into the first or not (the larger clip last, so that it is).
    _ingest(settings, "bikes.mp4")
    disk, memory = _disk(settings), _in_memory(settings)
    assert isinstance(disk.hashes, np.memmap)
    assert _stats(settings).incremental_loads == 1
    assert len(diskindex.read_manifest(_folder(settings)).segments) == (1 if merge_ratio else 2)
    _same_rows(disk, memory)
    for query_file in QUERIES:
        clip, _ = pipeline.analyse(str(derived(query_file)), settings=settings, query=True)
        query = query_frames(clip.fingerprint, min_quality=MIN_QUALITY)
        for columns in (slice(0, 3), slice(3, 6)):
            on_disk = candidate_pairs(query.hashes[:, columns], disk.hashes, search=disk.search)
            in_memory = candidate_pairs(query.hashes[:, columns], memory.hashes, search=memory.search)
            assert all(np.array_equal(a, b) for a, b in zip(on_disk, in_memory, strict=True))
        matches = find_matches(query, disk)
        assert matches, query_file
        assert matches == find_matches(query, memory)  # same references, segments, similarities, distances
        assert matches == find_matches(query, dataclasses.replace(memory, search=None))


_OPEN_IN_A_NEW_PROCESS = """
import json, sys, time
t0 = time.perf_counter()
from provenance import index, pipeline
from provenance.frames import MIN_QUALITY
from provenance.settings import Settings
engine = pipeline.open_library(Settings(db_url=sys.argv[1], store_dir=sys.argv[2]))
library = pipeline.load_library(engine)
stats = index.library_index(engine, min_quality=MIN_QUALITY).stats()
print(json.dumps({"rows": int(library.hashes.size), "clips": len(library.clips), "full": stats.full_loads,
                  "incremental": stats.incremental_loads, "fetched": stats.rows_fetched,
                  "mapped": type(library.hashes).__name__}))
"""


def _open_elsewhere(settings) -> dict:
    out = subprocess.run([sys.executable, "-c", _OPEN_IN_A_NEW_PROCESS, settings.db_url, str(settings.store_dir)],
                         check=True, capture_output=True, text=True, env=os.environ.copy())
    return json.loads(out.stdout)


def test_a_new_process_opens_the_index_without_reading_a_row(settings):
    _ingest(settings, "bikes.mp4")
    _ingest(settings, "carphone_pristine.mp4")
    built = _disk(settings)
    assert _stats(settings).full_loads == 1
    opened = _open_elsewhere(settings)
    assert opened == {"rows": int(built.hashes.size), "clips": 2, "full": 0, "incremental": 0, "fetched": 0,
                      "mapped": "memmap"}


def test_a_clip_added_by_another_connection_is_found_after_catch_up(settings):
    _ingest(settings, "bikes.mp4")
    before = _disk(settings)
    index.forget()  # as a new process: nothing held in memory, only the files
    added = _ingest(settings, "carphone_pristine.mp4")  # its own engine and connection
    assert diskindex.describe(_engine(settings), min_quality=MIN_QUALITY).state == "behind"
    result = pipeline.check(str(SAMPLES / "carphone_distorted.mp4"), settings=settings, record=False)
    assert [m.sha256 for m in result.matches] == [added.clip.media.sha256]
    stats = _stats(settings)
    added_rows = int(np.count_nonzero(np.asarray(_disk(settings).clip_ids) == added.clip_id))
    assert (stats.full_loads, stats.incremental_loads, stats.rows_fetched) == (0, 1, added_rows)
    assert stats.rows == before.hashes.size + added_rows
    assert diskindex.describe(_engine(settings), min_quality=MIN_QUALITY).state == "current"
    _same_rows(_disk(settings), _in_memory(settings))


def _remove_clip(engine, clip_id: int) -> None:
    with session_scope(engine) as session:
        session.execute(delete(orm.Frame).where(orm.Frame.clip_id == clip_id))
        session.execute(delete(orm.Sighting).where(orm.Sighting.clip_id == clip_id))
        session.execute(delete(orm.Clip).where(orm.Clip.id == clip_id))


@pytest.mark.parametrize("change", ["clip removed", "clip replaced", "frames resampled", "manifest damaged",
                                    "files removed"])
def test_an_index_that_does_not_match_the_database_is_rebuilt(settings, change):
    _ingest(settings, "bikes.mp4")
    other = _ingest(settings, "carphone_pristine.mp4")
    _disk(settings)
    index.forget()
    engine, folder = _engine(settings), _folder(settings)
    if change == "clip removed":
        _remove_clip(engine, other.clip_id)
    elif change == "clip replaced":  # another database at the same place, with clips of the same ids
        with session_scope(engine) as session:
            session.execute(update(orm.Clip).where(orm.Clip.id == other.clip_id).values(sha256="0" * 64))
    elif change == "frames resampled":  # the same files ingested again by a version that samples them otherwise
        with session_scope(engine) as session:
            session.execute(delete(orm.Frame).where(orm.Frame.clip_id == other.clip_id, orm.Frame.t > 1.0))
    elif change == "manifest damaged":
        (folder / diskindex.MANIFEST).write_text('{"format": 1, "rows": ')
    else:
        for path in folder.glob("g*-hashes.bin"):
            path.unlink()
    library = _disk(settings)
    assert _stats(settings).full_loads == 1
    _same_rows(library, _in_memory(settings))
    assert diskindex.verify(engine, min_quality=MIN_QUALITY) == []


def _add_filler(engine, rows: int, per_clip: int = 2_000) -> None:
    """Clips of random hashes, inserted in bulk (as bench/check_speed.py fills its libraries)."""
    rng = np.random.default_rng(7)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for start in range(0, rows, 100 * per_clip):
            n_clips = min(100, (rows - start) // per_clip)
            clip_rows = [dict(sha256=secrets.token_hex(32), size_bytes=1, evidence_path=None, container="mp4",
                              duration_s=per_clip / 4, width=64, height=64, fps=25.0, video_codec="h264",
                              has_audio=False, probe={}, sample_fps=4.0, hash_algo=repository.HASH_ALGO,
                              content_left=0.0, content_top=0.0, content_right=1.0, content_bottom=1.0,
                              usable_frames=per_clip, first_observed_at=now) for _ in range(n_clips)]
            conn.execute(insert(orm.Clip.__table__), clip_rows)
            ids = dict(conn.execute(select(orm.Clip.sha256, orm.Clip.id).where(
                orm.Clip.sha256.in_([r["sha256"] for r in clip_rows]))).all())
            hashes = rng.integers(-2**63, 2**63 - 1, size=n_clips * per_clip, dtype=np.int64).tolist()
            conn.execute(insert(orm.Frame.__table__), [
                {"clip_id": ids[r["sha256"]], "t": j / 4, "phash": hashes[i * per_clip + j], "quality": 1.0}
                for i, r in enumerate(clip_rows) for j in range(per_clip)])


def _files_past_the_manifest(folder, manifest) -> dict[str, int]:
    sizes = {}
    for name, dtype in diskindex.COLUMNS:
        path = folder / manifest.column_file(name)
        sizes[name] = path.stat().st_size - manifest.rows * np.dtype(dtype).itemsize
    return sizes


@pytest.mark.sqlite
@pytest.mark.slow
def test_a_writer_killed_mid_update_leaves_the_previous_snapshot(new_database, tmp_path):
    """A real SIGKILL while another process appends a catch-up: readers keep the snapshot before it,
    intact, and the next writer finishes the job."""
    settings = Settings(db_url=new_database("sqlite"), store_dir=tmp_path / "evidence")
    _ingest(settings, "bikes.mp4")
    engine, folder = _engine(settings), _folder(settings)
    _disk(settings)
    before = diskindex.read_manifest(folder)
    _add_filler(engine, 600_000)  # a catch-up long enough to be caught in the middle
    column = folder / before.column_file("clip_ids")
    size = column.stat().st_size
    writer = subprocess.Popen([sys.executable, "-c", _OPEN_IN_A_NEW_PROCESS, settings.db_url,
                               str(settings.store_dir)], stdout=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while column.stat().st_size == size:  # killed once it has started appending
        assert writer.poll() is None and time.monotonic() < deadline, "the writer never appended"
        time.sleep(0.001)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()

    assert diskindex.read_manifest(folder) == before  # nothing published
    assert any(_files_past_the_manifest(folder, before).values())  # it had written past the snapshot
    index.forget()
    snapshot = diskindex.open_snapshot(folder, before)
    assert snapshot.frames.hashes.size == before.rows and set(snapshot.frames.clips) == {1}
    assert diskindex.verify(engine, min_quality=MIN_QUALITY) == []  # the old snapshot is sound

    library = _disk(settings)  # the next writer cuts off what the dead one left and appends again
    assert _stats(settings).incremental_loads == 1
    after = diskindex.read_manifest(folder)
    assert after.rows == before.rows + 600_000 and not any(_files_past_the_manifest(folder, after).values())
    _same_rows(library, _in_memory(settings))
    assert diskindex.verify(engine, min_quality=MIN_QUALITY) == []


def test_a_partial_segment_left_by_a_crash_is_ignored_then_removed(settings, always_indexed):
    _ingest(settings, "bikes.mp4")
    _disk(settings)
    folder = _folder(settings)
    before = diskindex.read_manifest(folder)
    # What a writer killed between writing and publishing leaves: rows past the snapshot's, half a
    # table of a segment no manifest names, a temporary manifest.
    for name, _ in diskindex.COLUMNS:
        with open(folder / before.column_file(name), "ab") as f:
            f.write(b"\xff" * 13)
    (folder / f"s{before.next_segment}-f0-order.bin").write_bytes(b"\x01" * 100)
    (folder / f"{diskindex.MANIFEST}.tmp-99999").write_text('{"format": 1, "rows": 99')
    index.forget()
    opened = _disk(settings)  # nothing changed in the database: the snapshot is served as it is
    assert opened.hashes.size == before.rows and _stats(settings).full_loads == 0

    added = _ingest(settings, "carphone_pristine.mp4")
    library = _disk(settings)
    assert _stats(settings).incremental_loads == 1 and added.clip_id in library.clips
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [diskindex.MANIFEST, diskindex.LOCK, *diskindex.read_manifest(folder).files()])
    _same_rows(library, _in_memory(settings))
    assert diskindex.verify(_engine(settings), min_quality=MIN_QUALITY) == []


def test_index_commands_status_verify_rebuild_and_db_status(settings, run, always_indexed):
    _ingest(settings, "bikes.mp4")
    folder = _folder(settings)
    status = json.loads(run("index", "status", "--json").output)
    assert (status["folder"], status["state"], status["exists"]) == (str(folder), "missing", False)
    _disk(settings)
    status = json.loads(run("index", "status", "--json").output)
    assert status["state"] == "current" and status["rows"] > 0 and status["size_bytes"] > 0
    assert run("index", "verify").exit_code == 0
    assert f"index     {folder}" in run("db", "status").output

    manifest = diskindex.read_manifest(folder)
    hashes = folder / manifest.column_file("hashes")
    damaged = bytearray(hashes.read_bytes())
    damaged[3] ^= 0x10
    hashes.write_bytes(bytes(damaged))
    result = run("index", "verify")
    assert result.exit_code == 5
    assert "column hashes: 1 rows differ" in result.output and "provenance index rebuild" in result.output

    result = run("index", "rebuild")
    assert result.exit_code == 0 and "current" in result.output
    assert run("index", "verify").exit_code == 0
    assert diskindex.read_manifest(folder).generation == manifest.generation + 1
