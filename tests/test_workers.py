"""Audits and ingests as jobs: real `provenance worker` processes on the throwaway PostgreSQL,
draining an audit of the local feed (tests/conftest_http.py), one of them killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from provenance import audit as audit_lib, pipeline
from provenance.cli import cli
from provenance.db import connect
from provenance.settings import Settings
from tests.conftest import SAMPLES
from tests.conftest_http import AuditFeed
from tests.test_audit import FAST, ingest_library, outcomes, per_url_counts

REPO = Path(__file__).resolve().parent.parent
# Short, so a killed worker's job comes back within seconds in a test (the default is 30 s).
STALL_S = "3"


def invoke(settings: Settings, *args: str):  # noqa: ANN201 - click Result
    env = {"PROVENANCE_DB": settings.db_url, "PROVENANCE_STORE": str(settings.store_dir)}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@contextmanager
def workers(settings: Settings, tmp_path: Path, cache: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts real `provenance worker` processes (each its own index cache, as on its own machine);
    all that are still running are stopped at the end."""
    started: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        env = {**os.environ, "PROVENANCE_DB": settings.db_url, "PROVENANCE_STORE": str(settings.store_dir),
               "XDG_CACHE_HOME": str(cache / name), "PYTHONPATH": str(REPO)}
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "provenance.cli", "worker", "--stall-timeout", STALL_S, *args],
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def states(settings: Settings, audit_id: int) -> dict[str, int]:
    engine = connect(settings.db_url)
    try:
        with engine.connect() as conn:
            items = dict(conn.execute(text("SELECT state, count(*) FROM audit_items WHERE audit_id = :a GROUP BY state"),
                                      {"a": audit_id}).all())
            doing = conn.scalar(text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"))
        return {**items, "doing": doing}
    finally:
        engine.dispose()


def wait_for(what: Callable[[], bool], timeout: float, why: str, logs: Path, db_url: str | None = None) -> None:
    """Wait for `what`; on a timeout, fail showing the workers' logs and (with `db_url`) the unfinished jobs."""
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            shown = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-6000:]}" for p in logs.glob("*.log"))
            if db_url:
                shown += "\n--- jobs not ended\n" + "\n".join(map(str, unfinished_jobs(db_url)))
            pytest.fail(f"timed out waiting for {why}\n{shown}")
        time.sleep(0.2)


def unfinished_jobs(db_url: str) -> list[tuple]:
    engine = connect(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT id, status, attempts, scheduled_at, worker_id, args FROM procrastinate_jobs "
                "WHERE status IN ('todo', 'doing') ORDER BY id"))]
    finally:
        engine.dispose()


def comparable(result) -> dict[str, tuple]:  # noqa: ANN001
    """What an audit found for each post, without ids and times that differ between two runs."""
    return {i.url: (i.state, i.verdict, i.reuse, i.first_seen.url if i.first_seen else None, i.error_code,
                    i.transforms, round(i.similarity, 6) if i.similarity is not None else None, i.attempts)
            for i in result.items}


# --- refused without PostgreSQL -----------------------------------------------------------------


@pytest.mark.sqlite
@pytest.mark.parametrize("args", [("audit", "https://example.org/feed.xml", "--queue"),
                                  ("worker",), ("ingest", str(SAMPLES), "--queue")])
def test_a_queue_needs_postgresql(tmp_path: Path, args: tuple[str, ...]) -> None:
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'library.db'}", store_dir=tmp_path / "evidence")
    result = invoke(settings, *args)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert "needs a PostgreSQL library" in line and line.startswith("error: ")
    assert not (tmp_path / "library.db").exists()  # refused before the library was opened


