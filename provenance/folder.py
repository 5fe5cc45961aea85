"""Ingest a folder: every video file below it, decoded and hashed in parallel, recorded one by one.

- Video files are found by extension (VIDEO_EXTENSIONS); anything else is skipped with its reason,
  logged, and never fails the run. A file with a video extension that turns out not to be one (empty,
  truncated, not decodable) is reported as failed, with the reason, and the run goes on.
- Each file's SHA-256 is computed first, in this process: a file already in the library, or a copy
  of one met earlier in this run, is skipped before anything decodes it.
- The rest go to a pool of worker processes (fetch into the evidence store, probe, sample and hash:
  pipeline.analyse), and this process writes each result in its own transaction as it arrives, so a
  failure never leaves a file half-recorded and an interrupted run keeps what it finished.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import pipeline
from .db import repository, session_scope, timestamps as stored_stamps
from .errors import InputError, ProvenanceError
from .fetch import sha256_file
from .frames import MIN_QUALITY
from .settings import Settings

log = logging.getLogger("provenance.folder")

# What ffmpeg/OpenCV decode and cameras, phones and platforms write. Other files are not tried: an
# archive folder also holds subtitles, thumbnails, JSON sidecars and notes.
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".qt", ".mkv", ".webm", ".avi", ".wmv", ".asf", ".flv", ".f4v", ".ts", ".mts",
    ".m2ts", ".mpg", ".mpeg", ".m2v", ".vob", ".3gp", ".3g2", ".ogv", ".mxf", ".dv", ".y4m",
})

# Memory one worker may need: a worker process holds ~115 MB before it decodes anything, and decoding
# the largest frame allowed (probe.MAX_FRAME_PIXELS, 8192x4320) peaked at 0.7 GB (2026-11-30). More
# workers than the free memory holds get killed by the OOM killer mid-run.
WORKER_MEMORY_BYTES = 768 * 2**20


@dataclass(frozen=True)
class FileOutcome:
    path: Path
    outcome: str  # "ingested" | "known" | "skipped" | "failed"
    reason: str = ""  # why it was skipped, known or failed
    sha256: str | None = None
    clip_id: int | None = None
    duration_s: float = 0.0  # decoded footage, for ingested files


@dataclass(frozen=True)
class FolderProgress:
    """Where a folder ingest is, after each file."""

    done: int
    total: int
    ingested: int
    known: int
    skipped: int
    failed: int
    current: Path | None = None


@dataclass(frozen=True)
class FolderResult:
    folder: Path
    files: tuple[FileOutcome, ...]
    workers: int
    wall_s: float

    def of(self, outcome: str) -> tuple[FileOutcome, ...]:
        return tuple(f for f in self.files if f.outcome == outcome)

    @property
    def footage_s(self) -> float:
        return sum(f.duration_s for f in self.of("ingested"))


FolderProgressFn = Callable[[FolderProgress], None]


def ingest_folder(folder: Path, *, settings: Settings, workers: int | None = None,
                  progress: FolderProgressFn | None = None) -> FolderResult:
    """Ingest every video file below `folder` into the library, skipping files it already holds."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give a folder of video files")
    workers = workers_for(workers, available_bytes=available_memory())
    started = time.perf_counter()
    engine = pipeline.open_library(settings)
    with session_scope(engine) as session:
        known = repository.clip_sha256s(session=session)
    files = sorted(_files_below(folder))
    outcomes: list[FileOutcome] = []
    counts = {"ingested": 0, "known": 0, "skipped": 0, "failed": 0}

    def done(outcome: FileOutcome) -> None:
        outcomes.append(outcome)
        counts[outcome.outcome] += 1
        if outcome.outcome != "ingested":
            log.info("%s %s: %s", outcome.outcome, outcome.path, outcome.reason)
        if progress:
            progress(FolderProgress(done=len(outcomes), total=len(files), current=outcome.path, **counts))

    def to_analyse() -> Iterator[tuple[Path, str]]:
        """Files to decode, as they are hashed: the pool starts on the first while the rest are read."""
        first_path: dict[str, Path] = {}
        for path in files:
            if path.suffix.lower() not in VIDEO_EXTENSIONS:
                done(FileOutcome(path, "skipped", f"not a video file by its extension ({path.suffix or 'none'})"))
                continue
            try:
                sha = sha256_file(path)
            except OSError as e:
                done(FileOutcome(path, "failed", f"cannot read it: {e.strerror or e}"))
                continue
            if sha in known:
                done(FileOutcome(path, "known", "already in the library", sha256=sha))
            elif sha in first_path:
                done(FileOutcome(path, "known", f"same file as {first_path[sha]}", sha256=sha))
            else:
                first_path[sha] = path
                yield path, sha

    for path, sha, analysed in _analysed(to_analyse(), settings, workers):
        if isinstance(analysed, str):
            done(FileOutcome(path, "failed", analysed, sha256=sha))
            continue
        clip, post = analysed
        observed_at = datetime.now(UTC)
        with pipeline.evidence_kept_if_recorded(clip.media, engine):
            # With a TSA, each file is stamped before it is recorded; a TSA that fails stops the
            # ingest as it stops `ingest FILE` (the files before stay recorded and stamped).
            stamps = pipeline.stamp_clip(clip, settings=settings)
            with session_scope(engine) as session:
                # Another process may have stored the same file since the SHA-256 look-up above: the
                # insert itself says whether this run added it.
                clip_id, added = repository.upsert_clip(clip.media, clip.probe, clip.fingerprint, session=session,
                                                        observed_at=observed_at, min_quality=MIN_QUALITY)
                repository.add_sighting(clip_id, post, source="ingest", observed_at=observed_at, session=session)
                stored_stamps.add_stamps(stamps, subject=stored_stamps.CLIP, check_id=None, path=str(clip.media.path),
                                         session=session)
                if clip.credentials is not None:
                    repository.add_credentials(clip_id, clip.credentials, session=session)
        if not added:
            done(FileOutcome(path, "known", "stored by another process meanwhile", sha256=sha, clip_id=clip_id))
            continue
        done(FileOutcome(path, "ingested", sha256=sha, clip_id=clip_id,
                         duration_s=clip.fingerprint.decoded_duration_s or clip.probe.duration_s))
    order = {p: i for i, p in enumerate(files)}
    return FolderResult(folder=folder, files=tuple(sorted(outcomes, key=lambda o: order[o.path])),
                        workers=workers, wall_s=time.perf_counter() - started)


