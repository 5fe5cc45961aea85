"""Background jobs of the desk: checks, ingests and audits run off the request, on a bounded pool.

The app sees only `JobRunner` (submit a `JobSpec`, read `JobView`s). `ThreadJobRunner` keeps the job
table in this process; a runner backed by a queue (procrastinate and its workers) can take its place,
as a spec is plain data and `run_job` is the one function that does the work.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import InputError, ProvenanceError

if TYPE_CHECKING:
    from ..api import Library

log = logging.getLogger("provenance.serve")

CHECK, INGEST, AUDIT = "check", "ingest", "audit"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# Checks decode video: CPU-bound, so about one per core; more only queue for the same cores.
DEFAULT_WORKERS = 2
# Jobs waiting beyond this are refused (503): a client in a loop cannot fill the memory.
MAX_QUEUED = 1000
# Uploads waiting for a worker each hold a file of up to --max-upload in the temporary folder: beyond
# this many, new uploads are refused (503) so that clients cannot fill the disk faster than checks run.
MAX_QUEUED_UPLOADS = 16
# Finished jobs kept in the table (the checks themselves stay in the library for good).
MAX_KEPT = 5000


@dataclass(frozen=True)
class JobSpec:
    """What to do: plain data, so that a queue could carry it to another process."""

    kind: str  # CHECK | INGEST | AUDIT
    target: str | None  # a URL, or the path of an uploaded file the job owns and removes
    post_url: str | None = None
    posted_at: str | None = None  # ISO 8601, as given
    uploaded: bool = False  # target is a temporary upload, removed when the job ends
    audit: dict[str, Any] = field(default_factory=dict)  # AuditOptions' fields as given (since, limit)
    shown: str = ""  # how the job is named to people: the URL, or "upload (mp4, 12.3 MB)"


@dataclass(frozen=True)
class JobView:
    job_id: int
    kind: str
    status: str  # QUEUED | RUNNING | DONE | FAILED
    shown: str
    created_at: datetime
    stage: str | None = None  # what the job is doing now ("download", "frames"...)
    fraction: float | None = None  # of that stage, 0..1, when known
    error: str | None = None  # one line for a person
    error_code: int | None = None  # the exit code the command would have used (2 input, 3 fetch...)
    result: dict[str, Any] | None = None  # the check --json object, the ingest's or the audit's JSON
    check_id: int | None = None  # the recorded check, once done
    audit_id: int | None = None
    finished_at: datetime | None = None


class JobRunner(Protocol):
    def submit(self, spec: JobSpec) -> JobView: ...
    def get(self, job_id: int) -> JobView | None: ...
    def recent(self, limit: int = 20, kind: str | None = None) -> list[JobView]: ...
    def close(self) -> None: ...


class QueueFull(ProvenanceError):
    """Too many jobs waiting; the app answers 503."""

    def __init__(self, what: str) -> None:
        super().__init__(f"the server has {what} waiting; try again in a few minutes")


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    check_id: int | None = None
    audit_id: int | None = None


def run_job(spec: JobSpec, library: "Library", progress: Any) -> Outcome:
    """Do one job with the library; raises ProvenanceError as the command would."""
    if spec.kind == CHECK:
        r = library.check(spec.target or "", post_url=spec.post_url, posted_at=spec.posted_at, progress=progress)
        return Outcome(result=r.to_dict(), check_id=r.check_id)
    if spec.kind == INGEST:
        i = library.ingest(spec.target or "", post_url=spec.post_url, posted_at=spec.posted_at, progress=progress)
        return Outcome(result=i.to_dict())
    if spec.kind == AUDIT:
        from ..audit import AuditOptions
        from ..reporting.audit import audit_to_dict
        from ..utc import parse_time

        since = spec.audit.get("since")
        options = AuditOptions(since=parse_time(since) if since else None, limit=spec.audit.get("limit"))

        def audit_progress(p: Any) -> None:
            progress("posts", p.processed / p.to_do if p.to_do else None)

        a = library.audit(spec.target, options=options, progress=audit_progress)
        return Outcome(result=audit_to_dict(a), audit_id=a.audit_id)
    raise InputError(f"unknown job kind {spec.kind!r}")


class ThreadJobRunner:
    """Jobs on a pool of `workers` threads, their state in this process (lost on restart; the checks
    they recorded stay in the library)."""

    def __init__(self, library: "Library", *, workers: int = DEFAULT_WORKERS) -> None:
        self._library = library
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="provenance-job")
        self._lock = threading.Lock()
        self._jobs: OrderedDict[int, JobView] = OrderedDict()
        self._next_id = 1
        self._queued = self._queued_uploads = 0  # jobs (and uploads among them) not yet started

    def submit(self, spec: JobSpec) -> JobView:
        with self._lock:
            if self._queued >= MAX_QUEUED:
                raise QueueFull(f"{MAX_QUEUED} jobs")
            if spec.uploaded and self._queued_uploads >= MAX_QUEUED_UPLOADS:
                raise QueueFull(f"{MAX_QUEUED_UPLOADS} uploads")
            self._queued += 1
            self._queued_uploads += spec.uploaded
            job = JobView(job_id=self._next_id, kind=spec.kind, status=QUEUED, shown=spec.shown,
                          created_at=datetime.now(UTC))
            self._next_id += 1
            self._jobs[job.job_id] = job
            self._forget_old()
        self._pool.submit(self._run, job.job_id, spec)
        return job

    def get(self, job_id: int) -> JobView | None:
        with self._lock:
            return self._jobs.get(job_id)

    def recent(self, limit: int = 20, kind: str | None = None) -> list[JobView]:
        with self._lock:
            jobs = [j for j in reversed(self._jobs.values()) if kind is None or j.kind == kind]
        return jobs[:limit]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _update(self, job_id: int, **changes: Any) -> None:
        with self._lock:
            if job_id in self._jobs:
                self._jobs[job_id] = replace(self._jobs[job_id], **changes)

    def _forget_old(self) -> None:
        finished = [i for i, j in self._jobs.items() if j.status in (DONE, FAILED)]
        for job_id in finished[:max(0, len(self._jobs) - MAX_KEPT)]:
            del self._jobs[job_id]

    def _run(self, job_id: int, spec: JobSpec) -> None:
        with self._lock:
            self._queued -= 1
            self._queued_uploads -= spec.uploaded
        self._update(job_id, status=RUNNING, stage="starting")

        def progress(stage: str, fraction: float | None) -> None:
            self._update(job_id, stage=stage, fraction=fraction)

        try:
            outcome = run_job(spec, self._library, progress)
        except ProvenanceError as e:
            self._update(job_id, status=FAILED, error=e.message, error_code=e.exit_code, stage=None,
                         fraction=None, finished_at=datetime.now(UTC))
        except Exception:  # a bug: logged here with its traceback, a plain line for the client
            log.exception("job %d (%s) failed", job_id, spec.kind)
            self._update(job_id, status=FAILED, error="internal error; the server log has the details",
                         error_code=1, stage=None, fraction=None, finished_at=datetime.now(UTC))
        else:
            self._update(job_id, status=DONE, result=outcome.result, check_id=outcome.check_id,
                         audit_id=outcome.audit_id, stage=None, fraction=1.0, finished_at=datetime.now(UTC))
        finally:
            if spec.uploaded and spec.target:
                Path(spec.target).unlink(missing_ok=True)
