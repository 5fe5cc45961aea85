"""gallery-dl as a lister: real gallery-dl against pages on the loopback interface, and its X
extractor's own message format run on recorded X API data (no network)."""

from __future__ import annotations

import errno
import functools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from provenance import audit as audit_lib
from provenance import gallerylist
from provenance.audit import AuditOptions
from provenance.db import connect, session_scope
from provenance.db import models as orm
from provenance.errors import FetchError, InputError
from provenance.gallerylist import choose_lister, list_gallery
from provenance.snowflake import snowflake_time
from tests.conftest_http import AuditFeed, MediaServer, _QuietHandler, _QuietServer
from tests.test_audit import ingest_library, per_url_counts

# --- a site on port 80 --------------------------------------------------------------------------
# gallery-dl's generic extractor reads a URL's host as [-\w.]+ and drops a port, so the pages it
# lists are served on port 80 of an address of their own in 127.0.0.0/8 (loopback: no network).


class _SiteHandler(_QuietHandler):
    # /go/PORT/PATH redirects to http://127.0.0.1:PORT/PATH: a listing that sends gallery-dl elsewhere.
    def do_GET(self) -> None:
        if self.path.startswith("/go/"):
            port, _, rest = self.path[4:].partition("/")
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/{rest}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


@dataclass(frozen=True)
class Site:
    host: str
    root: Path

    def url(self, path: str) -> str:
        return f"http://{self.host}/{path.lstrip('/')}"


@pytest.fixture(scope="session")
def site(media_server: MediaServer) -> Iterator[Site]:
    """The media server's files, also served at http://127.0.0.N/ (port 80)."""
    handler = functools.partial(_SiteHandler, directory=str(media_server.root))
    server = None
    for _ in range(20):
        host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        try:
            server = _QuietServer((host, 80), handler)
            break
        except PermissionError:
            pytest.skip("binding port 80 needs root or net.ipv4.ip_unprivileged_port_start=0")
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
    assert server is not None, "no free address in 127.0.0.0/8 for port 80"
    thread = threading.Thread(target=server.serve_forever, name="gallery_site", daemon=True)
    thread.start()
    try:
        yield Site(host=host, root=media_server.root)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _gallery_page(title: str, links: list[str]) -> str:
    body = "".join(f'<p><video src="{link}"></video></p>\n' for link in links)
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head><body>\n'
            f'<img src="/logo.png">\n{body}</body></html>\n')


@pytest.fixture(scope="session")
def gallery(site: Site, audit_feed: AuditFeed) -> tuple[str, dict[str, str]]:
    """/audit/gallery.html: the feed's ten posts as links to their clips, newest first, plus an
    image; returns its URL and each post's name -> clip URL."""
    clips = {p.name: site.url(f"/audit/{p.name}.mp4") for p in audit_feed.posts}
    links = [f"/audit/{p.name}.mp4" for p in reversed(audit_feed.posts)]
    (site.root / "audit" / "gallery.html").write_text(_gallery_page("Someone's gallery", links), encoding="utf-8")
    return site.url("/audit/gallery.html"), clips


# --- listing --------------------------------------------------------------------------------------


def test_choosing_the_lister() -> None:
    assert choose_lister("https://x.com/someone") == "gallery-dl"
    assert choose_lister("https://twitter.com/someone/media") == "gallery-dl"
    assert choose_lister("https://x.com/search?q=flood&f=live") == "gallery-dl"
    assert choose_lister("https://x.com/i/lists/784214683683127296") == "gallery-dl"
    assert choose_lister("https://x.com/someone/status/1849467182254236339") == "yt-dlp"
    assert choose_lister("https://www.youtube.com/@someone/videos") == "yt-dlp"
    assert choose_lister("generic:https://example.org/page.html") == "gallery-dl"


def test_gallery_dl_lists_the_videos_of_a_page(gallery, audit_feed: AuditFeed) -> None:
    url, clips = gallery
    listing = list_gallery(url)
    assert listing.title == "Someone's gallery"
    # Newest first as the page lists them; the image is not a post with a video.
    assert [p.url for p in listing.posts] == [clips[p.name] for p in reversed(audit_feed.posts)]
    assert all(p.post_id is None and p.posted_at is None for p in listing.posts)
    assert list_gallery(url, limit=3).posts == listing.posts[:3]
    # Nothing of gallery-dl's is left in its global configuration after a call.
    from gallery_dl import config
    assert config._config == {}