@pytest.mark.postgresql
def test_db_upgrade_creates_the_queue_once(new_database, tmp_path: Path) -> None:
    settings = Settings(db_url=new_database("postgresql"), store_dir=tmp_path / "evidence")
    first = invoke(settings, "db", "upgrade")
    assert first.exit_code == 0 and "job queue created" in first.output
    second = invoke(settings, "db", "upgrade")
    assert second.exit_code == 0 and "job queue" not in second.output
    engine = connect(settings.db_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM procrastinate_jobs")) == 0
            assert conn.scalar(text("SELECT count(*) FROM provenance_host_pace")) == 0
    finally:
        engine.dispose()


@pytest.mark.postgresql
def test_queueing_without_db_upgrade_says_to_run_it(new_database, tmp_path: Path) -> None:
    settings = Settings(db_url=new_database("postgresql"), store_dir=tmp_path / "evidence")
    result = invoke(settings, "ingest", str(SAMPLES), "--queue")
    assert result.exit_code == 5 and "provenance db upgrade" in result.output


# --- an audit drained by workers, one killed ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgresql
def test_workers_drain_an_audit_despite_a_kill_and_find_what_one_process_finds(
        audit_feed: AuditFeed, new_database, tmp_path: Path, index_cache: Path) -> None:
    # The same feed audited in one process, for comparison.
    alone = Settings(db_url=new_database("postgresql"), store_dir=tmp_path / "evidence-alone")
    ingest_library(audit_feed, alone)
    expected = audit_lib.audit(audit_feed.url, settings=alone, options=FAST)
    assert outcomes(expected) == {p.url: p.expected for p in audit_feed.posts}

    shared = Settings(db_url=new_database("postgresql"), store_dir=tmp_path / "evidence-shared")
    assert invoke(shared, "db", "upgrade").exit_code == 0
    ingest_library(audit_feed, shared)
    queued = invoke(shared, "audit", audit_feed.url, "--queue", "--detach", "--sleep", "0")
    assert queued.exit_code == 0, queued.output
    assert "10 posts, 10 jobs queued" in queued.output
    audit_id = int(queued.output.split("audit ", 1)[1].split(":", 1)[0])
    # Queueing it again queues nothing twice.
    again = invoke(shared, "audit", "--resume", str(audit_id), "--queue", "--detach")
    assert "0 jobs queued" in again.output, again.output

    with workers(shared, tmp_path, index_cache) as start:
        first = start("w1", "--concurrency", "2")
        # Killed while it holds jobs, after it has recorded a few posts.
        wait_for(lambda: (s := states(shared, audit_id)).get("done", 0) + s.get("failed", 0) >= 2 and s["doing"] >= 1,
                 120, "the first worker to record two posts", tmp_path)
        first.send_signal(signal.SIGKILL)
        first.wait()
        start("w2", "--concurrency", "1")
        start("w3", "--concurrency", "1")
        # `audit --queue` follows the audit to its end, then prints the summary as an audit in one process does.
        followed = invoke(shared, "audit", "--resume", str(audit_id), "--queue", "--json",
                          "--report", str(tmp_path / "audit.md"))
        assert followed.exit_code == 0, followed.output
        assert json.loads(followed.stdout)["status"] == "done"
        assert "Someone's posts" in (tmp_path / "audit.md").read_text(encoding="utf-8")

    result = audit_lib.load_result(pipeline.open_library(shared), audit_id)
    assert result.status == "done"
    assert comparable(result) == comparable(expected)
    # Nothing twice: one sighting and one check per checked post, none for the failed ones.
    counts = per_url_counts(shared, [p.url for p in audit_feed.posts])
    assert counts == {p.url: (0, 0) if p.expected == "failed" else (1, 1) for p in audit_feed.posts}
    engine = connect(shared.db_url)
    try:
        with engine.connect() as conn:
            # The killed worker's jobs were taken again by the others (procrastinate counts the tries).
            assert conn.scalar(text("SELECT max(attempts) FROM procrastinate_jobs")) >= 1
            assert conn.scalar(text("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")) == 0
    finally:
        engine.dispose()
    listed = invoke(shared, "audits")
    assert listed.exit_code == 0 and f"{audit_id}" in listed.output
    # Evidence files are where the workers wrote them (the shared store); a machine that makes the
    # report without that folder is told each file is absent, and still gets the findings.
    check_id = next(i.check_id for i in result.items if i.check_id)
    assert json.loads(invoke(shared, "report", str(check_id), "--format", "json").stdout)["clip"]["evidence_present"]
    shared.store_dir.rename(tmp_path / "store-not-mounted")
    report = json.loads(invoke(shared, "report", str(check_id), "--format", "json").stdout)
    assert report["clip"]["evidence_present"] is False and report["verdict"]


# --- faults --------------------------------------------------------------------------------------


@pytest.mark.postgresql
def test_a_429_rests_the_site_for_every_worker(new_database, tmp_path: Path) -> None:
    """Two pacers on two engines stand for two workers on two machines: one's 429 rests the host for
    the other, and the spacing between downloads holds across both."""
    from provenance.jobs import SharedPacer, install_schema

    url = new_database("postgresql")
    engines = [pipeline.open_library(Settings(db_url=url, store_dir=tmp_path)) for _ in range(2)]
    try:
        install_schema(engines[0])
        one, other = SharedPacer(engines[0], 0.5, 60.0), SharedPacer(engines[1], 0.5, 60.0)
        started = time.monotonic()
        one.wait("site.example")
        other.wait("site.example")  # its turn comes --sleep after the first's
        assert time.monotonic() - started >= 0.45
        assert one.rate_limited("site.example", retry_after=2.0) == 2.0
        rested = time.monotonic()
        other.wait("site.example")
        assert time.monotonic() - rested >= 1.9
        other.wait("elsewhere.example")  # another site is not held up
        # Without Retry-After: the back-off, doubling with each 429 in a row, whoever got them.
        assert other.rate_limited("site.example", retry_after=None) == 120.0
        one.succeeded("site.example")
        assert other.rate_limited("site.example", retry_after=None) == 60.0
    finally:
        for engine in engines:
            engine.dispose()


def job_of(settings: Settings, item_id: int) -> tuple[str, int] | None:
    """(status, attempts) of the newest job of an audit post."""
    engine = connect(settings.db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT status::text, attempts FROM procrastinate_jobs WHERE "
                                    "(args->>'item_id')::int = :i ORDER BY id DESC LIMIT 1"), {"i": item_id}).first()
        return tuple(row) if row else None
    finally:
        engine.dispose()


