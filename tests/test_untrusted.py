"""Hostile and careless input that must not leak or break anything: secrets in yt-dlp's info, NUL
characters, pages pointing at private addresses, markup and terminal escapes in internet text."""

from __future__ import annotations

import hashlib

import gzip
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import String, Text, select, text
from sqlalchemy.types import JSON

from provenance.db import connect, session_scope
from provenance.db import models as orm
from provenance.settings import Settings
from tests.conftest import SAMPLES

COOKIE_VALUE = "s3cr3tSessionValue0123456789"


def _cookies_file(tmp_path: Path) -> Path:
    path = tmp_path / "cookies.txt"
    path.write_text("# Netscape HTTP Cookie File\n"
                    f"127.0.0.1\tFALSE\t/\tFALSE\t0\tauth_token\t{COOKIE_VALUE}\n", encoding="utf-8")
    return path


def _every_text(url: str) -> str:
    """Every text and JSON value of every table, as the database holds it, in one string."""
    engine = connect(url)
    out: list[str] = []
    with session_scope(engine) as s:
        for table in orm.Base.metadata.sorted_tables:
            for column in table.c:
                impl = getattr(column.type, "impl", column.type)
                if isinstance(impl, (String, Text, JSON)):
                    # Read as stored (the JSON's text), not as parsed: nothing hides in a key.
                    rows = s.execute(select(column.cast(Text) if isinstance(impl, JSON) else column))
                    out += [str(v) for v in rows.scalars() if v is not None]
    engine.dispose()
    return "\n".join(out)


# --- 1. session cookies ------------------------------------------------------------------------


def test_cookies_never_reach_the_database_an_export_or_a_report(run, settings: Settings, media_server,
                                                                 tmp_path: Path) -> None:
    cookies = _cookies_file(tmp_path)
    result = run("check", media_server.url("bikes.mp4"), "--cookies", str(cookies), "--quiet")
    assert result.exit_code == 0, result.output
    assert "recorded as check 1" in result.output
    assert COOKIE_VALUE not in result.output  # nor printed (CliRunner mixes stderr in)
    again = run("check", media_server.url("bikes.mp4"), "--cookies", str(cookies), "--json", "--no-record")
    assert again.exit_code == 0 and COOKIE_VALUE not in again.output
    held = _every_text(settings.db_url)
    assert "Generic" in held  # the scan does see the raw info
    assert COOKIE_VALUE not in held

    export = tmp_path / "library.jsonl.gz"
    assert run("export", str(export), "--quiet").exit_code == 0
    assert COOKIE_VALUE not in gzip.decompress(export.read_bytes()).decode()
    for fmt in ("json", "md", "html"):
        report = run("report", "1", "--format", fmt)
        assert report.exit_code == 0
        assert COOKIE_VALUE not in report.output


