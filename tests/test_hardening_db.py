"""Careless and hostile input around the library (issue 11): one line, the right exit code, and the
database (and the folders around it) left as they were."""

from __future__ import annotations

import gzip
import re
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from provenance.db import connect, export_library
from tests.conftest import SAMPLES


def one_line(result, code: int, *words: str) -> str:
    """The result is exactly one 'error:' line, with exit `code`, containing every one of `words`."""
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for word in words:
        assert word in lines[0], lines
    return lines[0]


# --- 14: tracebacks instead of one line --------------------------------------------------------


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
@pytest.mark.parametrize("command", ["check", "ingest", "audit"])
def test_a_time_outside_the_calendar_is_one_line(run, row_counts, tmp_path, command, when):
    before = row_counts()
    if command == "audit":
        urls = tmp_path / "posts.txt"
        urls.write_text("https://example.org/p/1\n")
        result = run("audit", "--urls", str(urls), "--since", when)
    else:
        result = run(command, str(SAMPLES / "carphone_pristine.mp4"), "--posted-at", when)
    one_line(result, 2, when, "ISO 8601")
    assert row_counts() == before


@pytest.mark.parametrize("args", [("report", "99999999999999999999"), ("report", "--audit", "99999999999999999999"),
                                  ("audit", "--resume", "99999999999999999999"), ("report", "4294967296")])
def test_an_id_too_large_for_the_database_is_one_line(run, args):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "range" in result.output


def test_a_database_url_with_a_bad_port_is_one_line(run):
    one_line(run("db", "status", "--db", "postgresql+psycopg://u:s3cret@127.0.0.1:notaport/x"), 5, "notaport")
    assert "s3cret" not in run("db", "status", "--db", "postgresql+psycopg://u:s3cret@127.0.0.1:notaport/x").output


@pytest.mark.parametrize("command", [("db", "status"), ("db", "upgrade"), ("audits",), ("report", "1")])
def test_two_schema_versions_in_alembic_version_is_one_line(run, settings, command):
    assert run("db", "upgrade").exit_code == 0
    engine = connect(settings.db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0002')"))
    engine.dispose()
    one_line(run(*command), 5, "alembic_version")


def _export_with(tmp_path: Path, settings, change) -> Path:
    """An export of a one-clip library with `change(table, row)` applied to its rows."""
    assert run_ok(settings)
    good = tmp_path / "good.jsonl.gz"
    export_library(settings.db_url, good)
    out, table = [], None
    for line in gzip.open(good).read().splitlines():
        value = json.loads(line)
        if isinstance(value, dict) and "table" in value:
            table = value["table"]
        elif isinstance(value, list):
            change(table, value)
        out.append(json.dumps(value).encode())
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress(b"\n".join(out) + b"\n"))
    return bad


def run_ok(settings) -> bool:
    from provenance import pipeline

    pipeline.ingest(str(SAMPLES / "carphone_pristine.mp4"), settings=settings, post_url="https://a.example/1")
    return True


def _big_size(table: str, row: list) -> None:
    if table == "clips":
        row[2] = 2**70  # size_bytes


def _naive_time(table: str, row: list) -> None:
    if table == "clips":
        row[-1] = row[-1].replace("+00:00", "")  # first_observed_at without its zone


@pytest.mark.parametrize("change,words", [(_big_size, ("clips", "size_bytes")),
                                          (_naive_time, ("clips", "first_observed_at", "time zone"))])
def test_an_import_value_the_column_cannot_hold_is_one_line_exit_2(run, settings, new_database, tmp_path,
                                                                     backend, change, words):
    bad = _export_with(tmp_path, settings, change)
    target = new_database(backend)
    line = one_line(run("import", str(bad), "--db", target), 2, str(bad), *words)
    assert "SQL" not in line and len(line) < 400
    status = run("db", "status", "--db", target)
    assert status.exit_code in (0, 5)
    assert "clips" not in status.output or status.output.split("clips")[1].split()[0] == "0"


# --- 20: foreign databases modified ------------------------------------------------------------


def _tables(url: str) -> list[str]:
    from sqlalchemy import inspect

    engine = connect(url)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("command", [("db", "upgrade"), ("check", str(SAMPLES / "carphone_pristine.mp4")),
                                     ("audits",)])
