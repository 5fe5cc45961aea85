"""The post's page captured with the real headless Chromium (Debian's, through Playwright) from a real
page on 127.0.0.1: the screenshot is a PNG of the page, the WARC holds the page's response, a hostile
title is inert in every report, the bundle carries both files and `verify` finds a changed byte."""

from __future__ import annotations

import functools
import gzip
import html
import json
import threading
import time
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest

from provenance import capture
from provenance.reporting import jsonout
from tests.conftest_http import video_page
from tests.test_report import chromium_path

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script> "quoted" & \u202eevil'
MARKER = "capture-marker-4417"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The storage of captures runs on both backends in the first test; the others are about the browser.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture(autouse=True)
def _chromium() -> None:
    chromium_path()  # skipped without Chromium (fails under CI)


def _page(media_server, name: str, title: str, extra: str = "") -> str:
    """A post page on the local server: a coloured block, a marker text, the video in og:video."""
    body = video_page(html.escape(title), media_server.url("bikes.mp4")).replace(
        "</body>", f'<div style="width:600px;height:1500px;background:#c03020">{MARKER}</div>{extra}</body>')
    (media_server.root / name).write_text(body, encoding="utf-8")
    return media_server.url(name)


def _records(warc: Path) -> list[tuple[str, str, bytes]]:
    from warcio.archiveiterator import ArchiveIterator

    with warc.open("rb") as f:
        return [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI") or "", r.content_stream().read())
                for r in ArchiveIterator(f)]


