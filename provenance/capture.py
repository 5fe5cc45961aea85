"""The post's page, kept as evidence: a full-page screenshot (PNG) and a web archive (WARC) made by
headless Chromium when `check` or `ingest` is given a post URL.

A finding is challenged weeks later, after the post is deleted: the clip alone does not show who
posted it, with what caption, at what count of views. The screenshot shows the page as a reader saw
it; the WARC (ISO 28500, read by pywb, ReplayWeb.page and the Internet Archive's tools) holds every
response the page loaded, headers and bodies, so the page can be replayed and its text searched.
Video and sound bodies are left out (headers only, marked WARC-Truncated): the clip is evidence of its
own, and a player's stream never ends, so waiting for it cost every check seconds (_write_warc).

WARC written with warcio (Webrecorder's library) rather than WACZ: a WACZ is a zip of WARCs plus
indexes and a datapackage; the `wacz` package builds it by replaying the WARC through pywb, a large
dependency for an index any replay tool rebuilds from the WARC itself. One .warc.gz is the smaller
thing to hash, timestamp and hand on.

Safety: the browser is launched by Playwright with a fresh temporary profile (Playwright deletes it
when the browser closes), never the user's; it holds no cookies but those given with --cookies.
Every request the page makes passes a route handler applying provenance.netguard's rule: only the
host and port the user named may be a loopback or private address (or any, with
--allow-private-urls). Service workers are blocked, so no request escapes the handler that way.
The capture has a time limit and never fails a command: it is skipped with a note instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import netguard
from .fetch import place_in_store, sha256_file

if TYPE_CHECKING:  # the TSA client is loaded only when a capture is stamped (tests/test_startup.py)
    from .timestamps import Stamp

log = logging.getLogger("provenance.capture")

# The whole capture (launch, load, screenshot, archive) must end within this: a page that never
# finishes loading gets what it showed so far. 30 s is yt-dlp's socket timeout (fetch.py); a post
# page loads in a few seconds, and the capture runs beside the clip's download and decode.
CAPTURE_TIMEOUT_S = 30
# Closing the browser after the deadline (Playwright ends Chromium's processes): a few seconds at most.
CLOSE_GRACE_S = 10
# After the load event, how long to wait for the network to go quiet (lazy images, a feed's
# first posts); 3 s bounds a busy page. Media streams do not count: a <video> keeps loading its clip
# for as long as the page is open (bench/README.md, "Page capture cost": waiting for Playwright's
# `networkidle` spent the whole 3 s on every post page with a video).
SETTLE_TIMEOUT_S = 3
# How long after the DOM is ready to wait for the rest of the page when the load event does not come:
# a <video> delays it until its first frame (HTML's "delaying-the-load-event flag"), so a stalled
# stream held the whole capture until its time limit. A post page's own parts load in a few seconds.
LOAD_TIMEOUT_S = 10
# Quiet means no request but media loading for this long: Playwright's own definition of networkidle.
QUIET_S = 0.5
# How often settling looks at the requests in flight (each look lets Playwright deliver its events).
SETTLE_POLL_MS = 100
# A desktop window, the width most post pages are designed for.
VIEWPORT = {"width": 1280, "height": 900}
# Responses larger than this are kept in the archive without their body; a post page's HTML,
# scripts and images are far smaller.
MAX_ARCHIVED_BODY = 20 * 1024 * 1024
CHROMIUM_ENV = "PROVENANCE_CHROMIUM"  # a Chromium other than Debian's /usr/bin/chromium
BROWSER_ARGS = ("--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-extensions",
                # No WebRTC connection outside the browser's network stack (the route handler).
                "--force-webrtc-ip-handling-policy=disable_non_proxied_udp")
ARCHIVE_FORMAT = "warc.gz"
SCREENSHOT, WEB_ARCHIVE = "screenshot", "web_archive"  # stamp subjects (db.timestamps)
_PAGE_TYPES = ("text/html", "application/xhtml+xml")
_MEDIA_TYPES = ("video/", "audio/")
# WARC-Truncated reasons (ISO 28500, WARC 1.1 section 5.13) of a response kept without its body.
_TRUNCATED_LENGTH, _TRUNCATED_TIME, _TRUNCATED_DISCONNECT, _TRUNCATED_OTHER = \
    "length", "time", "disconnect", "unspecified"
_MEDIA_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".ts", ".m3u8", ".mpd", ".flv", ".3gp")
# Secrets are never stored: the cookies given, the site's new session cookies, any login header.
_SECRET_HEADERS = ("cookie", "set-cookie", "authorization", "proxy-authorization")
_DROPPED_RESPONSE_HEADERS = ("content-encoding", "transfer-encoding", "content-length", *_SECRET_HEADERS)


@dataclass(frozen=True)
class CapturedFile:
    path: Path  # in the evidence store, named by its SHA-256
    sha256: str
    size_bytes: int
    newly_stored: bool = False  # this capture put it in the store (removed again if nothing records it)


@dataclass(frozen=True)
class PageCapture:
    url: str  # as given
    final_url: str  # after redirects
    title: str | None  # the page's <title>: untrusted
    http_status: int | None
    captured_at: datetime
    browser: str  # "Chromium VERSION"
    screenshot: CapturedFile
    archive: CapturedFile
    archive_format: str  # ARCHIVE_FORMAT
    resources: int  # responses in the archive
    refused: tuple[str, ...] = ()  # "host:port (address)" of each request the address rule refused


# Why no capture was tried (CaptureOutcome.skipped; `check --json`'s page_capture.status).
NOT_A_PAGE, OFF = "not_a_page", "off"


@dataclass(frozen=True)
class CaptureOutcome:
    """A capture, or why there is none (`note`, one line for the user, when one was tried and failed;
    `skipped` when none was tried: NOT_A_PAGE or OFF)."""

    capture: PageCapture | None = None
    note: str | None = None
    stamps: tuple[Stamp, ...] = ()  # over the screenshot and the archive, when a TSA was given
    skipped: str | None = None


def chromium_executable() -> str | None:
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and os.access(found, os.X_OK) else None


def is_page_url(target: str) -> bool:
    """Whether a check target may be a post page: an http(s) URL (a local file has none) not naming a
    media file or playlist by its extension (other bare media URLs are told by their Content-Type)."""
    text = target.strip().lower()
    path = urlsplit(text).path
    return text.startswith(("http://", "https://")) and not path.endswith(_MEDIA_SUFFIXES)


class Capturing:
    """A capture running in a thread of its own, beside the clip's download and decode."""

    def __init__(self, url: str, *, store_dir: Path, cookies: Path | None, allow_private: bool,
                 trust_named: bool, timeout_s: float) -> None:
        self._outcome: CaptureOutcome | None = None
        self._abandoned = False
        self._lock = threading.Lock()
        self._store_dir = store_dir
        self._timeout_s = timeout_s
        self._work = Path(tempfile.mkdtemp(prefix="provenance-capture-"))
        self._thread = threading.Thread(
            target=self._run, name="capture", daemon=True,
            args=(url, cookies, netguard.Guard(typed=netguard.origin(url) if trust_named else None,
                                               allow_private=allow_private), timeout_s))
        self._thread.start()

    def _run(self, url: str, cookies: Path | None, guard: netguard.Guard, timeout_s: float) -> None:
        try:
            outcome = _capture(url, work=self._work, cookies=cookies, guard=guard, timeout_s=timeout_s)
        except Exception as e:  # a capture never fails the command: it becomes a note
            log.debug("capture failed", exc_info=True)
            outcome = CaptureOutcome(note=f"page not captured: {_one_line(e)}")
        with self._lock:
            self._outcome = outcome
            if self._abandoned:
                shutil.rmtree(self._work, ignore_errors=True)

    def result(self) -> CaptureOutcome:
        """Wait for the capture (no longer than its time limit and a grace period for closing the
        browser) and move its files into the evidence store."""
        self._thread.join(self._timeout_s + CLOSE_GRACE_S)
        with self._lock:
            outcome = self._outcome
            if outcome is None:  # hung past its deadline: leave it to end on its own
                self._abandoned = True
                return CaptureOutcome(note=f"page not captured: it took longer than {self._timeout_s:g} s")
        try:
            captured = outcome.capture
            if captured is None:
                return outcome
            screenshot = _store(captured.screenshot.path, ".png", self._store_dir)
            archive = _store(captured.archive.path, "." + ARCHIVE_FORMAT, self._store_dir)
            return replace(outcome, capture=replace(captured, screenshot=screenshot, archive=archive))
        except OSError as e:
            return CaptureOutcome(note=f"page not captured: cannot store it in {self._store_dir} ({e.strerror or e})")
        finally:
            shutil.rmtree(self._work, ignore_errors=True)

    def abandon(self) -> None:
        """The command failed before it needed the capture: let the thread end on its own and clean up."""
        with self._lock:
            self._abandoned = True
            if self._outcome is not None:
                shutil.rmtree(self._work, ignore_errors=True)


