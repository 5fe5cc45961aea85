"""Fetch: bring a clip into the evidence store, from a post URL (via yt-dlp) or a local file.

The store keeps every clip under its SHA-256, so the same bytes are kept once and a stored file
is never rewritten: what was fetched is what gets analysed and what can be shown later.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

try:
    import fcntl
except ImportError:  # Windows: no flock, no clean-up of stale temporary files
    fcntl = None  # type: ignore[assignment]

from provenance import netguard
from provenance.errors import FetchError, InputError, MediaError, RateLimitedError, StoreError, printable
from provenance.records import FetchedMedia, Post
from provenance.snowflake import X_HOSTS, snowflake_time
from provenance.utc import as_utc
from provenance.ytinfo import info_time, str_or_none

log = logging.getLogger("provenance.fetch")

Progress = Callable[[str, float | None], None]

_CHUNK = 1 << 20
_DEFAULT_EXT = ".mp4"
_SMUGGLE_MARK = "#__youtubedl_smuggle"
_GUARDED = "[protocol~='^(https?|m3u8(_native)?|http_dash_segments(_generator)?)$']"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A download is given up (FetchError, exit 3) when it takes longer than DOWNLOAD_DEADLINE_S in all, or
# when fewer than MIN_DOWNLOAD_RATE bytes a second of video arrived over the last RATE_WINDOW_S seconds
# (the page's extraction counts: it must give way to video within that time). The socket timeout alone
# never fires on a server that drips a few bytes a second. An hour holds a 2 GB file at 5 Mbit/s, far
# beyond a posted clip; 10 kB/s (80 kbit/s) is below the leanest 144p stream a platform serves, so a
# slower download is a stalled or hostile server, and 60 s leaves room for a slow page to be read.
DOWNLOAD_DEADLINE_S = 3600.0
MIN_DOWNLOAD_RATE = 10_000.0
RATE_WINDOW_S = 60.0
# How often the waiting thread looks at the download's progress.
_WATCH_EVERY_S = 0.25


@dataclass(frozen=True)
class DownloadLimits:
    deadline_s: float = DOWNLOAD_DEADLINE_S
    min_rate: float = MIN_DOWNLOAD_RATE  # bytes a second, averaged over rate_window_s; 0 for none
    rate_window_s: float = RATE_WINDOW_S


# Temporary downloads (.fetch-*/) and copies (.tmp-*.part) whose process died (SIGKILL, the OOM
# killer, a power cut) are removed when the next fetch starts. A live one is held under an flock,
# which the kernel releases on any death; ones younger than this are left alone, as their owner may
# not have taken its lock yet.
STALE_MIN_AGE_S = 60.0
_LOCK_FILE = ".lock"

_LOGIN_HINTS = re.compile(
    r"log ?in|sign ?in|cookie|private|authenticat|age[- ]restricted|confirm your age|members[- ]only",
    re.IGNORECASE,
)


def fetch(
    target: str,
    *,
    store_dir: Path,
    cookies: Path | None = None,
    progress: Progress | None = None,
    post_url: str | None = None,
    posted_at: datetime | None = None,
    allow_private: bool = False,
    named_by_user: str | None = None,
    limits: DownloadLimits = DownloadLimits(),
    trust_named: bool = True,
) -> FetchedMedia:
    """Store the clip at `target` (an http(s) URL or a file path) and say where it was posted.

    `post_url` and `posted_at` are what the user says about the post; they win over what the
    platform reports. A naive `posted_at` is taken as UTC. A download is given up within `limits`.

    Only the host and port of `named_by_user` (default: `target`), the URL the user gave, may be
    a private or loopback address, unless `allow_private` (see provenance.netguard); with
    `trust_named` false, not even that one (a URL sent to the server by someone else).
    """
    store_dir = Path(store_dir)
    clean_stale_temporaries(store_dir)
    if posted_at is not None:
        posted_at = as_utc(posted_at)
    if _is_url(target):
        typed = netguard.origin(named_by_user or target) if trust_named else None
        guard = netguard.Guard(typed=typed, allow_private=allow_private)
        return _fetch_url(target, store_dir=store_dir, cookies=cookies, progress=progress,
                          post_url=post_url, posted_at=posted_at, guard=guard, limits=limits)
    return _fetch_file(Path(target).expanduser(), store_dir=store_dir, post_url=post_url, posted_at=posted_at)


def _is_url(target: str) -> bool:
    text = target.strip()
    match = _SCHEME.match(text)
    if not match:
        return False
    scheme = match.group(1).lower()
    # Only "scheme://" (or file:) makes a URL, so "clip:1.mp4" and C:\clip.mp4 stay file paths.
    if not text[match.end():].startswith("//") and scheme != "file":
        return False
    if scheme not in ("http", "https"):
        raise InputError(f"unsupported URL scheme '{scheme}' in {target}; give an http(s) URL or a file path")
    return True


def strip_smuggled(url: str) -> str:
    """The URL without the `#__youtubedl_smuggle=...` fragment yt-dlp uses to pass data along."""
    if _SMUGGLE_MARK not in url:
        return url
    try:
        from yt_dlp.utils import unsmuggle_url

        return unsmuggle_url(url)[0]
    except Exception:  # malformed smuggled data: cut it off by hand
        return url.split(_SMUGGLE_MARK, 1)[0]


# --- local files -------------------------------------------------------------------------------


def check_target(target: str) -> None:
    """Refuse now what `fetch` would refuse before any download: an unsupported URL scheme, a missing
    file, a folder. Cheap, so that a command fails at once rather than after opening the library."""
    if not _is_url(target):
        _require_file(Path(target).expanduser())


def _require_file(path: Path) -> None:
    if not path.exists():
        hint = " (for a web address, start it with https://)" if re.match(r"^[\w-]+(\.[\w-]+)+/", str(path)) else ""
        raise InputError(f"no such file: {path}; check the path{hint}")
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a video file")


def _fetch_file(path: Path, *, store_dir: Path, post_url: str | None, posted_at: datetime | None) -> FetchedMedia:
    _require_file(path)
    try:
        size = path.stat().st_size
        if size == 0:
            raise MediaError(f"empty file: {path} (0 bytes); it is not a video")
        sha = sha256_file(path)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    with _store_errors(store_dir):
        found = _find_stored(store_dir, sha)
        stored, new = (found, False) if found else _copy_into_store(path, sha, _ext_of(path), store_dir)
    # The title is stored and printed: a name that is not UTF-8 goes in with its odd bytes escaped.
    post = Post(url=post_url, platform="local", posted_at=posted_at, title=printable(path.name))
    return FetchedMedia(path=stored, sha256=sha, size_bytes=size, post=post, source="file", newly_stored=new)


def _copy_into_store(path: Path, sha: str, ext: str, store_dir: Path) -> tuple[Path, bool]:
    store_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_store_file(store_dir)
    _hold(fd)  # released when the copy is closed, or by the kernel if this process dies
    try:
        digest = hashlib.sha256()
        with path.open("rb") as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        # The store name promises these exact bytes; a file being written to while we copy breaks that.
        if digest.hexdigest() != sha:
            raise InputError(f"{path} changed while it was being copied; try again when it is complete")
        return _place(tmp, sha, ext, store_dir)
    finally:
        tmp.unlink(missing_ok=True)


def _new_store_file(store_dir: Path) -> tuple[int, Path]:
    """A new, uniquely named file in the store, open for writing, with the mode the umask gives
    (as yt-dlp's downloads have): mkstemp's 0600 would hide the evidence from colleagues who
    share the store."""
    while True:
        path = store_dir / f".tmp-{secrets.token_hex(8)}.part"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue


# --- URLs --------------------------------------------------------------------------------------


def _fetch_url(
    url: str,
    *,
    store_dir: Path,
    cookies: Path | None,
    progress: Progress | None,
    post_url: str | None,
    posted_at: datetime | None,
    guard: netguard.Guard,
    limits: DownloadLimits,
) -> FetchedMedia:
    require_cookies(cookies)
    import yt_dlp  # slow to import: only pay for it when a URL is fetched

    with _store_errors(store_dir):
        store_dir.mkdir(parents=True, exist_ok=True)
    # A download given up on may still write for a moment (its thread stops at its next block).
    with ExitStack() as stack:
        tmp_name = stack.enter_context(
            tempfile.TemporaryDirectory(dir=store_dir, prefix=".fetch-", ignore_cleanup_errors=True))
        # In store_dir so the finished download moves into the store without a copy.
        tmp = Path(tmp_name)
        lock = stack.enter_context(open(tmp / _LOCK_FILE, "wb"))
        _hold(lock.fileno())
        watch = _DownloadWatch(limits, progress)
        opts: dict[str, Any] = {
            "quiet": True,
            "no_warnings": False,  # warnings go to our logger, not the terminal
            "noprogress": True,
            "logger": YtdlpLogger(log, on_warning=guard.check_hand_off),
            "paths": {"home": str(tmp), "temp": str(tmp)},
            # A fixed name (the folder is this download's own): an id taken from the URL can be
            # longer than a file name may be, and the stored copy is named by its SHA-256 anyway.
            "outtmpl": "media.%(ext)s",
            # Best video + best audio, merged by ffmpeg; a single file when that is all there is.
            # Only formats yt-dlp downloads itself, through the guard's proxy: rtmp, rtsp and the
            # like would be handed to ffmpeg or rtmpdump, which connect on their own.
            "format": f"bv*{_GUARDED}+ba{_GUARDED}/b{_GUARDED}",
            "external_downloader": "native",  # HLS too, not ffmpeg
            "noplaylist": True,
            "playlist_items": "1",  # a post with several videos: the first one
            "socket_timeout": 30,
            "retries": 2,
            "fragment_retries": 2,
            "extractor_retries": 1,
            "updatetime": False,  # store mtime = when we stored it, not the server's Last-Modified
            "cachedir": False,  # no state shared between calls or with other yt-dlp users
            "progress_hooks": [watch.hook],
        }
        if cookies is not None:
            opts["cookiefile"] = str(copy_cookies(cookies, tmp))

        try:
            with netguard.guarded(guard) as proxy:
                raw = watch.run(lambda: _download({**opts, "proxy": proxy}, url), url)
        except (yt_dlp.utils.YoutubeDLError, netguard.UnguardedDownload) as e:
            if (refusal := guard.refusal()) is not None:
                raise InputError(refusal) from e
            raise _classify(e, url) from e

        entry = _single_entry(raw, url)
        downloaded = _downloaded_file(entry, tmp)
        size = downloaded.stat().st_size
        if size == 0:
            raise MediaError(f"the download from {url} is empty (0 bytes); it is not a video")
        with _store_errors(store_dir):
            sha = sha256_file(downloaded)
            found = _find_stored(store_dir, sha)
            stored, new = (found, False) if found else _place(downloaded, sha, _ext_of(downloaded), store_dir)

    post = _post_from_info(entry, url, raw)
    post = _override(post, post_url=post_url, posted_at=posted_at)
    return FetchedMedia(path=stored, sha256=sha, size_bytes=size, post=post, source="url", newly_stored=new)


def _download(opts: dict[str, Any], url: str) -> dict[str, Any]:
    import yt_dlp

    with yt_dlp.YoutubeDL(opts) as ydl:
        return ydl.sanitize_info(ydl.extract_info(url, download=True))


class _GivenUp(Exception):
    """Raised in yt-dlp's progress hook to end a download the caller has stopped waiting for."""


class _DownloadWatch:
    """Runs a download in a thread and gives up on it at the deadline or when it is too slow.

    The waiting is done here, not in yt-dlp's progress hook: a hook is only called after a whole
    block arrives, which at a few bytes a second is minutes apart (and never while a page is read)."""

    def __init__(self, limits: DownloadLimits, progress: Progress | None) -> None:
        self.limits = limits
        self.progress_hook = _progress_hook(progress) if progress else None
        self.given_up = threading.Event()
        self.by_file: dict[str, int] = {}  # bytes so far of each file (video and audio come apart)

    def hook(self, d: dict[str, Any]) -> None:
        if self.given_up.is_set():
            raise _GivenUp()
        done = d.get("downloaded_bytes")
        if isinstance(done, int):
            self.by_file[str(d.get("filename"))] = done
        if self.progress_hook:
            self.progress_hook(d)

    def run(self, download: Callable[[], dict[str, Any]], url: str) -> dict[str, Any]:
        outcome: list[Any] = []

        def work() -> None:
            try:
                outcome.append(download())
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread, which raises it
                outcome.append(e)

        thread = threading.Thread(target=work, name="download", daemon=True)
        started = window_start = time.monotonic()
        window_bytes = 0
        thread.start()
        try:
            while True:
                thread.join(_WATCH_EVERY_S)
                if not thread.is_alive():
                    break
                now = time.monotonic()
                if now - started > self.limits.deadline_s:
                    raise FetchError(f"download from {urlsplit(url).hostname} took longer than "
                                     f"{_duration(self.limits.deadline_s)}, the limit; try again later")
                if now - window_start >= self.limits.rate_window_s:
                    got = sum(self.by_file.values())
                    if got - window_bytes < self.limits.min_rate * (now - window_start):
                        raise FetchError(f"download from {urlsplit(url).hostname} stalled: slower than "
                                         f"{self.limits.min_rate / 1000:g} kB/s for {_duration(now - window_start)}; "
                                         "the server is overloaded or refusing, try again later")
                    window_start, window_bytes = now, got
        except BaseException:
            self.given_up.set()  # the thread ends at its next block and writes no more
            raise
        (result,) = outcome
        if isinstance(result, BaseException):
            raise result
        return result


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 120 else f"{seconds:.0f} s"


class YtdlpLogger:
    """yt-dlp's chatter goes to `log`; library code never writes to the terminal. `on_warning` sees
    each warning as well (the fetch's guard reads them)."""

    def __init__(self, log: logging.Logger, on_warning: Callable[[str], None] | None = None) -> None:
        self.log = log
        self._on_warning = on_warning

    def debug(self, msg: str) -> None:
        self.log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        self.log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        # INFO, not WARNING: an unconfigured logging module prints WARNING and above to stderr.
        self.log.info("yt-dlp: %s", _one_line(msg))
        if self._on_warning is not None:
            self._on_warning(msg)

    def error(self, msg: str) -> None:
        self.log.debug("yt-dlp: %s", _one_line(msg))  # it is raised as well, and reported from there


def require_cookies(cookies: Path | None) -> None:
    """A `--cookies` file that is not there is the user's to fix, before anything is fetched."""
    if cookies is not None and not Path(cookies).is_file():
        raise InputError(f"cookies file not found: {cookies}; export one from a logged-in browser (Netscape format)")


def copy_cookies(cookies: Path, folder: Path) -> Path:
    """yt-dlp (and gallery-dl) can write the jar back: they get a copy in `folder`, so the user's file is
    left alone."""
    return Path(shutil.copyfile(cookies, folder / "cookies.txt"))


def _progress_hook(progress: Progress) -> Callable[[dict[str, Any]], None]:
    best = 0.0  # yt-dlp's size estimates shift while fragments arrive; a bar should not go back

    def hook(d: dict[str, Any]) -> None:
        nonlocal best
        if d.get("status") == "finished":
            best = 1.0
            progress("download", 1.0)
        elif d.get("status") == "downloading":
            total = d.get("total_bytes") or d.get("total_bytes_estimate")
            done = d.get("downloaded_bytes")
            if total and done is not None:
                best = max(best, min(1.0, done / total))
            elif d.get("fragment_count") and d.get("fragment_index") is not None:
                best = max(best, min(1.0, d["fragment_index"] / d["fragment_count"]))
            else:
                progress("download", None)
                return
            progress("download", best)

    return hook


def _single_entry(info: dict[str, Any], url: str) -> dict[str, Any]:
    if info.get("_type") == "playlist" or "entries" in info:
        entries = [e for e in info.get("entries") or [] if e]
        if not entries:
            raise FetchError(f"no video found at {url}")
        return entries[0]
    return info


def _downloaded_file(info: dict[str, Any], tmp: Path) -> Path:
    for download in info.get("requested_downloads") or []:
        path = download.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    files = [p for p in tmp.iterdir()
             if p.is_file() and p.name not in ("cookies.txt", _LOCK_FILE) and not p.name.endswith(".part")]
    if len(files) == 1:
        return files[0]
    raise FetchError(f"yt-dlp reported success but left {len(files)} files; cannot tell which is the video")


def _post_from_info(info: dict[str, Any], url: str, raw: dict[str, Any]) -> Post:
    media_id = str_or_none(info.get("id"))
    post_id = str_or_none(info.get("display_id")) or media_id
    page_url = strip_smuggled(info.get("webpage_url") or url)
    post_created = media_created = None
    if _is_x(info, page_url):
        # On X, display_id is the post and id the video: both are snowflakes carrying their time.
        post_created = snowflake_time(post_id) if post_id else None
        if media_id and media_id != post_id:
            media_created = snowflake_time(media_id)
    duration = info.get("duration")
    return Post(
        url=page_url,
        platform=str_or_none(info.get("extractor_key")),
        post_id=post_id,
        uploader=str_or_none(info.get("uploader")),
        uploader_id=str_or_none(info.get("uploader_id")),
        posted_at=_posted_at(info),
        title=str_or_none(info.get("title")),
        description=str_or_none(info.get("description")),
        duration_s=float(duration) if isinstance(duration, (int, float)) else None,
        post_created_at=post_created,
        media_created_at=media_created,
        info=raw,
    )


def _posted_at(info: dict[str, Any]) -> datetime | None:
    # yt-dlp's generic extractor fills `timestamp` from the server's Last-Modified header. For a
    # bare media file or playlist that is when the file was put on the server, not a post time:
    # there is no post, so no post time (the raw info keeps the header's value). A web page's
    # structured data (JSON-LD uploadDate) replaces it with a real upload time.
    if _is_bare_media(info):
        return None
    return info_time(info)


def _is_bare_media(info: dict[str, Any]) -> bool:
    if info.get("extractor_key") != "Generic":
        return False
    page = info.get("webpage_url")
    formats = info.get("formats") or []
    # The page is the media itself (a page that embeds a video also gets `direct` from the inner
    # extraction, so the flag alone does not tell).
    return any(page and page in (f.get("url"), f.get("manifest_url")) for f in formats)


def _is_x(info: dict[str, Any], page_url: str) -> bool:
    key = str(info.get("extractor_key") or "")
    host = (urlsplit(page_url).hostname or "").lower()
    return key.startswith("Twitter") or host in X_HOSTS


def _override(post: Post, *, post_url: str | None, posted_at: datetime | None) -> Post:
    changes: dict[str, Any] = {}
    if post_url is not None:
        changes["url"] = post_url
    if posted_at is not None:
        changes["posted_at"] = posted_at
    return replace(post, **changes) if changes else post


def _classify(error: Exception, url: str) -> Exception:
    """One clear line for the user, from whatever yt-dlp raised."""
    import yt_dlp

    message = _clean_message(str(error))
    causes = list(_causes(error))
    if any(isinstance(c, yt_dlp.utils.UnsupportedError) for c in causes) or "Unsupported URL" in message:
        return InputError(f"unsupported URL: {url}; yt-dlp found no video there (is it a post with a video?)")
    status = next((s for c in causes if isinstance(s := getattr(c, "status", None), int)), None)
    if status is None and (m := re.search(r"HTTP Error (\d{3})", message)):
        status = int(m.group(1))
    if status in (404, 410):
        return FetchError(f"not found (HTTP {status}): {url}; the post may be deleted or the link wrong")
    if status == 429:
        return RateLimitedError(f"rate limited (HTTP 429) by {urlsplit(url).hostname}; wait a while and retry",
                                retry_after=_retry_after(causes))
    cookies_hint = "pass --cookies FILE exported from a logged-in browser"
    if status in (401, 403):
        return FetchError(f"access denied (HTTP {status}): {url}; the post may be private or need a login: {cookies_hint}")
    if _LOGIN_HINTS.search(message):
        return FetchError(f"{message}; {cookies_hint}")
    return FetchError(f"download failed: {message}")


def _retry_after(causes: list[BaseException]) -> float | None:
    """The seconds a 429's Retry-After header asks for (its HTTP-date form is not worth parsing here)."""
    for c in causes:
        headers = getattr(getattr(c, "response", None), "headers", None)
        value = headers.get("Retry-After") if headers is not None else None
        if value is not None and str(value).strip().isdigit():
            return float(str(value).strip())
    return None


def classify_ytdlp_error(error: Exception, url: str) -> Exception:
    """The ProvenanceError for a yt-dlp error met at `url` (also used when listing posts)."""
    return _classify(error, url)


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        exc_info = getattr(e, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1 and isinstance(exc_info[1], BaseException):
            todo.append(exc_info[1])
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException):
            todo.append(cause)
        todo.extend([e.__cause__, e.__context__])


def _clean_message(text: str) -> str:
    text = _ANSI.sub("", text)
    text = re.sub(r"^\s*ERROR:\s*", "", text)
    # yt-dlp's "please report this issue on ..." boilerplate is not for our users.
    text = re.split(r";?\s*please report this issue", text, maxsplit=1, flags=re.IGNORECASE)[0]
    text = re.sub(r"\s*\(caused by <[^>]*>\)", "", text)  # repeats what the message already says
    return _one_line(text).rstrip(" ;") or "yt-dlp gave no reason"


def _one_line(text: str) -> str:
    return " ".join(_ANSI.sub("", text).split())


# --- the evidence store ------------------------------------------------------------------------


@contextmanager
def _store_errors(store_dir: Path) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        raise StoreError(f"cannot write the evidence store at {store_dir}: {e.strerror or e}") from e


def _hold(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def clean_stale_temporaries(store_dir: Path) -> None:
    """Remove the temporary downloads and copies in the store whose process is gone."""
    if fcntl is None:
        return
    try:
        entries = [e for e in store_dir.iterdir()
                   if e.name.startswith(".fetch-") or (e.name.startswith(".tmp-") and e.name.endswith(".part"))]
    except OSError:
        return  # no store yet, or not readable: the fetch itself will say so
    now = time.time()
    for entry in entries:
        try:
            if now - entry.lstat().st_mtime < STALE_MIN_AGE_S:
                continue
            with open(entry / _LOCK_FILE if entry.is_dir() else entry, "rb") as held:
                fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while its owner lives
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
            log.info("removed %s, left by a process that did not finish", entry)
        except OSError:
            continue  # held by a live process, already gone, or not ours to remove


def sha256_file(path: Path) -> str:
    """A file's SHA-256 in hex: the name it has in the evidence store and its identity in the library."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _ext_of(path: Path) -> str:
    ext = path.suffix.lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else _DEFAULT_EXT


def _find_stored(store_dir: Path, sha: str) -> Path | None:
    """The clip already stored under this hash, whatever extension it was stored with."""
    shard = store_dir / sha[:2]
    if not shard.is_dir():
        return None
    return next((p for p in sorted(shard.glob(f"{sha}.*")) if p.is_file()), None)


def _place(src: Path, sha: str, ext: str, store_dir: Path) -> tuple[Path, bool]:
    """Give a complete file in store_dir its final name, without ever replacing a stored one; and
    whether this call put it there (False: another process stored the same bytes first)."""
    dest = store_dir / sha[:2] / f"{sha}{ext}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as f:
        os.fsync(f.fileno())  # the bytes reach the disk before the name does
    try:
        os.link(src, dest)  # fails if dest exists, so a stored file is never rewritten
    except FileExistsError:
        return dest, False
    except OSError:  # no hard links on this filesystem
        if dest.exists():
            return dest, False
        os.replace(src, dest)
    return dest, True


def discard(media: FetchedMedia) -> None:
    """Remove an evidence copy this run stored (`media.newly_stored`) and nothing was recorded with."""
    if not media.newly_stored:
        return
    try:
        media.path.unlink(missing_ok=True)
        media.path.parent.rmdir()  # its shard, when it was the only file there
    except OSError:
        pass  # a shard still in use, or a store gone read-only: a leftover, not a failure

