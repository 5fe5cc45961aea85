"""Audits and ingests as jobs: real `provenance worker` processes on the throwaway PostgreSQL,
draining an audit of the local feed (tests/conftest_http.py), one of them killed with SIGKILL."""

from __future__ import annotations

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


def wait_for(what: Callable[[], bool], timeout: float, why: str, logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            shown = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs.glob("*.log"))
            pytest.fail(f"timed out waiting for {why}\n{shown}")
        time.sleep(0.2)


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
        followed = invoke(shared, "audit", "--resume", str(audit_id), "--queue", "--json")
        assert followed.exit_code == 0, followed.output

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