def not_tried(target: str, *, enabled: bool) -> CaptureOutcome:
    """The outcome of a command for which `beside` gave None: why no capture was tried. A file, or a
    URL naming a media file by its extension, is not a page whether or not capture was asked for (so
    the command line and the Python API, which does not capture by default, say the same of it)."""
    return CaptureOutcome(skipped=OFF if not enabled and is_page_url(target) else NOT_A_PAGE)


@contextmanager
def beside(target: str, *, store_dir: Path, cookies: Path | None, allow_private: bool, trust_named: bool = True,
           enabled: bool = True, timeout_s: float = CAPTURE_TIMEOUT_S) -> Iterator[Capturing | None]:
    """Capture `target`'s page in a thread while the block runs (None: nothing to capture)."""
    if not enabled or not is_page_url(target):
        yield None
        return
    capturing = Capturing(target.strip(), store_dir=Path(store_dir), cookies=cookies, allow_private=allow_private,
                          trust_named=trust_named, timeout_s=timeout_s)
    try:
        yield capturing
    finally:
        capturing.abandon()


def stamp_capture(outcome: CaptureOutcome | None, tsa_url: str | None) -> CaptureOutcome | None:
    """The outcome with its two files timestamped by the TSA (FetchError if the TSA fails)."""
    if outcome is None or outcome.capture is None or tsa_url is None:
        return outcome
    c = outcome.capture
    from .timestamps import stamp

    return replace(outcome, stamps=(stamp(c.screenshot.sha256, tsa_url), stamp(c.archive.sha256, tsa_url)))


