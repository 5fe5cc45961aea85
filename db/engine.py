"""Opening the database, keeping its schema current, and transactions."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session

from provenance.errors import StoreError
from provenance.db.reads import HEAD_REVISION  # noqa: F401 - the schema a library must be at
from provenance.settings import default_database_url  # noqa: F401 - public here too (provenance.db)

_FIX = "check --db / PROVENANCE_DB"
_UPGRADE = "run: provenance db upgrade"
# SQLite's write lock is held for one command's transaction: a clip's frame rows and a check, well
# under a second; 30 s covers a long import or migration by another process, then fails clearly.
_BUSY_TIMEOUT_MS = 30_000
# The backends whose upsert (INSERT .. ON CONFLICT) the repository uses and the test suite runs on.
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
# pg_advisory_xact_lock key serialising schema changes between processes: any constant works as long
# as it is the same everywhere; this is b"prov" read as an integer.
_PG_SCHEMA_LOCK = 0x70726F76
PG_SCHEMA_LOCK = _PG_SCHEMA_LOCK  # for the job queue's tables (provenance.jobs), created under the same lock


def _redact(url: str) -> str:
    # For URLs too malformed to parse: still never echo a password, up to the last @ (a password
    # may hold an unescaped @; a host never does).
    return re.sub(r"(://[^:/@]*:).*@", r"\1***@", url)


# Query parameters that carry secrets: libpq and psycopg take `?password=`, and some setups pass
# tokens the same way.
_SECRET_QUERY_KEY = re.compile(r"pass|secret|token|key", re.IGNORECASE)


def shown_url(url: str | URL) -> str:
    """A database URL safe to print or put in a report: no password, in the user part or the query."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is no number
        return _redact(str(url))
    if _password_has_at(parsed):
        # SQLAlchemy ends the password at its first @: the rest of it went into the host.
        parsed = parsed.set(password="***", host=(parsed.host or "").rsplit("@", 1)[1])
    hidden = {k: "***" for k in parsed.query if _SECRET_QUERY_KEY.search(k)}
    return parsed.update_query_dict(hidden).render_as_string(hide_password=True)


def _password_has_at(url: URL) -> bool:
    return "@" in (url.host or "")


def driver_message(e: BaseException) -> str:
    # DBAPIError's str() appends SQL and a docs link; the driver's own message is the useful part.
    return str(e.orig) if isinstance(e, DBAPIError) and e.orig is not None else str(e)


def sqlite_file(url: URL) -> Path | None:
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db).expanduser()


def connect(url: str, *, read_only: bool = False) -> Engine:
    """An engine that has already connected once, so a bad URL fails here, not mid-command.

    `read_only`: for commands that only look (db status). Nothing is created (a missing SQLite file
    is an error, not a new library), nothing is written (not even SQLite's journal mode), and an
    SQLite library in a read-only folder can still be read."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as e:  # ValueError: a port that is no number
        raise StoreError(f"invalid database URL {_redact(url)!r}: {e}; {_FIX}") from e
    shown = shown_url(parsed)
    if _password_has_at(parsed):
        # Connecting would fail on host "rest-of-password@host", and the driver's message would show it.
        raise StoreError(f"invalid database URL {shown}: its password holds an '@'; write it as %40 "
                         f"(percent-encoded); {_FIX}")
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise StoreError(
            f"unsupported database {shown}: provenance works with SQLite (sqlite:///FILE) and PostgreSQL "
            f"(postgresql+psycopg://...); {_FIX}"
        )
    engine: Engine | None = None
    try:
        path = sqlite_file(parsed)
        if path is not None and read_only:
            if not path.is_file():
                raise StoreError(f"no database at {path}; {_FIX} (provenance db upgrade creates one there)")
            engine = create_engine(parsed, creator=lambda: _sqlite_read_only(path))
        elif parsed.get_backend_name() == "postgresql" and read_only:
            engine = create_engine(parsed, execution_options={"postgresql_readonly": True})
        else:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed)
            if parsed.get_backend_name() == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
        with engine.connect() as conn:
            if parsed.get_backend_name() == "sqlite":
                # SQLite opens lazily: reading the header rejects a file that is no database.
                conn.exec_driver_sql("PRAGMA schema_version")
    except (SQLAlchemyError, ImportError, OSError) as e:
        if engine is not None:
            engine.dispose()
        if isinstance(e, (NoSuchModuleError, ImportError)):
            reason = f"no database driver for this URL ({driver_message(e)})"
            if parsed.get_backend_name() == "postgresql":
                reason += "; install it with: pip install 'provenance[postgres]'"
        else:
            reason = driver_message(e)
        raise StoreError(f"cannot open database {shown}: {reason}; {_FIX}") from e
    return engine


def _sqlite_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write the library or create any file beside it.

    A WAL library with no -wal file beside it is open in no process (SQLite deletes the -wal when
    its last connection closes), so it is read as immutable: no locks, no -shm/-wal files, which
    also makes it readable in a read-only folder. A -wal file means a process has it open, and
    recent commits may be only there: then it is read as any reader would (mode=ro), which needs
    its -shm file, present beside the -wal unless a crash lost it. Immutable is safe because a
    status reads for milliseconds: a writer starting meanwhile writes to a new -wal, and the
    library file itself changes only at a checkpoint of 1,000 pages or when its last connection
    closes."""
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "immutable=1"
    conn = sqlite3.connect(f"file:{quote(str(path.absolute()))}?{mode}", uri=True, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    return conn


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # SQLite ignores foreign keys (and ON DELETE CASCADE) unless asked, per connection.
    cur.execute("PRAGMA foreign_keys=ON")
    # Wait for another process's write instead of failing at once; set before anything that locks.
    cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    # WAL: readers (a check loading the library) never block the writer, nor it them. Stored in the
    # file, so this is a no-op after the first connection.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


def _alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    import provenance.migrations

    # The installed package folder, not a path relative to the repo: works from a wheel.
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(provenance.migrations.__file__).parent))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser interpolation
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "provenance.migrations has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from alembic.util import CommandError

    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as e:
        raise StoreError(f"cannot read database schema version: {driver_message(e)}") from e
    except CommandError as e:  # several rows in alembic_version: no one revision to go by
        raise StoreError(_several_revisions(engine)) from e