def test_cookies_given_to_gallery_dl_are_a_copy_never_shown_logged_or_stored(run, settings: Settings, media_server,
                                                                            tmp_path: Path, caplog) -> None:
    caplog.set_level("DEBUG")
    cookies = tmp_path / "cookies.txt"
    text = ("# Netscape HTTP Cookie File\n"
            f".x.com\tTRUE\t/\tTRUE\t0\tauth_token\t{COOKIE_VALUE}\n"
            f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t{COOKIE_VALUE}\n")
    cookies.write_text(text, encoding="utf-8")
    before = cookies.stat().st_mtime_ns
    # gallery-dl's directlink extractor lists the file (loading the cookies into its session), then
    # the audit checks it with yt-dlp and the same cookies.
    result = run("audit", media_server.url("bikes.mp4"), "--lister", "gallery-dl", "--cookies", str(cookies),
                 "--json", "--sleep", "0")
    assert result.exit_code == 0, result.output
    assert '"lister": "gallery-dl"' in result.stdout and '"state": "done"' in result.stdout
    assert COOKIE_VALUE not in result.output  # stdout and stderr
    assert COOKIE_VALUE not in caplog.text  # nor logged, even at DEBUG
    assert COOKIE_VALUE not in _every_text(settings.db_url)
    # gallery-dl may write a cookie jar back: it had a copy, the user's file is as it was.
    assert cookies.read_text(encoding="utf-8") == text and cookies.stat().st_mtime_ns == before


def test_migration_0006_scrubs_cookies_from_stored_info(settings: Settings) -> None:
    from alembic import command

    from provenance.db import upgrade
    from provenance.db.engine import _alembic_config, head_revision

    eng = connect(settings.db_url)
    with eng.begin() as conn:
        cfg = _alembic_config(settings.db_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    when = "2024-05-01 12:00:00"
    clip_cols = {
        "sha256": "a" * 64, "size_bytes": 1, "container": "mp4", "duration_s": 1.0, "has_audio": False,
        "probe": "{}", "sample_fps": 4.0, "hash_algo": "phash64", "content_left": 0.0, "content_top": 0.0,
        "content_right": 1.0, "content_bottom": 1.0, "usable_frames": 0, "first_observed_at": when,
    }
    info = ('{"id": "v", "title": "kept", "cookies": "auth_token=%s; Domain=x.com",'
            ' "http_headers": {"User-Agent": "Mozilla", "Cookie": "auth_token=%s", "Authorization": "Bearer %s"},'
            ' "formats": [{"url": "https://x.example/v.mp4", "cookies": "auth_token=%s"}]}'
            % ((COOKIE_VALUE,) * 4))
    with eng.begin() as conn:
        conn.execute(text(f"INSERT INTO clips (id, {', '.join(clip_cols)}) VALUES (1, :{', :'.join(clip_cols)})"),
                     clip_cols)
        # url_sha256 as the application writes it: 0005 allows one sighting without it per clip.
        conn.execute(text("INSERT INTO sightings (id, clip_id, source, url, url_sha256, observed_at, info)"
                          " VALUES (1, 1, 'check', 'https://x.example/p', :h, :w, :info)"),
                     {"w": when, "info": info, "h": hashlib.sha256(b"https://x.example/p").hexdigest()})
        conn.execute(text("INSERT INTO sightings (id, clip_id, source, observed_at) VALUES (2, 1, 'check', :w)"),
                     {"w": when})
    assert upgrade(settings.db_url) == ("0005", head_revision())
    eng.dispose()
    held = _every_text(settings.db_url)
    assert COOKIE_VALUE not in held
    eng = connect(settings.db_url)
    with session_scope(eng) as s:
        stored = s.scalars(select(orm.Sighting.info).where(orm.Sighting.id == 1)).one()
    eng.dispose()
    assert stored == {"id": "v", "title": "kept", "http_headers": {"User-Agent": "Mozilla"},
                      "formats": [{"url": "https://x.example/v.mp4"}]}


def _raw_library_with(tmp_path: Path, new_database, *, title: str, info: str) -> Path:
    """An export of an SQLite library whose one sighting holds `title` and `info` as written by
    raw SQL (as an older provenance, or another tool, would have left them)."""
    from provenance.db import ensure_schema, export_library

    url = new_database("sqlite")
    eng = connect(url)
    ensure_schema(eng)
    with eng.begin() as conn:
        conn.execute(text(
            "INSERT INTO clips (id, sha256, size_bytes, container, duration_s, has_audio, probe, sample_fps,"
            " hash_algo, content_left, content_top, content_right, content_bottom, usable_frames,"
            " first_observed_at) VALUES (1, :sha, 1, 'mp4', 1.0, 0, '{}', 4.0, 'phash64', 0, 0, 1, 1, 0,"
            " '2024-05-01 12:00:00')"), {"sha": "b" * 64})
        conn.execute(text("INSERT INTO sightings (id, clip_id, source, url, url_sha256, observed_at, title, info)"
                          " VALUES (1, 1, 'check', 'https://x.example/p', :h, '2024-05-01 12:00:00', :t, :info)"),
                     {"h": orm.url_sha256("https://x.example/p"), "t": title, "info": info})
    eng.dispose()
    out = tmp_path / "raw.jsonl.gz"
    export_library(url, out)
    return out


def test_import_scrubs_cookies_an_export_file_still_holds(settings: Settings, new_database, tmp_path: Path) -> None:
    from provenance.db import import_library

    info = '{"title": "t", "formats": [{"cookies": "auth_token=%s"}]}' % COOKIE_VALUE
    export = _raw_library_with(tmp_path, new_database, title="t", info=info)
    assert COOKIE_VALUE in gzip.decompress(export.read_bytes()).decode()  # the file does hold it
    import_library(settings.db_url, export)
    held = _every_text(settings.db_url)
    assert "formats" in held and COOKIE_VALUE not in held


# --- 2. NUL characters -------------------------------------------------------------------------


def _jsonld_page(name: str, content_url: str) -> str:
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title>'
            '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "VideoObject",'
            f' "name": "{name}", "description": "d\\u0000d", "contentUrl": "{content_url}",'
            ' "uploadDate": "2019-05-01T10:00:00Z"}</script></head><body></body></html>')


def test_a_nul_in_a_page_title_is_dropped_not_fatal(run, settings: Settings, media_server) -> None:
    (media_server.root / "nul.html").write_text(
        _jsonld_page("Man\\u0000 on a phone", media_server.url("carphone.mp4")), encoding="utf-8")
    result = run("check", media_server.url("nul.html"), "--quiet")
    assert result.exit_code == 0, result.output
    engine = connect(settings.db_url)
    with session_scope(engine) as s:
        title, description, info = s.execute(select(orm.Sighting.title, orm.Sighting.description,
                                                    orm.Sighting.info)).one()
    engine.dispose()
    assert (title, description) == ("Man on a phone", "dd")
    assert info["title"] == "Man on a phone"


def test_an_sqlite_library_holding_nul_imports_anywhere(settings: Settings, new_database, tmp_path: Path) -> None:
    from provenance.db import import_library

    export = _raw_library_with(tmp_path, new_database, title="a\x00b", info='{"title": "a\\u0000b"}')
    import_library(settings.db_url, export)
    engine = connect(settings.db_url)
    with session_scope(engine) as s:
        assert s.execute(select(orm.Sighting.title, orm.Sighting.info)).one() == ("ab", {"title": "ab"})
    engine.dispose()


# --- 24. a page must not lead the tool to private addresses ------------------------------------


# An OSC window title, an 8-bit OSC hyperlink, an 8-bit CSI screen clear and a bidi override.
EVIL_REASON = "Oops \x1b]0;pwned\x07\x9d8;;http://evil.example/\x9cclick\x9d8;;\x9c\x9b2J"
# Bytes and characters that a terminal obeys rather than shows (tab and newline excepted).
TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class _Recording(SimpleHTTPRequestHandler):
    """Serves a folder and records each path asked; /to/PORT/PATH redirects to 127.0.0.1:PORT/PATH."""

    asked: list[str]

    def do_GET(self) -> None:
        self.asked.append(self.path)
        if self.path.startswith("/reason/"):  # an error whose status text holds escape sequences
            self.send_response(500, EVIL_REASON)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/to/"):
            port, _, rest = self.path[4:].partition("/")
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/{rest}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def _serve(root: Path) -> Iterator[tuple[str, list[str]]]:
    asked: list[str] = []
    handler = type("Handler", (_Recording,), {"asked": asked})
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def internal(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """Another service on this machine (another port), which a page must not reach by itself."""
    root = tmp_path / "internal"
    root.mkdir()
    shutil.copyfile(SAMPLES / "carphone_pristine.mp4", root / "carphone.mp4")
    yield from _serve(root)


@pytest.fixture
def site(tmp_path: Path, internal) -> Iterator[tuple[str, list[str]]]:
    """The site the user names: a page whose JSON-LD contentUrl is on the internal service."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "page.html").write_text(_jsonld_page("Hostile", f"{internal[0]}/carphone.mp4"), encoding="utf-8")
    yield from _serve(root)


def test_a_page_pointing_at_another_local_port_is_refused(run, row_counts, site, internal) -> None:
    result = run("check", f"{site[0]}/page.html")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "--allow-private-urls" in lines[0] and internal[0].removeprefix("http://") in lines[0]
    assert internal[1] == []  # not even asked
    assert not any(row_counts().values())


def test_a_redirect_to_another_local_port_is_refused(run, site, internal) -> None:
    port = internal[0].rsplit(":", 1)[1]
    result = run("check", f"{site[0]}/to/{port}/carphone.mp4")
    assert result.exit_code == 2 and "--allow-private-urls" in result.output
    assert internal[1] == []


def test_allow_private_urls_lets_the_page_lead_there(run, site, internal) -> None:
    result = run("check", f"{site[0]}/page.html", "--allow-private-urls", "--quiet")
    assert result.exit_code == 0, result.output
    assert "/carphone.mp4" in internal[1]


def test_a_local_url_the_user_typed_is_fetched(run, internal) -> None:
    assert run("check", f"{internal[0]}/carphone.mp4", "--quiet").exit_code == 0


def _hls_segment_on(internal_root: Path) -> str:
    """An HLS playlist whose SAMPLE-AES key and segment are on the internal service: yt-dlp cannot fetch
    SAMPLE-AES itself and would hand the stream to ffmpeg, which ignores the guard's proxy."""
    import subprocess

    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(SAMPLES / "carphone_pristine.mp4"), "-an",
                    "-c:v", "libx264", "-f", "mpegts", str(internal_root / "seg0.ts")], check=True)
    return "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:5\n#EXT-X-MEDIA-SEQUENCE:0\n"