def test_a_database_of_another_application_is_refused_and_left_alone(run, settings, command):
    engine = connect(settings.db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)"))
        conn.execute(text("INSERT INTO invoices (id, total) VALUES (1, 42)"))
    engine.dispose()
    shown = settings.db_url.split("/")[-1]
    one_line(run(*command), 5, "not a provenance library", shown, "invoices")
    assert _tables(settings.db_url) == ["invoices"]


def test_a_failed_import_into_a_new_sqlite_path_leaves_nothing_behind(run, settings, tmp_path):
    bad = _export_with(tmp_path, settings, _big_size)
    target = tmp_path / "new" / "deeper" / "library.db"
    one_line(run("import", str(bad), "--db", f"sqlite:///{target}"), 2)
    assert not (tmp_path / "new").exists()


@pytest.mark.postgresql
def test_a_failed_import_into_an_empty_postgresql_database_leaves_it_empty(run, settings, new_database, tmp_path):
    bad = _export_with(tmp_path, settings, _big_size)
    target = new_database("postgresql")
    one_line(run("import", str(bad), "--db", target), 2)
    assert _tables(target) == []


# --- 15: db status only reads ------------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file below `folder` with its mtime, size and bytes: what "nothing was written" means."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.sqlite
def test_db_status_of_a_missing_sqlite_file_is_one_line_and_creates_nothing(tmp_path):
    from click.testing import CliRunner

    from provenance.cli import cli

    target = tmp_path / "nowhere" / "library.db"
    result = CliRunner().invoke(cli, ["db", "status", "--db", f"sqlite:///{target}"], catch_exceptions=False)
    one_line(result, 5, "no database", str(target), "provenance db upgrade")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.sqlite
def test_db_status_of_a_closed_library_writes_no_file(tmp_path):
    from click.testing import CliRunner

    from provenance.cli import cli

    url = f"sqlite:///{tmp_path / 'lib' / 'library.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade", "--db", url]).exit_code == 0
    before = _snapshot(tmp_path)
    result = runner.invoke(cli, ["db", "status", "--db", url], catch_exceptions=False)
    assert result.exit_code == 0 and "clips" in result.output, result.output
    assert _snapshot(tmp_path) == before


