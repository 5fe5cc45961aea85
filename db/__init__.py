"""Storage: SQLite by default, PostgreSQL via --db / PROVENANCE_DB (postgresql+psycopg://...).

ORM objects never leave this package; the repository returns provenance.records types.

The names below are loaded on first use, not with the package: provenance.db.reads (plain SQL, no
SQLAlchemy) must be importable without SQLAlchemy and the models, which a check that records nothing
never loads (provenance.readonly).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULES = ("audits", "repository", "timestamps", "tokens")
_NAMES = {
    **{name: "engine" for name in ("connect", "current_revision", "database_is_empty", "default_database_url",
                                   "ensure_schema", "head_revision", "session_scope", "shown_url", "upgrade")},
    "export_library": "portable",
    "import_library": "portable",
    "DatabaseStatus": "status",
    "database_status": "status",
}

__all__ = sorted([*_MODULES, *_NAMES])


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
