"""Audits, folder ingests and checks as jobs on the library's PostgreSQL, run by `provenance worker`
processes on any number of machines.

The queue is procrastinate's (PostgreSQL tables and functions: a job is taken with
SELECT .. FOR UPDATE SKIP LOCKED, so two workers never take the same one; retries; worker
heartbeats, from which a job whose worker died is found). Why procrastinate and not Celery, Dramatiq
or RQ: those need a broker beside the database (RabbitMQ or Redis), one more server for a newsroom to
run, back up and secure, and a job's state would then live apart from the audit it belongs to; a
team library is already on PostgreSQL, and procrastinate keeps the queue there, in the same
database, with stalled-job recovery built on heartbeats rather than on broker acknowledgements.

What each job keeps where:
- An audit's state stays in the audit tables (db/audits.py), exactly as for an audit run in one
  process: a post is marked done in the transaction that records its check, guarded by its state,
  so a post is recorded once however many times its job runs (a worker killed mid-job, a job
  queued twice). `provenance audits`, reports and `--retry-failed` cannot tell the difference.
- Posts are downloaded and hashed in parallel by every worker, but recorded in the audit's
  processing order (oldest first): a post's job waits for every earlier post to be done or
  failed, so a post reusing the account's earlier footage finds it, as in one process.
- Sites are paced across all workers by one row per host (`provenance_host_pace`), using the
  database's clock: `--sleep` between two downloads from a host and a 429's rest (Retry-After,
  else the doubling back-off) hold for every machine, not per process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from .errors import InputError, ProvenanceError, RateLimitedError, StoreError
from .settings import Settings

if TYPE_CHECKING:
    import procrastinate

    from .audit import AuditOptions, AuditProgress

log = logging.getLogger("provenance.jobs")

TASK_AUDIT_POST = "provenance.audit_post"
TASK_INGEST_FILE = "provenance.ingest_file"
TASK_CHECK = "provenance.check"
QUEUE_AUDIT, QUEUE_INGEST, QUEUE_CHECK = "audit", "ingest", "check"
QUEUES = (QUEUE_AUDIT, QUEUE_INGEST, QUEUE_CHECK)
PACE_TABLE = "provenance_host_pace"

# A job whose worker died (SIGKILL, the OOM killer, a decoder crash taking the process down) is
# taken again this many times in all; then it is failed, its post recorded as failed, and the
# queue goes on: the same post killing three workers is the post, not bad luck.
MAX_TRIES = 3
# A job that hit a database error (the server restarting) is tried again after this many seconds,
# up to this many times: a restart takes seconds, a failover under a minute.
STORE_RETRY_WAIT_S = 5
STORE_RETRIES = 12
# How often a waiting post looks whether the posts before it are recorded: a query of one index
# range; a post's own check takes seconds.
TURN_POLL_S = 0.2
# A post before this one that no worker is running (its job is still queued, or has none) for this
# long: this job hands its slot over (queues itself again) instead of waiting, or every slot of every
# worker could be held by posts waiting for one that no slot is left to run. Longer than the moment
# between two workers taking jobs at once, where an earlier job can be seen queued.
TURN_GRACE_S = 5.0
# How often the follower of an audit (`audit --queue`) reads its posts' states.
FOLLOW_POLL_S = 1.0


def queue_available() -> bool:
    """Whether procrastinate is installed (it comes with the postgres extra)."""
    import importlib.util

    return importlib.util.find_spec("procrastinate") is not None


def require_postgresql(db_url: str, what: str = "--queue") -> None:
    """A queue lives in PostgreSQL: an SQLite library is refused with one line (exit 2)."""
    try:
        backend = make_url(db_url).get_backend_name()
    except Exception:  # noqa: BLE001 - a malformed URL is connect()'s to explain
        return
    if backend != "postgresql":
        raise InputError(f"{what} needs a PostgreSQL library (--db postgresql+psycopg://...): the job queue "
                         "lives in PostgreSQL; an SQLite library runs audits and ingests in this process: "
                         f"drop {what}")


def conninfo(db_url: str) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL URL (procrastinate connects with psycopg itself)."""
    return make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- schema --------------------------------------------------------------------------------------


