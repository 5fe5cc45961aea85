"""A check that records nothing of an SQLite library reads it through sqlite3 alone (provenance.readonly):
the same answers as through SQLAlchemy, no SQLAlchemy imported, the usual way wherever it cannot."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provenance import pipeline, readonly
from provenance.db import reads, repository, session_scope
from provenance.frames import MIN_QUALITY
from provenance.settings import Settings
from tests.conftest import SAMPLES

POSTED = datetime(2019, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def library(tmp_path: Path) -> Settings:
    """bikes (seen in two posts) and Big Buck Bunny (with its sound) in an SQLite library whose on-disk
    index holds both."""
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'lib.db'}", store_dir=tmp_path / "evidence")
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://example.org/b/1",
                    posted_at=POSTED)
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://example.org/b/<2>")
    pipeline.ingest(str(SAMPLES / "bigbuckbunny.mp4"), settings=settings)
    pipeline.load_library(pipeline.open_library(settings))  # the index made current
    return settings


def _through_engine(target: Path, settings: Settings) -> dict:
    """The check of `target` with nothing recorded, read through SQLAlchemy as before."""
    clip, post = pipeline.analyse(str(target), settings=settings, query=True)
    engine, library = pipeline.open_and_load(settings)
    assert not isinstance(engine, readonly.DirectLibrary)
    with pipeline.evidence_kept_if_recorded(clip.media, engine, recorded=False):
        return pipeline.check_analysed(clip, post, engine=engine, library=library, record=False).to_dict()


def _comparable(result: dict) -> dict:
    """All the library says: not when the check ran, nor what came from the clip's page and file alone."""
    kept = {k: v for k, v in result.items() if k not in ("checked_at", "page_capture", "content_credentials")}
    if kept["first_seen"]["is_this_post"]:  # first seen now, by this check
        kept["first_seen"] = {k: v for k, v in kept["first_seen"].items() if k != "observed_at"}
    return kept


def _dump(path: Path) -> str:
    """Everything the SQLite file holds, as SQL (its bytes may change when a reader closing it last
    checkpoints the write-ahead log; what it holds may not)."""
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


@pytest.mark.slow
@pytest.mark.parametrize("query", ["bikes_reencoded_360w.mp4", "bigbuckbunny_with_sound_reencoded.mp4",
                                   "carphone"])
def test_a_check_read_directly_says_what_the_check_through_sqlalchemy_says(library, derived, query):
    target = SAMPLES / "carphone_pristine.mp4" if query == "carphone" else derived(query)
    direct = readonly.open_direct(library.db_url, min_quality=MIN_QUALITY)
    assert direct is not None  # so pipeline.check below reads the library directly
    direct.close()
    db_file = Path(library.db_url.removeprefix("sqlite:///"))
    before, stored = _dump(db_file), sorted(library.store_dir.rglob("*"))

    got = pipeline.check(str(target), settings=library, record=False).to_dict()

    assert _dump(db_file) == before  # nothing written
    assert sorted(library.store_dir.rglob("*")) == stored  # no evidence copy left behind
    assert _comparable(got) == _comparable(_through_engine(target, library))
    if query != "carphone":
        assert got["verdict"] == "reused" and got["matches"]
        seen = [s for m in got["matches"] for s in m["sightings"]]
        assert seen, "the sightings were read"
    if query.startswith("bikes"):
        urls = [s["url"] for s in got["matches"][0]["sightings"]]
        assert urls == ["https://example.org/b/1", "https://example.org/b/<2>"]  # earliest post first
        assert got["first_seen"]["posted_at"].startswith("2019-05-01T10:00:00")
    if query.startswith("bigbuckbunny"):
        assert got["sound"]["matches"], got["sound"]