def workers_for(requested: int | None, *, available_bytes: int | None) -> int:
    """Worker processes to run: as many as asked (default: one a CPU), no more than memory holds."""
    wanted = max(1, requested or os.cpu_count() or 1)
    if available_bytes is None:
        return wanted
    fits = max(1, available_bytes // WORKER_MEMORY_BYTES)
    if fits < wanted:
        log.info("%d workers asked for, %d fit in the %.1f GB of memory available", wanted, fits, available_bytes / 2**30)
    return min(wanted, fits)


def available_memory() -> int | None:
    """Bytes of memory free for new processes (Linux MemAvailable); None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _files_below(folder: Path) -> Iterator[Path]:
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in names:
            path = Path(root) / name
            if path.is_file():
                yield path


Analysed = tuple[pipeline.AnalysedClip, object] | str  # (clip, post), or why it failed


def _analyse(path: Path, settings: Settings) -> Analysed:
    """Fetch into the evidence store, probe, sample and hash one file (in a worker process)."""
    try:
        return pipeline.analyse(str(path), settings=settings)
    except ProvenanceError as e:
        return e.message
    except OSError as e:
        return f"cannot read it: {e.strerror or e}"
    except Exception as e:  # noqa: BLE001 - one odd file is that file's failure, never the whole run's
        return f"unexpected error: {type(e).__name__}: {e}"


def _analysed(todo: Iterator[tuple[Path, str]], settings: Settings,
              workers: int) -> Iterator[tuple[Path, str, Analysed]]:
    """Each file's analysis as it finishes: in this process with one worker, else in a pool.

    A worker that dies (the OOM killer, a decoder crash) breaks the whole pool, and the files in
    flight with it: each of those is then analysed again alone, in a pool of its own, so the file that
    kills its worker is the one marked failed, and the run goes on with a new pool."""
    if workers == 1:
        for path, sha in todo:
            yield path, sha, _analyse(path, settings)
        return
    # Files in flight: enough to keep every worker busy, few enough that results are recorded as
    # they come rather than after the whole folder is decoded.
    window = 2 * workers
    pool = _pool(workers)
    pending: dict[Future[Analysed], tuple[Path, str]] = {}
    stranded: list[tuple[Path, str]] = []  # refused by a pool already broken when it was submitted

    def fill() -> None:
        while len(pending) < window and not stranded:
            item = next(todo, None)
            if item is None:
                return
            try:
                pending[_submit(pool, item[0], settings)] = item
            except BrokenProcessPool:
                stranded.append(item)

    try:
        fill()
        while pending or stranded:
            finished = wait(pending, return_when=FIRST_COMPLETED)[0] if pending else set()
            broken, stranded[:] = list(stranded), []
            for future in finished:
                path, sha = pending.pop(future)
                try:
                    analysed = future.result()
                except BrokenProcessPool:
                    broken.append((path, sha))
                    continue
                yield path, sha, analysed
            if broken:
                # Every file still in flight went down with the pool; which one killed it is not known.
                broken += [pending.pop(f) for f in list(pending)]
                pool.shutdown(wait=True, cancel_futures=True)
                for path, sha in broken:
                    yield path, sha, _analyse_alone(path, settings)
                pool = _pool(workers)
            fill()
    except BaseException:
        _stop_workers(pool)  # Ctrl-C or an error here: the files in flight are not waited for
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: the parent holds database connections and threads that a fork would copy.
    # Worker processes start with the first file submitted.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_start, initargs=(os.getpid(),))


# linux/prctl.h: ask the kernel for a signal when the parent dies.
_PR_SET_PDEATHSIG = 1
# Where there is no prctl, a worker looks for its parent this often.
_PARENT_POLL_S = 1.0


def _worker_start(parent: int) -> None:
    """First thing in each worker: end with the parent. A parent that is SIGKILLed (or OOM-killed)
    cannot stop its workers, and they would wait for work forever, ~115 MB each."""
    if not _die_with_parent():
        threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()
    if os.getppid() != parent:  # it died before the request above was made
        os._exit(1)


def _die_with_parent() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


def _submit(pool: ProcessPoolExecutor, path: Path, settings: Settings) -> Future[Analysed]:
    # The pool starts its worker processes in submit(): they start with SIGINT blocked, a signal mask
    # being inherited through fork and exec, and never see it. A Ctrl-C at the terminal reaches the
    # whole process group; only this process should act on it, once, and stop them. (Blocked, not
    # ignored: a Ctrl-C meanwhile waits for the mask to be restored here instead of being lost.)
    with _sigint_blocked():
        return pool.submit(_analyse, path, settings)


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks, no process-group Ctrl-C
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now (they ignore SIGINT; SIGTERM ends them without a word)."""
    # The executor keeps its processes in a private mapping; there is no public way to stop a
    # running task, and shutdown() would wait for every file in flight to be decoded.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.terminate()
        except (OSError, ValueError):
            pass  # already gone


def _analyse_alone(path: Path, settings: Settings) -> Analysed:
    """One file in a worker of its own: if that worker dies too, this file is what kills it."""
    pool = _pool(1)
    try:
        return _submit(pool, path, settings).result()
    except BrokenProcessPool:
        log.info("a decoder process died on %s", path)
        return ("the decoder process died on it (out of memory, or a decoder crash); the file may be too "
                "large or damaged: check it alone with: provenance check FILE")
    except BaseException:
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