def queue_two_post_audit(audit_feed: AuditFeed, new_database, tmp_path: Path) -> tuple[Settings, int, int]:
    """A queued audit of two posts, none taken yet: (settings, audit id, item id of the bunny post)."""
    settings = Settings(db_url=new_database("postgresql"), store_dir=tmp_path / "evidence")
    assert invoke(settings, "db", "upgrade").exit_code == 0
    posts = {p.name: p.url for p in audit_feed.posts}
    urls = tmp_path / "posts.txt"
    # Undated posts are checked from the end of the list up: p01 first.
    urls.write_text(f"{posts['p08-testcard']}\n{posts['p01-bunny']}\n", encoding="utf-8")
    queued = invoke(settings, "audit", "--urls", str(urls), "--queue", "--detach", "--sleep", "0")
    assert queued.exit_code == 0, queued.output
    audit_id = int(queued.output.split("audit ", 1)[1].split(":", 1)[0])
    result = audit_lib.load_result(pipeline.open_library(settings), audit_id)
    return settings, audit_id, next(i.item_id for i in result.items if i.url == posts["p01-bunny"])


@pytest.mark.slow
@pytest.mark.postgresql
def test_a_post_that_kills_its_worker_every_time_fails_and_the_queue_goes_on(
        audit_feed: AuditFeed, new_database, tmp_path: Path, index_cache: Path) -> None:
    settings, audit_id, poisoned = queue_two_post_audit(audit_feed, new_database, tmp_path)
    with workers(settings, tmp_path, index_cache) as start:
        # The post "crashes" each worker that takes it: killed with SIGKILL while it holds the job.
        # One job at a time, so that the kill hits that post alone (a job in the same worker at each
        # of its tries would be failed with it: README, Limits).
        for death in range(3):
            worker = start(f"w{death}", "--concurrency", "1")
            wait_for(lambda: job_of(settings, poisoned) == ("doing", death), 60,
                     f"a worker to take the post for the {death + 1}. time", tmp_path)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        start("w-last", "--concurrency", "2")
        wait_for(lambda: states(settings, audit_id).get("pending", 0) == 0, 90, "the audit to end", tmp_path)
    result = audit_lib.load_result(pipeline.open_library(settings), audit_id)
    failed, = (i for i in result.items if i.item_id == poisoned)
    other, = (i for i in result.items if i.item_id != poisoned)
    assert failed.state == "failed" and failed.error_code == 4
    assert "a worker died on this post 3 times" in failed.error
    assert other.state == "done"  # the queue went on
    assert result.status == "done"
    assert job_of(settings, poisoned)[0] == "failed"
    # --retry-failed queues it again, like an audit in one process would check it again.
    again = invoke(settings, "audit", "--resume", str(audit_id), "--queue", "--detach", "--retry-failed")
    assert "1 jobs queued" in again.output, again.output