def test_a_listing_429_rests_as_retry_after_asks(site: Site, gallery, caplog, tmp_path) -> None:
    caplog.set_level("INFO", logger="provenance.listing")
    # The server answers 429 (Retry-After: 1) once per path: the query keeps each run its own.
    flaky = site.url(f"/once429/audit/gallery.html?run={tmp_path.name}")
    started = time.monotonic()
    listing = list_gallery(flaky, backoff_s=0)
    assert len(listing.posts) == 10
    # The back-off alone would rest 0 s here: the 1 s is the site's Retry-After.
    assert f"HTTP 429 from {site.host} while listing; resting 1 s" in caplog.text
    assert time.monotonic() - started >= 1.0


def test_a_listing_redirected_to_another_local_port_is_refused(site: Site, media_server: MediaServer,
                                                               gallery) -> None:
    elsewhere = site.url(f"/go/{media_server.port}/audit/gallery.html")
    with pytest.raises(InputError, match="--allow-private-urls") as e:
        list_gallery(elsewhere)
    assert f"127.0.0.1:{media_server.port}" in e.value.message
    assert len(list_gallery(elsewhere, allow_private=True).posts) == 10


def test_a_missing_page_or_a_site_it_cannot_list_is_one_line(site: Site, gallery) -> None:
    with pytest.raises(FetchError, match="not found") as e:
        list_gallery(site.url("/status/404"))
    assert e.value.exit_code == 3
    # A page with nothing in it is how a login wall looks on X: one line, exit 3, no empty audit.
    with pytest.raises(FetchError, match="found nothing at all") as e:
        list_gallery(site.url("/nothing.html"))
    assert "--cookies" in e.value.message and e.value.exit_code == 3
    with pytest.raises(InputError, match="cookies file not found"):
        list_gallery(site.url("/audit/gallery.html"), cookies=Path("/nonexistent/cookies.txt"))


# --- X: gallery-dl's own twitter extractor on recorded API data ------------------------------------
# Tweets as X's GraphQL API returns them in a UserMedia timeline (the fields gallery-dl's
# extractor/twitter.py reads), fed to gallery-dl's real TwitterMediaExtractor in place of its
# network calls; what it yields is exactly what it yields for https://x.com/someone/media.

_USER = {
    "__typename": "User", "rest_id": "44196397",
    "core": {"created_at": "Tue Jun 02 20:12:29 +0000 2009", "name": "Some One", "screen_name": "someone"},
    "legacy": {"description": "Posts videos.", "entities": {"description": {"urls": []}}, "favourites_count": 10,
               "followers_count": 1200, "friends_count": 300, "listed_count": 4, "media_count": 77,
               "statuses_count": 900, "profile_banner_url": "https://pbs.twimg.com/profile_banners/44196397/1"},
    "location": {"location": "Somewhere"}, "verification": {"verified": False}, "privacy": {"protected": False},
    "avatar": {"image_url": "https://pbs.twimg.com/profile_images/1/abc_normal.jpg"},
}
_OTHER = {**_USER, "rest_id": "783214",
          "core": {"created_at": "Tue Feb 20 14:35:54 +0000 2007", "name": "Original", "screen_name": "original"}}


def _video(media_id: str, kind: str = "ext_tw_video", **extra: object) -> dict:
    path = f"{kind}/{media_id}/pu" if kind == "ext_tw_video" else f"{kind}/{media_id}"
    return {
        "id_str": media_id, "media_key": f"7_{media_id}", "type": "video",
        "media_url_https": f"https://pbs.twimg.com/{kind}_thumb/{media_id}/img/thumb.jpg",
        "original_info": {"width": 1280, "height": 720}, "ext_media_availability": {"status": "Available"},
        "video_info": {"aspect_ratio": [16, 9], "duration_millis": 28033, "variants": [
            {"content_type": "application/x-mpegURL",
             "url": f"https://video.twimg.com/{path}/pl/playlist.m3u8?tag=12"},
            {"bitrate": 832000, "content_type": "video/mp4",
             "url": f"https://video.twimg.com/{path}/vid/avc1/640x360/low.mp4?tag=12"},
            {"bitrate": 2176000, "content_type": "video/mp4",
             "url": f"https://video.twimg.com/{path}/vid/avc1/1280x720/high.mp4?tag=12"}]},
        **extra,
    }