def _valid_check_json(data: dict) -> None:
    """`check --json` validates against the published check.v3 schema; check.v2 stays published as it was."""
    schema = jsonout.schema("check.v3.schema.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(data)
    assert data["schema_version"] == 3
    assert jsonout.schema("check.v2.schema.json")["properties"]["schema_version"] == {"const": 2}


def _report(run, check_id: int, fmt: str, tmp_path: Path) -> str:
    out = tmp_path / f"report-{check_id}.{fmt}"
    assert run("report", str(check_id), "-o", str(out)).exit_code == 0
    return out.read_text(encoding="utf-8")


def test_a_checked_post_page_is_captured_reported_bundled_and_verified(run, settings, media_server, tmp_path) -> None:
    url = _page(media_server, f"post-{settings.db_url[:6]}.html", HOSTILE)
    result = run("check", url, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    checked = json.loads(result.stdout)
    check_id = checked["check_id"]

    data = json.loads(_report(run, check_id, "json", tmp_path))
    jsonschema.Draft202012Validator(jsonout.schema(), format_checker=jsonschema.FormatChecker()).validate(data)
    (page,) = data["page_captures"]
    # check --json (schema version 3) carries the same capture, in the report's shape.
    _valid_check_json(checked)
    assert checked["page_capture"] == {"status": "captured", "detail": "", "capture": page}
    assert page["url"] == url and page["http_status"] == 200 and page["title"] == HOSTILE
    shot, warc = Path(page["screenshot"]["path"]), Path(page["web_archive"]["path"])
    assert shot.parent.parent == settings.store_dir and shot.name == page["screenshot"]["sha256"] + ".png"

    # The screenshot is a PNG of the whole page: 1280 wide, taller than the window, the red block in it.
    assert shot.read_bytes()[:8] == PNG_SIGNATURE
    picture = cv2.imread(str(shot))
    assert picture.shape[1] == capture.VIEWPORT["width"] and picture.shape[0] >= 1500
    b, g, r = picture[400, 100]
    assert r > 150 and g < 90 and b < 90

    # The WARC holds the page's own response, body and all, and its request.
    records = _records(warc)
    bodies = [body for kind, target, body in records if kind == "response" and target == url]
    assert len(bodies) == 1 and MARKER.encode() in bodies[0]
    assert ("request", url) in {(kind, target) for kind, target, _ in records}

    # The hostile title is inert in every report.
    page_html = _report(run, check_id, "html", tmp_path)
    assert "<script>alert(2)" not in page_html and "<img src=x" not in page_html
    assert "&lt;script&gt;alert(2)" in page_html
    markdown = _report(run, check_id, "md", tmp_path)
    section = markdown.split("## The post's page, as captured", 1)[1].split("\n## ", 1)[0]
    assert "Title: &lt;img src=x" in section and "<script>" not in markdown and "\u202e" not in markdown

    # The bundle carries both files; verify finds one changed byte in the screenshot.
    bundle = tmp_path / "case.zip"
    assert run("bundle", str(check_id), "-o", str(bundle)).exit_code == 0
    names = zipfile.ZipFile(bundle).namelist()
    assert f"case-{check_id}/data/page/{shot.name}" in names and f"case-{check_id}/data/page/{warc.name}" in names
    assert run("verify", str(check_id)).exit_code == 0
    raw = bytearray(shot.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    shot.write_bytes(bytes(raw))
    result = run("verify", str(check_id))
    assert result.exit_code == 6
    bad = [line for line in result.output.splitlines() if shot.name in line]
    assert bad and "changed" in bad[0]


@SQLITE_ONLY
def test_no_capture_records_none(run, settings, media_server, tmp_path) -> None:
    url = _page(media_server, "no-capture.html", "A post")
    result = run("check", url, "--no-capture", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    checked = json.loads(result.stdout)
    assert json.loads(_report(run, checked["check_id"], "json", tmp_path))["page_captures"] == []
    _valid_check_json(checked)
    assert checked["page_capture"] == {"status": "off", "detail": "not asked for (--no-capture)", "capture": None}
    assert sorted(p.suffix for p in settings.store_dir.rglob("*") if p.is_file()) == [".mp4"]


@SQLITE_ONLY
def test_without_chromium_it_is_skipped_with_one_line(run, settings, media_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(capture.CHROMIUM_ENV, str(tmp_path / "no-such-chromium"))
    result = run("check", _page(media_server, "no-chromium.html", "A post"), "--quiet", "--json")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "page not captured" in line]
    assert len(notes) == 1 and "no Chromium" in notes[0] and "--no-capture" in notes[0]
    checked = json.loads(result.stdout)
    _valid_check_json(checked)
    assert checked["page_capture"]["status"] == "failed" and checked["page_capture"]["capture"] is None
    assert "no Chromium" in checked["page_capture"]["detail"]


@SQLITE_ONLY
def test_a_bare_media_url_gets_no_capture(run, settings, media_server, tmp_path) -> None:
    result = run("check", media_server.url("bikes.mp4"), "--json", "--quiet")
    assert result.exit_code == 0, result.output
    assert "page not captured" not in result.stderr
    checked = json.loads(result.stdout)
    _valid_check_json(checked)
    assert checked["page_capture"]["status"] == "not_a_page"
    assert sorted(p.suffix for p in settings.store_dir.rglob("*") if p.is_file()) == [".mp4"]


class _Counting(SimpleHTTPRequestHandler):
    asked: list[str] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def test_the_page_cannot_reach_another_private_address(media_server, tmp_path) -> None:
    """The page may load from the host and port the user named; a request it makes to any other
    loopback port is refused (netguard's rule), and passes with --allow-private-urls."""
    (tmp_path / "inside.png").write_bytes(PNG_SIGNATURE)
    other = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Counting, directory=str(tmp_path)))
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        inside = f"http://127.0.0.1:{other.server_address[1]}/inside.png"
        url = _page(media_server, "reaches-inside.html", "A post", extra=f'<img src="{inside}">')
        for allow_private in (False, True):
            _Counting.asked.clear()
            with capture.beside(url, store_dir=tmp_path / f"store-{allow_private}", cookies=None,
                                allow_private=allow_private) as capturing:
                outcome = capturing.result()
            assert outcome.capture is not None, outcome.note
            if allow_private:
                assert "/inside.png" in _Counting.asked and outcome.capture.refused == ()
            else:
                assert _Counting.asked == []
                assert outcome.capture.refused == (f"127.0.0.1:{other.server_address[1]}",)
            targets = {t for kind, t, _ in _records(outcome.capture.archive.path) if kind == "response"}
            assert (inside in targets) == allow_private
    finally:
        other.shutdown()
        other.server_close()


def test_only_the_given_cookies_go_and_none_is_archived(media_server, tmp_path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n"
                       f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tsecret-{MARKER}\n", encoding="utf-8")
    url = _page(media_server, "cookies.html", "A post", extra="<script>document.title = document.cookie</script>")
    with capture.beside(url, store_dir=tmp_path / "store", cookies=cookies, allow_private=False) as capturing:
        outcome = capturing.result()
    assert outcome.capture is not None, outcome.note
    assert outcome.capture.title == f"session=secret-{MARKER}"  # the page saw the cookie given, and only it
    with gzip.open(outcome.capture.archive.path, "rb") as f:
        warc = f.read()
    assert b"secret-" + MARKER.encode() not in warc  # the Cookie header is not kept


@SQLITE_ONLY
def test_with_a_tsa_both_capture_files_are_timestamped_and_verified(run, settings, media_server, tsa, tmp_path) -> None:
    result = run("check", _page(media_server, "stamped.html", "A post"), "--tsa", tsa.url, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    check_id = json.loads(result.stdout)["check_id"]
    result = run("verify", str(check_id), "--tsa-ca", str(tsa.ca))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for subject, suffix in (("screenshot", ".png"), ("web_archive", ".warc.gz")):
        (line,) = [x for x in lines if subject in x]
        assert line.startswith("ok") and line.split(":")[0].endswith(suffix) and "timestamped" in line
    bundle = tmp_path / "case"
    assert run("bundle", str(check_id), "-o", str(bundle)).exit_code == 0
    tokens = sorted(p.name for p in (bundle / "data" / "timestamps" / "page").iterdir())
    assert len(tokens) == 2 and all(t.endswith(".1.tsr") for t in tokens)
    assert run("verify", str(bundle), "--tsa-ca", str(tsa.ca)).exit_code == 0


class _Stalling(SimpleHTTPRequestHandler):
    """/stalled.mp4 is a video that never finishes loading: its headers promise 50 MB, then a few bytes
    come every 0.2 s (as a slow or live stream does) until the browser hangs up."""

    def do_GET(self) -> None:
        if self.path == "/slow.png":  # an image of the page that takes its time
            time.sleep(1.5)
        if self.path != "/stalled.mp4":
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(50_000_000))
        self.end_headers()
        end = time.monotonic() + 120
        try:
            while time.monotonic() < end:
                self.wfile.write(b"\0" * 512)
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the browser closed

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def stalling_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Stalling, directory=str(root)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_video_that_never_finishes_loading_does_not_hold_the_capture(stalling_server, tmp_path) -> None:
    """The page's <video> streams for as long as the page is open: the capture settles without it,
    reads no body that is still loading, and keeps the video's response with its headers only."""
    root, base = stalling_server
    (root / "post.html").write_text(
        f'<!DOCTYPE html><html><head><title>A post</title></head><body><p>{MARKER}</p>'
        f'<video src="{base}/stalled.mp4" width="640"></video></body></html>', encoding="utf-8")
    url = f"{base}/post.html"
    timeout_s = capture.CAPTURE_TIMEOUT_S
    started = time.monotonic()
    with capture.beside(url, store_dir=tmp_path / "store", cookies=None, allow_private=False,
                        timeout_s=timeout_s) as capturing:
        outcome = capturing.result()
    took = time.monotonic() - started
    assert outcome.capture is not None, outcome.note
    # Before, the load event never came and the capture ran out its time limit (then its grace period).
    assert took < timeout_s, took
    from warcio.archiveiterator import ArchiveIterator

    with outcome.capture.archive.path.open("rb") as f:
        kept = {r.rec_headers.get_header("WARC-Target-URI"): (r.rec_headers.get_header("WARC-Truncated"),
                                                               r.content_stream().read())
                for r in ArchiveIterator(f) if r.rec_type == "response"}
    assert kept[f"{base}/stalled.mp4"] == ("unspecified", b"")
    truncated, body = kept[url]
    assert truncated is None and MARKER.encode() in body


def test_the_page_s_own_slow_parts_are_waited_for(stalling_server, tmp_path) -> None:
    """Beside a video that never finishes loading, an image that comes 1.5 s late is in the screenshot."""
    root, base = stalling_server
    ok, png = cv2.imencode(".png", np.full((400, 400, 3), (40, 40, 200), dtype=np.uint8))  # red, in BGR
    (root / "slow.png").write_bytes(png.tobytes())
    (root / "post.html").write_text(
        f'<!DOCTYPE html><html><head><title>A post</title></head><body style="margin:0">'
        f'<img src="{base}/slow.png" width="400" height="400"><video src="{base}/stalled.mp4"></video>'
        '</body></html>', encoding="utf-8")
    with capture.beside(f"{base}/post.html", store_dir=tmp_path / "store", cookies=None,
                        allow_private=False) as capturing:
        outcome = capturing.result()
    assert outcome.capture is not None, outcome.note
    b, g, r = cv2.imread(str(outcome.capture.screenshot.path))[200, 200]
    assert r > 150 and g < 90 and b < 90