@pytest.mark.slow
@pytest.mark.postgresql
def test_ingest_queue_survives_a_database_restart(audit_feed: AuditFeed, media_server, pg_server, new_database,
                                                  tmp_path: Path, index_cache: Path) -> None:
    import hashlib
    import shutil

    from tests.conftest_pg import ENV_URL, restart_server

    if os.environ.get(ENV_URL):
        pytest.skip("restarts the throwaway server only")
    settings = Settings(db_url=new_database("postgresql"), store_dir=tmp_path / "evidence")
    assert invoke(settings, "db", "upgrade").exit_code == 0
    archive = tmp_path / "archive"  # a folder every worker reads at the same path
    (archive / "feed").mkdir(parents=True)
    for clip in SAMPLES.glob("*.mp4"):
        shutil.copy(clip, archive)
    for clip in (media_server.root / "audit").glob("*.mp4"):
        shutil.copy(clip, archive / "feed")
    (archive / "notes.txt").write_text("not a video", encoding="utf-8")
    files = sorted(archive.rglob("*.mp4"))
    distinct = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.name != "p04-not-a-video.mp4"}
    queued = invoke(settings, "ingest", str(archive), "--queue", "--detach")
    assert queued.exit_code == 0 and f"{len(files)} ingest jobs queued" in queued.output, queued.output
    batch = queued.output.split("(batch ", 1)[1].split(")", 1)[0]
    engine = connect(settings.db_url)
    try:
        from provenance.jobs import batch_state

        with workers(settings, tmp_path, index_cache) as start:
            worker = start("w1", "--concurrency", "1")
            wait_for(lambda: batch_state(engine, batch).succeeded >= 2, 120, "two files ingested", tmp_path)
            restart_server(pg_server.admin_url.render_as_string(hide_password=False))
            engine.dispose()  # its pooled connections died with the server
            wait_for(lambda: batch_state(engine, batch).finished, 240, "the ingest to end after the restart", tmp_path,
                     settings.db_url)
            assert worker.poll() is None  # it reconnected and went on
        state = batch_state(engine, batch)
        assert (state.succeeded, state.failed) == (len(files) - 1, 1)  # only the text file with a video's name
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM clips")) == len(distinct)
    finally:
        engine.dispose()