def discard(outcome: CaptureOutcome | None, still_recorded: set[str]) -> None:
    """Remove the files this capture stored unless their SHA-256 is in `still_recorded`."""
    if outcome is None or outcome.capture is None:
        return
    for f in (outcome.capture.screenshot, outcome.capture.archive):
        if f.newly_stored and f.sha256 not in still_recorded:
            try:
                f.path.unlink(missing_ok=True)
                f.path.parent.rmdir()
            except OSError:
                pass  # a shard still in use: a leftover, not a failure


def _capture(url: str, *, work: Path, cookies: Path | None, guard: netguard.Guard, timeout_s: float) -> CaptureOutcome:
    executable = chromium_executable()
    if executable is None:
        return CaptureOutcome(note=f"page not captured: no Chromium found (install it: apt-get install chromium, "
                                   f"or set {CHROMIUM_ENV}); --no-capture skips the capture")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        return CaptureOutcome(note="page not captured: Playwright is not installed "
                                   "(pip install 'provenance[capture]'); --no-capture skips the capture")
    deadline = time.monotonic() + timeout_s

    def left_ms() -> float:
        """What is left of the capture's time limit, for the next step (at least 1 s to fail cleanly)."""
        return max(1000.0, (deadline - time.monotonic()) * 1000)

    responses: list[Any] = []
    traffic = _Traffic()
    steps = _Steps()
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=executable, args=list(BROWSER_ARGS), timeout=left_ms())
        except PlaywrightError as e:
            return CaptureOutcome(note=f"page not captured: Chromium did not start ({_one_line(e)})")
        steps.done("launch")
        try:
            # A new context is a fresh profile: no history, cache or cookies but those added here.
            context = browser.new_context(viewport=VIEWPORT, service_workers="block", accept_downloads=False)
            if cookies is not None:
                context.add_cookies(_cookies(cookies))
            context.route("**/*", lambda route: _guarded(route, guard))
            page = context.new_page()
            page.set_default_timeout(left_ms())
            page.on("response", lambda r: responses.append(r))
            traffic.follow(page)
            steps.done("new page")
            try:
                main = page.goto(url, wait_until="domcontentloaded", timeout=left_ms())
            except PlaywrightError as e:
                if "Download is starting" in str(e):
                    return CaptureOutcome(skipped=NOT_A_PAGE)  # a media file: nothing to capture
                refusal = guard.refusal()
                return CaptureOutcome(note=f"page not captured: {refusal or _one_line(e)}")
            steps.done("DOM")
            if main is None or not _is_page(main.headers.get("content-type", "")):
                return CaptureOutcome(skipped=NOT_A_PAGE)  # a bare media URL: no post page to keep
            traffic.settle(page, until=min(deadline, time.monotonic() + LOAD_TIMEOUT_S))
            steps.done("settle")
            title = page.title() or None
            final_url = page.url
            shot = work / "page.png"
            page.screenshot(path=str(shot), full_page=True, type="png", animations="disabled", timeout=left_ms())
            steps.done("screenshot")
            archived = work / f"page.{ARCHIVE_FORMAT}"
            count = _write_warc(archived, responses, final_url, traffic=traffic, deadline=deadline)
            steps.done("archive")
            version = f"Chromium {browser.version}"
        finally:
            browser.close()
    steps.done("close")
    log.debug("capture of %s: %s", url, steps)
    captured = PageCapture(
        url=url, final_url=final_url, title=title, http_status=main.status, captured_at=datetime.now(UTC),
        browser=version, screenshot=CapturedFile(shot, sha256_file(shot), shot.stat().st_size),
        archive=CapturedFile(archived, sha256_file(archived), archived.stat().st_size), archive_format=ARCHIVE_FORMAT,
        resources=count, refused=tuple(guard.refused))
    return CaptureOutcome(capture=captured)