def _several_revisions(engine: Engine) -> str:
    return (f"database {shown_url(engine.url)} has several schema versions in its alembic_version table, "
            "which provenance never writes: restore the database from a backup or export, or delete the "
            "wrong row of alembic_version")


def database_is_empty(engine: Engine) -> bool:
    try:
        return not inspect(engine).get_table_names()
    except SQLAlchemyError as e:
        raise StoreError(f"cannot read database: {driver_message(e)}") from e


def _upgrade_engine(engine: Engine) -> tuple[str | None, str]:
    try:
        # One transaction: env.py reuses this connection, so a failed step leaves nothing behind
        # (on backends with transactional DDL).
        with engine.begin() as conn:
            return migrate(conn)
    except SQLAlchemyError as e:
        raise StoreError(f"cannot upgrade database schema: {driver_message(e)}") from e


def migrate(conn: Connection, target: str = "head", *, lock: bool = True) -> tuple[str | None, str]:
    """Migrate the database of `conn` to `target` inside its open transaction; returns (revision
    before, revision after). `lock`: take the schema lock first (once per transaction: a second
    step in the same transaction already holds it). A database with tables of its own and no
    alembic_version is someone else's: it is refused, never given our tables."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.util import CommandError

    cfg = _alembic_config(conn.engine.url.render_as_string(hide_password=False))
    if lock:
        _lock_schema(conn)
    cfg.attributes["connection"] = conn
    try:
        before = MigrationContext.configure(conn).get_current_revision()
    except CommandError as e:
        raise StoreError(_several_revisions(conn.engine)) from e
    if before is None:
        foreign = sorted(set(inspect(conn).get_table_names()) - {"alembic_version"})
        if foreign:
            raise StoreError(_not_provenance(conn.engine, foreign))
    try:
        command.upgrade(cfg, target)
    except CommandError as e:
        raise StoreError(f"cannot upgrade database schema: {e}") from e
    after = MigrationContext.configure(conn).get_current_revision()
    assert after is not None
    return before, after


def _not_provenance(engine: Engine, tables: list[str]) -> str:
    shown = ", ".join(tables[:3]) + (f" and {len(tables) - 3} more" if len(tables) > 3 else "")
    return (f"database {shown_url(engine.url)} has tables ({shown}) but no provenance schema version: it is "
            "not a provenance library, and provenance leaves it as it is; give a new or provenance "
            "database with --db / PROVENANCE_DB")


def _lock_schema(conn: Connection) -> None:
    """Take the database-wide lock for schema changes, held to the end of the transaction, so that
    two processes creating or migrating one database at once run one after the other (the second
    then finds the schema at head and does nothing)."""
    backend = conn.dialect.name
    if backend == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SCHEMA_LOCK})
    elif backend == "sqlite":
        # pysqlite runs DDL outside any transaction unless one is open: BEGIN IMMEDIATE opens one
        # (so a failed step leaves nothing behind) and takes the write lock now, waiting
        # busy_timeout for a concurrent upgrade, before Alembic reads the current revision.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(url: str) -> tuple[str | None, str]:
    """Migrate to head; returns (revision before, revision after)."""
    engine = connect(url)
    try:
        return _upgrade_engine(engine)
    finally:
        engine.dispose()


def ensure_schema(engine: Engine) -> None:
    """Create the schema in an empty database; refuse an outdated one rather than migrate it
    silently (migrating a shared database is an explicit, separate step)."""
    if stored_revision(engine) == HEAD_REVISION:
        return
    if database_is_empty(engine):
        # Two first runs at once queue on the schema lock; the second finds the schema made.
        _upgrade_engine(engine)
        return
    refuse_other_revision(engine)


def refuse_other_revision(engine: Engine) -> None:
    """Raise the one-line StoreError for a database whose schema is not this provenance's head."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if current is None:
        foreign = sorted(set(inspect(engine).get_table_names()) - {"alembic_version"})
        if foreign:
            raise StoreError(_not_provenance(engine, foreign))
        raise StoreError(f"database has an empty alembic_version table and no tables; {_UPGRADE}")
    if not is_known_revision(current):
        raise StoreError(
            f"database schema rev {current} is unknown to this provenance (need {head}); "
            f"if a newer provenance wrote it, upgrade provenance, else {_UPGRADE}"
        )
    raise StoreError(f"database schema is out of date (rev {current}, need {head}); {_UPGRADE}")


def stored_revision(engine: Engine) -> str | None:
    """The revision in alembic_version, or None when it cannot be read (then Alembic looks)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:
        return None
    return rows[0] if len(rows) == 1 else None


def is_known_revision(rev: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(_alembic_config()).get_revision(rev) is not None
    except CommandError:
        return False


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed if the block finishes, rolled back on any exception.

    A database failure (server gone, SQLite still locked after the busy timeout, disk full) becomes
    a one-line StoreError saying nothing was saved, instead of a driver traceback."""
    try:
        # expire_on_commit=False: values read inside stay readable after the block.
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
    except DBAPIError as e:
        raise StoreError(
            f"database error, nothing from this command was saved: {driver_message(e)}; "
            "try again, or check the database (provenance db status)"
        ) from e