@pytest.mark.sqlite
def test_db_status_sees_what_an_open_writer_has_committed(tmp_path):
    """While another process has the library open (its -wal file holds fresh commits), status reads
    through the WAL like any reader, so it shows those rows, and writes nothing to the database."""
    from click.testing import CliRunner

    from provenance.cli import cli

    url = f"sqlite:///{tmp_path / 'library.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade", "--db", url]).exit_code == 0
    writer = connect(url)
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO audits (kind, source, options, key, status, created_at, tool_version) "
                          "VALUES ('urls', 'x', '{}', 'k', 'done', '2024-01-01 00:00:00', 't')"))
    db_bytes = (tmp_path / "library.db").read_bytes()
    try:
        result = runner.invoke(cli, ["db", "status", "--db", url], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert re.search(r"audits\s+1\b", result.output), result.output
        assert (tmp_path / "library.db").read_bytes() == db_bytes
    finally:
        writer.dispose()


@pytest.mark.sqlite
def test_db_status_works_in_a_read_only_folder(tmp_path):
    """A real read-only folder: a read-only bind mount in a private mount namespace (tests run as
    root, and root ignores file modes, so chmod would prove nothing)."""
    import shutil
    import subprocess
    import sys

    from click.testing import CliRunner

    from provenance.cli import cli

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("needs unshare -m (a private mount namespace) for a read-only bind mount")
    folder = tmp_path / "shared"
    url = f"sqlite:///{folder / 'library.db'}"
    assert CliRunner().invoke(cli, ["db", "upgrade", "--db", url]).exit_code == 0
    before = _snapshot(folder)
    script = (f"mount --bind -o ro {folder} {folder} && touch {folder}/probe 2>/dev/null && exit 99; "
              f"exec {sys.executable} -m provenance.cli db status --db {url}")
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "clips" in result.stdout and "error" not in result.stderr
    assert _snapshot(folder) == before


# --- 16: evidence files follow the umask; an unreadable one is a permission problem --------------


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_evidence_files_follow_the_umask(tmp_path, umask, mode):
    import os
    import stat

    from provenance.fetch import fetch

    old = os.umask(umask)
    try:
        media = fetch(str(SAMPLES / "carphone_pristine.mp4"), store_dir=tmp_path / "evidence")
    finally:
        os.umask(old)
    assert stat.S_IMODE(media.path.stat().st_mode) == mode


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_an_export_follows_the_umask(settings, tmp_path, umask, mode):
    """An export holds no secrets and is made to be handed on: not always 0600."""
    import os
    import stat

    old = os.umask(umask)
    try:
        export_library(settings.db_url, tmp_path / "lib.provenance.gz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "lib.provenance.gz").stat().st_mode) == mode
    assert list(tmp_path.glob(".*.part")) == []


def test_an_evidence_file_the_user_cannot_read_is_a_permission_error_naming_it():
    """A colleague's evidence file that this user may not read: exit 2 naming the file and the fix,
    not "not a readable video" (exit 4). Run as another user (nobody): root reads any file."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    from provenance.fetch import fetch

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the command as another user")
    shared = Path(tempfile.mkdtemp(prefix="provenance-shared-"))  # /tmp: pytest's tmp_path is root's only
    try:
        old = os.umask(0o077)
        try:
            stored = fetch(str(SAMPLES / "carphone_pristine.mp4"), store_dir=shared / "evidence").path
        finally:
            os.umask(old)
        stored.chmod(0o600)  # whatever this provenance makes: a file of root's that nobody cannot read
        for folder in (shared, shared / "evidence", stored.parent):
            folder.chmod(0o755)
        (shared / "home").mkdir()
        os.chown(shared / "home", 65534, 65534)
        env = {"PATH": os.environ["PATH"], "PROVENANCE_HOME": str(shared / "home"),
               "PROVENANCE_STORE": str(shared / "evidence")}
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "provenance.cli",
             "check", str(SAMPLES / "carphone_pristine.mp4"), "--no-record"],
            capture_output=True, text=True, env=env, cwd=shared, timeout=300)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(stored) in lines[0] and "permission" in lines[0].lower(), lines
        assert "chmod" in lines[0]
    finally:
        shutil.rmtree(shared)


# --- 17: a relative PROVENANCE_HOME / PROVENANCE_STORE -------------------------------------------


@pytest.mark.sqlite
@pytest.mark.parametrize("variable", ["PROVENANCE_HOME", "PROVENANCE_STORE"])
def test_relative_home_or_store_stores_absolute_paths_reports_work_from_elsewhere(tmp_path, monkeypatch,
                                                                                   derived, variable):
    from click.testing import CliRunner

    from provenance.cli import cli

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    monkeypatch.delenv("PROVENANCE_DB", raising=False)
    monkeypatch.setenv("PROVENANCE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(variable, "lib")  # relative to the folder the command runs in
    monkeypatch.chdir(work)
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(SAMPLES / "bikes.mp4"), "--quiet"]).exit_code == 0
    checked = runner.invoke(cli, ["check", str(derived("bikes_mirrored.mp4")), "--json"], catch_exceptions=False)
    data = json.loads(checked.output)
    assert Path(data["clip"]["evidence_path"]).is_absolute()
    # The same library from another folder: give it by its absolute place, as a colleague would.
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv(variable, str(work / "lib"))
    report = runner.invoke(cli, ["report", str(data["check_id"]), "--format", "json"], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    assert "hashed again from its evidence file" in report.output  # a mirrored pair, drawn from the files
    assert "is gone" not in report.output and "cannot be read" not in report.output


# --- 18: one sighting per clip without a post URL too ------------------------------------------


def test_re_ingesting_a_file_adds_no_sighting_and_says_so(run, row_counts):
    path = str(SAMPLES / "carphone_pristine.mp4")
    assert run("ingest", path).output.startswith("added:")
    again = run("ingest", path, "--posted-at", "2019-05-01T10:00:00Z")
    assert again.exit_code == 0, again.output
    assert "new sighting added" not in again.output and "already recorded" in again.output
    checked = run("check", path, "--json")
    assert checked.exit_code == 0, checked.output
    # The same file with no post, met again: the same fact, not an earlier post it reuses.
    assert json.loads(checked.output)["verdict"] == "earliest_known"
    counts = row_counts()
    assert (counts["clips"], counts["sightings"], counts["checks"]) == (1, 1, 1)


def test_the_database_holds_one_sighting_without_url_per_clip(settings, row_counts):
    """Enforced by the database (a unique index), so concurrent processes cannot both add one."""
    from sqlalchemy.exc import IntegrityError

    run_ok(settings)  # one clip, with a URL
    engine = connect(settings.db_url)
    insert = text("INSERT INTO sightings (clip_id, source, observed_at) VALUES (1, 'ingest', '2024-01-01 00:00:00')")
    try:
        with engine.begin() as conn:
            conn.execute(insert)
        with pytest.raises(IntegrityError):
            with engine.begin() as conn:
                conn.execute(insert)
    finally:
        engine.dispose()
    assert row_counts()["sightings"] == 2


def test_migration_merges_sightings_without_url(settings):
    from alembic import command

    from provenance.db import upgrade
    from provenance.db.engine import HEAD_REVISION, _alembic_config

    engine = connect(settings.db_url)
    with engine.begin() as conn:
        cfg = _alembic_config(settings.db_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    when = "2024-05-01 12:00:00"
    clip = {"size_bytes": 1, "container": "mp4", "duration_s": 1.0, "has_audio": False, "probe": "{}",
            "sample_fps": 4.0, "hash_algo": "phash64", "content_left": 0.0, "content_top": 0.0, "content_right": 1.0,
            "content_bottom": 1.0, "usable_frames": 0, "first_observed_at": when}
    with engine.begin() as conn:
        for cid in (1, 2):
            conn.execute(text(f"INSERT INTO clips (id, sha256, {', '.join(clip)}) VALUES (:i, :s, :{', :'.join(clip)})"),
                         {"i": cid, "s": str(cid) * 64, **clip})
        # Clip 1: three URL-less sightings (the second knows the post time) and one with a URL;
        # clip 2: one URL-less sighting.
        for sid, cid, url, posted in [(1, 1, None, None), (2, 1, None, "2019-01-01 00:00:00"), (3, 1, "https://a", None),
                                      (4, 1, None, "2020-01-01 00:00:00"), (5, 2, None, None)]:
            conn.execute(text("INSERT INTO sightings (id, clip_id, source, url, url_sha256, posted_at, observed_at) "
                              "VALUES (:i, :c, 'ingest', :u, :h, :p, :w)"),
                         {"i": sid, "c": cid, "u": url, "h": url and "a" * 64, "p": posted, "w": when})
        conn.execute(text("INSERT INTO checks (id, clip_id, sighting_id, first_seen_sighting_id, created_at, verdict, "
                          "params, tool_version) VALUES (1, 1, 4, 2, :w, 'reused', '{}', '0')"), {"w": when})
    engine.dispose()
    assert upgrade(settings.db_url) == ("0003", HEAD_REVISION)
    engine = connect(settings.db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, clip_id, url, posted_at FROM sightings ORDER BY id")).all()
        assert [(r[0], r[1], r[2]) for r in rows] == [(1, 1, None), (3, 1, "https://a"), (5, 2, None)]
        assert str(rows[0][3]).startswith("2019-01-01")  # filled in from the first duplicate that knew it
        assert conn.execute(text("SELECT sighting_id, first_seen_sighting_id FROM checks")).one() == (1, 1)
    engine.dispose()


@pytest.mark.slow
def test_concurrent_folder_ingests_store_one_sighting_per_clip(settings, derived, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    from sqlalchemy import func, select

    from provenance.db import models as orm
    from provenance.db import session_scope

    folder = tmp_path / "archive"
    folder.mkdir()
    shutil.copy(SAMPLES / "carphone_pristine.mp4", folder)
    shutil.copy(derived("bikes_excerpt_5s_to_9s.mp4"), folder)
    env = {**os.environ, "PROVENANCE_DB": settings.db_url, "PROVENANCE_STORE": str(settings.store_dir)}
    procs = [subprocess.Popen([sys.executable, "-m", "provenance.cli", "ingest", str(folder), "--workers", "1",
                               "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    engine = connect(settings.db_url)
    with session_scope(engine) as s:
        clips = s.scalar(select(func.count()).select_from(orm.Clip))
        sightings = s.scalar(select(func.count()).select_from(orm.Sighting))
    engine.dispose()
    assert (clips, sightings) == (2, 2)


# --- 21: the library size a check searched ------------------------------------------------------


def test_library_size_counts_the_clip_itself_when_it_was_already_known(run):
    path = str(SAMPLES / "carphone_pristine.mp4")
    assert run("ingest", path, "--url", "https://a.example/first", "--posted-at", "2019-05-01T10:00:00Z",
               "--quiet").exit_code == 0
    checked = json.loads(run("check", path, "--url", "https://b.example/again", "--json").output)
    assert checked["verdict"] == "reused" and checked["matches"][0]["sha256"] == checked["clip"]["sha256"]
    assert checked["params"]["library_clips"] == 1  # the very clip it matched was in the library
    report = run("report", str(checked["check_id"]), "--format", "md")
    assert "0 clips" not in report.output and re.search(r"\b1 clips?\b", report.output)
    # A clip new to the library does not count itself.
    fresh = json.loads(run("check", str(SAMPLES / "bikes.mp4"), "--json").output)
    assert fresh["verdict"] == "no_match" and fresh["params"]["library_clips"] == 1


def _tables_added_after(revision: str, tmp_path: Path) -> set[str]:
    """The tables of today's schema that a library at `revision` does not have."""
    from alembic import command
    from sqlalchemy import inspect

    from provenance.db import models as orm
    from provenance.db.engine import _alembic_config

    url = f"sqlite:///{tmp_path / f'at-{revision}.db'}"
    engine = connect(url)
    with engine.begin() as conn:
        cfg = _alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    then = set(inspect(engine).get_table_names())
    engine.dispose()
    return {t.name for t in orm.Base.metadata.sorted_tables} - then


def test_an_export_from_before_0004_with_duplicate_sightings_imports_merged(run, settings, new_database, tmp_path,
                                                                           backend):
    """A library exported by an older provenance holds the duplicates its migration merges: the
    import loads it at its own schema revision, then runs the later migrations on its rows."""
    from provenance import pipeline

    pipeline.ingest(str(SAMPLES / "carphone_pristine.mp4"), settings=settings)  # a sighting without URL
    good = tmp_path / "good.jsonl.gz"
    export_library(settings.db_url, good)
    out, table = [], None
    # What 0004 and later added (motion profiles, how matches were made, same-scene hints, and every
    # table of a later migration) is not in a 0003 file; this library has no checks or matches, so
    # only the header's columns and the newer tables' rows go.
    added_by_0004 = {"matches": {"method", "confidence", "region"}, "checks": {"scenes"}}
    newer = _tables_added_after("0003", tmp_path)
    assert "clip_motion" in newer and "clips" not in newer
    for line in gzip.open(good).read().splitlines():
        value = json.loads(line)
        if isinstance(value, dict) and value.get("format"):
            value["schema_revision"] = "0003"
            for name in newer:
                value["tables"].pop(name, None)
            for name, columns in added_by_0004.items():
                value["tables"][name] = [c for c in value["tables"][name] if c not in columns]
        if isinstance(value, dict) and "end" in value:
            value["end"]["sightings"] += 1
            for name in newer:
                value["end"].pop(name, None)
        if isinstance(value, dict) and "table" in value:
            table = value["table"]
        if table in newer:
            continue
        out.append(json.dumps(value).encode())
        if table == "sightings" and isinstance(value, list):
            out.append(json.dumps([2, *value[1:]]).encode())  # the same file ingested again, as 0003 kept it
    old = tmp_path / "old.jsonl.gz"
    old.write_bytes(gzip.compress(b"\n".join(out) + b"\n"))
    target = new_database(backend)
    result = run("import", str(old), "--db", target)
    assert result.exit_code == 0, result.output
    status = run("db", "status", "--db", target).output
    assert re.search(r"sightings\s+1\b", status), status
