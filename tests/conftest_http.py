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
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

__all__ = ["SERVED_MTIME", "MediaServer", "media_server"]

SAMPLES = Path(__file__).parent.parent / "samples"
# Served files get this mtime, so the Last-Modified header (which yt-dlp's generic extractor
# turns into `timestamp`) is a known value.
SERVED_MTIME = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


class _QuietHandler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        # /status/403 and friends answer with that HTTP error, to test how failures are reported.
        if self.path.startswith("/status/") and self.path[8:].isdigit():
            self.send_error(int(self.path[8:]))
            return
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
