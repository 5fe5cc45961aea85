"""provenance.db against real SQLite files and a real PostgreSQL server (no mocks)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError

from provenance.db import connect, ensure_schema, repository, session_scope, upgrade
from provenance.db import models as orm
from provenance.db.engine import stored_revision, head_revision
from provenance.errors import StoreError
from provenance.settings import Settings
from provenance.records import (
    ContentBox,
    FetchedMedia,
    Fingerprint,
    FrameHash,
    Match,
    Post,
    ProbeInfo,
    Segment,
    StreamInfo,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
TOP_BIT = 0xFFFF_0000_1234_5678


@pytest.fixture
def engine(settings: Settings) -> Engine:
    eng = connect(settings.db_url)
    ensure_schema(eng)
    yield eng
    eng.dispose()


def _clip(sha: str, hashes: list[int], qualities: list[float] | None = None):
    qualities = qualities or [0.9] * len(hashes)
    media = FetchedMedia(
        path=Path(f"/evidence/{sha}.mp4"),
        sha256=sha,
        size_bytes=1234,
        post=Post(url="https://example.com/v/1", platform="Generic"),
        source="url",
    )
    probe = ProbeInfo(
        container="mov,mp4,m4a,3gp,3g2,mj2",
        duration_s=10.0,
        streams=(
            StreamInfo(0, "video", "h264", 640, 360, 25.0),
            StreamInfo(1, "audio", "aac"),
        ),
        tags={"creation_time": "2024-05-01T10:00:00.000000Z"},
        bit_rate=float("nan"),  # type: ignore[arg-type]  # must not reach the JSON column as NaN
    )
    frames = tuple(
        FrameHash(t=i * 0.5, phash=h, quality=q)
        for i, (h, q) in enumerate(zip(hashes, qualities, strict=True))
    )
    fp = Fingerprint(
        sample_fps=2.0,
        frames=frames,
        content_box=ContentBox(0.0, 0.1, 1.0, 0.9),
        decoded_duration_s=9.96,
    )
    return media, probe, fp


def test_upgrade_matches_models_exactly(settings: Settings) -> None:
    url = settings.db_url
    assert upgrade(url) == (None, head_revision())
    assert upgrade(url) == (head_revision(), head_revision())  # idempotent
    eng = connect(url)
    with eng.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), orm.Base.metadata) == []
    eng.dispose()


def test_ensure_schema_creates_then_accepts(settings: Settings) -> None:
    eng = connect(settings.db_url)
    ensure_schema(eng)
    ensure_schema(eng)
    with session_scope(eng) as s:
        assert set(repository.row_counts(session=s).values()) == {0}
    eng.dispose()


@pytest.mark.parametrize("rev", ["0000_older", "ffffffffffff"])
def test_ensure_schema_refuses_other_revisions(engine: Engine, rev: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": rev})
    with pytest.raises(StoreError, match="provenance db upgrade") as e:
        ensure_schema(engine)
    assert rev in e.value.message and "\n" not in e.value.message


def test_ensure_schema_refuses_unversioned_tables(settings: Settings) -> None:
    eng = connect(settings.db_url)
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE something (x INTEGER)"))
    with pytest.raises(StoreError, match="not a provenance library"):
        ensure_schema(eng)
    eng.dispose()


def test_clip_frames_roundtrip_unsigned_hashes(engine: Engine) -> None:
    hashes = [TOP_BIT, 0, (1 << 64) - 1, 1 << 63, 0x0123_4567_89AB_CDEF]
    qualities = [0.9, 0.1, 0.9, 0.9, 0.05]
    with session_scope(engine) as s:
        cid = repository.add_clip(
            *_clip("a" * 64, hashes, qualities), session=s, observed_at=T0, min_quality=0.5
        )
        again = repository.add_clip(
            *_clip("a" * 64, hashes, qualities), session=s, observed_at=T0, min_quality=0.5
        )
        other = repository.add_clip(
            *_clip("b" * 64, [TOP_BIT]), session=s, observed_at=T0, min_quality=0.5
        )
    assert again == cid != other
    with session_scope(engine) as s:
        counts = repository.row_counts(session=s)
        assert counts["clips"] == 2 and counts["frames"] == 6
        assert repository.find_clip_id("a" * 64, session=s) == cid
        assert repository.find_clip_id("c" * 64, session=s) is None
        assert repository.clip_sha256(other, session=s) == "b" * 64
        # Stored signed, so SQL can compare and index them as ordinary BIGINTs.
        assert min(s.scalars(select(orm.Frame.phash))) < 0
        clip = s.get(orm.Clip, cid)
        assert clip is not None and clip.usable_frames == 3 and clip.has_audio
        assert clip.width == 640 and clip.video_codec == "h264"
        assert clip.probe["bit_rate"] is None and clip.probe["streams"][1]["kind"] == "audio"
        ref = repository.load_reference_frames(session=s, min_quality=0.5)
    assert (
        ref.hashes.dtype == np.uint64
        and ref.clip_ids.dtype == np.int64
        and ref.times.dtype == np.float64
    )
    assert [int(h) for h in ref.hashes] == [TOP_BIT, (1 << 64) - 1, 1 << 63, TOP_BIT]
    assert ref.clip_ids.tolist() == [cid, cid, cid, other]
    assert ref.times.tolist() == [0.0, 1.0, 1.5, 0.0]
    assert ref.clips[cid].usable_frames == 3
    assert ref.clips[cid].content_box == ContentBox(0.0, 0.1, 1.0, 0.9)
    assert ref.clips[other].sha256 == "b" * 64


def test_hash_conversion_bounds() -> None:
    for h in (0, 1, TOP_BIT, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
        assert repository.to_unsigned64(repository.to_signed64(h)) == h
    with pytest.raises(ValueError):
        repository.to_signed64(1 << 64)
    with pytest.raises(ValueError):
        repository.to_signed64(-1)


def test_sightings_sorted_earliest_first(engine: Engine) -> None:
    with session_scope(engine) as s:
        cid = repository.add_clip(*_clip("a" * 64, [1]), session=s, observed_at=T0, min_quality=0.5)
        empty = repository.add_clip(
            *_clip("b" * 64, [2]), session=s, observed_at=T0, min_quality=0.5
        )
        late = Post(
            url="https://x.com/a/status/2", platform="Twitter", posted_at=T0 + timedelta(days=2)
        )
        unknown = Post(
            url="file:///tmp/x.mp4", platform="local"
        )  # no post time: observed_at counts
        early = Post(
            url="https://x.com/b/status/1",
            platform="Twitter",
            post_id="1",
            posted_at=T0 - timedelta(days=3),
            info={"id": "1", "path": Path("/x"), "when": T0, "nan": float("nan")},
        )
        repository.add_sighting(cid, late, source="check", observed_at=T0, session=s)
        repository.add_sighting(
            cid, unknown, source="ingest", observed_at=T0 + timedelta(days=1), session=s
        )
        repository.add_sighting(cid, early, source="ingest", observed_at=T0, session=s)
        with pytest.raises(ValueError):
            repository.add_sighting(cid, early, source="bogus", observed_at=T0, session=s)
    with session_scope(engine) as s:
        got = repository.sightings_for([cid, empty], session=s)
    assert got[empty] == []
    assert [x.url for x in got[cid]] == [early.url, unknown.url, late.url]
    assert all(x.sha256 == "a" * 64 for x in got[cid])
    assert got[cid][0].posted_at == early.posted_at and got[cid][0].posted_at.tzinfo is timezone.utc


def test_add_check_stores_ranked_matches_and_segments(engine: Engine) -> None:
    with session_scope(engine) as s:
        q = repository.add_clip(*_clip("a" * 64, [1]), session=s, observed_at=T0, min_quality=0.5)
        r1 = repository.add_clip(*_clip("b" * 64, [2]), session=s, observed_at=T0, min_quality=0.5)
        r2 = repository.add_clip(*_clip("c" * 64, [3]), session=s, observed_at=T0, min_quality=0.5)
        sid = repository.add_sighting(
            r1, Post(posted_at=T0), source="ingest", observed_at=T0, session=s
        )

        def match(sha: str, sim: float, n_segments: int) -> Match:
            seg = Segment(0.0, 5.0, 10.0, 15.0)
            return Match(
                sha, sim, 0.8, 0.4, ("mirrored", "letterboxed"), (seg,) * n_segments, 10, 10.0, 1.0
            )

        check_id = repository.add_check(
            session=s,
            clip_id=q,
            sighting_id=None,
            created_at=T0,
            verdict="seen",
            first_seen_clip_id=r1,
            first_seen_sighting_id=sid,
            first_seen_at=T0,
            params={"threshold": 10, "when": T0},
            tool_version="0.1.0",
            matches=[(r1, match("b" * 64, 0.95, 2)), (r2, match("c" * 64, 0.7, 1))],
        )
    with session_scope(engine) as s:
        rows = s.scalars(
            select(orm.Match).where(orm.Match.check_id == check_id).order_by(orm.Match.rank)
        ).all()
        assert [(m.reference_clip_id, m.rank) for m in rows] == [(r1, 0), (r2, 1)]
        assert rows[0].transforms == "mirrored,letterboxed"
        assert repository.row_counts(session=s)["match_segments"] == 3
        check = s.get(orm.Check, check_id)
        assert check is not None and check.params == {"threshold": 10, "when": T0.isoformat()}
        # Deleting a check takes its matches and segments with it (foreign keys are on).
        s.delete(check)
    with session_scope(engine) as s:
        counts = repository.row_counts(session=s)
    assert counts["matches"] == counts["match_segments"] == counts["checks"] == 0


def test_session_scope_rolls_back_everything(engine: Engine) -> None:
    with session_scope(engine) as s:
        repository.add_clip(*_clip("a" * 64, [1, 2]), session=s, observed_at=T0, min_quality=0.5)
        before = repository.row_counts(session=s)
    with pytest.raises(RuntimeError):
        with session_scope(engine) as s:
            cid = repository.add_clip(
                *_clip("b" * 64, [3, 4, 5]), session=s, observed_at=T0, min_quality=0.5
            )
            repository.add_sighting(cid, Post(), source="check", observed_at=T0, session=s)
            raise RuntimeError("matcher failed")
    with session_scope(engine) as s:
        assert repository.row_counts(session=s) == before


def test_utc_datetime_is_aware_and_refuses_naive(engine: Engine) -> None:
    col = orm.UTCDateTime()
    plus2 = timezone(timedelta(hours=2))
    assert col.process_bind_param(datetime(2024, 1, 1, 14, tzinfo=plus2), None) == datetime(
        2024, 1, 1, 12
    )  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        col.process_bind_param(datetime(2024, 1, 1), None)  # type: ignore[arg-type]
    with session_scope(engine) as s:
        cid = repository.add_clip(
            *_clip("a" * 64, [1]),
            session=s,
            observed_at=datetime(2024, 1, 1, 14, tzinfo=plus2),
            min_quality=0.5,
        )
    with session_scope(engine) as s:
        got = s.scalar(select(orm.Clip.first_observed_at).where(orm.Clip.id == cid))
    assert got == datetime(2024, 1, 1, 12, tzinfo=timezone.utc) and got.tzinfo is timezone.utc
    with pytest.raises(StatementError) as e:
        with session_scope(engine) as s:
            repository.add_sighting(
                cid, Post(), source="check", observed_at=datetime(2024, 1, 1), session=s
            )
    assert isinstance(e.value.orig, ValueError)


@pytest.mark.parametrize(
    "url",
    [
        "notadb://x",
        "not a url at all",
        "postgresql+nosuchdriver://user:s3cret@localhost/db",
        "sqlite:////proc/no/such/dir/provenance.db",
        "mysql+pymysql://user:s3cret@localhost/db",  # no upsert support written for it: refused up front
    ],
)
def test_connect_failures_are_one_line_store_errors(url: str) -> None:
    with pytest.raises(StoreError) as e:
        connect(url)
    msg = e.value.message
    assert "\n" not in msg and "s3cret" not in msg
    assert "PROVENANCE_DB" in msg


def test_connect_creates_sqlite_parent_dir_and_sets_pragmas(tmp_path: Path) -> None:
    eng = connect(f"sqlite:///{tmp_path / 'a' / 'b' / 'p.db'}")
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        # Concurrent processes: readers never block the writer, and a writer waits for the lock.
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    assert (tmp_path / "a" / "b").is_dir()
    eng.dispose()


def test_connect_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello, this is not SQLite\n" * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        connect(f"sqlite:///{bogus}")


def test_fast_schema_check_knows_the_real_head():
    from provenance.db.engine import HEAD_REVISION

    assert HEAD_REVISION == head_revision()


def test_one_sighting_per_clip_and_post_url_filling_in_what_it_lacked(engine: Engine) -> None:
    later = T0 + timedelta(days=1)
    with session_scope(engine) as s:
        cid = repository.add_clip(*_clip("a" * 64, [1]), session=s, observed_at=T0, min_quality=0.5)
        other = repository.add_clip(*_clip("b" * 64, [2]), session=s, observed_at=T0, min_quality=0.5)
        url = "https://x.com/a/status/1"
        first = repository.add_sighting(
            cid, Post(url=url, platform="Twitter"), source="check", observed_at=T0, session=s
        )
        again = repository.add_sighting(
            cid,
            Post(url=url, platform="Other", posted_at=T0 - timedelta(days=9), uploader="a"),
            source="ingest",
            observed_at=later,
            session=s,
        )
        # Another clip in the same post, and the same clip elsewhere, are other sightings.
        elsewhere = repository.add_sighting(
            cid, Post(url=url + "0"), source="check", observed_at=T0, session=s
        )
        other_clip = repository.add_sighting(other, Post(url=url), source="check", observed_at=T0, session=s)
        # Without a URL, the clip met again is the same fact too: one sighting (issue 11).
        no_url = {
            repository.add_sighting(cid, Post(), source="ingest", observed_at=T0, session=s)
            for _ in range(2)
        }
    assert again == first and len(no_url) == 1 and len({first, elsewhere, other_clip, *no_url}) == 4
    with session_scope(engine) as s:
        row = s.get(orm.Sighting, first)
        assert row is not None
        # Stored values stay (the first observation is the evidence); missing ones are filled in.
        assert (row.source, row.platform, row.observed_at) == ("check", "Twitter", T0)
        assert (row.posted_at, row.uploader) == (T0 - timedelta(days=9), "a")
        assert repository.row_counts(session=s)["sightings"] == 4


def test_clip_added_by_another_process_meanwhile_is_found_not_duplicated(settings: Settings) -> None:
    """The race add_clip must survive: this session has looked for the clip and not found it when
    another connection, which has just inserted it, commits. The insert must yield to it."""
    import threading

    from sqlalchemy import event

    winner_engine, loser_engine = connect(settings.db_url), connect(settings.db_url)
    ensure_schema(winner_engine)
    loser_inserting = threading.Event()

    @event.listens_for(loser_engine, "before_cursor_execute")
    def _mark(conn, cursor, statement, *args) -> None:  # noqa: ANN001 - SQLAlchemy's signature
        if statement.lstrip().upper().startswith("INSERT INTO CLIPS"):
            loser_inserting.set()

    result: dict[str, object] = {}

    def loser() -> None:
        with session_scope(loser_engine) as s:
            result["loser"] = repository.upsert_clip(
                *_clip("a" * 64, [1, 2, 3]), session=s, observed_at=T0, min_quality=0.5
            )

    with session_scope(winner_engine) as s:
        result["winner"] = repository.upsert_clip(
            *_clip("a" * 64, [1, 2, 3]), session=s, observed_at=T0, min_quality=0.5
        )
        thread = threading.Thread(target=loser)
        thread.start()
        # The loser has not found the (uncommitted) clip and is now inserting: it must wait for us.
        assert loser_inserting.wait(timeout=30)
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the competing insert did not wait for this transaction"
    thread.join(timeout=60)
    winner_id, added = result["winner"]  # type: ignore[misc]
    assert added and result["loser"] == (winner_id, False)
    with session_scope(winner_engine) as s:
        counts = repository.row_counts(session=s)
    assert counts["clips"] == 1 and counts["frames"] == 3  # one view per frame: _clip gives no variants
    winner_engine.dispose()
    loser_engine.dispose()


def test_migration_0003_merges_duplicate_sightings(settings: Settings) -> None:
    from alembic import command

    from provenance.db.engine import _alembic_config

    eng = connect(settings.db_url)
    with eng.begin() as conn:
        cfg = _alembic_config(settings.db_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    when = "2024-05-01 12:00:00"
    clip_cols = {
        "sha256": "a" * 64, "size_bytes": 1, "container": "mp4", "duration_s": 1.0, "has_audio": False,
        "probe": "{}", "sample_fps": 4.0, "hash_algo": "phash64", "content_left": 0.0, "content_top": 0.0,
        "content_right": 1.0, "content_bottom": 1.0, "usable_frames": 0, "first_observed_at": when,
    }
    with eng.begin() as conn:
        conn.execute(
            text(f"INSERT INTO clips (id, {', '.join(clip_cols)}) VALUES (1, :{', :'.join(clip_cols)})"),
            clip_cols,
        )
        for sid, url in [(1, "https://a"), (2, "https://a"), (3, None), (4, None), (5, "https://b"), (6, "https://a")]:
            conn.execute(
                text("INSERT INTO sightings (id, clip_id, source, url, observed_at) VALUES (:i, 1, 'check', :u, :w)"),
                {"i": sid, "u": url, "w": when},
            )
        conn.execute(
            text(
                "INSERT INTO checks (id, clip_id, sighting_id, first_seen_sighting_id, created_at, verdict, params,"
                " tool_version) VALUES (1, 1, 6, 2, :w, 'reused', '{}', '0')"
            ),
            {"w": when},
        )
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")  # 0004 merges the URL-less ones too (tests/test_hardening_db.py)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT id FROM sightings ORDER BY id")).scalars().all() == [1, 3, 4, 5]
        assert conn.execute(text("SELECT sighting_id, first_seen_sighting_id FROM checks")).one() == (1, 1)
        keys = dict(conn.execute(text("SELECT id, url_sha256 FROM sightings")).all())
    assert keys == {1: orm.url_sha256("https://a"), 3: None, 4: None, 5: orm.url_sha256("https://b")}
    assert upgrade(settings.db_url) == ("0003", head_revision())
    # The application now finds the migrated sightings by their key.
    with session_scope(eng) as s:
        assert repository.add_sighting(1, Post(url="https://b"), source="check", observed_at=T0, session=s) == 5
    eng.dispose()


def test_a_sighting_with_a_very_long_url_is_kept_once(engine: Engine) -> None:
    # Signed media URLs run to kilobytes; PostgreSQL cannot index such a text itself.
    url = "https://cdn.example/v.mp4?sig=" + "".join(f"{i * 7919 % 65521:x}" for i in range(5000))
    with session_scope(engine) as s:
        cid = repository.add_clip(*_clip("a" * 64, [1]), session=s, observed_at=T0, min_quality=0.5)
        ids = {repository.add_sighting(cid, Post(url=url), source="check", observed_at=T0, session=s) for _ in "ab"}
    with session_scope(engine) as s:
        assert len(ids) == 1 and repository.sightings_for([cid], session=s)[cid][0].url == url


def test_first_runs_at_once_on_an_empty_database_all_get_the_schema(settings: Settings) -> None:
    """Several commands starting together on a new database: one creates the schema, the others
    wait for it (the schema lock) instead of finding half a schema and refusing it."""
    import threading

    engines = [connect(settings.db_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def first_run(eng: Engine) -> None:
        start.wait()
        try:
            ensure_schema(eng)
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=first_run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with session_scope(engines[0]) as s:
        assert set(repository.row_counts(session=s).values()) == {0}
    for e in engines:
        assert stored_revision(e) == head_revision()
        e.dispose()


def test_a_database_failure_inside_a_transaction_is_one_line_and_saves_nothing(engine: Engine) -> None:
    with pytest.raises(StoreError, match="nothing from this command was saved") as e:
        with session_scope(engine) as s:
            repository.add_clip(*_clip("a" * 64, [1]), session=s, observed_at=T0, min_quality=0.5)
            s.execute(text("SELECT no_such_column FROM clips"))
    assert "\n" not in e.value.message and e.value.exit_code == 5
    with session_scope(engine) as s:
        assert repository.row_counts(session=s)["clips"] == 0