@pytest.mark.postgresql
def test_a_job_end_cut_off_on_its_way_is_written_again(new_database, tmp_path: Path) -> None:
    # procrastinate writes a job's end once; a connection cut while that write is in flight left the job
    # 'doing' under a live worker, never recovered (likely why the database-restart test above timed out once).
    # Here the write is held by a row lock, its connection is cut by pg_terminate_backend, and it must
    # land once the lock is gone (worker._persist_through_restarts).
    import asyncio

    import psycopg
    from procrastinate.jobs import Status

    from provenance import jobs, worker as worker_lib

    settings = Settings(db_url=new_database("postgresql"), store_dir=tmp_path / "evidence")
    assert invoke(settings, "db", "upgrade").exit_code == 0
    conninfo = jobs.conninfo(settings.db_url)

    async def scenario() -> str:
        app = jobs.make_app(settings.db_url)
        worker_lib._persist_through_restarts(app.job_manager)
        async with app.open_async():
            await app.configure_task(jobs.TASK_INGEST_FILE, queue=jobs.QUEUE_INGEST).defer_async(
                path=str(tmp_path / "clip.mp4"), batch="b")
            job = await app.job_manager.fetch_job(queues=None, worker_id=await app.job_manager.register_worker())
            assert job is not None
            with psycopg.connect(conninfo, autocommit=True) as admin, psycopg.connect(conninfo) as holder:
                holder.execute("SELECT 1 FROM procrastinate_jobs WHERE id = %s FOR UPDATE", (job.id,))
                finishing = asyncio.create_task(app.job_manager.finish_job(job, status=Status.SUCCEEDED,
                                                                           delete_job=False))
                waiting = None
                for _ in range(200):
                    await asyncio.sleep(0.05)
                    waiting = admin.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                            "AND query LIKE '%%finish_job%%'").fetchone()
                    if waiting:
                        break
                assert waiting, "the job's end was never written"
                admin.execute("SELECT pg_terminate_backend(%s)", (waiting[0],))
                await asyncio.sleep(0.5)
                assert not finishing.done()  # cut off, and waiting to try again
                holder.rollback()  # the lock goes
            await asyncio.wait_for(finishing, timeout=worker_lib.PERSIST_TRIES * worker_lib.RECONNECT_S)
        with psycopg.connect(conninfo) as conn:
            return conn.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (job.id,)).fetchone()[0]

    assert asyncio.run(scenario()) == "succeeded"


@pytest.mark.slow
@pytest.mark.postgresql
def test_a_heartbeat_cut_off_does_not_silence_the_worker(new_database, tmp_path: Path, index_cache: Path) -> None:
    # procrastinate's heartbeat task ends, unseen, when its connection is cut mid-query (a database
    # restart): the worker then ran on silent, and every job it took was queued again elsewhere as
    # stalled. Its heartbeat must go on. The heartbeat is held by a row lock, its connection cut by
    # pg_terminate_backend.
    import shutil

    import psycopg

    from provenance import jobs
    from provenance.jobs import batch_state

    settings = Settings(db_url=new_database("postgresql"), store_dir=tmp_path / "evidence")
    assert invoke(settings, "db", "upgrade").exit_code == 0
    conninfo = jobs.conninfo(settings.db_url)
    with workers(settings, tmp_path, index_cache) as start, psycopg.connect(conninfo, autocommit=True) as admin:
        worker = start("w1", "--concurrency", "1")
        wait_for(lambda: admin.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0] == 1, 120,
                 "the worker to register", tmp_path)
        (worker_id,) = admin.execute("SELECT id FROM procrastinate_workers").fetchone()
        with psycopg.connect(conninfo) as holder:
            holder.execute("SELECT 1 FROM procrastinate_workers WHERE id = %s FOR UPDATE", (worker_id,))
            held = ("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%%update_heartbeat%%'")
            wait_for(lambda: admin.execute(held).fetchall(), 30, "a heartbeat held by the lock", tmp_path)
            # Both senders of the heartbeat (procrastinate's task and the recovery loop) come to the lock
            # within a second: every one held is cut, so procrastinate's own is cut for sure.
            time.sleep(2 * float(STALL_S) / 4 + 0.5)
            for (pid,) in admin.execute(held).fetchall():
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            holder.rollback()
        silent = float(STALL_S)

        def heartbeat_age() -> float:
            return float(admin.execute("SELECT extract(epoch FROM now() - last_heartbeat) FROM procrastinate_workers "
                                       "WHERE id = %s", (worker_id,)).fetchone()[0])

        # The heartbeat comes back within the stall timeout, and stays fresh for over twice as long.
        wait_for(lambda: heartbeat_age() < 1.0, silent, "the heartbeat after the cut", tmp_path)
        back = time.monotonic()
        while time.monotonic() - back < 2.5 * silent:
            time.sleep(0.25)
            age = heartbeat_age()
            assert age < silent, f"no heartbeat for {age:.1f} s after the cut"
        folder = tmp_path / "one"
        folder.mkdir()
        shutil.copy(SAMPLES / "bikes.mp4", folder)
        queued = invoke(settings, "ingest", str(folder), "--queue", "--detach")
        assert queued.exit_code == 0, queued.output
        batch = queued.output.split("(batch ", 1)[1].split(")", 1)[0]
        engine = connect(settings.db_url)
        try:
            wait_for(lambda: batch_state(engine, batch).finished, 120, "the ingest after the cut", tmp_path,
                     settings.db_url)
            assert batch_state(engine, batch).succeeded == 1
        finally:
            engine.dispose()
        assert worker.poll() is None


