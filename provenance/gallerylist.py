"""Listing with gallery-dl, for the sites yt-dlp cannot list: X profiles, their /media tab, searches, lists.

gallery-dl runs through its Python API, one fresh job per call, and never downloads: a job of our
own (`_ListJob`) collects the messages its extractor yields, and each post with a video becomes a
`ListedPost`. The audit then checks each post with yt-dlp, exactly as `provenance check` would.

gallery-dl's configuration is one global dict (gallery_dl.config), read by its extractors while
they run. Each call therefore sets a complete configuration under a lock, runs, and clears it
again: two listings never run at once in one process, and nothing of the user's own gallery-dl
configuration (~/.config/gallery-dl) is read, so a listing does not depend on it. Its cache
(logins, guest tokens) is kept in memory, never in the user's home; no archive is ever kept.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import netguard
from .errors import FetchError, InputError, RateLimitedError
from .fetch import copy_cookies, require_cookies
from .listing import Listing, ListedPost
from .snowflake import X_HOSTS, snowflake_time

log = logging.getLogger("provenance.listing")

YTDLP, GALLERY_DL = "yt-dlp", "gallery-dl"
LISTERS = (YTDLP, GALLERY_DL)
# An X post or its media: yt-dlp handles those (and a single post is not a listing anyway).
_X_POST = re.compile(r"^/[^/]+/status/\d+|^/i/(web/)?status/\d+")
# gallery-dl's prefix forcing its generic extractor (it scans a page for media links).
_GENERIC_PREFIX = re.compile(r"^g(?:eneric)?:", re.IGNORECASE)
# What counts as a video among the files gallery-dl lists (its X extractor says so in `type`;
# other sites only by the file's extension). X's animated GIFs are MP4 videos too.
_X_VIDEO_TYPES = frozenset({"video", "animated_gif"})
_VIDEO_EXTENSIONS = frozenset({"mp4", "m4v", "mov", "mkv", "webm", "ogv", "avi", "m3u8", "ts"})
# X serves a video from video.twimg.com/ext_tw_video/<media id>/... or /amplify_video/<media id>/...
# (the media id is a snowflake of its upload); GIFs from /tweet_video/<name>.mp4, without an id.
_X_MEDIA_ID = re.compile(r"^https?://video\.twimg\.com/(?:ext_tw_video|amplify_video)/(\d+)/")
# Seconds between two listing requests are the audit's --sleep; gallery-dl's own retries of a
# failed request (5xx, a dropped connection): the same as yt-dlp's `retries` in listing.py.
_RETRIES = 2
_TIMEOUT_S = 30  # the same as yt-dlp's socket_timeout
# A queued URL (a profile dispatching to its timeline, a gallery's pages) is followed this deep,
# no further: a list of accounts (followers, list members) is not itself the posts of an account.
_QUEUE_DEPTH = 1
# With --since, the listing stops after this many posts in a row older than it: timelines list
# newest first, but a pinned or an edited post can be out of place, so one is not enough.
_OLDER_IN_A_ROW = 5

# gallery-dl's configuration is global: one listing at a time per process (see the module's docstring).
_CONFIG_LOCK = threading.Lock()


def choose_lister(url: str) -> str:
    """yt-dlp where it can list, gallery-dl where it cannot: X profiles, /media tabs, searches, lists."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if _GENERIC_PREFIX.match(url.strip()):
        return GALLERY_DL
    if host in X_HOSTS and not _X_POST.match(parts.path):
        return GALLERY_DL
    return YTDLP


def page_url(url: str) -> str:
    """The http(s) URL of a listing, without gallery-dl's `generic:` prefix."""
    return _GENERIC_PREFIX.sub("", url.strip())