@pytest.mark.parametrize("allow", [False, True], ids=["refused", "allowed"])
def test_a_stream_yt_dlp_would_hand_to_ffmpeg_does_not_get_around_the_guard(
        run, row_counts, site, internal, tmp_path, allow) -> None:
    head = _hls_segment_on(tmp_path / "internal")
    (tmp_path / "site" / "s.m3u8").write_text(
        f'{head}#EXT-X-KEY:METHOD=SAMPLE-AES,URI="{internal[0]}/key"\n#EXTINF:4.0,\n{internal[0]}/seg0.ts\n'
        "#EXT-X-ENDLIST\n", encoding="utf-8")
    result = run("check", f"{site[0]}/s.m3u8", "--quiet", *(["--allow-private-urls"] if allow else []))
    if allow:
        assert result.exit_code == 0, result.output
        assert "/seg0.ts" in internal[1]  # proves ffmpeg was the one that fetched (the case guarded)
        return
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "ffmpeg" in lines[0] and "--allow-private-urls" in lines[0]
    assert internal[1] == []
    assert not any(row_counts().values())


def test_an_audit_does_not_follow_a_listing_to_another_local_port(run, site, internal, tmp_path) -> None:
    import json
    from datetime import UTC, datetime

    from tests.conftest_http import rss_feed

    feed = rss_feed("feed", site[0], [("hostile", f"{internal[0]}/carphone.mp4", datetime(2024, 1, 1, tzinfo=UTC))])
    (tmp_path / "site" / "feed.xml").write_text(feed, encoding="utf-8")
    result = run("audit", f"{site[0]}/feed.xml", "--json", "--quiet", "--sleep", "0")
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.output)["items"]
    assert item["outcome"] == "failed" and "--allow-private-urls" in item["error"] and item["error_code"] == 2
    assert internal[1] == []


