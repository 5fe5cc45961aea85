"""`provenance worker`: run the library's queued jobs (audit posts, file ingests, checks) until stopped.

Any number of workers, on any number of machines, share one PostgreSQL library. Each keeps its own
warm frame-hash index (provenance.diskindex, one copy per machine, caught up before each post is
matched) and runs `concurrency` jobs at once, in threads (downloads, ffmpeg and OpenCV release the
GIL for the heavy parts).

Faults:
- Each post is fetched and decoded in a child process (jobs.DecoderPool): a decoder crash ends that
  process, the post is decoded again alone, and fails when that ends too; the worker goes on.
- A worker killed mid-job (SIGKILL, the OOM killer) stops sending its heartbeat;
  every other worker looks for such jobs every few seconds and queues them again once the worker
  has been silent `stall_timeout_s`. A job taken MAX_TRIES times is failed instead, and its audit
  post recorded as failed: a poisoned post never blocks the queue.
- The database restarting: jobs that hit it fail with StoreError and are tried again a little later
  (jobs.STORE_RETRIES); the worker's own connection is opened again, waiting RECONNECT_S between tries;
  a job's end cut off on its way to the database is written again (_persist_through_restarts), and
  the heartbeat is sent from the recovery loop too (procrastinate's own heartbeat task ends, unseen,
  when a heartbeat's connection is cut).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InputError
from .settings import Settings

log = logging.getLogger("provenance.worker")

DEFAULT_CONCURRENCY = 2  # as the in-process audit's default --workers: one download while one decodes
MAX_CONCURRENCY = 32
# A worker silent this long is taken for dead, and its jobs are queued again: three missed
# heartbeats, so a worker busy decoding (its heartbeat runs beside the jobs) is never taken for dead.
DEFAULT_STALL_TIMEOUT_S = 30.0
HEARTBEATS_PER_TIMEOUT = 4
# Seconds between two tries to reach the database again after it went away.
RECONNECT_S = 2.0
# procrastinate writes a job's end (done, failed, or to be tried again) once. When the connection is cut
# while that write is on its way, the job stays 'doing' under a worker whose heartbeat goes on, and the
# stalled-job recovery, which looks for silent workers, never takes it back: the queue never drains (the
# likely cause of one timeout of tests/test_workers.py's database restart, 2026-12-03; made to happen by
# test_a_job_end_cut_off_on_its_way_is_written_again). So the write is tried again, up to this many
# times RECONNECT_S apart: a minute, longer than a restart takes.
PERSIST_TRIES = 30


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = DEFAULT_CONCURRENCY
    queues: tuple[str, ...] = ()  # empty: every queue (jobs.QUEUES)
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S
    name: str | None = None


def run_worker(settings: Settings, options: WorkerOptions = WorkerOptions()) -> None:
    """Run jobs until interrupted (Ctrl-C, SIGTERM). Needs a PostgreSQL library with its queue
    (`provenance db upgrade`)."""
    from . import jobs, pipeline

    jobs.require_postgresql(settings.db_url, "provenance worker")
    if options.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, not {options.concurrency}")
    unknown = sorted(set(options.queues) - set(jobs.QUEUES))
    if unknown:
        raise InputError(f"no queue named {', '.join(unknown)}; the queues are {', '.join(jobs.QUEUES)}")
    engine = pipeline.open_library(settings)
    jobs.require_schema(engine)
    pipeline.load_library(engine)  # warm before the first job: the index is built or caught up now
    app = jobs.make_app(settings.db_url)
    _persist_through_restarts(app.job_manager)  # type: ignore[attr-defined]
    decoders = jobs.DecoderPool(options.concurrency)
    decoders.warm()
    jobs.set_worker_state(jobs.WorkerState(settings=settings, engine=engine, app=app, decoders=decoders))
    try:
        asyncio.run(_serve(app, engine, options))
    finally:
        jobs.set_worker_state(None)
        decoders.close()
        engine.dispose()


async def _serve(app: object, engine: object, options: WorkerOptions) -> None:
    """The procrastinate worker and the stalled-job recovery, again after a lost connection, until
    interrupted."""
    from procrastinate.exceptions import ConnectorException
    from procrastinate.worker import Worker

    while True:
        try:
            async with app.open_async():  # type: ignore[attr-defined]
                job_loop = Worker(app=app, queues=list(options.queues) or None, concurrency=options.concurrency,
                                  name=options.name, install_signal_handlers=False,
                                  update_heartbeat_interval=options.stall_timeout_s / HEARTBEATS_PER_TIMEOUT,
                                  stalled_worker_timeout=options.stall_timeout_s,
                                  # A job's own end is kept for a day in the table, then deleted by a later worker.
                                  delete_jobs="never")
                recovery = asyncio.create_task(_recover_stalled(app, engine, options, job_loop))
                try:
                    await job_loop.run()
                finally:
                    recovery.cancel()
            # Ctrl-C and SIGTERM end this loop by an exception (cli), so procrastinate's worker returning
            # means it stopped itself: one of its side tasks failed. A worker must not quit on that.
            log.warning("the job loop stopped (a side task lost the database); starting it again in %.0f s",
                        RECONNECT_S)
            await asyncio.sleep(RECONNECT_S)
        except (ConnectorException, OSError) as e:
            log.warning("lost the database (%s); connecting again in %.0f s", e, RECONNECT_S)
            await asyncio.sleep(RECONNECT_S)
        except Exception as e:  # noqa: BLE001 - psycopg's OperationalError and friends, from the pool
            if not _is_connection_error(e):
                raise
            log.warning("lost the database (%s); connecting again in %.0f s", e, RECONNECT_S)
            await asyncio.sleep(RECONNECT_S)


def _is_connection_error(e: BaseException) -> bool:
    """psycopg's errors of a lost connection, bare or as the cause of procrastinate's ConnectorException."""
    try:
        import psycopg
    except ImportError:
        return False
    return any(isinstance(x, (psycopg.OperationalError, psycopg.InterfaceError)) for x in (e, e.__cause__))


def _persist_through_restarts(manager: object) -> None:
    """Make the job manager's writes of a job's end (finish_job, retry_job) try again, PERSIST_TRIES
    times RECONNECT_S apart, when the connection is lost on the way. A write that did land before the
    connection went is refused when tried again (the job is no longer 'doing'): that error is raised."""
    for name in ("finish_job", "retry_job"):
        write = getattr(manager, name)

        async def again(*args: object, _write=write, _name=name, **kwargs: object) -> object:  # noqa: ANN001
            for _ in range(PERSIST_TRIES - 1):
                try:
                    return await _write(*args, **kwargs)
                except Exception as e:
                    if not _is_connection_error(e):
                        raise
                    log.warning("a job's end was not written (%s: lost the database: %s); trying again in %.0f s",
                                _name, e.__cause__ or e, RECONNECT_S)
                    await asyncio.sleep(RECONNECT_S)
            return await _write(*args, **kwargs)

        setattr(manager, name, again)


async def _recover_stalled(app: object, engine: object, options: WorkerOptions, job_loop: object) -> None:
    """Queue again the jobs of workers silent for stall_timeout_s; fail those taken MAX_TRIES times.
    And send this worker's heartbeat too: procrastinate's own heartbeat task ends unseen when its
    connection is cut in the middle of a heartbeat (a database restart), and the worker would run on
    silent, every job it takes queued again elsewhere as stalled (tests/test_workers.py)."""
    every = max(1.0, options.stall_timeout_s / HEARTBEATS_PER_TIMEOUT)
    while True:
        await asyncio.sleep(every)
        try:
            if job_loop.worker_id is not None:  # type: ignore[attr-defined]
                await app.job_manager.update_heartbeat(job_loop.worker_id)  # type: ignore[attr-defined]
            stalled = await app.job_manager.get_stalled_jobs(  # type: ignore[attr-defined]
                seconds_since_heartbeat=options.stall_timeout_s)
            for job in stalled:
                await _recover_one(app, engine, job)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - another worker recovered it first, or the database is away
            log.info("stalled-job recovery skipped a round: %s", e)


async def _recover_one(app: object, engine: object, job: object) -> None:
    from procrastinate.jobs import Status

    from . import jobs

    tries = job.attempts + 1  # type: ignore[attr-defined]
    try:
        if tries >= jobs.MAX_TRIES:
            log.warning("job %s (%s) was taken %d times and its worker died each time; failing it",
                        job.id, job.task_name, tries)  # type: ignore[attr-defined]
            await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)  # type: ignore[attr-defined]
            if job.task_name == jobs.TASK_AUDIT_POST:  # type: ignore[attr-defined]
                await asyncio.to_thread(
                    jobs.fail_post, engine, int(job.task_kwargs["item_id"]),  # type: ignore[attr-defined]
                    f"a worker died on this post {tries} times (killed, out of memory or a decoder crash); "
                    "check it alone with: provenance check URL", 4)
        else:
            log.info("job %s (%s): its worker stopped answering; queueing it again",
                     job.id, job.task_name)  # type: ignore[attr-defined]
            await app.job_manager.retry_job(job)  # type: ignore[attr-defined]
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001 - another worker recovered it first
        log.info("job %s was recovered elsewhere: %s", job.id, e)  # type: ignore[attr-defined]


def queues_of(names: Sequence[str]) -> tuple[str, ...]:
    """`--queues audit,ingest` or repeated --queues: the names, split and stripped."""
    return tuple(q.strip() for n in names for q in n.split(",") if q.strip())
