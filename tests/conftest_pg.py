"""A throwaway PostgreSQL server for the test session, and a fresh empty database per test.

The server is Debian's (or any) PostgreSQL binaries: initdb into a temporary folder, pg_ctl start,
listening only on a unix socket in that folder (no port to collide with another run), fsync off
(the data dies with the session). PostgreSQL refuses to run as root, so under root (CI) it runs as
the `postgres` system user through runuser. A test's database is CREATE DATABASE (about 0.1 s) and
is dropped after the test.

PROVENANCE_TEST_PG_URL=postgresql+psycopg://user@host/postgres uses an existing server instead.
Without PostgreSQL the PostgreSQL tests are skipped with the reason; with CI set they fail instead,
so that CI cannot pass without them.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ENV_URL = "PROVENANCE_TEST_PG_URL"  # an existing server (a superuser or CREATEDB role)
ENV_BIN = "PROVENANCE_TEST_PG_BIN"  # the folder holding initdb and pg_ctl, when not found
ENV_CI = "CI"
_SERVER_USER = "postgres"  # the system user the server runs as when the tests run as root


def _unavailable(reason: str) -> None:
    reason = f"PostgreSQL tests need a server: {reason}"
    if os.environ.get(ENV_CI):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def _server_binaries() -> Path | None:
    """The newest PostgreSQL server binaries: $PROVENANCE_TEST_PG_BIN, Debian's versioned folders,
    then initdb on PATH (which on Debian is often a symlink into those folders, or absent)."""
    candidates: list[Path] = []
    if os.environ.get(ENV_BIN):
        candidates.append(Path(os.environ[ENV_BIN]))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.replace(".", "").isdigit()]
        candidates += [p / "bin" for p in sorted(versions, key=lambda p: float(p.name), reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    return next((c for c in candidates if (c / "initdb").is_file() and (c / "pg_ctl").is_file()), None)


class PgServer:
    """Creates and drops databases on one server (reached with a superuser URL)."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
        from sqlalchemy.pool import NullPool

        self.admin_url = make_url(admin_url)
        # CREATE/DROP DATABASE cannot run inside a transaction.
        self._admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self._names = (f"provenance_test_{uuid.uuid4().hex[:8]}_{i}" for i in itertools.count())

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        from sqlalchemy import text

        name = next(self._names)
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        with self._admin.connect() as conn:
            # FORCE: a test may leave an engine's pooled connection open.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def dispose(self) -> None:
        self._admin.dispose()


def _as_server_user(args: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *args] if user else args


class ServerUnavailable(Exception):
    """No PostgreSQL to start here; the message says why and what to install."""


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a PostgreSQL server in a temporary folder; yields its superuser URL; removes it all.
    Also used by bench/transfer.py, so it depends on nothing from pytest."""
    bindir = _server_binaries()
    if bindir is None:
        raise ServerUnavailable(
            "no initdb/pg_ctl found (install PostgreSQL, e.g. apt-get install postgresql, "
            f"or set {ENV_BIN} or {ENV_URL})"
        )
    user = None
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam(_SERVER_USER)
        except KeyError:
            raise ServerUnavailable(
                f"running as root and there is no {_SERVER_USER!r} user to run the server as"
            ) from None
        user = _SERVER_USER
    # Not under pytest's tmp folders: those are private to the user running the tests.
    root = Path(tempfile.mkdtemp(prefix="provenance-pg-"))
    if user:
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, log = root / "data", root / "server.log"
    try:
        subprocess.run(
            _as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                             "-E", "UTF8", "--no-sync", "--no-instructions"], user),
            check=True, capture_output=True, text=True,
        )
        options = (f"-c listen_addresses='' -k {root} -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o", options,
                             "start"], user),
            check=True, capture_output=True, text=True,
        )
    except subprocess.CalledProcessError as e:
        details = e.stderr.strip() + (f"\n{log.read_text()}" if log.exists() else "")
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"starting the throwaway PostgreSQL server failed: {details}") from e
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={root}"
    finally:
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], user),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed (pip install -e '.[test]')")
    if os.environ.get(ENV_URL):
        server = PgServer(os.environ[ENV_URL])
        yield server
        server.dispose()
        return
    try:
        with throwaway_server() as url:
            server = PgServer(url)
            try:
                yield server
            finally:
                server.dispose()
    except ServerUnavailable as e:
        _unavailable(str(e))


def restart_server(admin_url: str) -> None:
    """Restart the throwaway server (pg_ctl restart -m fast: every connection is cut, as in a real
    restart), for tests of clients that must reconnect. Not for PROVENANCE_TEST_PG_URL servers."""
    from sqlalchemy.engine import make_url

    root = Path(make_url(admin_url).query["host"])
    bindir = _server_binaries()
    assert bindir is not None
    user = _SERVER_USER if os.geteuid() == 0 else None
    subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"),
                                    "-w", "-m", "fast", "restart"], user), check=True, capture_output=True, text=True)