def install_schema(engine: Engine) -> bool:
    """Create procrastinate's tables and functions and the pacing table, once, in one transaction
    (serialised with schema migrations by the same advisory lock). Returns True when created now.

    Applied by `provenance db upgrade` on PostgreSQL, not as an Alembic revision: procrastinate owns
    and versions its schema (its own migration files, one per release), it exists only on
    PostgreSQL, and it holds the queue, not library data (so export/import leave it out)."""
    from procrastinate.schema import SchemaManager

    from .db.engine import PG_SCHEMA_LOCK

    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_SCHEMA_LOCK})
            created = conn.scalar(text("SELECT to_regclass('procrastinate_jobs')")) is None
            if created:
                # Run by psycopg without parameters, so its % signs are not taken as placeholders.
                conn.connection.dbapi_connection.cursor().execute(SchemaManager.get_schema())
            conn.execute(text(f"CREATE TABLE IF NOT EXISTS {PACE_TABLE} (host TEXT PRIMARY KEY, "
                              "next_at TIMESTAMPTZ NOT NULL, strikes INTEGER NOT NULL DEFAULT 0)"))
    except SQLAlchemyError as e:
        from .db.engine import driver_message

        raise StoreError(f"cannot create the job queue's tables: {driver_message(e)}") from e
    return created


def require_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        missing = conn.scalar(text("SELECT to_regclass('procrastinate_jobs') IS NULL "
                                   f"OR to_regclass('{PACE_TABLE}') IS NULL"))
    if missing:
        raise StoreError("this library has no job queue yet; run: provenance db upgrade")


# --- the procrastinate app -----------------------------------------------------------------------


def make_app(db_url: str) -> "procrastinate.App":
    """The app with provenance's tasks, connected to the library's PostgreSQL (not opened yet)."""
    if not queue_available():
        raise InputError("the job queue needs procrastinate, which is not installed here: "
                         "pip install 'provenance[postgres]'")
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(db_url)))
    # A database error is worth another try a little later: the server may be restarting.
    on_store = procrastinate.RetryStrategy(max_attempts=STORE_RETRIES, wait=STORE_RETRY_WAIT_S,
                                           retry_exceptions={StoreError})
    app.task(name=TASK_AUDIT_POST, queue=QUEUE_AUDIT, retry=on_store, pass_context=True)(_audit_post_task)
    app.task(name=TASK_INGEST_FILE, queue=QUEUE_INGEST, retry=on_store, pass_context=True)(_ingest_file_task)
    app.task(name=TASK_CHECK, queue=QUEUE_CHECK, retry=on_store, pass_context=True)(_check_task)
    return app


@dataclass
class WorkerState:
    """What the tasks of one worker process share: its settings (evidence store, cookies), the
    library's engine, its app (to queue jobs again) and its decoder processes. Set by provenance.worker."""

    settings: Settings
    engine: Engine
    app: "procrastinate.App"
    decoders: "DecoderPool"


_state: WorkerState | None = None


def set_worker_state(state: WorkerState | None) -> None:
    global _state
    _state = state


def _worker() -> WorkerState:
    if _state is None:
        raise RuntimeError("provenance jobs run inside `provenance worker`")
    return _state


# --- queueing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedAudit:
    audit_id: int
    posts: int  # posts in the audit
    queued: int  # jobs queued now (posts pending and not already queued or running)


