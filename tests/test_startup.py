"""Start-up of the command line: a check loads only what a check needs, and a missing file is refused
before the database or any heavy library is loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from provenance import audit, cli, reporting, worker
from tests.conftest import SAMPLES


def _imported(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the CLI under `python -X importtime`; the modules it imported."""
    cp = subprocess.run([sys.executable, "-X", "importtime", "-c", "from provenance.cli import main; main()", *args],
                        capture_output=True, text=True, env=env or os.environ.copy())
    modules = {line.split("|")[-1].strip() for line in cp.stderr.splitlines() if line.startswith("import time:")}
    return cp, modules


def test_the_option_copies_in_the_command_line_agree_with_their_modules():
    assert cli.REPORT_FORMATS == reporting.FORMATS
    assert (cli.AUDIT_DEFAULT_WORKERS, cli.AUDIT_MAX_WORKERS) == (audit.DEFAULT_WORKERS, audit.MAX_WORKERS)
    assert (cli.AUDIT_DEFAULT_SLEEP_S, cli.AUDIT_DEFAULT_BACKOFF_S) == (audit.DEFAULT_SLEEP_S, audit.DEFAULT_BACKOFF_S)
    assert cli.AUDIT_LISTERS == audit.LISTERS
    from provenance import serve
    from provenance.serve import inputs

    assert (cli.SERVE_DEFAULT_HOST, cli.SERVE_DEFAULT_PORT) == (serve.DEFAULT_HOST, serve.DEFAULT_PORT)
    assert cli.parse_size(cli.SERVE_DEFAULT_MAX_UPLOAD) == inputs.DEFAULT_MAX_UPLOAD
    assert (cli.WORKER_DEFAULT_CONCURRENCY, cli.WORKER_MAX_CONCURRENCY) == (worker.DEFAULT_CONCURRENCY,
                                                                             worker.MAX_CONCURRENCY)
    assert cli.WORKER_DEFAULT_STALL_S == worker.DEFAULT_STALL_TIMEOUT_S


def test_a_missing_file_is_refused_before_the_library_or_any_heavy_module_loads(tmp_path):
    cp, modules = _imported(["check", str(tmp_path / "missing.mp4"), "--db", f"sqlite:///{tmp_path / 'lib.db'}"])
    assert cp.returncode == 2 and "no such file" in cp.stderr
    assert not {"sqlalchemy", "numpy", "cv2", "provenance.pipeline", "provenance.db"} & modules
    assert not (tmp_path / "lib.db").exists()  # the library was not even opened


def test_what_a_check_needs_before_the_decode_loads_no_database_or_matcher_code():
    # pipeline.check opens the database (SQLAlchemy, models, index, matcher) on a thread while the clip
    # is fetched and decoded: the settings and the pipeline module must not load any of it themselves.
    code = ("import sys; from provenance.settings import Settings; Settings.resolve(); "
            "import provenance.api, provenance.cli, provenance.pipeline; print(sorted(sys.modules))")
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(cp.stdout))  # noqa: S307 - our own subprocess's printed list
    assert "provenance.frames" in loaded and "cv2" in loaded  # what the decode needs
    heavy = {"sqlalchemy", "provenance.db", "provenance.index", "provenance.diskindex", "provenance.match",
             "provenance.localfeat", "provenance.timestamps", "rfc3161_client", "jinja2", "alembic", "yt_dlp", "scipy"}
    assert not heavy & loaded, heavy & loaded


@pytest.mark.slow
def test_a_check_loads_no_audit_report_page_or_migration_code(tmp_path):
    db = f"sqlite:///{tmp_path / 'lib.db'}"
    env = dict(os.environ, PROVENANCE_STORE=str(tmp_path / "evidence"))
    subprocess.run([sys.executable, "-m", "provenance.cli", "ingest", str(SAMPLES / "bikes.mp4"), "--db", db,
                    "--quiet"], check=True, env=env)
    cp, modules = _imported(["check", str(SAMPLES / "bikes.mp4"), "--no-record", "--json", "--db", db], env)
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert "provenance.pipeline" in modules and "provenance.diskindex" in modules
    unneeded = {"provenance.audit", "provenance.reporting.audit", "provenance.listing", "provenance.reporting.build",
                "provenance.reporting.html", "provenance.reporting.model", "provenance.folder", "provenance.attest", "provenance.bundle", "provenance.jobs", "provenance.worker",
                "procrastinate", "jinja2", "alembic", "yt_dlp", "scipy",
                # A page capture's cookies (provenance.capture): urllib.request, http.client come with it.
                "http.cookiejar", "urllib.request"}
    assert not unneeded & modules, unneeded & modules


_WHO_IMPORTS = """
import json, os, sys, threading
first = {}
def hook(event, args):
    if event == "import" and args[0].split(".")[0] in ("sqlalchemy", "provenance") and args[0] not in first:
        first[args[0]] = threading.current_thread().name
sys.addaudithook(hook)
from provenance.cli import main
try:
    main()
finally:
    with open(os.environ["WHO_IMPORTS"], "w") as out:
        json.dump(first, out)
"""


@pytest.mark.slow
def test_a_check_imports_the_database_on_the_library_thread_not_before_the_decode(tmp_path):
    db = f"sqlite:///{tmp_path / 'lib.db'}"
    env = dict(os.environ, PROVENANCE_STORE=str(tmp_path / "evidence"))
    subprocess.run([sys.executable, "-m", "provenance.cli", "ingest", str(SAMPLES / "bikes.mp4"), "--db", db,
                    "--quiet"], check=True, env=env)
    who = tmp_path / "who.json"
    cp = subprocess.run([sys.executable, "-c", _WHO_IMPORTS, "check", str(SAMPLES / "bikes.mp4"), "--no-record",
                         "--json", "--db", db], capture_output=True, text=True, env=dict(env, WHO_IMPORTS=str(who)))
    assert cp.returncode == 0, cp.stderr[-2000:]
    first = __import__("json").loads(who.read_text())
    assert first["provenance.frames"] == "MainThread"
    late = ("sqlalchemy", "provenance.db", "provenance.index", "provenance.diskindex", "provenance.match")
    assert {m for m in first if m in late} == set(late)
    on_main = sorted(m for m, thread in first.items() if m.startswith(late) and thread == "MainThread")
    assert not on_main, on_main  # all of them on the library's thread, while the clip decodes