def list_gallery(url: str, *, cookies: Path | None = None, limit: int | None = None,
                 since: datetime | None = None, allow_private: bool = False, sleep_s: float = 0.0,
                 backoff_s: float = 60.0, trust_named: bool = True) -> Listing:
    """The posts with a video that gallery-dl lists at `url`, without downloading any of them.

    `limit` stops after that many posts; `since` once the listing has gone past that time (a
    timeline lists newest first), leaving out the older posts it met. A site's HTTP 429 rests the
    listing as long as its Retry-After asks (else `backoff_s`, doubling), like the audit's
    downloads; `sleep_s` spaces out the listing's own requests."""
    require_cookies(cookies)
    from gallery_dl import config, exception, extractor  # slow to import: only pay for it when listing

    page = page_url(url)
    # trust_named false: not even the listing's own host may be private (a URL sent to the server).
    guard = netguard.Guard(typed=netguard.origin(page) if trust_named else None, allow_private=allow_private)
    with _CONFIG_LOCK, tempfile.TemporaryDirectory(prefix="provenance-gallery-") as tmp:
        settings: dict[str, Any] = {
            "retries": _RETRIES, "timeout": _TIMEOUT_S, "sleep-request": sleep_s,
            # _Rest429 decides how long a 429 rests the site; gallery-dl must not add its own minute.
            "sleep-429": 0,
            # Only the guard's proxy, never one from the environment (nor .netrc credentials).
            "proxy-env": False,
            "cookies-update": False,
        }
        if cookies is not None:
            settings["cookies"] = str(copy_cookies(cookies, Path(tmp)))
        config.clear()
        try:
            with netguard.guarded(guard) as proxy:
                config.set((), "extractor", {**settings, "proxy": proxy})
                # In memory: logins and guest tokens are not written to the user's home.
                config.set(("cache",), "file", ":memory:")
                extr = extractor.find(url.strip())
                if extr is None and not _GENERIC_PREFIX.match(url.strip()):
                    # Not a site gallery-dl knows: its generic extractor looks for video links in
                    # the page, as yt-dlp's generic extractor would.
                    extr = extractor.find("generic:" + url.strip())
                if extr is None:
                    raise InputError(f"gallery-dl cannot list {url}; give the URL of a profile, its media tab, "
                                     f"a search or a list")
                listing = collect(extr, limit=limit, since=since, backoff_s=backoff_s)
        except exception.GalleryDLException as e:
            if (refusal := guard.refusal()) is not None:
                raise InputError(refusal) from e
            raise classify_gallerydl_error(e, url) from e
        except OSError as e:  # requests' errors are OSErrors: a connection refused, a proxy refusal
            if (refusal := guard.refusal()) is not None:
                raise InputError(refusal) from e
            raise FetchError(f"listing failed: {type(e).__name__}: {e}") from e
        finally:
            config.clear()
    return listing


def collect(extr: Any, *, limit: int | None = None, since: datetime | None = None,
            backoff_s: float = 60.0) -> Listing:
    """Run a gallery-dl extractor and list its posts with a video (list_gallery sets the scene:
    configuration, proxy, cookies). Its errors are raised, not logged."""
    host = urlsplit(page_url(str(getattr(extr, "url", "")))).hostname or ""
    found = _Found(limit, since)
    _list_job()(extr, found=found, pacer=_Rest429(host, backoff_s)).run_collecting()
    if found.files == 0:
        # Not even a photo: on X, a login wall shows as an empty timeline rather than an error.
        raise FetchError(f"gallery-dl found nothing at all at {extr.url}; if there are posts, the site may need a "
                         f"login: pass --cookies FILE exported from a logged-in browser")
    return Listing(title=found.title, posts=tuple(found.posts.values()))


def classify_gallerydl_error(error: BaseException, url: str) -> Exception:
    """The ProvenanceError for a gallery-dl error met while listing `url`: one line, the fix named."""
    from gallery_dl import exception

    message = " ".join(str(error).split()) or type(error).__name__
    cookies_hint = "pass --cookies FILE exported from a logged-in browser"
    if isinstance(error, (exception.AuthorizationError, exception.AuthenticationError)):
        return FetchError(f"{url} cannot be listed without a login, or the account is protected ({message}); "
                          f"{cookies_hint} of an account allowed to see it")
    if isinstance(error, exception.NotFoundError):
        return FetchError(f"{url} was not found ({message}); the account may be suspended, deleted or renamed")
    if isinstance(error, exception.HttpError):
        status = error.status
        if status == 429:
            return RateLimitedError(f"rate limited (HTTP 429) by {urlsplit(url).hostname} while listing; "
                                    f"wait a while and retry", retry_after=retry_after(error.response))
        if status in (401, 403):
            return FetchError(f"access denied (HTTP {status}) while listing {url}; {cookies_hint}")
        if status in (404, 410):
            return FetchError(f"not found (HTTP {status}): {url}; the account may be suspended or the link wrong")
        return FetchError(f"listing failed: {message}")
    if isinstance(error, exception.NoExtractorError):
        return InputError(f"gallery-dl cannot list {url}; give the URL of a profile, its media tab, a search or a list")
    return FetchError(f"listing {url} failed: {message}")