def _photo(media_id: str) -> dict:
    return {"id_str": media_id, "media_key": f"3_{media_id}", "type": "photo",
            "media_url_https": f"https://pbs.twimg.com/media/G{media_id[-6:]}.jpg",
            "original_info": {"width": 1200, "height": 800}}


def _gif(media_id: str) -> dict:
    return {"id_str": media_id, "media_key": f"16_{media_id}", "type": "animated_gif",
            "media_url_https": f"https://pbs.twimg.com/tweet_video_thumb/GaBcD{media_id[-4:]}.jpg",
            "original_info": {"width": 480, "height": 270},
            "video_info": {"aspect_ratio": [16, 9], "variants": [
                {"bitrate": 0, "content_type": "video/mp4", "url": "https://video.twimg.com/tweet_video/GaBcD.mp4"}]}}


def _tweet(tweet_id: str, text: str, media: list[dict], created_at: str, user: dict = _USER,
           **legacy: object) -> dict:
    return {
        "__typename": "Tweet", "rest_id": tweet_id, "core": {"user_results": {"result": user}},
        "views": {"count": "4242", "state": "EnabledWithCount"},
        "source": '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>',
        "legacy": {"id_str": tweet_id, "created_at": created_at, "conversation_id_str": tweet_id,
                   "full_text": f"{text} https://t.co/AbCdEf1234", "lang": "en", "user_id_str": user["rest_id"],
                   "entities": {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []},
                   "extended_entities": {"media": media}, "favorite_count": 12, "quote_count": 1,
                   "reply_count": 3, "retweet_count": 5, "bookmark_count": 0, "possibly_sensitive": False,
                   **legacy},
    }


# The ids are real snowflakes: each decodes to the time written next to it.
TWEETS = [
    # A video posted 2024-10-24 15:05:12.345Z, uploaded 92 s before.
    _tweet("1849467182254236339", "Flooding on the bridge this morning",
           [_video("1849466795354751937")], "Thu Oct 24 15:05:12 +0000 2024"),
    # Photos only: not a post with a video.
    _tweet("1849737665180598293", "Two photos", [_photo("1849737600000000001"), _photo("1849737600000000002")],
           "Fri Oct 25 09:00:00 +0000 2024"),
    # A video first posted by @original on 2024-10-02 (X names its source post), re-posted here on 10-26.
    _tweet("1850133064781398023", "Look at this", [_video(
        "1841546209391542319", "amplify_video", source_status_id_str="1841546209391542400",
        additional_media_info={"source_user": {"user_results": {"result": _OTHER}}})],
        "Sat Oct 26 11:11:11 +0000 2024"),
    # A retweet of someone else's video: not the account's post (gallery-dl skips it by default).
    _tweet("1850447339320246281", "RT", [_video("1850447213491126289")], "Sun Oct 27 08:00:00 +0000 2024",
           retweeted_status_id_str="1850447255434166290"),
    # An animated GIF (an MP4 on X, without a media id in its URL) and a post with two videos (one post).
    _tweet("1850447255434166290", "Loop", [_gif("1850447213491126289")], "Sun Oct 27 07:59:40 +0000 2024"),
    _tweet("1850447213491126289", "Two angles", [_video("1850447000000000001"), _video("1850447000000000002")],
           "Sun Oct 27 07:59:30 +0000 2024"),
]


def _recorded_media_extractor(tweets: list[dict]):  # noqa: ANN202
    from gallery_dl.extractor import twitter

    class Recorded(twitter.TwitterMediaExtractor):
        def tweets(self):  # noqa: ANN202 - gallery-dl's signature
            return iter(tweets)  # a list, or a generator standing for a timeline's pages

    return Recorded.from_url("https://x.com/someone/media")


