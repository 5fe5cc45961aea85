"""Storage: SQLite by default, PostgreSQL via --db / PROVENANCE_DB (postgresql+psycopg://...).

ORM objects never leave this package; the repository returns provenance.records types.
"""

from provenance.db import audits, repository, timestamps, tokens
from provenance.db.engine import (
    connect,
    current_revision,
    database_is_empty,
    default_database_url,
    ensure_schema,
    head_revision,
    session_scope,
    shown_url,
    upgrade,
)
from provenance.db.portable import export_library, import_library
from provenance.db.status import DatabaseStatus, database_status

__all__ = [
    "audits",
    "DatabaseStatus",
    "connect",
    "current_revision",
    "database_is_empty",
    "database_status",
    "default_database_url",
    "ensure_schema",
    "export_library",
    "head_revision",
    "import_library",
    "repository",
    "session_scope",
    "timestamps",
    "tokens",
    "shown_url",
    "upgrade",
]