def test_each_read_answers_the_same_through_sqlite3_and_through_a_session(library):
    db_file = Path(library.db_url.removeprefix("sqlite:///"))
    engine = pipeline.open_library(library)
    conn = sqlite3.connect(db_file)
    try:
        direct = reads.Reads(reads.sqlite_run(conn))
        with session_scope(engine) as session:
            through = reads.Reads(reads.session_run(session))
            ids = [int(i) for i in repository.clip_ids(session=session)]
            shas = [repository.clip_sha256(i, session=session) for i in ids]
            assert len(ids) == 2
            assert direct.library_state() == through.library_state()
            assert direct.library_state().clips == 2
            for clip_id, sha in zip(ids, shas, strict=True):
                assert direct.find_clip_id(sha) == through.find_clip_id(sha) == clip_id
                assert direct.clip_identity(clip_id) == through.clip_identity(clip_id)
                assert direct.clip_identity(clip_id).startswith(sha + ":")
                assert direct.evidence_path_of(clip_id) == through.evidence_path_of(clip_id) is not None
                assert direct.audio_status_of(clip_id) == through.audio_status_of(clip_id) is not None
                a, b = direct.motion_of(clip_id), through.motion_of(clip_id)
                assert a is not None and b is not None
                assert a.times.tolist() == b.times.tolist() and a.cells.tobytes() == b.cells.tobytes()
            assert direct.sightings_for(ids) == through.sightings_for(ids)
            assert [len(v) for v in direct.sightings_for(ids).values()] == [2, 1]
            assert direct.sightings_for(ids)[ids[0]][0].posted_at == POSTED
            assert direct.find_clip_id("0" * 64) is None
            with pytest.raises(KeyError):
                direct.clip_identity(max(ids) + 1)
            assert direct.recorded_sha256s(shas) == set() == through.recorded_sha256s(shas)
    finally:
        conn.close()
        engine.dispose()


def test_the_usual_way_is_taken_wherever_the_library_cannot_be_read_directly(library, tmp_path):
    assert readonly.open_direct(library.db_url + "?timeout=5", min_quality=MIN_QUALITY) is None
    assert readonly.open_direct("postgresql+psycopg://me@127.0.0.1:9/x", min_quality=MIN_QUALITY) is None
    assert readonly.open_direct(f"sqlite:///{tmp_path / 'none.db'}", min_quality=MIN_QUALITY) is None
    assert not (tmp_path / "none.db").exists()  # nothing created
    assert readonly.open_direct("sqlite://", min_quality=MIN_QUALITY) is None
    assert readonly.open_direct(library.db_url, min_quality=0.0) is None  # the index is for another quality
    # A clip added since the index was made: the index is to be caught up, which the usual way does.
    pipeline.ingest(str(SAMPLES / "carphone_pristine.mp4"), settings=library)
    assert readonly.open_direct(library.db_url, min_quality=MIN_QUALITY) is None
    result = pipeline.check(str(SAMPLES / "carphone_pristine.mp4"), settings=library, record=False)
    assert result.clip.media.sha256 in [m.sha256 for m in result.matches]  # its own copy: the index caught up
    direct = readonly.open_direct(library.db_url, min_quality=MIN_QUALITY)
    assert direct is not None and len(direct.snapshot.frames.clips) == 3
    direct.close()


def test_a_library_at_another_schema_revision_is_left_to_the_usual_way(library):
    db_file = Path(library.db_url.removeprefix("sqlite:///"))
    with sqlite3.connect(db_file) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0011'")
    assert readonly.open_direct(library.db_url, min_quality=MIN_QUALITY) is None


@pytest.mark.slow
def test_a_command_line_check_that_records_nothing_never_imports_sqlalchemy(library, tmp_path):
    env = dict(os.environ, PROVENANCE_STORE=str(library.store_dir))
    args = ["check", str(SAMPLES / "bikes.mp4"), "--no-record", "--json", "--db", library.db_url]
    cp = subprocess.run([sys.executable, "-X", "importtime", "-c", "from provenance.cli import main; main()", *args],
                        capture_output=True, text=True, env=env)
    assert cp.returncode == 0, cp.stderr[-2000:]
    modules = {line.split("|")[-1].strip() for line in cp.stderr.splitlines() if line.startswith("import time:")}
    assert "provenance.readonly" in modules and "provenance.diskindex" in modules
    assert not {m for m in modules if m.split(".")[0] in ("sqlalchemy", "alembic")}
    assert not {"provenance.db.models", "provenance.db.repository", "provenance.db.engine"} & modules
    assert json.loads(cp.stdout)["verdict"] == "reused"


def test_a_file_that_is_no_database_gets_the_usual_error(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_bytes(b"these are notes, not a database" * 100)
    env = dict(os.environ, PROVENANCE_STORE=str(tmp_path / "evidence"))
    cp = subprocess.run([sys.executable, "-m", "provenance.cli", "check", str(SAMPLES / "bikes.mp4"), "--no-record",
                         "--db", f"sqlite:///{bad}"], capture_output=True, text=True, env=env)
    assert cp.returncode != 0 and "cannot open database" in cp.stderr, cp.stderr
    assert len(cp.stderr.strip().splitlines()) == 1
    assert bad.read_bytes() == b"these are notes, not a database" * 100
