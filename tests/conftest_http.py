"""A real HTTP server on 127.0.0.1 serving sample videos and pages, for fetch tests.

Loaded as a pytest plugin (``pytest_plugins = ["tests.conftest_http"]``). Everything stays on
the loopback interface so the tests never depend on, or reach, the internet.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

__all__ = ["SERVED_MTIME", "AuditFeed", "FeedPost", "MediaServer", "audit_feed", "media_server", "rss_feed",
           "video_page"]

SAMPLES = Path(__file__).parent.parent / "samples"
# Served files get this mtime, so the Last-Modified header (which yt-dlp's generic extractor
# turns into `timestamp`) is a known value.
SERVED_MTIME = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


class _QuietHandler(SimpleHTTPRequestHandler):
    # /once429/PATH answers 429 (Retry-After: 1) the first time it is asked for, then serves PATH.
    _asked: set[str] = set()
    _asked_lock = threading.Lock()

    def do_GET(self) -> None:
        # /status/403 and friends answer with that HTTP error, to test how failures are reported.
        if self.path.startswith("/status/") and self.path[8:].isdigit():
            self.send_error(int(self.path[8:]))
            return
        if self.path.startswith("/once429/"):
            with self._asked_lock:
                first = self.path not in self._asked
                self._asked.add(self.path)
            if first:
                self.send_response(429)
                self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.path = self.path[len("/once429"):]
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # keep pytest output clean


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # yt-dlp hangs up once it has sniffed the first bytes of a file: not worth a traceback.
        pass


@dataclass(frozen=True)
class MediaServer:
    root: Path
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"


def _og_page(base: str) -> str:
    return f"""<!DOCTYPE html>
<html><head>
<meta charset="utf-8">
<title>Page title, not the og one</title>
<meta property="og:title" content="Bikes on the bridge">
<meta property="og:description" content="A short clip of cyclists.">
<meta property="og:type" content="video.other">
<meta property="og:video" content="{base}/bikes.mp4">
<meta property="og:video:type" content="video/mp4">
</head><body><p>Bikes.</p></body></html>
"""


def _jsonld_page(base: str) -> str:
    return f"""<!DOCTYPE html>
<html><head>
<meta charset="utf-8">
<title>Car phone</title>
<script type="application/ld+json">
{{
  "@context": "https://schema.org",
  "@type": "VideoObject",
  "name": "Man on a car phone",
  "description": "Test clip for JSON-LD extraction.",
  "contentUrl": "{base}/carphone.mp4",
  "uploadDate": "2019-05-01T10:00:00Z",
  "duration": "PT4S",
  "author": {{"@type": "Person", "name": "Jane Reporter"}}
}}
</script>
</head><body><p>A video.</p></body></html>
"""


_NOTHING = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>No video here</title></head>
<body><p>Just text, nothing to download.</p></body></html>
"""


def _make_hls(src: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(src),
         # A keyframe every 2 s (25 fps) so the playlist really has several segments.
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac",
         "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
         str(out_dir / "index.m3u8")],
        check=True, capture_output=True, timeout=120,
    )