class _Traffic:
    """The page's requests as Chromium reports them: which finished (their bodies can be read without
    waiting: Playwright's body() waits for the end of a response, which a stream never reaches) and
    which, media streams aside, are still loading (what settling waits for)."""

    def __init__(self) -> None:
        self.finished: set[Any] = set()  # Playwright Request objects (one object per request)
        self.failed: set[Any] = set()
        self._loading: set[Any] = set()
        self._changed = time.monotonic()
        self._loaded_at: float | None = None  # the page's load event

    def follow(self, page: Any) -> None:
        page.once("load", self._loaded)
        page.on("request", self._started)
        page.on("response", self._answered)
        page.on("requestfinished", self._finished)
        page.on("requestfailed", self._failed)

    def settle(self, page: Any, *, until: float) -> None:
        """Return once no request but media has been loading for QUIET_S (the page's own parts are
        in, whether or not a video lets the load event come), SETTLE_TIMEOUT_S after the load event
        on a page that stays busy, or at `until`."""
        while True:
            now = time.monotonic()
            if not self._loading and now - self._changed >= QUIET_S:
                return
            if (self._loaded_at is not None and now - self._loaded_at >= SETTLE_TIMEOUT_S) or now >= until:
                return
            page.wait_for_timeout(SETTLE_POLL_MS)

    def _loaded(self, _page: Any) -> None:
        self._loaded_at = time.monotonic()

    def _started(self, request: Any) -> None:
        if request.resource_type != "media":
            self._loading.add(request)
            self._changed = time.monotonic()

    def _answered(self, response: Any) -> None:
        if _is_media(response):  # a stream fetched by a script (MSE players): never quiet either
            self._ended(response.request)

    def _finished(self, request: Any) -> None:
        self.finished.add(request)
        self._ended(request)

    def _failed(self, request: Any) -> None:
        self.failed.add(request)
        self._ended(request)

    def _ended(self, request: Any) -> None:
        if request in self._loading:
            self._loading.discard(request)
            self._changed = time.monotonic()


class _Steps:
    """How long each step of a capture took, for the debug log (bench/README.md quotes them)."""

    def __init__(self) -> None:
        self._last = time.monotonic()
        self._steps: list[tuple[str, float]] = []

    def done(self, step: str) -> None:
        now = time.monotonic()
        self._steps.append((step, now - self._last))
        self._last = now

    def __str__(self) -> str:
        return ", ".join(f"{step} {s:.2f} s" for step, s in self._steps)


def _is_media(response: Any) -> bool:
    return response.request.resource_type == "media" or \
        response.headers.get("content-type", "").strip().lower().startswith(_MEDIA_TYPES)


def _guarded(route: Any, guard: netguard.Guard) -> None:
    """netguard's rule for one request of the page: the address it would connect to must be public,
    unless it is the host and port the user named (or --allow-private-urls)."""
    url = route.request.url
    where = netguard.origin(url)
    if where is None:
        if url.startswith(("data:", "blob:", "about:")):
            return route.continue_()
        guard.refused.append(url[:100])
        return route.abort("blockedbyclient")
    host, port = where
    try:
        addresses = {str(a[4][0]) for a in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)}
    except OSError:
        return route.abort("namenotresolved")
    for address in addresses:
        if not guard.allows(host, port, address):
            guard.refused.append(f"{host}:{port}" + (f" ({address})" if address != host else ""))
            log.info("capture: refused %s:%d (%s)", host, port, address)
            return route.abort("blockedbyclient")
    return route.continue_()


