"""The command line: help with examples, exit codes, JSON shape, and bad input that changes nothing."""

from __future__ import annotations

import json
import re

import click
import pytest

from provenance.cli import cli
from tests.conftest import SAMPLES, ffmpeg

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from all_commands(command, prefix + (name,))


@pytest.mark.parametrize("path,command", list(all_commands(cli)), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_has_help_with_an_example(run, path, command):
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and "provenance " in result.output.split("Example:")[1]


def test_ingest_then_check_json_contract(run, derived):
    assert run("ingest", str(SAMPLES / "bikes.mp4"), "--url", "https://example.org/original-post",
               "--posted-at", "2019-05-01T10:00:00Z", "--quiet").exit_code == 0
    result = run("check", str(derived("bikes_mirrored.mp4")), "--posted-at", "2024-10-19T08:00:00Z", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["schema_version"] == 3
    assert data["page_capture"] == {"status": "not_a_page", "detail": data["page_capture"]["detail"], "capture": None}
    assert isinstance(data["check_id"], int)
    assert data["verdict"] == "reused"
    assert len(data["clip"]["sha256"]) == 64 and data["clip"]["duration_s"] == pytest.approx(10.0, abs=0.1)
    assert data["post"]["posted_at"] == "2024-10-19T08:00:00Z"
    assert {"url", "platform", "post_id", "uploader", "posted_at"} <= set(data["post"])
    assert data["first_seen"]["url"] == "https://example.org/original-post"
    assert data["first_seen"]["posted_at"] == "2019-05-01T10:00:00Z"
    assert ISO_Z.match(data["first_seen"]["observed_at"])
    (match,) = data["matches"]
    assert set(match) >= {"sha256", "similarity", "query_coverage", "reference_coverage", "transforms",
                          "sightings", "segments"}
    assert 0.0 <= match["similarity"] <= 1.0 and match["transforms"] == ["mirrored"]
    assert match["sightings"][0] == {**match["sightings"][0], "url": "https://example.org/original-post",
                                     "posted_at": "2019-05-01T10:00:00Z"}
    seg = match["segments"][0]
    assert set(seg) >= {"query_start_s", "query_end_s", "reference_start_s", "reference_end_s"}


def test_check_without_match_exits_zero_with_a_readable_verdict(run):
    result = run("check", str(SAMPLES / "bikes.mp4"), "--no-record")
    assert result.exit_code == 0
    assert result.output.startswith("NO MATCH")


def test_db_upgrade_reports_the_revision(run):
    result = run("db", "upgrade")
    assert result.exit_code == 0 and "database at" in result.output


def test_bad_posted_at_is_one_clear_line(run):
    result = run("check", str(SAMPLES / "bikes.mp4"), "--posted-at", "yesterday")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "ISO 8601" in result.output


def _truncated(tmp_path, faststart: bool):
    whole = tmp_path / ("faststart.mp4" if faststart else "plain.mp4")
    ffmpeg("-i", str(SAMPLES / "bikes.mp4"), "-c", "copy", *(["-movflags", "+faststart"] if faststart else []),
           str(whole))
    cut = tmp_path / f"truncated_{whole.name}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return cut


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


BAD_FILES = {
    "missing file": (lambda tmp: tmp / "nope.mp4", 2, "no such file"),
    "empty file": (lambda tmp: _file(tmp / "empty.mp4", b""), 4, "empty"),
    "text file named .mp4": (lambda tmp: _file(tmp / "notes.mp4", b"hello, not a video\n"), 4,
                             "not a readable video"),
    "truncated mp4": (lambda tmp: _truncated(tmp, faststart=False), 4, "not a readable video"),
    "truncated faststart mp4": (lambda tmp: _truncated(tmp, faststart=True), 4, "truncated"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
@pytest.mark.parametrize("command", ["check", "ingest"])
def test_bad_files_give_one_line_a_distinct_code_and_change_nothing(run, row_counts, tmp_path, case, command):
    run("ingest", str(SAMPLES / "carphone_pristine.mp4"), "--quiet")
    before = row_counts()
    make, code, words = BAD_FILES[case]
    result = run(command, str(make(tmp_path)))
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    assert row_counts() == before


BAD_URLS = {
    "404": ("missing/page.html", 3, "404"),
    "unsupported URL": ("nothing.html", 2, "unsupported URL"),
}


@pytest.mark.parametrize("case", list(BAD_URLS))
def test_bad_urls_give_one_line_a_distinct_code_and_change_nothing(run, row_counts, media_server, case):
    run("ingest", str(SAMPLES / "carphone_pristine.mp4"), "--quiet")
    before = row_counts()
    path, code, words = BAD_URLS[case]
    result = run("check", media_server.url(path))
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines
    assert row_counts() == before


def test_check_of_a_served_page_records_its_post(run, media_server):
    result = run("check", media_server.url("jsonld.html"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["post"]["url"] == media_server.url("jsonld.html")
    assert data["post"]["posted_at"] == "2019-05-01T10:00:00Z"


def test_untrusted_text_is_escaped_in_terminal_output(run, settings):
    evil = "https://evil.example/\x1b[2J\x1b[31mFAKE VERDICT\nNO MATCH"
    run("ingest", str(SAMPLES / "bikes.mp4"), "--url", evil, "--quiet")
    result = run("check", str(SAMPLES / "bikes.mp4"), "--no-record")
    assert "\x1b" not in result.output
    assert "\nNO MATCH" not in result.output


def test_db_status_shows_revision_counts_and_size_without_the_password(run, settings):
    from provenance.db import connect

    connect(settings.db_url).dispose()  # an empty database (status itself creates none)
    empty = run("db", "status")
    assert empty.exit_code == 0 and "empty database" in empty.output
    assert run("ingest", str(SAMPLES / "carphone_pristine.mp4"), "--url", "https://a.example/1", "--quiet").exit_code == 0
    result = run("db", "status")
    assert result.exit_code == 0, result.output
    fields = dict(re.split(r"\s+", line.strip(), maxsplit=1) for line in result.output.splitlines())
    from provenance.db.engine import HEAD_REVISION

    assert fields["schema"].startswith(f"{HEAD_REVISION} (up to date)")
    assert fields["clips"] == "1" and fields["sightings"] == "1" and fields["checks"] == "0"
    assert int(fields["frames"].replace(",", "")) > 0
    size, unit = fields["size"].split()
    assert unit in ("KB", "MB") and float(size) > 0
    # A password in the URL is never shown.
    from sqlalchemy.engine import make_url

    with_password = make_url(settings.db_url).set(password="s3cret").render_as_string(hide_password=False)
    shown = run("db", "status", "--db", with_password).output
    assert "s3cret" not in shown


def test_db_status_of_an_outdated_schema_is_one_line_naming_the_fix(run, settings):
    from sqlalchemy import text

    from provenance.db import connect

    assert run("db", "upgrade").exit_code == 0
    engine = connect(settings.db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    result = run("db", "status")
    assert result.exit_code == 5
    assert result.output.count("\n") == 1 and "run: provenance db upgrade" in result.output


def test_export_then_import_into_another_database(run, new_database, tmp_path):
    assert run("ingest", str(SAMPLES / "carphone_pristine.mp4"), "--url", "https://a.example/1", "--quiet").exit_code == 0
    out = run("export", str(tmp_path / "lib.jsonl.gz"))
    assert out.exit_code == 0 and out.output.startswith("exported 1 clips, 1 sightings")
    other = new_database("sqlite")
    result = run("import", str(tmp_path / "lib.jsonl.gz"), "--db", other)
    assert result.exit_code == 0 and result.output.startswith("imported 1 clips, 1 sightings"), result.output
    assert run("db", "status", "--db", other).output.split("clips")[1].split()[0] == "1"
    again = run("import", str(tmp_path / "lib.jsonl.gz"), "--db", other)
    assert again.exit_code == 5 and again.output.count("\n") == 1 and "not empty" in again.output
    missing = run("import", str(tmp_path / "nope.jsonl.gz"), "--db", other)
    assert missing.exit_code == 2 and "no such file" in missing.output
