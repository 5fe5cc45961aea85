"""Storage: SQLite by default, any SQLAlchemy URL (PostgreSQL) via --db / PROVENANCE_DB.

ORM objects never leave this package; the repository returns provenance.records types.
"""

from provenance.db import audits, repository
from provenance.db.engine import (
    connect,
    current_revision,
    database_is_empty,
    default_database_url,
    ensure_schema,
    head_revision,
    session_scope,
    upgrade,
)

__all__ = [
    "audits",
    "connect",
    "current_revision",
    "database_is_empty",
    "default_database_url",
    "ensure_schema",
    "head_revision",
    "repository",
    "session_scope",
    "upgrade",
]