def _is_page(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in _PAGE_TYPES


def _cookies(path: Path) -> list[dict[str, Any]]:
    """The Netscape cookies file given with --cookies, as Playwright's cookies (read, never stored)."""
    # Imported here: http.cookiejar loads urllib.request, http.client, ssl and email (~50 ms), which a
    # check without cookies never uses (tests/test_startup.py).
    import http.cookiejar

    jar = http.cookiejar.MozillaCookieJar(str(path))
    try:
        jar.load(ignore_discard=True, ignore_expires=True)
    except (OSError, http.cookiejar.LoadError) as e:
        raise ValueError(f"cannot read the cookies file ({e.__class__.__name__})") from e
    out = []
    for c in jar:
        cookie: dict[str, Any] = {"name": c.name, "value": c.value or "", "domain": c.domain, "path": c.path or "/",
                                  "secure": bool(c.secure)}
        if c.expires:
            cookie["expires"] = float(c.expires)
        out.append(cookie)
    return out


def _write_warc(path: Path, responses: list[Any], page_url: str, *, traffic: _Traffic, deadline: float) -> int:
    """Every response the page loaded, with its request, as WARC records (bodies as Chromium decoded
    them: the Content-Encoding header is dropped so the record says what it holds).

    A response is kept with its headers only, marked WARC-Truncated, when its body is a video or
    sound (the clip is kept as evidence of its own, by SHA-256; a page's player streams it in ranges
    that Chromium does not keep), when it was still loading when the page was captured, when its
    request failed, or when it is larger than MAX_ARCHIVED_BODY. Only finished responses are read:
    reading one still loading would wait for its end."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from . import __version__

    count = 0
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {
            "software": f"provenance {__version__} (headless Chromium through Playwright; warcio)",
            "format": "WARC File Format 1.1", "isPartOf": page_url}))
        for response in responses:
            url = response.url
            if not url.startswith(("http://", "https://")):
                continue
            request = response.request
            body, truncated = _body(response, traffic=traffic, deadline=deadline)
            headers = [(k, v) for k, v in response.headers_array()
                       if k.lower() not in _DROPPED_RESPONSE_HEADERS]
            headers.append(("Content-Length", str(len(body))))
            status = f"{response.status} {response.status_text or ''}".strip()
            writer.write_record(writer.create_warc_record(
                url, "response", payload=BytesIO(body),
                warc_headers_dict={"WARC-Truncated": truncated} if truncated else None,
                http_headers=StatusAndHeaders(status, headers, protocol="HTTP/1.1")))
            target = url.split("#", 1)[0]
            request_headers = [(k, v) for k, v in request.headers_array()
                               if k.lower() not in _SECRET_HEADERS]
            writer.write_record(writer.create_warc_record(
                url, "request", payload=BytesIO(b""),
                http_headers=StatusAndHeaders(f"{request.method} {target} HTTP/1.1", request_headers,
                                              is_http_request=True)))
            count += 1
    return count


def _body(response: Any, *, traffic: _Traffic, deadline: float) -> tuple[bytes, str | None]:
    """The response's body to archive and, when it is not all there, the WARC-Truncated reason."""
    if _is_media(response):
        return b"", _TRUNCATED_OTHER
    if 300 <= response.status < 400 and response.status != 304:
        return b"", None  # a redirect has no body to keep
    if response.request in traffic.failed:
        return b"", _TRUNCATED_DISCONNECT
    if response.request not in traffic.finished:
        return b"", _TRUNCATED_TIME
    if time.monotonic() >= deadline:
        return b"", _TRUNCATED_TIME
    try:
        body = response.body()
    except Exception:  # a body Chromium no longer holds
        return b"", _TRUNCATED_OTHER
    if len(body) > MAX_ARCHIVED_BODY:
        return b"", _TRUNCATED_LENGTH
    return body, None


def _store(src: Path, ext: str, store_dir: Path) -> CapturedFile:
    sha = sha256_file(src)
    store_dir.mkdir(parents=True, exist_ok=True)
    dest, new = place_in_store(src, sha, ext, store_dir)
    return CapturedFile(path=dest, sha256=sha, size_bytes=dest.stat().st_size, newly_stored=new)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else e.__class__.__name__)[:300]


__all__ = ["CAPTURE_TIMEOUT_S", "NOT_A_PAGE", "OFF", "CaptureOutcome", "CapturedFile", "PageCapture", "beside",
           "chromium_executable", "discard", "is_page_url", "not_tried", "stamp_capture"]
