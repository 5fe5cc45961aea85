"""Audits end to end: a real RSS feed on 127.0.0.1 listed by yt-dlp, real clips, a real SQLite library."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from provenance import audit as audit_lib
from provenance import pipeline
from provenance.audit import BACKOFF_MAX_S, AuditOptions, AuditStopped, HostPacer
from provenance.cli import cli
from provenance.db import audits, connect, session_scope
from provenance.db import models as orm
from provenance.errors import InputError
from provenance.listing import ListedPost, list_url, read_url_file
from tests.conftest_http import AuditFeed, MediaServer

FAST = AuditOptions(workers=2, sleep_s=0.0)


def ingest_library(feed: AuditFeed, settings) -> None:  # noqa: ANN001
    for path, url, when in feed.library:
        pipeline.ingest(str(path), settings=settings, post_url=url, posted_at=when)


def outcomes(result) -> dict[str, str]:  # noqa: ANN001
    """url -> reused-self / reused-cross / earliest_known / no_match / failed / pending."""
    out = {}
    for i in result.items:
        if i.state != "done":
            out[i.url] = i.state
        elif i.verdict == "reused":
            out[i.url] = f"reused-{i.reuse}"
        else:
            out[i.url] = i.verdict
    return out


def per_url_counts(settings, urls) -> dict[str, tuple[int, int]]:  # noqa: ANN001
    """url -> (sightings with that URL, checks whose sighting has that URL)."""
    engine = connect(settings.db_url)
    try:
        with session_scope(engine) as s:
            out = {}
            for url in urls:
                sightings = s.scalar(select(func.count()).select_from(orm.Sighting).where(orm.Sighting.url == url))
                checks = s.scalar(select(func.count()).select_from(orm.Check)
                                  .join(orm.Sighting, orm.Sighting.id == orm.Check.sighting_id)
                                  .where(orm.Sighting.url == url))
                out[url] = (sightings, checks)
            return out
    finally:
        engine.dispose()


# --- listing -------------------------------------------------------------------------------------


def test_feed_lists_every_post_with_its_pubdate(audit_feed: AuditFeed) -> None:
    listing = list_url(audit_feed.url)
    assert listing.title == "Someone's posts"
    # Newest first, as the feed lists them; the guid smuggled by yt-dlp is gone from the URL.
    assert [p.url for p in listing.posts] == [p.url for p in reversed(audit_feed.posts)]
    assert [p.posted_at for p in listing.posts] == [p.posted_at for p in reversed(audit_feed.posts)]
    assert listing.posts[0].title == "p10-bunny-again"
    assert list_url(audit_feed.url, limit=3).posts == listing.posts[:3]


def test_url_file_skips_blanks_comments_and_duplicates(tmp_path: Path) -> None:
    f = tmp_path / "posts.txt"
    f.write_text("\ufeff# exported 2024-10-19\n\nhttps://a.example/1\n   https://a.example/2  \n"
                 "# https://a.example/commented\nhttps://a.example/1\n\n", encoding="utf-8")
    listing = read_url_file(f)
    assert listing.posts == (ListedPost("https://a.example/1"), ListedPost("https://a.example/2"))


@pytest.mark.parametrize("text,match", [("", "has no URLs"), ("# only a comment\n", "has no URLs"),
                                        ("https://a.example/1\nnot a url\n", "line 2 is not an http")])
def test_url_file_refuses_bad_content(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "posts.txt"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        read_url_file(f)


def test_x_profile_explains_how_to_export_a_url_list() -> None:
    # Only with --lister yt-dlp: by default gallery-dl lists X profiles (tests/test_gallerylist.py).
    with pytest.raises(InputError, match="gallery-dl") as e:
        list_url("https://x.com/someone/media")
    assert "--urls" in e.value.message and "--lister yt-dlp" in e.value.message and "\n" not in e.value.message


def test_a_single_post_is_not_a_listing(media_server: MediaServer) -> None:
    with pytest.raises(InputError, match="single post"):
        list_url(media_server.url("og.html"))


# --- the audit -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_audit_finds_exactly_the_reused_posts(audit_feed: AuditFeed, settings, row_counts) -> None:
    ingest_library(audit_feed, settings)
    result = audit_lib.audit(audit_feed.url, settings=settings, options=FAST)
    assert result.status == "done" and result.title == "Someone's posts"
    assert outcomes(result) == {p.url: p.expected for p in audit_feed.posts}
    by_url = {i.url: i for i in result.items}
    p = {post.name: post for post in audit_feed.posts}
    # First seen: the account's own earlier post, or the library's older sighting elsewhere.
    assert by_url[p["p05-bunny-mirrored"].url].first_seen.url == p["p01-bunny"].url
    assert "mirrored" in by_url[p["p05-bunny-mirrored"].url].transforms
    assert by_url[p["p10-bunny-again"].url].first_seen.url == p["p01-bunny"].url
    assert by_url[p["p07-carphone-distorted"].url].first_seen.url == p["p02-carphone"].url
    cross = by_url[p["p03-bikes-excerpt"].url].first_seen
    assert cross.url == "https://other.example/bikes-original" and cross.posted_at == datetime(2019, 5, 1, 12, tzinfo=UTC)
    # The post time is the feed's pubDate (the pages' only date is a web server's Last-Modified).
    assert by_url[p["p03-bikes-excerpt"].url].post.posted_at == p["p03-bikes-excerpt"].posted_at
    # Failures keep the error a user would have seen from `provenance check`.
    gone = by_url[p["p06-deleted"].url]
    assert gone.error_code == 3 and "404" in gone.error and gone.attempts == 1
    assert by_url[p["p04-not-a-video"].url].error_code == 4
    # Every checked post joined the library as a check would, once.
    counts = per_url_counts(settings, [post.url for post in audit_feed.posts])
    assert {url: c for url, c in counts.items()} == {
        post.url: (0, 0) if post.expected == "failed" else (1, 1) for post in audit_feed.posts}
    assert row_counts()["checks"] == 8


@pytest.mark.slow
def test_sigkill_mid_audit_then_rerun_checks_each_post_once(audit_feed: AuditFeed, settings, tmp_path) -> None:
    ingest_library(audit_feed, settings)
    env = {**os.environ, "PROVENANCE_DB": settings.db_url, "PROVENANCE_STORE": str(settings.store_dir)}
    # One worker and a pause between posts, so the kill lands mid-audit.
    cmd = [sys.executable, "-m", "provenance.cli", "audit", audit_feed.url, "--workers", "1", "--sleep", "0.7",
           "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    engine = connect(settings.db_url)
    try:
        deadline = time.monotonic() + 120
        finished = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with session_scope(engine) as s:
                    finished = s.scalar(select(func.count()).select_from(orm.AuditItem)
                                        .where(orm.AuditItem.state != "pending")) or 0
            except Exception:  # noqa: BLE001 - the schema may not exist yet
                finished = 0
            if finished >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the audit ended before it could be killed: {proc.stderr.read()!r}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with session_scope(engine) as s:
            states = [st for st in s.scalars(select(orm.AuditItem.state))]
        assert 3 <= sum(st != "pending" for st in states) < len(audit_feed.posts)
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()

    rerun = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    data = json.loads(rerun.stdout)
    assert data["audit_id"] == 1 and data["status"] == "done"  # resumed, not started again
    assert {i["url"]: (f"reused-{i['reuse']}" if i["verdict"] == "reused" else i["verdict"] or i["state"])
            for i in data["items"]} == {p.url: p.expected for p in audit_feed.posts}
    counts = per_url_counts(settings, [p.url for p in audit_feed.posts])
    assert counts == {p.url: (0, 0) if p.expected == "failed" else (1, 1) for p in audit_feed.posts}
    assert all(i["attempts"] == 1 for i in data["items"])


@pytest.mark.slow
def test_rerunning_a_finished_audit_only_with_retry_failed_touches_failures(audit_feed, settings, tmp_path):
    urls = tmp_path / "posts.txt"
    ok, gone = audit_feed.posts[0].url, audit_feed.posts[5].url
    urls.write_text(f"{ok}\n{gone}\n", encoding="utf-8")
    first = audit_lib.audit(settings=settings, urls_file=urls, options=FAST)
    assert outcomes(first) == {ok: "no_match", gone: "failed"}
    again = audit_lib.audit(settings=settings, urls_file=urls, options=AuditOptions(sleep_s=0, retry_failed=True))
    assert again.audit_id == first.audit_id
    item = {i.url: i for i in again.items}
    assert item[gone].attempts == 2 and item[gone].state == "failed"
    assert item[ok].attempts == 1
    assert per_url_counts(settings, [ok]) == {ok: (1, 1)}


@pytest.mark.slow
def test_a_429_rests_the_site_and_the_post_is_checked(media_server: MediaServer, audit_feed, settings, tmp_path,
                                                       caplog):
    caplog.set_level("INFO", logger="provenance.audit")
    urls = tmp_path / "posts.txt"
    post = audit_feed.posts[0]
    # The server answers 429 once per path: the query keeps each backend's run of this test its own.
    flaky = f"{media_server.base}/once429/audit/{post.name}.html?run={tmp_path.name}"
    urls.write_text(flaky + "\n", encoding="utf-8")
    started = time.monotonic()
    result = audit_lib.audit(settings=settings, urls_file=urls, options=AuditOptions(sleep_s=0, backoff_s=0))
    (item,) = result.items
    assert item.state == "done" and item.attempts == 1
    # The server's Retry-After: 1 was read and honoured (the back-off alone would rest 0 s here).
    assert f"HTTP 429 from 127.0.0.1; resting 1 s before {flaky}" in caplog.text
    assert time.monotonic() - started >= 1.0


def test_pacer_spaces_out_one_host_but_not_two() -> None:
    pacer = HostPacer(interval_s=0.2, backoff_s=0)
    started = time.monotonic()
    for _ in range(3):
        pacer.wait("a.example")
    pacer.wait("b.example")
    assert time.monotonic() - started >= 0.4
    assert pacer.rate_limited("a.example", None) == 0
    pacer = HostPacer(interval_s=0, backoff_s=10)
    assert [pacer.rate_limited("a.example", None) for _ in range(3)] == [10, 20, 40]
    assert pacer.rate_limited("a.example", 3.0) == 3.0
    pacer.succeeded("a.example")
    assert pacer.rate_limited("a.example", None) == 10


def test_a_site_cannot_park_the_audit_and_stopping_wakes_waiting_workers() -> None:
    import threading

    pacer = HostPacer(interval_s=0, backoff_s=1)
    # A hostile Retry-After is capped like the back-off.
    assert pacer.rate_limited("a.example", 1e8) == BACKOFF_MAX_S
    outcome: list[BaseException] = []

    def worker() -> None:
        try:
            pacer.wait("a.example")
        except AuditStopped as e:
            outcome.append(e)

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    pacer.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - started < 2
    assert len(outcome) == 1


def test_bad_input_leaves_no_audit(settings, row_counts, tmp_path) -> None:
    with pytest.raises(InputError, match="exactly one"):
        audit_lib.audit(settings=settings)
    with pytest.raises(InputError, match="no such file"):
        audit_lib.audit(settings=settings, urls_file=tmp_path / "missing.txt")
    with pytest.raises(InputError, match="no audit 7"):
        audit_lib.audit(settings=settings, resume=7)
    assert row_counts()["audits"] == 0


# --- the command line ----------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_audit_summary_and_audits_list(run, audit_feed, tmp_path) -> None:
    posts = {p.name: p for p in audit_feed.posts}
    urls = tmp_path / "posts.txt"
    # Newest first, as gallery-dl exports them: undated posts are checked from the end of the list up.
    urls.write_text(f"# three posts\n{posts['p06-deleted'].url}\n\n{posts['p05-bunny-mirrored'].url}\n"
                    f"{posts['p06-deleted'].url}\n{posts['p01-bunny'].url}\n", encoding="utf-8")
    result = run("audit", "--urls", str(urls), "--sleep", "0")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("AUDIT 1 of ") and "3 posts" in lines[0]
    assert "reused 1 (1 self, 0 cross-account)" in lines[1] and "failed 1" in lines[1]
    body = [line for line in lines[3:] if not line.startswith("  " + " " * 24)]
    # Reused first, then no match, then failed, each with its detail line below.
    assert [line.split()[0] for line in body] == ["REUSED", "NO", "FAILED"]
    assert f"first seen {posts['p01-bunny'].url}" in result.stdout and "HTTP 404" in result.stdout
    # Not a terminal: plain progress lines on stderr, one per post after the first.
    progress = result.stderr.splitlines()
    assert progress[0] == "audit 1: 3 posts to check" and len(progress) == 4
    assert sum(line.startswith("audit 1: [") and "failed" in line and "404" in line for line in progress) == 1
    assert run("audit", "--resume", "1", "--quiet").stderr == ""
    listed = run("audits")
    assert listed.exit_code == 0
    assert listed.output.splitlines()[1].split()[:8] == ["1", "done", listed.output.splitlines()[1].split()[2],
                                                         "3", "1", "0", "1", "1"]
    data = json.loads(run("audit", "--resume", "1", "--json", "--quiet").stdout)
    assert data["counts"] == {"posts": 3, "reused": 1, "reused_self": 1, "reused_cross": 0, "earliest_known": 0,
                              "no_match": 1, "failed": 1, "pending": 0}
    assert json.loads(run("audits", "--json").stdout)["audits"][0]["counts"]["posts"] == 3


def test_cli_audit_bad_input_exits_2(run, tmp_path) -> None:
    result = CliRunner().invoke(cli, ["audit"])
    assert result.exit_code == 2 and "exactly one" in result.output
    result = run("audit", "--resume", "1", "--since", "2024-01-01")
    assert result.exit_code == 2 and "--since" in result.output


@pytest.mark.slow
def test_two_runs_of_one_audit_at_once_check_each_post_once(audit_feed: AuditFeed, settings) -> None:
    posts = [p for p in audit_feed.posts if p.expected != "failed"][:4]
    engine = pipeline.open_library(settings)
    with session_scope(engine) as s:
        audit_id = audits.create_audit(session=s, kind="urls", source="two-runs", options={}, key="k" * 64,
                                       title=None, created_at=datetime.now(UTC), tool_version="test",
                                       posts=[(p.url, p.posted_at, None) for p in posts])
    engine.dispose()
    env = {**os.environ, "PROVENANCE_DB": settings.db_url, "PROVENANCE_STORE": str(settings.store_dir)}
    cmd = [sys.executable, "-m", "provenance.cli", "audit", "--resume", str(audit_id), "--workers", "1",
           "--sleep", "0", "--quiet", "--json"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert per_url_counts(settings, [p.url for p in posts]) == {p.url: (1, 1) for p in posts}
    final = json.loads(outs[-1][0])
    assert all(i["state"] == "done" and i["attempts"] == 1 for i in final["items"])


@pytest.mark.slow
def test_since_and_limit_choose_the_posts_and_are_part_of_the_audit(audit_feed: AuditFeed, settings) -> None:
    since = datetime(2023, 12, 1, tzinfo=UTC)
    result = audit_lib.audit(audit_feed.url, settings=settings,
                             options=AuditOptions(since=since, limit=1, sleep_s=0))
    # The feed lists newest first: after --since, --limit keeps the newest.
    assert [i.url for i in result.items] == [audit_feed.posts[-1].url]
    assert result.options == {"since": "2023-12-01T00:00:00+00:00", "limit": 1, "lister": "yt-dlp"}
    other = audit_lib.audit(audit_feed.url, settings=settings,
                            options=AuditOptions(since=datetime(2024, 3, 1, tzinfo=UTC), sleep_s=0))
    assert other.audit_id != result.audit_id and [i.url for i in other.items] == [audit_feed.posts[-1].url]


def test_summary_escapes_text_from_the_internet() -> None:
    from provenance.reporting.audit import audit_summary, audits_table
    from provenance.records import AuditItemResult, AuditResult, AuditSummary, Sighting

    now = datetime(2024, 10, 19, 8, tzinfo=UTC)
    evil = "https://a.example/\x1b[2J\x1b[31mfake\rline"
    first = Sighting(url=evil, platform="Generic", post_id=None, uploader=None, posted_at=now, observed_at=now,
                     sha256="a" * 64)
    item = AuditItemResult(item_id=1, position=0, url=evil, title="t\x1b]0;x\x07", listed_posted_at=now,
                           state="done", attempts=1, error=None, error_code=None, check_id=1, verdict="reused",
                           checked_at=now, post=None, first_seen=first, similarity=0.9, transforms=("mirrored",),
                           match_count=1, reuse="cross")
    failed = replace(item, item_id=2, position=1, state="failed", verdict=None, error="bad \x1b[0m\nthing",
                     first_seen=None, reuse=None)
    result = AuditResult(audit_id=1, kind="listing", source=evil, title="feed\x1b[1m", options={}, status="done",
                         created_at=now, finished_at=now, items=(item, failed))
    text = audit_summary(result) + audits_table([AuditSummary(1, "listing", evil, None, "done", now, now,
                                                              2, 0, 1, 1, 0, 0)])
    assert "\x1b" not in text and "\r" not in text
    assert "REUSED (cross-account)" in text and "FAILED" in text
