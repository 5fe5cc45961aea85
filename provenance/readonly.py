"""A check that records nothing, reading an SQLite library through Python's own sqlite3.

`provenance check --no-record` reads the library and writes nothing to it, so it needs none of what
SQLAlchemy and the models are there for: when the library is an SQLite file at the current schema
and its on-disk index already holds every clip, the check opens the file with sqlite3, maps the index
(provenance.diskindex.open_current) and asks its few questions through provenance.db.reads, the same
SQL the repository runs. The process then never imports SQLAlchemy, ~0.5 s of CPU that on two cores
competes with the decode beside it (bench/README.md, "A check that reads without SQLAlchemy").

Anything else goes the usual way (`open_direct` gives None): PostgreSQL, a URL with options or
escapes, a missing or damaged file, another schema revision, an index to catch up or rebuild. The
usual way then opens, mends and reports exactly as it does for every command.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .db import reads
from .diskindex import Snapshot, open_current, sqlite_index_folder
from .errors import StoreError

# A plain SQLite file URL, as `--db`, PROVENANCE_DB and the default give it: sqlite:///relative.db or
# sqlite:////absolute.db. Query options, percent escapes or another driver go the usual way, which
# parses them as SQLAlchemy does.
_PLAIN_SQLITE_URL = re.compile(r"sqlite:///(?P<path>[^?%#]+)")
# As provenance.db.engine's: wait for a writer's transaction (an ingest) rather than fail at once.
_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class DirectLibrary:
    """An SQLite library open for reading through sqlite3, with the index snapshot it was opened with."""

    connection: sqlite3.Connection
    snapshot: Snapshot

    def reading(self) -> AbstractContextManager[reads.Reads]:
        """One read transaction: every answer in it is of the same state of the library."""
        return _transaction(self.connection)

    def close(self) -> None:
        self.connection.close()


def open_direct(url: str, *, min_quality: float) -> DirectLibrary | None:
    """The library at `url` opened for reading without SQLAlchemy, when it can be (see the module's
    docstring); else None, and nothing was opened or changed."""
    found = _PLAIN_SQLITE_URL.fullmatch(url)
    if found is None or found["path"] == ":memory:":
        return None
    path = Path(found["path"]).expanduser()
    if not path.is_file():
        return None  # a new library is created, or the error worded, the usual way
    connection: sqlite3.Connection | None = None
    try:
        # mode=rw: never creates a file; isolation_level None: transactions are begun by `reading`.
        connection = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=rw", uri=True,
                                     isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        with _transaction(connection) as r:
            if reads.stored_revision(r.run) != reads.HEAD_REVISION:
                raise LookupError("another schema revision")
            snapshot = open_current(sqlite_index_folder(found["path"]), r, min_quality=min_quality)
        if snapshot is None:
            raise LookupError("the index is to be caught up or rebuilt")
        return DirectLibrary(connection=connection, snapshot=snapshot)
    except (sqlite3.Error, StoreError, OSError, LookupError):
        # Not a database, not ours, locked past the timeout, an index to mend: the usual way says or does it.
        if connection is not None:
            connection.close()
        return None


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[reads.Reads]:
    """A read transaction; a database failure in it is worded as provenance.db.session_scope words it."""
    try:
        connection.execute("BEGIN")
        try:
            yield reads.Reads(reads.sqlite_run(connection))
        finally:
            connection.execute("ROLLBACK")
    except sqlite3.Error as e:
        raise StoreError(f"database error, nothing from this command was saved: {e}; "
                         "try again, or check the database (provenance db status)") from e