def test_x_media_tab_as_gallery_dl_lists_it() -> None:
    listing = gallerylist.collect(_recorded_media_extractor(TWEETS))
    assert [p.url for p in listing.posts] == [
        "https://x.com/someone/status/1849467182254236339", "https://x.com/someone/status/1850133064781398023",
        "https://x.com/someone/status/1850447255434166290", "https://x.com/someone/status/1850447213491126289"]
    first, reposted, gif, two = listing.posts
    assert listing.title == "Some One (@someone)"
    assert (first.post_id, first.author, first.media_id) == ("1849467182254236339", "someone", "1849466795354751937")
    # Both snowflakes decoded to the millisecond, as `check` decodes them.
    assert first.posted_at == datetime(2024, 10, 24, 15, 5, 12, 345000, tzinfo=UTC)
    assert first.media_posted_at == datetime(2024, 10, 24, 15, 3, 40, 101000, tzinfo=UTC)
    assert first.title == "Flooding on the bridge this morning"  # the t.co link to the media is dropped
    assert reposted.media_id == "1841546209391542319" and reposted.source_post_id == "1841546209391542400"
    assert reposted.media_posted_at == snowflake_time("1841546209391542319") == datetime(
        2024, 10, 2, 18, 30, 5, 250000, tzinfo=UTC)
    assert reposted.posted_at - reposted.media_posted_at > (datetime(2024, 10, 26) - datetime(2024, 10, 3))
    assert gif.media_id is None and gif.posted_at == snowflake_time("1850447255434166290")
    assert two.media_id == "1850447000000000001"
    assert gallerylist.collect(_recorded_media_extractor(TWEETS), limit=2).posts == listing.posts[:2]


def test_x_profile_url_follows_gallery_dl_to_its_timeline(monkeypatch) -> None:
    """https://x.com/someone is gallery-dl's user extractor, which queues the account's timeline."""
    from gallery_dl.extractor import twitter

    # Only the timeline's network call is replaced, by the recorded tweets; the rest is gallery-dl's.
    monkeypatch.setattr(twitter.TwitterTimelineExtractor, "tweets", lambda self: iter(TWEETS))
    listing = list_gallery("https://x.com/someone")
    assert listing.title == "Some One (@someone)"
    assert [p.post_id for p in listing.posts] == ["1849467182254236339", "1850133064781398023",
                                                  "1850447255434166290", "1850447213491126289"]


def test_x_listing_stops_once_past_since() -> None:
    """A timeline lists newest first: past --since, gallery-dl is not asked for the rest of it."""
    from provenance.snowflake import TWITTER_EPOCH_MS

    def tweet_on(day: int) -> dict:
        when = datetime(2024, 10, day, 12, tzinfo=UTC)
        tweet_id = str((int(when.timestamp() * 1000) - TWITTER_EPOCH_MS) << 22)
        return _tweet(tweet_id, f"day {day}", [_video(str(int(tweet_id) - (5 << 22)))],
                      when.strftime("%a %b %d %H:%M:%S +0000 %Y"))

    def timeline():  # noqa: ANN202
        yield from (tweet_on(day) for day in range(28, 1, -1))  # Oct 28 down to Oct 2
        raise AssertionError("listed past --since")

    listing = gallerylist.collect(_recorded_media_extractor(timeline()), since=datetime(2024, 10, 20, tzinfo=UTC))
    assert [p.title for p in listing.posts] == [f"day {d}" for d in range(28, 19, -1)]


def test_x_login_wall_and_suspended_account_are_one_line_exit_3() -> None:
    from gallery_dl import exception

    protected = gallerylist.classify_gallerydl_error(
        exception.AuthorizationError("someone's Tweets are protected"), "https://x.com/someone")
    assert isinstance(protected, FetchError) and protected.exit_code == 3
    assert "protected" in protected.message and "--cookies" in protected.message
    login = gallerylist.classify_gallerydl_error(exception.AuthRequired("'auth_token' cookie"), "https://x.com/a")
    assert login.exit_code == 3 and "--cookies" in login.message
    suspended = gallerylist.classify_gallerydl_error(exception.NotFoundError("user"), "https://x.com/gone")
    assert suspended.exit_code == 3 and "suspended" in suspended.message and "\n" not in suspended.message


def test_cli_x_login_wall_is_one_line_exit_3(run, monkeypatch) -> None:
    from gallery_dl import exception
    from gallery_dl.extractor import twitter

    def walled(self):  # noqa: ANN001, ANN202 - what gallery-dl raises for a protected account
        raise exception.AuthorizationError("someone's Tweets are protected")
        yield

    # X itself is never reached: the extractor's network call is replaced by the error it raises.
    monkeypatch.setattr(twitter.TwitterMediaExtractor, "tweets", walled)
    result = run("audit", "https://x.com/someone/media", "--quiet")
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "protected" in lines[0]
    assert "Traceback" not in result.output