def decoders_of(worker: subprocess.Popen) -> set[int]:
    """The decoder processes (multiprocessing spawn children) of a worker process."""
    found = set()
    for task in Path(f"/proc/{worker.pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue  # the thread ended between the listing and the read
        for pid in children:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                found.add(int(pid))
    return found


@pytest.mark.slow
@pytest.mark.postgresql
def test_a_decoder_that_dies_fails_its_post_alone_and_the_worker_goes_on(
        audit_feed: AuditFeed, new_database, tmp_path: Path, index_cache: Path) -> None:
    settings, audit_id, poisoned = queue_two_post_audit(audit_feed, new_database, tmp_path)
    with workers(settings, tmp_path, index_cache) as start:
        worker = start("w1", "--concurrency", "1")
        # The post's decoder "crashes" (SIGKILL) while it decodes; then again when it is decoded alone.
        killed: set[int] = set()
        for _ in range(2):
            wait_for(lambda: job_of(settings, poisoned) == ("doing", 0) and decoders_of(worker) - killed, 60,
                     "a decoder process for the post", tmp_path)
            for pid in decoders_of(worker) - killed:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        wait_for(lambda: states(settings, audit_id).get("pending", 0) == 0, 90, "the audit to end", tmp_path)
        assert worker.poll() is None  # the worker itself never died
    result = audit_lib.load_result(pipeline.open_library(settings), audit_id)
    failed, = (i for i in result.items if i.item_id == poisoned)
    other, = (i for i in result.items if i.item_id != poisoned)
    assert failed.state == "failed" and failed.error_code == 4 and "decoder process died" in failed.error
    assert other.state == "done" and result.status == "done"
    assert job_of(settings, poisoned)[0] == "succeeded"  # its job ended, once (the post is failed)


@pytest.mark.postgresql
def test_queueing_with_no_worker_running_says_how_to_start_one(new_database, tmp_path: Path) -> None:
    settings = Settings(db_url=new_database("postgresql"), store_dir=tmp_path / "evidence")
    assert invoke(settings, "db", "upgrade").exit_code == 0
    result = invoke(settings, "ingest", str(SAMPLES), "--queue", "--detach")
    assert result.exit_code == 0, result.output
    assert "4 ingest jobs queued" in result.output and "start some with: provenance worker" in result.output


@pytest.mark.slow
@pytest.mark.postgresql
def test_a_check_submitted_as_a_job_is_recorded_by_a_worker(new_database, tmp_path: Path, index_cache: Path) -> None:
    from provenance import jobs

    settings = Settings(db_url=new_database("postgresql"), store_dir=tmp_path / "evidence")
    assert invoke(settings, "db", "upgrade").exit_code == 0
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://example.org/original")
    job_id = jobs.submit_check(settings, str(SAMPLES / "bikes.mp4"), post_url="https://example.org/repost")
    assert jobs.job_status(settings, job_id) == "todo"
    with workers(settings, tmp_path, index_cache) as start:
        start("w1", "--queues", "check")
        wait_for(lambda: jobs.job_status(settings, job_id) in ("succeeded", "failed"), 120, "the check", tmp_path)
    assert jobs.job_status(settings, job_id) == "succeeded"
    assert per_url_counts(settings, ["https://example.org/repost"]) == {"https://example.org/repost": (1, 1)}
    assert jobs.job_status(settings, 10**6) is None


@pytest.mark.postgresql
def test_a_worker_refuses_an_unknown_queue(new_database, tmp_path: Path) -> None:
    settings = Settings(db_url=new_database("postgresql"), store_dir=tmp_path / "evidence")
    result = invoke(settings, "worker", "--queues", "audit,nope")
    assert result.exit_code == 2 and "no queue named nope; the queues are audit, ingest, check" in result.output