@pytest.fixture(scope="session")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    root = tmp_path_factory.mktemp("www")
    shutil.copyfile(SAMPLES / "bikes.mp4", root / "bikes.mp4")
    shutil.copyfile(SAMPLES / "carphone_pristine.mp4", root / "carphone.mp4")
    (root / "nothing.html").write_text(_NOTHING, encoding="utf-8")
    _make_hls(SAMPLES / "bikes.mp4", root / "hls")

    handler = functools.partial(_QuietHandler, directory=str(root))
    server = _QuietServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    # The pages name absolute URLs, so they can only be written once the port is known.
    base = f"http://127.0.0.1:{port}"
    (root / "og.html").write_text(_og_page(base), encoding="utf-8")
    (root / "jsonld.html").write_text(_jsonld_page(base), encoding="utf-8")
    for served in root.rglob("*"):
        os.utime(served, (SERVED_MTIME.timestamp(), SERVED_MTIME.timestamp()))

    thread = threading.Thread(target=server.serve_forever, name="media_server", daemon=True)
    thread.start()
    try:
        yield MediaServer(root=root, port=port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- an account's feed, for audits --------------------------------------------------------------


def video_page(title: str, video_url: str) -> str:
    """A post page as many sites make them: the video named in og:video (escaped by the caller)."""
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<meta property="og:title" content="{title}">
<meta property="og:type" content="video.other">
<meta property="og:video" content="{video_url}">
<meta property="og:video:type" content="video/mp4">
</head><body><p>{title}</p></body></html>
"""


def rss_feed(title: str, link: str, items: list[tuple[str, str, datetime]]) -> str:
    """An RSS 2.0 feed of (title, link, pubDate) items, in the given order (newest first, as feeds are)."""
    body = "".join(
        f"""  <item><title>{t}</title><link>{url}</link><guid isPermaLink="true">{url}</guid>
    <pubDate>{format_datetime(when, usegmt=True)}</pubDate></item>
"""
        for t, url, when in items)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{title}</title><link>{link}</link><description>Posts</description>
{body}</channel></rss>
"""


@dataclass(frozen=True)
class FeedPost:
    name: str
    url: str  # the post page (or a missing one)
    posted_at: datetime
    expected: str  # reused-self, reused-cross, earliest_known, no_match, failed


@dataclass(frozen=True)
class AuditFeed:
    url: str
    posts: tuple[FeedPost, ...]  # oldest first
    # Footage already in the library, posted by others: (clip path, post URL, posted_at).
    library: tuple[tuple[Path, str, datetime], ...]

    def expected(self, outcome: str) -> set[str]:
        return {p.url for p in self.posts if p.expected == outcome}


def _d(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 12, 0, tzinfo=timezone.utc)


# name -> (ffmpeg args without output, pubDate, what the audit must find). Short, small clips built
# from the real samples: bbb = samples/bigbuckbunny.mp4, bikes and carphone likewise.
_FEED_POSTS: list[tuple[str, list[str] | None, datetime, str]] = [
    ("p01-bunny", ["-i", str(SAMPLES / "bigbuckbunny.mp4"), "-vf", "scale=480:270", "-c:v", "libx264",
                   "-crf", "26", "-an"], _d(2020, 1, 10), "no_match"),
    ("p02-carphone", ["-i", str(SAMPLES / "carphone_pristine.mp4"), "-c:v", "libx264", "-crf", "20", "-an"],
     _d(2020, 6, 10), "earliest_known"),
    ("p03-bikes-excerpt", ["-ss", "5", "-i", str(SAMPLES / "bikes.mp4"), "-t", "4", "-vf", "scale=360:-2",
                           "-c:v", "libx264", "-crf", "28", "-an"], _d(2021, 3, 1), "reused-cross"),
    ("p04-not-a-video", None, _d(2021, 9, 1), "failed"),
    ("p05-bunny-mirrored", ["-i", str(SAMPLES / "bigbuckbunny.mp4"), "-vf", "hflip,scale=360:-2",
                            "-c:v", "libx264", "-crf", "28", "-an"], _d(2022, 2, 1), "reused-self"),
    ("p06-deleted", None, _d(2022, 8, 1), "failed"),
    ("p07-carphone-distorted", ["-i", str(SAMPLES / "carphone_distorted.mp4"), "-c:v", "libx264", "-an"],
     _d(2023, 1, 1), "reused-self"),
    ("p08-testcard", ["-f", "lavfi", "-i", "testsrc2=s=320x240:d=4:r=25", "-c:v", "libx264", "-an"],
     _d(2023, 6, 1), "no_match"),
    ("p09-bikes-letterboxed", ["-i", str(SAMPLES / "bikes.mp4"), "-t", "5", "-vf",
                               "pad=640:480:(ow-iw)/2:(oh-ih)/2:black", "-c:v", "libx264", "-crf", "28", "-an"],
     _d(2024, 1, 1), "reused-cross"),
    ("p10-bunny-again", [], _d(2024, 6, 1), "reused-self"),  # the same file as p01, posted again
]


@pytest.fixture(scope="session")
def audit_feed(media_server: MediaServer) -> AuditFeed:
    """/audit/feed.xml: an account's RSS 2.0 feed of 10 posts (each a page with its clip), newest
    first. Three reuse the account's own earlier footage, two footage known from elsewhere, one is
    the earliest appearance of footage reposted elsewhere later, two match nothing, one page is
    gone (404) and one post's file is not a video."""
    root = media_server.root / "audit"
    root.mkdir(exist_ok=True)
    items, posts = [], []
    for name, args, when, expected in _FEED_POSTS:
        page = f"{media_server.base}/audit/{name}.html"
        if name == "p06-deleted":
            pass  # no page: 404
        else:
            clip = root / f"{name}.mp4"
            if name == "p04-not-a-video":
                clip.write_text("This is a text file with a video's name.\n" * 50, encoding="utf-8")
            elif name == "p10-bunny-again":
                shutil.copyfile(root / "p01-bunny.mp4", clip)
            else:
                subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args, str(clip)], check=True,
                               capture_output=True, timeout=120)
            (root / f"{name}.html").write_text(video_page(name, f"{media_server.base}/audit/{name}.mp4"),
                                               encoding="utf-8")
            # Served as published then: Last-Modified is the only date a page like this carries.
            for served in (clip, root / f"{name}.html"):
                os.utime(served, (when.timestamp(), when.timestamp()))
        items.append((name, page, when))
        posts.append(FeedPost(name=name, url=page, posted_at=when, expected=expected))
    (root / "feed.xml").write_text(rss_feed("Someone's posts", f"{media_server.base}/audit/",
                                            list(reversed(items))), encoding="utf-8")
    # Known footage posted elsewhere: bikes long before the account, carphone re-encoded long after.
    later_copy = root / "library-carphone-repost.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(SAMPLES / "carphone_pristine.mp4"),
                    "-vf", "scale=352:288", "-c:v", "libx264", "-crf", "30", "-an", str(later_copy)],
                   check=True, capture_output=True, timeout=120)
    library = ((SAMPLES / "bikes.mp4", "https://other.example/bikes-original", _d(2019, 5, 1)),
               (later_copy, "https://other.example/carphone-repost", _d(2025, 1, 1)))
    return AuditFeed(url=f"{media_server.base}/audit/feed.xml", posts=tuple(posts), library=library)
