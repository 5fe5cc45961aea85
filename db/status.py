"""What `provenance db status` reports: where the library is, its schema, its size, its contents."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from provenance.db import repository
from provenance.db.engine import (
    connect,
    current_revision,
    database_is_empty,
    driver_message,
    head_revision,
    refuse_other_revision,
    session_scope,
    shown_url,
    sqlite_file,
)
from provenance.errors import StoreError


@dataclass(frozen=True)
class DatabaseStatus:
    url: str  # with any password replaced by ***
    backend: str  # "sqlite" | "postgresql"
    revision: str | None  # None: an empty database, no schema yet
    head: str  # the revision this provenance writes
    size_bytes: int | None  # on disk, None when the backend cannot say (an in-memory SQLite)
    counts: dict[str, int]  # rows per table, every table of the schema; {} when empty


def database_status(url: str) -> DatabaseStatus:
    """Read-only: nothing is created or written (a missing SQLite file is an error), an empty
    database is reported as such, and a schema other than this provenance's head is refused with
    the usual one-line error naming the fix."""
    engine = connect(url, read_only=True)
    try:
        head = head_revision()
        if database_is_empty(engine):
            revision, counts = None, {}
        else:
            refuse_other_revision(engine)
            revision = current_revision(engine)
            with session_scope(engine) as session:
                counts = repository.row_counts(session=session)
        return DatabaseStatus(
            url=shown_url(engine.url),
            backend=engine.dialect.name,
            revision=revision,
            head=head,
            size_bytes=_size(engine),
            counts=counts,
        )
    finally:
        engine.dispose()


def _size(engine: Engine) -> int | None:
    if engine.dialect.name == "postgresql":
        try:
            with engine.connect() as conn:
                return conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        except SQLAlchemyError as e:
            raise StoreError(f"cannot read the database size: {driver_message(e)}") from e
    path = sqlite_file(engine.url)
    if path is None:
        return None
    # In WAL mode recent writes may still sit in the -wal file beside the database.
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