# --- 5. Markdown injection through URLs --------------------------------------------------------

EVIL_MD_URL = "https://a.example/x|![x](https://evil.example/p.png)|"
EVIL_MD_TEXT_URL = "https://a.example/y|<b>\nnext|![x](https://evil.example/p.png)"


def _table_rows(md: str) -> list[list[str]]:
    """Each table row of `md`, split into cells at the pipes a GFM renderer splits at."""
    return [re.split(r"(?<!\\)\|", line)[1:-1] for line in md.splitlines() if line.startswith("|")]


def _assert_inert(md: str, width: set[int]) -> None:
    rows = _table_rows(md)
    assert rows and {len(r) for r in rows} == width, rows  # every row has its header's cells
    assert "](https://evil" not in md and "![" not in md.replace("\\![", "")
    assert "<b>" not in md and "\nnext" not in md


def test_a_pipe_in_a_post_url_cannot_break_out_of_the_markdown_tables(settings: Settings, derived) -> None:
    from provenance import pipeline, reporting
    from provenance.db import audits
    from tests.test_pipeline import EARLY, LATE

    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url=EVIL_MD_URL, posted_at=EARLY)
    result = pipeline.check(str(derived("bikes_mirrored.mp4")), settings=settings, post_url=EVIL_MD_URL + "2",
                            posted_at=LATE)
    md = reporting.render_check(result.check_id, settings=settings, fmt="md")
    _assert_inert(md, {7, 6})  # the matches table, then the timeline
    assert "%7C" in md  # the URLs are there, their pipes percent-encoded
    engine = connect(settings.db_url)
    with session_scope(engine) as s:
        audit_id = audits.create_audit(session=s, kind="urls", source="posts.txt", options={}, key="k",
                                       title="posts", created_at=LATE, tool_version="test",
                                       posts=[(EVIL_MD_URL, LATE, "a post"), (EVIL_MD_TEXT_URL, LATE, "b")])
    engine.dispose()
    _assert_inert(reporting.render_audit(audit_id, settings=settings, fmt="md"), {6})