def retry_after(response: Any) -> float | None:
    """The seconds a 429's Retry-After header asks for (its HTTP-date form is not worth parsing here)."""
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    if value is not None and str(value).strip().isdigit():
        return float(str(value).strip())
    return None


# --- one listed file -> one post ------------------------------------------------------------------


def listed_post(url: str, kwdict: dict[str, Any]) -> ListedPost | None:
    """The post a file gallery-dl listed belongs to, or None if the file is not a video.

    On X, the post is the tweet (`tweet_id`, posted by `author`, which for a quoted tweet listed
    with gallery-dl's `quoted` option is the quoted author, not the profile's); its time and its
    video's upload time are decoded from their snowflake ids, as `check` does. Elsewhere the post
    is the video file itself."""
    if kwdict.get("category") == "twitter" or "tweet_id" in kwdict:
        return _x_post(url, kwdict)
    extension = str(kwdict.get("extension") or _extension(url)).lower()
    if extension not in _VIDEO_EXTENSIONS:
        return None
    # The generic extractor's title is the page's, the listing's title, not one post's.
    title = None if kwdict.get("category") == "generic" else _text(kwdict.get("title"))
    return ListedPost(url=url, posted_at=_aware(kwdict.get("date")), title=title)


def _x_post(url: str, kwdict: dict[str, Any]) -> ListedPost | None:
    if kwdict.get("type") not in _X_VIDEO_TYPES and kwdict.get("extension") != "mp4":
        return None
    tweet_id = str(kwdict.get("tweet_id") or "")
    if not tweet_id.isdecimal() or not tweet_id.isascii():
        return None
    author = kwdict.get("author") if isinstance(kwdict.get("author"), dict) else {}
    name = _text(author.get("name"))
    # x.com/i/status/ID redirects to the post whoever wrote it; with the author's name it reads better.
    post_url = f"https://x.com/{name}/status/{tweet_id}" if name and re.fullmatch(r"\w{1,50}", name) \
        else f"https://x.com/i/status/{tweet_id}"
    media_id = _text(kwdict.get("media_id"))
    if media_id is None and (found := _X_MEDIA_ID.match(url)):
        media_id = found.group(1)
    # The id is the post's creation time to the millisecond; gallery-dl's `date` (the same,
    # to the second, or the created_at text for pre-snowflake tweets) when it is not a snowflake.
    posted_at = snowflake_time(tweet_id) or _aware(kwdict.get("date"))
    source_id = str(kwdict.get("source_id") or "")
    return ListedPost(url=post_url, posted_at=posted_at, title=_text(kwdict.get("content"), 300),
                      post_id=tweet_id, author=name, media_id=media_id,
                      media_posted_at=snowflake_time(media_id) if media_id else None,
                      source_post_id=source_id if source_id.isdecimal() and source_id != "0" else None)


def _listing_title(kwdict: dict[str, Any]) -> str | None:
    """A page's title; on X, whose posts these are (the profile's owner, or the search or list)."""
    user = kwdict.get("user")
    if isinstance(user, dict) and _text(user.get("name")):
        nick = _text(user.get("nick"), 100)
        return f"{nick} (@{_text(user.get('name'), 50)})" if nick else f"@{_text(user.get('name'), 50)}"
    return _text(kwdict.get("og_title") or kwdict.get("title") or kwdict.get("search"), 300)


def _extension(url: str) -> str:
    return urlsplit(url).path.rpartition("/")[2].rpartition(".")[2]


def _aware(value: object) -> datetime | None:
    """gallery-dl's dates are naive UTC; its 'no date' is a datetime of year 1."""
    if not isinstance(value, datetime) or value.year < 1970:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _text(value: object, limit: int = 500) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = " ".join(str(value).split())
    return text[:limit] or None


# --- running gallery-dl ----------------------------------------------------------------------------


class _Rest429:
    """A site's 429 while listing: rest as long as Retry-After asks (else a doubling back-off),
    capped like the audit's, then ask again; after RATE_LIMIT_TRIES in a row, give up."""

    def __init__(self, host: str, backoff_s: float) -> None:
        self.host, self.backoff_s, self.strikes = host, backoff_s, 0

    def __call__(self, response: Any) -> bool:
        from .audit import BACKOFF_MAX_S, RATE_LIMIT_TRIES

        self.strikes += 1
        if self.strikes >= RATE_LIMIT_TRIES:
            return False  # gallery-dl raises its HttpError(429), classified as RateLimitedError
        asked = retry_after(response)
        rest = min(asked if asked is not None else self.backoff_s * 2 ** (self.strikes - 1), BACKOFF_MAX_S)
        log.info("HTTP 429 from %s while listing; resting %.0f s", self.host, rest)
        time.sleep(rest)
        return True