def queue_audit(source: str | None, *, settings: Settings, urls_file: Path | None = None,
                resume: int | None = None, options: "AuditOptions") -> QueuedAudit:
    """List the posts (or find the audit to resume) as `audit` does, then queue one job per pending
    post that has no job queued or running, in processing order."""
    from . import audit as audit_lib, pipeline
    from .db import audits, session_scope
    from .records import AuditItemState

    require_postgresql(settings.db_url)
    engine = pipeline.open_library(settings)
    require_schema(engine)
    audit_id = audit_lib.resolve_audit(engine, source=source, urls_file=urls_file, resume=resume,
                                       options=options, settings=settings)
    if options.retry_failed:
        with session_scope(engine) as session:
            audits.retry_failed(audit_id, session=session)
    with session_scope(engine) as session:
        every = audits.audit_result(audit_id, session=session).items
    # Workers take jobs by priority: each post's is its place in the processing order of the whole
    # audit (oldest first), so that a post queued again (handed over, retried, --retry-failed) takes
    # its place in the line, not the end of it.
    order = audit_lib.processing_order([AuditItemState(item_id=i.item_id, position=i.position, url=i.url,
                                                       posted_at=i.listed_posted_at, title=i.title,
                                                       attempts=i.attempts) for i in every])
    priority = {item.item_id: -rank for rank, item in enumerate(order)}
    pending = {i.item_id for i in every if i.state == audits.PENDING}
    taken = _items_with_jobs(engine, audit_id)
    args = {"audit_id": audit_id, "sleep_s": options.sleep_s, "backoff_s": options.backoff_s,
            "allow_private": settings.allow_private_urls}
    todo = [i.item_id for i in order if i.item_id in pending and i.item_id not in taken]
    if todo:
        app = make_app(settings.db_url)
        with app.open():
            for item_id in todo:
                _defer_audit_post(app, {**args, "item_id": item_id}, priority=priority[item_id])
    if not pending:
        with session_scope(engine) as session:
            audits.finish_audit(audit_id, session=session, at=_now())
    return QueuedAudit(audit_id=audit_id, posts=len(every), queued=len(todo))


def _defer_audit_post(app: "procrastinate.App", args: dict[str, Any], *, priority: int) -> None:
    from procrastinate.exceptions import AlreadyEnqueued

    try:
        # One queued job per post: queueing the audit again never queues a post twice.
        app.configure_task(TASK_AUDIT_POST, queue=QUEUE_AUDIT, priority=priority,
                           queueing_lock=f"audit-item-{args['item_id']}").defer(**args)
    except AlreadyEnqueued:
        pass


