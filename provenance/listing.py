"""Listing: which posts an account, channel, playlist or feed has. One function per kind of source.

Every lister returns a `Listing`; a new source is one more function. Nothing here downloads a
video: the audit fetches each listed post afterwards, exactly as `provenance check` would.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import InputError
from . import netguard
from .fetch import YtdlpLogger, classify_ytdlp_error, copy_cookies, require_cookies, strip_smuggled
from .snowflake import X_HOSTS
from .ytinfo import info_time, str_or_none

log = logging.getLogger("provenance.listing")

# An X post or its media; anything else on X (a profile, its /media tab, a list) is a listing.
_X_POST = re.compile(r"^/[^/]+/status/\d+|^/i/(web/)?status/\d+")
# How to make a URL list of an X profile with gallery-dl (yt-dlp cannot list X profiles): one line
# per video (a post with several media repeats, which the URL-list reader drops).
X_EXPORT_HINT = ("gallery-dl --cookies cookies.txt --filter \"extension == 'mp4'\" "
                 "--print \"https://x.com/i/status/{tweet_id}\" URL > posts.txt")


@dataclass(frozen=True)
class ListedPost:
    url: str
    posted_at: datetime | None = None  # what the listing says (a feed's pubDate), aware UTC
    title: str | None = None
    # What gallery-dl's X listing says of the post (see gallerylist.py); None from other listings.
    post_id: str | None = None  # the tweet id, a snowflake: posted_at is decoded from it
    author: str | None = None  # the author's handle, without @
    media_id: str | None = None  # the video's own id, a snowflake of its upload
    media_posted_at: datetime | None = None  # decoded from media_id; days before posted_at suggests reuse
    source_post_id: str | None = None  # X names the post this video was first posted in, when re-posted


@dataclass(frozen=True)
class Listing:
    title: str | None  # the channel's, playlist's or feed's own title
    posts: tuple[ListedPost, ...]  # in the listing's order, each URL once


def list_url(url: str, *, cookies: Path | None = None, limit: int | None = None,
             allow_private: bool = False, trust_named: bool = True) -> Listing:
    """The posts yt-dlp lists at `url` (a channel, playlist, account or RSS feed), without
    downloading any of them (yt-dlp's flat extraction). `limit` stops after that many entries.
    `trust_named` false: not even `url`'s own host may be private (a URL sent to the server)."""
    host = (urlsplit(url).hostname or "").lower()
    if host in X_HOSTS and not _X_POST.match(urlsplit(url).path):
        raise InputError(f"yt-dlp cannot list X profiles; drop --lister yt-dlp (gallery-dl lists them), or export "
                         f"the post URLs with gallery-dl, e.g. {X_EXPORT_HINT}, then run: provenance audit --urls posts.txt")
    require_cookies(cookies)
    import yt_dlp  # slow to import: only pay for it when a URL is listed

    opts: dict[str, Any] = {
        "quiet": True,
        "noprogress": True,
        "logger": YtdlpLogger(log),
        # The entries as listed (URL, title, date), not each post's page: that is the audit's job.
        "extract_flat": "in_playlist",
        "socket_timeout": 30,
        "retries": 2,
        "extractor_retries": 1,
        "cachedir": False,
    }
    if limit is not None:
        opts["playlistend"] = limit
    with tempfile.TemporaryDirectory(prefix="provenance-list-") as tmp:
        if cookies is not None:
            opts["cookiefile"] = str(copy_cookies(cookies, Path(tmp)))
        guard = netguard.Guard(typed=netguard.origin(url) if trust_named else None, allow_private=allow_private)
        try:
            with netguard.guarded(guard) as proxy, yt_dlp.YoutubeDL({**opts, "proxy": proxy}) as ydl:
                info = ydl.sanitize_info(ydl.extract_info(url, download=False))
        except yt_dlp.utils.YoutubeDLError as e:
            if (refusal := guard.refusal()) is not None:
                raise InputError(refusal) from e
            raise classify_ytdlp_error(e, url) from e
    if info.get("_type") != "playlist" and "entries" not in info:
        raise InputError(f"{url} is a single post, not a list of posts; check it with: provenance check {url}")
    posts = []
    for entry in info.get("entries") or []:
        if not entry:
            continue
        post_url = entry.get("url") or entry.get("webpage_url")
        if not isinstance(post_url, str) or not post_url:
            continue
        # An RSS item's guid travels smuggled in its URL; the post is the plain link.
        posts.append(ListedPost(url=strip_smuggled(post_url), posted_at=info_time(entry),
                                title=str_or_none(entry.get("title"))))
    return Listing(title=str_or_none(info.get("title")), posts=_unique(posts))


def read_url_file(path: Path) -> Listing:
    """Post URLs from a text file, one per line; blank lines and `#` comments are skipped and a
    URL given twice is kept once (gallery-dl repeats a post per media file)."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"no such file: {path}; give a text file with one post URL per line") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory; give a text file with one post URL per line") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {path} as UTF-8 text: {e}") from e
    posts = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not re.match(r"^https?://\S+$", line, re.IGNORECASE):
            raise InputError(f"{path} line {n} is not an http(s) URL: {line[:80]!r}; "
                             f"put one post URL per line (# starts a comment)")
        posts.append(ListedPost(url=line))
    if not posts:
        raise InputError(f"{path} has no URLs; put one post URL per line")
    return Listing(title=path.name, posts=_unique(posts))


def _unique(posts: list[ListedPost]) -> tuple[ListedPost, ...]:
    seen: set[str] = set()
    out = []
    for p in posts:
        if p.url not in seen:
            seen.add(p.url)
            out.append(p)
    return tuple(out)