class _StopListing(Exception):
    """Enough posts listed (--limit), or the listing has gone past --since."""


class _Found:
    """What a job and the jobs it queues have listed so far, and when to stop."""

    def __init__(self, limit: int | None, since: datetime | None) -> None:
        self.limit, self.since = limit, since
        self.posts: dict[str, ListedPost] = {}  # by URL, in listing order: a post's later files add nothing
        self.title: str | None = None
        self.older_in_a_row = 0
        self.files = 0  # every file listed, videos or not, --since or not

    def add(self, post: ListedPost) -> None:
        if self.since is not None and post.posted_at is not None and post.posted_at < self.since:
            # Timelines list newest first: past --since, only older posts follow.
            self.older_in_a_row += 1
            if self.older_in_a_row >= _OLDER_IN_A_ROW:
                raise _StopListing()
            return
        self.older_in_a_row = 0
        self.posts.setdefault(post.url, post)
        if self.limit is not None and len(self.posts) >= self.limit:
            raise _StopListing()


def _make_list_job() -> type:
    from gallery_dl import exception, job

    class ListJob(job.Job):
        """Collects the posts with a video an extractor lists; downloads nothing."""

        def __init__(self, extr: Any, *, found: _Found, pacer: _Rest429, parent: Any = None,
                     depth: int = 0) -> None:
            extr.log = log  # wrapped by _wrap_logger below
            extr._handle_429 = pacer  # on this extractor only; the class's handler is untouched
            super().__init__(extr, parent)
            self.found, self.pacer, self.depth = found, pacer, depth

        def _wrap_logger(self, logger: Any) -> Any:
            return _QuietLog(logger)

        def _init(self) -> None:
            super()._init()
            # Extractors pass the `proxy` option with each of their requests; set on the session
            # too, a request made with the session directly goes through the guard as well.
            if (session := getattr(self.extractor, "session", None)) is not None:
                session.proxies = dict(self.extractor._proxies or {})

        def run_collecting(self) -> None:
            """Run the extractor to the end (or the limit); its errors are raised, not logged."""
            self._init()
            try:
                self.dispatch(self.extractor)
            except (_StopListing, exception.StopExtraction):
                pass

        def handle_directory(self, kwdict: dict[str, Any]) -> None:
            if self.found.title is None:
                self.found.title = _listing_title(kwdict)

        def handle_url(self, url: str, kwdict: dict[str, Any]) -> None:
            self.found.files += 1
            post = listed_post(url, {**kwdict, "category": self.extractor.category})
            if post is not None:
                self.found.add(post)

        def handle_queue(self, url: str, kwdict: dict[str, Any]) -> None:
            if self.depth >= _QUEUE_DEPTH:
                log.debug("gallery-dl: not following %s", url)
                return
            from gallery_dl import extractor

            cls = kwdict.get("_extractor")
            child = cls.from_url(url) if cls else extractor.find(url)
            if child is None:
                log.debug("gallery-dl: no extractor for %s", url)
                return
            sub = ListJob(child, found=self.found, pacer=self.pacer, parent=self, depth=self.depth + 1)
            sub._init()
            sub.dispatch(child)

    return ListJob


class _QuietLog:
    """gallery-dl's chatter goes to logging, a level lower: a library never writes to the terminal,
    and what gallery-dl logs quotes pages and posts (escaped wherever it is shown)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def traceback(self, exc: BaseException) -> None:
        self.logger.debug("gallery-dl: traceback", exc_info=exc)

    def debug(self, msg: str, *args: object, **kwargs: object) -> None:
        self.logger.debug("gallery-dl: " + msg, *args)

    def info(self, msg: str, *args: object, **kwargs: object) -> None:
        self.logger.debug("gallery-dl: " + msg, *args)

    def warning(self, msg: str, *args: object, **kwargs: object) -> None:
        self.logger.info("gallery-dl: " + msg, *args)

    def error(self, msg: str, *args: object, **kwargs: object) -> None:
        self.logger.info("gallery-dl: " + msg, *args)


_LIST_JOB: list[type] = []


def _list_job() -> type:
    """The job class, made once gallery-dl is imported (which only a listing pays for)."""
    if not _LIST_JOB:
        _LIST_JOB.append(_make_list_job())
    return _LIST_JOB[0]