def _items_with_jobs(engine: Engine, audit_id: int) -> set[int]:
    """The posts of an audit that have a job queued or running."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT (args->>'item_id')::int FROM procrastinate_jobs WHERE task_name = :task "
            "AND status IN ('todo', 'doing') AND (args->>'audit_id')::int = :audit"),
            {"task": TASK_AUDIT_POST, "audit": audit_id}).scalars().all()
    return set(rows)


def live_workers(settings: Settings, *, within_s: float = 60.0) -> int:
    """Workers on this library that sent a heartbeat within `within_s` seconds."""
    from . import pipeline

    engine = pipeline.open_library(settings)
    with engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > "
                                "now() - make_interval(secs => :s)"), {"s": within_s}) or 0


def follow_audit(settings: Settings, audit_id: int, *,
                 progress: Callable[["AuditProgress"], None] | None = None,
                 poll_s: float = FOLLOW_POLL_S) -> None:
    """Wait until no post of the audit is pending, sending progress as posts finish (on whichever
    machine). Returns when the audit is done; interrupting it stops only the following."""
    from . import pipeline
    from .audit import AuditProgress
    from .db import audits, session_scope

    engine = pipeline.open_library(settings)
    with session_scope(engine) as session:
        seen = audits.item_states(audit_id, session=session)
    to_do = sum(1 for s in seen.values() if s == audits.PENDING)
    processed = 0

    def report(url: str | None = None, outcome: str | None = None, detail: str | None = None) -> None:
        if progress is None:
            return
        with session_scope(engine) as session:
            counts = audits.state_counts(audit_id, session=session)
        progress(AuditProgress(audit_id=audit_id, total=len(seen), to_do=to_do, processed=processed,
                               reused=counts["reused"], failed=counts[audits.FAILED], url=url, outcome=outcome,
                               detail=detail))

    report()
    while True:
        with session_scope(engine) as session:
            now = audits.item_states(audit_id, session=session)
        finished = [i for i, s in now.items() if s != audits.PENDING and seen.get(i) == audits.PENDING]
        for item_id in sorted(finished):
            processed += 1
            with session_scope(engine) as session:
                (row,) = audits.audit_result(audit_id, session=session, item_id=item_id).items
            outcome = row.verdict if row.state == audits.DONE else row.state
            detail = row.error if row.state == audits.FAILED else (row.first_seen.url if row.first_seen else None)
            report(row.url, outcome, detail)
        seen = now
        if not any(s == audits.PENDING for s in now.values()):
            with session_scope(engine) as session:
                audits.finish_audit(audit_id, session=session, at=_now())
            return
        time.sleep(poll_s)


@dataclass(frozen=True)
class QueuedIngest:
    batch: str  # names the jobs of this ingest, to follow them
    files: int  # video files found
    queued: int


def queue_ingest(folder: Path, *, settings: Settings) -> QueuedIngest:
    """One ingest job per video file below `folder` (by extension, as `ingest DIR` finds them). The
    folder must be readable at the same path by every worker (shared storage)."""
    import uuid

    from . import folder as folder_lib, pipeline

    require_postgresql(settings.db_url)
    root = Path(folder).expanduser().absolute()
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; give a folder of video files")
    engine = pipeline.open_library(settings)
    require_schema(engine)
    files = [p for p in sorted(folder_lib.files_below(root)) if p.suffix.lower() in folder_lib.VIDEO_EXTENSIONS]
    batch = uuid.uuid4().hex[:12]
    app = make_app(settings.db_url)
    with app.open():
        for path in files:
            app.configure_task(TASK_INGEST_FILE, queue=QUEUE_INGEST).defer(path=str(path), batch=batch)
    return QueuedIngest(batch=batch, files=len(files), queued=len(files))


@dataclass(frozen=True)
class BatchState:
    todo: int
    doing: int
    succeeded: int
    failed: int

    @property
    def finished(self) -> bool:
        return self.todo == 0 and self.doing == 0


def batch_state(engine: Engine, batch: str) -> BatchState:
    with engine.connect() as conn:
        rows = dict(conn.execute(text(
            "SELECT status::text, count(*) FROM procrastinate_jobs WHERE task_name = :task "
            "AND args->>'batch' = :batch GROUP BY status"), {"task": TASK_INGEST_FILE, "batch": batch}).all())
    return BatchState(todo=rows.get("todo", 0), doing=rows.get("doing", 0), succeeded=rows.get("succeeded", 0),
                      failed=rows.get("failed", 0) + rows.get("aborted", 0) + rows.get("cancelled", 0))


def follow_batch(settings: Settings, batch: str, *, progress: Callable[[BatchState], None] | None = None,
                 poll_s: float = FOLLOW_POLL_S) -> BatchState:
    from . import pipeline

    engine = pipeline.open_library(settings)
    while True:
        state = batch_state(engine, batch)
        if progress is not None:
            progress(state)
        if state.finished:
            return state
        time.sleep(poll_s)


def submit_check(settings: Settings, target: str, *, post_url: str | None = None,
                 posted_at: datetime | None = None) -> int:
    """Queue a check of a URL (or a file every worker can read); returns the job id. The check is
    recorded in the library like `provenance check` (find it by the post's URL, or in the job's
    events). The small job-runner interface for other front ends (a web service)."""
    require_postgresql(settings.db_url, "a queued check")
    from . import pipeline

    require_schema(pipeline.open_library(settings))
    app = make_app(settings.db_url)
    with app.open():
        return app.configure_task(TASK_CHECK, queue=QUEUE_CHECK).defer(
            target=target, post_url=post_url, posted_at=posted_at.isoformat() if posted_at else None,
            allow_private=settings.allow_private_urls)


def job_status(settings: Settings, job_id: int) -> str | None:
    """todo, doing, succeeded, failed, cancelled or aborted; None for no such job."""
    from . import pipeline

    with pipeline.open_library(settings).connect() as conn:
        return conn.scalar(text("SELECT status::text FROM procrastinate_jobs WHERE id = :id"), {"id": job_id})


# --- pacing across workers -----------------------------------------------------------------------


class SharedPacer:
    """provenance.audit.HostPacer's pacing, held in PostgreSQL so that it holds across every worker
    on every machine: one row per host with the time it may next be asked, by the database's clock
    (machines' clocks may differ; the database's is one)."""

    def __init__(self, engine: Engine, interval_s: float, backoff_s: float) -> None:
        self.engine, self.interval_s, self.backoff_s = engine, interval_s, backoff_s

    def wait(self, host: str) -> None:
        """Block until this host may be asked again, and claim that turn."""
        while True:
            with self._begin() as conn:
                # Claim the turn if it is due; else learn how long until it is.
                claimed = conn.execute(text(
                    f"INSERT INTO {PACE_TABLE} AS p (host, next_at) VALUES (:host, clock_timestamp() + "
                    "make_interval(secs => :gap)) ON CONFLICT (host) DO UPDATE SET next_at = "
                    "clock_timestamp() + make_interval(secs => :gap) WHERE p.next_at <= clock_timestamp() "
                    "RETURNING host"), {"host": host, "gap": self.interval_s}).first()
                if claimed is not None:
                    return
                left = conn.scalar(text(f"SELECT EXTRACT(EPOCH FROM next_at - clock_timestamp()) FROM {PACE_TABLE} "
                                        "WHERE host = :host"), {"host": host})
            time.sleep(min(max(float(left or 0), 0.05), 5.0))

    def rate_limited(self, host: str, retry_after: float | None) -> float:
        """Rest the host for every worker after a 429: as long as it asked, else an exponential back-off."""
        from .audit import BACKOFF_MAX_S

        with self._begin() as conn:
            strikes = conn.scalar(text(
                f"INSERT INTO {PACE_TABLE} AS p (host, next_at, strikes) VALUES (:host, clock_timestamp(), 1) "
                "ON CONFLICT (host) DO UPDATE SET strikes = p.strikes + 1 RETURNING strikes"), {"host": host})
            rest = min(retry_after if retry_after is not None else self.backoff_s * 2 ** (strikes - 1), BACKOFF_MAX_S)
            conn.execute(text(f"UPDATE {PACE_TABLE} SET next_at = GREATEST(next_at, clock_timestamp() + "
                              "make_interval(secs => :rest)) WHERE host = :host"), {"host": host, "rest": rest})
        return rest

    def succeeded(self, host: str) -> None:
        with self._begin() as conn:
            conn.execute(text(f"UPDATE {PACE_TABLE} SET strikes = 0 WHERE host = :host AND strikes > 0"),
                         {"host": host})

    @contextmanager
    def _begin(self) -> Iterator[Any]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            from .db.engine import driver_message

            raise StoreError(f"database error while pacing downloads: {driver_message(e)}") from e


# --- decoding in child processes -----------------------------------------------------------------


@dataclass(frozen=True)
class DecodeFailure:
    """Why a post could not be fetched or decoded, sent back from a decoder process (exceptions
    with extra fields do not survive pickling whole)."""

    message: str
    exit_code: int
    rate_limited: bool = False
    retry_after: float | None = None


def _analyse_in_child(url: str, settings: Settings, named_by_user: str | None) -> object:
    from . import pipeline

    try:
        return pipeline.analyse(url, settings=settings, query=True, named_by_user=named_by_user)
    except RateLimitedError as e:
        return DecodeFailure(e.message, e.exit_code, rate_limited=True, retry_after=e.retry_after)
    except ProvenanceError as e:
        return DecodeFailure(e.message, e.exit_code)
    except Exception as e:  # noqa: BLE001 - one post's surprise is that post's failure
        log.exception("unexpected error on %s", url)
        return DecodeFailure(f"unexpected error: {type(e).__name__}: {e}", 1)


# A warm-up task holds its process this long, so that each lands in a process of its own.
_WARM_HOLD_S = 0.5


def _warm_child() -> None:
    from . import pipeline  # noqa: F401 - the imports are the point

    time.sleep(_WARM_HOLD_S)


class DecoderPool:
    """Each post is fetched and decoded in a child process of the worker: a decoder that crashes
    (or is killed, or runs out of memory) ends that process only. The posts it had in flight are
    then decoded again, each alone in a new process; the one that ends that process too is the
    culprit, and fails with that reason, while the worker and its other jobs go on."""

    def __init__(self, size: int) -> None:
        import threading

        self.size = size
        self._lock = threading.Lock()
        self._pool: Any = None

    def analyse(self, url: str, settings: Settings, named_by_user: str | None) -> object:
        """(AnalysedClip, Post), or a DecodeFailure."""
        from concurrent.futures.process import BrokenProcessPool

        from .folder import decoder_pool, submit_decoding

        pool = self._current()
        try:
            return submit_decoding(pool, _analyse_in_child, url, settings, named_by_user).result()
        except BrokenProcessPool:
            self._discard(pool)
        log.info("a decoder process died with %s in flight; decoding it again alone", url)
        alone = decoder_pool(1)
        try:
            return submit_decoding(alone, _analyse_in_child, url, settings, named_by_user).result()
        except BrokenProcessPool:
            return DecodeFailure("the decoder process died on it (a decoder crash, or out of memory); the "
                                 "file may be damaged or too large: check it alone with: provenance check URL", 4)
        finally:
            alone.shutdown(wait=True, cancel_futures=True)

    def warm(self) -> None:
        """Start every decoder process now, its imports done (OpenCV, numpy: seconds each on a busy
        machine), so that the first jobs do not wait for them."""
        from .folder import submit_decoding

        pool = self._current()
        for future in [submit_decoding(pool, _warm_child) for _ in range(self.size)]:
            future.result()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _current(self) -> Any:
        from .folder import decoder_pool

        with self._lock:
            if self._pool is None:
                self._pool = decoder_pool(self.size)
            return self._pool

    def _discard(self, pool: Any) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)


# --- the tasks -----------------------------------------------------------------------------------


class _HandedOver(Exception):
    """A post waiting for its turn gave its slot to an earlier post that no worker was running."""


def _audit_post_task(context: Any, *, audit_id: int, item_id: int, sleep_s: float, backoff_s: float,
                     allow_private: bool) -> str:
    args = {"audit_id": audit_id, "item_id": item_id, "sleep_s": sleep_s, "backoff_s": backoff_s,
            "allow_private": allow_private}
    try:
        return run_audit_post(item_id, sleep_s=sleep_s, backoff_s=backoff_s, allow_private=allow_private)
    except _HandedOver as e:
        # Back in the line at its own place; the earlier posts no worker runs are queued (again)
        # before it, one step higher each, in case their jobs were lost.
        priority = context.job.priority
        _defer_audit_post(_worker().app, args, priority=priority)
        for earlier in e.args[0]:
            _defer_audit_post(_worker().app, {**args, "item_id": earlier}, priority=priority + 1)
        log.info("post %d waits for posts %s that no worker runs: handed its place over", item_id, e.args[0])
        return "handed over"


def run_audit_post(item_id: int, *, sleep_s: float, backoff_s: float, allow_private: bool) -> str:
    """Check and record one post of an audit, as provenance.audit does in one process. Returns what
    happened: done, failed, or skipped (not pending any more: recorded by an earlier run of its job)."""
    from . import pipeline
    from .audit import KIND_LISTING, AlreadyDone, RATE_LIMIT_TRIES, with_listed_time
    from .db import audits, session_scope
    from .gallerylist import page_url

    w = _worker()
    engine = w.engine
    with session_scope(engine) as session:
        found = audits.item_for_job(item_id, session=session)
    if found is None:
        return "skipped"
    item, state, audit_id, kind, source = found
    if state != audits.PENDING:
        return "skipped"
    settings = replace(w.settings, allow_private_urls=allow_private)
    named_by_user = page_url(source) if kind == KIND_LISTING else None
    pacer = SharedPacer(engine, sleep_s, backoff_s)
    host = (urlsplit(item.url).hostname or "").lower()
    analysed = error = None
    for attempt in range(1, RATE_LIMIT_TRIES + 1):
        pacer.wait(host)
        outcome = w.decoders.analyse(item.url, settings, named_by_user)
        if not isinstance(outcome, DecodeFailure):
            pacer.succeeded(host)
            analysed = outcome
            break
        if outcome.rate_limited and attempt < RATE_LIMIT_TRIES:
            rest = pacer.rate_limited(host, outcome.retry_after)
            log.info("HTTP 429 from %s; every worker rests it %.0f s; then %s", host, rest, item.url)
            continue
        error = (outcome.message, outcome.exit_code)
        break
    _wait_for_turn(engine, audit_id, item)

    def mark_done(session: Any, check_id: int) -> None:
        if not audits.finish_item(item.item_id, session=session, check_id=check_id, at=_now()):
            raise AlreadyDone  # rolls the check back with it

    if error is None:
        assert analysed is not None
        clip, post = analysed
        try:
            library = pipeline.load_library(engine)  # this worker's warm index, caught up with every worker's clips
            pipeline.check_analysed(clip, with_listed_time(post, item), engine=engine, library=library,
                                    on_recorded=mark_done)
        except AlreadyDone:
            return "skipped"
        except StoreError:
            raise
        except ProvenanceError as e:
            error = (e.message, e.exit_code)
        except Exception as e:  # noqa: BLE001
            log.exception("unexpected error on %s", item.url)
            error = (f"unexpected error: {type(e).__name__}: {e}", 1)
    if error is not None:
        fail_post(engine, item.item_id, *error)
    with session_scope(engine) as session:
        audits.finish_audit(audit_id, session=session, at=_now())
    return "failed" if error is not None else "done"


def fail_post(engine: Engine, item_id: int, message: str, code: int) -> None:
    from .db import audits, session_scope

    with session_scope(engine) as session:
        audits.fail_item(item_id, session=session, error=message, error_code=code, at=_now())


def _wait_for_turn(engine: Engine, audit_id: int, item: Any) -> None:
    """Return once every post before this one is recorded (done or failed); raise _HandedOver
    with the posts no worker runs when some stayed so for TURN_GRACE_S."""
    from .db import audits, session_scope

    idle_since: float | None = None
    while True:
        with session_scope(engine) as session:
            earlier = audits.pending_before(audit_id, item, session=session)
        if not earlier:
            return
        running = _running_items(engine, earlier)
        idle = [i for i in earlier if i not in running]
        if not idle:
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > TURN_GRACE_S:
            raise _HandedOver(idle)
        time.sleep(TURN_POLL_S)


def _running_items(engine: Engine, item_ids: list[int]) -> set[int]:
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT (args->>'item_id')::int FROM procrastinate_jobs WHERE task_name = :task "
                "AND status = 'doing' AND (args->>'item_id')::int = ANY(:ids)"),
                {"task": TASK_AUDIT_POST, "ids": item_ids}).scalars().all()
    except SQLAlchemyError as e:
        from .db.engine import driver_message

        raise StoreError(f"database error while waiting for earlier posts: {driver_message(e)}") from e
    return set(rows)


def _ingest_file_task(context: Any, *, path: str, batch: str) -> str:
    return run_ingest_file(Path(path))


def run_ingest_file(path: Path) -> str:
    """Ingest one file as `ingest DIR` does for each: known (same SHA-256 already in the library),
    ingested, or an error raised (the job fails, its reason in the worker's log)."""
    from . import pipeline
    from .db import repository, session_scope
    from .fetch import sha256_file

    w = _worker()
    try:
        sha = sha256_file(path)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e} (is the folder shared with this worker?)") from e
    with session_scope(w.engine) as session:
        if repository.find_clip_id(sha, session=session) is not None:
            return "known"
    result = pipeline.ingest(str(path), settings=w.settings)
    return "ingested" if result.new_clip else "known"


def _check_task(context: Any, *, target: str, post_url: str | None, posted_at: str | None,
                allow_private: bool) -> int | None:
    from . import pipeline
    from .utc import parse_time

    w = _worker()
    settings = replace(w.settings, allow_private_urls=allow_private)
    return pipeline.check(target, settings=settings, post_url=post_url, posted_at=parse_time(posted_at)).check_id


def _now() -> datetime:
    return datetime.now(UTC)
