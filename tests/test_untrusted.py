"""Hostile and careless input that must not leak or break anything: secrets in yt-dlp's info, NUL
characters, pages pointing at private addresses, markup and terminal escapes in internet text."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import String, Text, select, text
from sqlalchemy.types import JSON

from provenance.db import connect, session_scope
from provenance.db import models as orm
from provenance.settings import Settings

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


def test_migration_0005_scrubs_cookies_from_stored_info(settings: Settings) -> None:
    from alembic import command

    from provenance.db import upgrade
    from provenance.db.engine import _alembic_config, head_revision

    eng = connect(settings.db_url)
    with eng.begin() as conn:
        cfg = _alembic_config(settings.db_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
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
        conn.execute(text("INSERT INTO sightings (id, clip_id, source, url, observed_at, info)"
                          " VALUES (1, 1, 'check', 'https://x.example/p', :w, :info)"), {"w": when, "info": info})
        conn.execute(text("INSERT INTO sightings (id, clip_id, source, observed_at) VALUES (2, 1, 'check', :w)"),
                     {"w": when})
    assert upgrade(settings.db_url) == ("0004", head_revision())
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