# --- the audit, end to end -------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_audit_lists_with_gallery_dl_and_says_so(run, gallery, audit_feed: AuditFeed, tmp_path) -> None:
    url, clips = gallery
    result = run("audit", url, "--lister", "gallery-dl", "--limit", "2", "--sleep", "0")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("AUDIT 1 of ") and first.endswith("2 posts, listed by gallery-dl")
    data = json.loads(run("audit", "--resume", "1", "--json", "--quiet").stdout)
    assert data["lister"] == "gallery-dl" and data["options"]["lister"] == "gallery-dl"
    newest = [p.name for p in reversed(audit_feed.posts)][:2]
    assert {i["url"] for i in data["items"]} == {clips[n] for n in newest}
    # The same listing is the same audit: --retry-failed finds it, finished as it is.
    again = json.loads(run("audit", url, "--lister", "gallery-dl", "--limit", "2", "--retry-failed", "--json",
                           "--quiet").stdout)
    assert again["audit_id"] == 1
    bad = run("audit", "--urls", str(tmp_path / "x.txt"), "--lister", "gallery-dl")
    assert bad.exit_code == 2 and "--lister" in bad.output


@pytest.mark.slow
def test_audit_points_elsewhere_on_loopback_only_with_allow_private_urls(run, site: Site,
                                                                        media_server: MediaServer) -> None:
    page = site.root / "elsewhere.html"
    page.write_text(_gallery_page("Elsewhere", [media_server.url("bikes.mp4")]), encoding="utf-8")
    data = json.loads(run("audit", site.url("elsewhere.html"), "--lister", "gallery-dl", "--json", "--quiet",
                          "--sleep", "0").stdout)
    (item,) = data["items"]
    assert item["outcome"] == "failed" and item["error_code"] == 2
    assert "--allow-private-urls" in item["error"] and f"127.0.0.1:{media_server.port}" in item["error"]
    allowed = json.loads(run("audit", site.url("elsewhere.html"), "--lister", "gallery-dl", "--json", "--quiet",
                             "--sleep", "0", "--retry-failed", "--allow-private-urls").stdout)
    assert allowed["items"][0]["state"] == "done"


@pytest.mark.slow
def test_sigkill_mid_gallery_dl_audit_then_rerun_checks_each_post_once(gallery, audit_feed: AuditFeed,
                                                                      settings) -> None:
    url, clips = gallery
    ingest_library(audit_feed, settings)
    env = {**os.environ, "PROVENANCE_DB": settings.db_url, "PROVENANCE_STORE": str(settings.store_dir)}
    cmd = [sys.executable, "-m", "provenance.cli", "audit", url, "--lister", "gallery-dl", "--workers", "1",
           "--sleep", "0.7", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    engine = connect(settings.db_url)
    try:
        deadline = time.monotonic() + 120
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
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()

    rerun = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    data = json.loads(rerun.stdout)
    assert data["audit_id"] == 1 and data["status"] == "done" and data["lister"] == "gallery-dl"
    # The page lists newest first and dates nothing, so it is checked from its end up: oldest first,
    # as with the feed. But undated (a web server's Last-Modified is no post time), the account's
    # carphone clip cannot be shown to predate the library's dated 2025 repost: both of its posts
    # are reuses of that repost, where the feed's pubDates made the first the earliest known.
    expected = {clips[p.name]: p.expected for p in audit_feed.posts}
    expected |= {clips["p02-carphone"]: "reused-cross", clips["p07-carphone-distorted"]: "reused-cross"}
    got = {i["url"]: (f"reused-{i['reuse']}" if i["verdict"] == "reused" else i["verdict"] or i["state"])
           for i in data["items"]}
    assert got == expected
    assert per_url_counts(settings, list(clips.values())) == {
        clips[p.name]: (0, 0) if p.expected == "failed" else (1, 1) for p in audit_feed.posts}
    assert all(i["attempts"] == 1 for i in data["items"])


def test_audit_options_refuse_a_lister_without_a_url(settings, tmp_path) -> None:
    with pytest.raises(InputError, match="--lister"):
        audit_lib.audit(settings=settings, resume=1, options=AuditOptions(lister="gallery-dl"))
    with pytest.raises(InputError, match="--lister must be one of"):
        audit_lib.audit("https://x.com/someone", settings=settings, options=AuditOptions(lister="wget"))

