"""Audit: check every post of an account, channel, playlist, feed or URL list against the library.

The audit and each post's state live in the database, so an audit killed at any moment (even
SIGKILL) resumes where it stopped: a post is marked done in the same transaction that records
its check, so no post is checked twice and nothing done is lost.

Downloads and hashing (`pipeline.analyse`) run in a few worker threads; matching and recording
(`pipeline.check_analysed`) run one post at a time in the calling thread, oldest post first, so
each post is checked exactly as `provenance check` would check it against everything recorded
before it, the account's own earlier posts included.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from . import __version__, pipeline
from .db import audits, session_scope
from .errors import InputError, ProvenanceError, RateLimitedError, StoreError
from .gallerylist import GALLERY_DL, LISTERS, YTDLP, choose_lister, list_gallery, page_url
from .listing import Listing, list_url, read_url_file
from .records import (AuditItemResult, AuditItemState, AuditResult, AuditSummary, Post, ReferenceFrames,
                      Verdict)
from .settings import Settings

log = logging.getLogger("provenance.audit")

# A few downloads at once: enough to keep the matcher busy while the next posts arrive, few enough
# to stay polite to one site (bench/audit_speed.py measures 1 against 4).
DEFAULT_WORKERS = 2
MAX_WORKERS = 16
# Seconds between the starts of two post downloads from one host, across all workers: about what
# yt-dlp users set with --sleep-requests for bulk downloads from one site.
DEFAULT_SLEEP_S = 1.0
# After an HTTP 429 without a Retry-After header, the host rests this long, doubling with each
# further 429 in a row up to BACKOFF_MAX_S; a post is tried RATE_LIMIT_TRIES times in all.
DEFAULT_BACKOFF_S = 60.0
BACKOFF_MAX_S = 15 * 60.0
RATE_LIMIT_TRIES = 4
KIND_LISTING, KIND_URLS = "listing", "urls"


@dataclass(frozen=True)
class AuditOptions:
    since: datetime | None = None  # only posts listed as posted at or after this (undated posts stay)
    limit: int | None = None  # only the first N posts of the listing (after --since)
    workers: int = DEFAULT_WORKERS
    sleep_s: float = DEFAULT_SLEEP_S
    backoff_s: float = DEFAULT_BACKOFF_S
    retry_failed: bool = False
    lister: str | None = None  # yt-dlp or gallery-dl for a new listing; None chooses by site (choose_lister)


@dataclass(frozen=True)
class AuditProgress:
    """Sent once when the audit starts (url None) and after each post it finishes."""

    audit_id: int
    total: int  # posts in the audit
    to_do: int  # posts this run set out to process
    processed: int  # of those, finished so far in this run
    reused: int  # over the whole audit, earlier runs included
    failed: int
    url: str | None = None  # the post just finished
    outcome: str | None = None  # its verdict, or "failed"
    detail: str | None = None  # the first-seen URL of a reuse, or the error of a failure


ProgressFn = Callable[[AuditProgress], None]


def audit(source: str | None = None, *, settings: Settings, urls_file: Path | None = None,
          resume: int | None = None, options: AuditOptions = AuditOptions(),
          progress: ProgressFn | None = None) -> AuditResult:
    """Audit the posts at `source` (a URL yt-dlp can list), in `urls_file`, or of audit `resume`.

    Without `resume`, the newest unfinished audit of the same source and listing options is
    resumed if there is one; else the source is listed and a new audit created."""
    if sum(x is not None for x in (source, urls_file, resume)) != 1:
        raise InputError("give exactly one of: a URL to list, --urls FILE, or --resume ID")
    if options.workers < 1:
        raise InputError(f"--workers must be at least 1, not {options.workers}")
    if options.sleep_s < 0:
        raise InputError(f"--sleep must be 0 or more seconds, not {options.sleep_s}")
    if options.lister is not None and source is None:
        raise InputError("--lister chooses how a URL is listed; drop it with --urls or --resume")
    if options.lister is not None and options.lister not in LISTERS:
        raise InputError(f"--lister must be one of {', '.join(LISTERS)}, not {options.lister!r}")
    engine = pipeline.open_library(settings)
    audit_id = _resolve(engine, source=source, urls_file=urls_file, resume=resume, options=options,
                        cookies=settings.cookies, allow_private=settings.allow_private_urls,
                        trust_named=settings.trust_named_host)
    if options.retry_failed:
        with session_scope(engine) as session:
            audits.retry_failed(audit_id, session=session)
    _Run(engine, audit_id, settings=settings, options=options, progress=progress).run()
    return load_result(engine, audit_id)


def list_all(*, settings: Settings) -> list[AuditSummary]:
    """Every audit in the library, newest first, with its counts."""
    engine = pipeline.open_library(settings)
    with session_scope(engine) as session:
        return audits.list_audits(session=session)


def load_result(engine: Engine, audit_id: int) -> AuditResult:
    """An audit as stored, each reuse marked self (the account's own earlier post) or cross."""
    with session_scope(engine) as session:
        result = audits.audit_result(audit_id, session=session)
    own_urls = {i.url for i in result.items} | {i.post.url for i in result.items if i.post and i.post.url}
    return replace(result, items=tuple(replace(i, reuse=_reuse_kind(i, own_urls)) for i in result.items))


def _reuse_kind(item: AuditItemResult, own_urls: set[str]) -> str | None:
    if item.verdict != Verdict.REUSED or item.first_seen is None:
        return None
    first = item.first_seen
    if first.url and first.url in own_urls:
        return "self"
    # Same named uploader on the same platform; the generic extractor names the website, not a person.
    same_uploader = (item.post is not None and first.uploader and first.uploader == item.post.uploader
                     and first.platform == item.post.platform and first.platform not in (None, "Generic", "local"))
    return "self" if same_uploader else "cross"


# --- which audit -------------------------------------------------------------------------------


def _resolve(engine: Engine, *, source: str | None, urls_file: Path | None, resume: int | None,
             options: AuditOptions, cookies: Path | None, allow_private: bool = False,
             trust_named: bool = True) -> int:
    if resume is not None:
        with session_scope(engine) as session:
            if not audits.audit_exists(resume, session=session):
                raise InputError(f"no audit {resume} in this library; list them with: provenance audits")
        return resume
    kind, where = (KIND_URLS, str(Path(urls_file).expanduser().resolve())) if urls_file is not None \
        else (KIND_LISTING, str(source).strip())
    listing_options = {"since": options.since.isoformat() if options.since else None, "limit": options.limit}
    lister = (options.lister or choose_lister(where)) if kind == KIND_LISTING else None
    # The lister decides which posts are listed, so it is part of the audit's identity; yt-dlp, the
    # only lister before gallery-dl, stays out of the key so that audits begun then still resume.
    keyed = {**listing_options, "lister": lister} if lister == GALLERY_DL else listing_options
    key = hashlib.sha256(json.dumps([kind, where, keyed], sort_keys=True).encode()).hexdigest()
    if lister is not None:
        listing_options["lister"] = lister
    with session_scope(engine) as session:
        found = audits.find_audit(key, session=session, unfinished=True)
        if found is None and options.retry_failed:
            found = audits.find_audit(key, session=session, unfinished=False)
    if found is not None:
        log.info("resuming audit %d of %s", found, where)
        return found
    listed_limit = None if options.since else options.limit
    if kind == KIND_URLS:
        listing = read_url_file(Path(where))
    elif lister == GALLERY_DL:
        listing = list_gallery(where, cookies=cookies, limit=listed_limit, since=options.since,
                               allow_private=allow_private, sleep_s=options.sleep_s, backoff_s=options.backoff_s,
                               trust_named=trust_named)
    else:
        listing = list_url(where, cookies=cookies, limit=listed_limit, allow_private=allow_private,
                           trust_named=trust_named)
    posts = _select(listing, since=options.since, limit=options.limit)
    # The audit and all its posts in one transaction: a kill while listing leaves nothing behind.
    with session_scope(engine) as session:
        return audits.create_audit(
            session=session, kind=kind, source=where, options=listing_options, key=key, title=listing.title,
            created_at=_now(), tool_version=__version__, posts=[(p.url, p.posted_at, p.title) for p in posts])


def lister_of(result: AuditResult) -> str | None:
    """Which tool listed the audit's posts: None for a URL list; audits from before gallery-dl
    was a lister were all listed by yt-dlp."""
    if result.kind != KIND_LISTING:
        return None
    return str(result.options.get("lister") or YTDLP)


def _select(listing: Listing, *, since: datetime | None, limit: int | None) -> list:
    posts = [p for p in listing.posts if since is None or p.posted_at is None or p.posted_at >= since]
    return posts[:limit] if limit is not None else posts


def _processing_order(items: list[AuditItemState]) -> list[AuditItemState]:
    """Oldest post first, so that a post reusing the account's earlier footage finds it recorded.
    Posts the listing gave no date come last, from the end of the listing up: channels and feeds
    list their newest post first."""
    dated = sorted((i for i in items if i.posted_at), key=lambda i: (i.posted_at, i.position))
    undated = sorted((i for i in items if not i.posted_at), key=lambda i: -i.position)
    return dated + undated


# --- running -----------------------------------------------------------------------------------


class AuditStopped(Exception):
    """Raised in a worker waiting for its turn when the audit stops (Ctrl-C, a database error)."""


class HostPacer:
    """Spaces out the posts fetched from each host, across workers, and rests a host after a 429."""

    def __init__(self, interval_s: float, backoff_s: float) -> None:
        self.interval_s = interval_s
        self.backoff_s = backoff_s
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._strikes: dict[str, int] = {}
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Wake every worker waiting for its turn; they give up instead of fetching."""
        self._stopped.set()

    def wait(self, host: str) -> None:
        """Block until this host may be asked again, and claim that turn."""
        while True:
            with self._lock:
                now = time.monotonic()
                start = self._next.get(host, 0.0)
                if start <= now:
                    self._next[host] = now + self.interval_s
                    return
            if self._stopped.wait(start - now):
                raise AuditStopped("the audit is stopping")

    def rate_limited(self, host: str, retry_after: float | None) -> float:
        """Rest the host after a 429: as long as it asked, else an exponential back-off. Returns the rest."""
        with self._lock:
            strikes = self._strikes[host] = self._strikes.get(host, 0) + 1
            # Retry-After comes from the site: capped like the back-off, or one header could park
            # the audit for years.
            rest = min(retry_after if retry_after is not None else self.backoff_s * 2 ** (strikes - 1),
                       BACKOFF_MAX_S)
            self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + rest)
            return rest

    def succeeded(self, host: str) -> None:
        with self._lock:
            self._strikes.pop(host, None)


class _Run:
    def __init__(self, engine: Engine, audit_id: int, *, settings: Settings, options: AuditOptions,
                 progress: ProgressFn | None) -> None:
        self.engine, self.audit_id, self.settings, self.options = engine, audit_id, settings, options
        self.progress = progress
        self.pacer = HostPacer(options.sleep_s, options.backoff_s)

    def run(self) -> None:
        with session_scope(self.engine) as session:
            items = _processing_order(audits.pending_items(self.audit_id, session=session))
            so_far = audits.audit_result(self.audit_id, session=session)
        total = len(so_far.items)
        # A listing's posts were found in a page, not typed: only the listing's own host may be private.
        self.named_by_user = page_url(so_far.source) if so_far.kind == KIND_LISTING else None
        self.reused = so_far.count(verdict=Verdict.REUSED)
        self.failed = so_far.count(state=audits.FAILED)
        self._report(total, len(items), 0)
        if items:
            library = pipeline.load_library(self.engine)
            with ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="audit") as pool:
                try:
                    for n, (item, analysed) in enumerate(self._analysed(pool, items), 1):
                        library = self._record(item, analysed, library)
                        self._report(total, len(items), n, item)
                except BaseException:
                    # Stop handing out posts and wake the workers resting for a site; leaving the
                    # `with` still waits for downloads already running, which are then forgotten.
                    self.pacer.stop()
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        with session_scope(self.engine) as session:
            audits.finish_audit(self.audit_id, session=session, at=_now())

    def _analysed(self, pool: ThreadPoolExecutor,
                  items: list[AuditItemState]) -> Iterator[tuple[AuditItemState, Future]]:
        """Each item with its finished analysis, in processing order, keeping a few downloads ahead."""
        ahead = self.options.workers * 2
        queue: list[tuple[AuditItemState, Future]] = []
        todo = iter(items)
        for item in todo:
            queue.append((item, pool.submit(self._analyse, item)))
            if len(queue) >= ahead:
                break
        while queue:
            item, future = queue.pop(0)
            future.exception()  # wait for it
            nxt = next(todo, None)
            if nxt is not None:
                queue.append((nxt, pool.submit(self._analyse, nxt)))
            yield item, future

    def _analyse(self, item: AuditItemState) -> tuple[pipeline.AnalysedClip, Post]:
        host = (urlsplit(item.url).hostname or "").lower()
        for attempt in range(1, RATE_LIMIT_TRIES + 1):
            self.pacer.wait(host)
            try:
                clip, post = pipeline.analyse(item.url, settings=self.settings, query=True,
                                              named_by_user=self.named_by_user)
            except RateLimitedError as e:
                if attempt == RATE_LIMIT_TRIES:
                    raise
                rest = self.pacer.rate_limited(host, e.retry_after)
                log.info("HTTP 429 from %s; resting %.0f s before %s", host, rest, item.url)
                continue
            self.pacer.succeeded(host)
            return clip, post
        raise AssertionError("unreachable")

    def _record(self, item: AuditItemState, analysed: Future, library: ReferenceFrames) -> ReferenceFrames:
        """Check and record one analysed post, or record its failure; returns the library to match the next with."""
        def mark_done(session: Session, check_id: int) -> None:
            if not audits.finish_item(item.item_id, session=session, check_id=check_id, at=_now()):
                raise _AlreadyDone  # rolls the check back with it

        try:
            clip, post = analysed.result()
            post = _with_listed_time(post, item)
            # With a TSA, each post's clip is stamped before its check is recorded, as `check --tsa`
            # does; a TSA that fails fails this post (exit 3, retried by --retry-failed).
            stamps = pipeline.stamp_clip(clip, settings=self.settings)
            pipeline.check_analysed(clip, post, engine=self.engine, library=library, on_recorded=mark_done,
                                    stamps=stamps)
        except _AlreadyDone:
            log.info("%s was checked by another run of audit %d meanwhile", item.url, self.audit_id)
            return library
        except StoreError:
            raise  # the database or the evidence store is gone: nothing more can be recorded
        except ProvenanceError as e:
            self._fail(item, e.message, e.exit_code)
            return library
        except Exception as e:  # one post's surprise must not stop the audit; it is logged in full
            log.exception("unexpected error on %s", item.url)
            self._fail(item, f"unexpected error: {type(e).__name__}: {e}", 1)
            return library
        # The next post must be able to match this one.
        return pipeline.load_library(self.engine)

    def _fail(self, item: AuditItemState, message: str, code: int) -> None:
        with session_scope(self.engine) as session:
            audits.fail_item(item.item_id, session=session, error=message, error_code=code, at=_now())

    def _report(self, total: int, to_do: int, processed: int, item: AuditItemState | None = None) -> None:
        outcome = detail = None
        if item is not None:
            with session_scope(self.engine) as session:
                (row,) = audits.audit_result(self.audit_id, session=session, item_id=item.item_id).items
            outcome = row.verdict if row.state == audits.DONE else row.state
            detail = row.error if row.state == audits.FAILED else (row.first_seen.url if row.first_seen else None)
            if row.verdict == Verdict.REUSED:
                self.reused += 1
            if row.state == audits.FAILED:
                self.failed += 1  # retried posts were pending, not failed, when the run began
        if self.progress is not None:
            self.progress(AuditProgress(audit_id=self.audit_id, total=total, to_do=to_do, processed=processed,
                                        reused=self.reused, failed=self.failed,
                                        url=item.url if item else None, outcome=outcome, detail=detail))


class _AlreadyDone(Exception):
    """Another process running the same audit recorded this post first."""


def _with_listed_time(post: Post, item: AuditItemState) -> Post:
    """The listing's date (a feed's pubDate) when the post itself has none, or when the post comes
    from yt-dlp's generic extractor, whose only date may be a web server's Last-Modified header."""
    if item.posted_at is not None and (post.posted_at is None or post.platform == "Generic"):
        return replace(post, posted_at=item.posted_at)
    return post


def _now() -> datetime:
    return datetime.now(UTC)