# --- 6, 19. terminal escapes and bidi controls -------------------------------------------------


def test_an_error_line_shows_no_escape_sequence_from_the_server(run, internal) -> None:
    result = run("check", f"{internal[0]}/reason/x")
    assert result.exit_code == 3
    assert "/reason/x" in internal[1]  # the server did answer with its status text
    line = result.output.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert not TERMINAL_CONTROLS.search(line), repr(line)


EVIL_TITLE = "\u202eevil\u202c \u001b]0;pwned\u0007 \u009b2J \u001b]52;c;QUJD\u0007"


def test_reports_carry_no_escape_sequence_nor_bidi_control(run, settings: Settings, internal, tmp_path) -> None:
    (tmp_path / "internal" / "t.html").write_text(_jsonld_page(EVIL_TITLE, f"{internal[0]}/carphone.mp4"),
                                                   encoding="utf-8")
    assert run("check", f"{internal[0]}/t.html", "--quiet").exit_code == 0
    for fmt in ("html", "md", "json"):
        printed = run("report", "1", "--format", fmt)
        assert printed.exit_code == 0
        assert "evil" in printed.output
        assert not TERMINAL_CONTROLS.search(printed.output), (fmt, printed.output)
    out = tmp_path / "r.html"
    assert run("report", "1", "-o", str(out)).exit_code == 0
    page = out.read_text(encoding="utf-8")
    assert "\ufffdevil\ufffd" in page  # replaced visibly, as in the terminal and in Markdown
    assert not TERMINAL_CONTROLS.search(page)


# --- 23. a password holding an unescaped @ -----------------------------------------------------


@pytest.mark.parametrize("url,shown", [
    ("postgresql+psycopg://u:p@ss@127.0.0.1:5432/db", "postgresql+psycopg://u:***@127.0.0.1:5432/db"),
    ("postgresql+psycopg://u:p@s@s@127.0.0.1/db", "postgresql+psycopg://u:***@127.0.0.1/db"),
    ("postgresql+psycopg://u:p@ss@127.0.0.1:notaport/db", "postgresql+psycopg://u:***@127.0.0.1:notaport/db"),
    ("postgresql+psycopg://u:secret@127.0.0.1/db", "postgresql+psycopg://u:***@127.0.0.1/db"),
])
def test_no_part_of_a_password_is_shown(url: str, shown: str) -> None:
    from provenance.db import shown_url

    assert shown_url(url) == shown


def test_a_password_with_an_unescaped_at_is_refused_without_showing_it(run) -> None:
    result = run("db", "status", "--db", "postgresql+psycopg://u:p@ss@127.0.0.1:1/x")
    assert result.exit_code == 5
    assert "ss@" not in result.output and "p@" not in result.output  # the driver would name host 'ss@127...'
    assert "%40" in result.output and result.output.count("\n") == 1


# --- 22. the option a message names exists ----------------------------------------------------


@pytest.mark.parametrize("args,option", [
    (("check", str(SAMPLES / "bikes.mp4"), "--report", "r.txt"), "--report-format html|json|md"),
    (("audit", "--urls", "posts.txt", "--report", "r.txt"), "--report-format html|json|md"),
    (("report", "1", "-o", "r.txt"), "--format html|json|md"),
])
def test_a_report_name_without_a_format_names_the_option_of_that_command(run, args, option) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert option in result.output
    if option.startswith("--format"):
        assert "--report-format" not in result.output
    else:
        assert " --format" not in result.output
