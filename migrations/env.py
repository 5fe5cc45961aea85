"""Alembic environment: programmatic (`provenance db upgrade`) and `alembic` CLI for developers."""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from provenance.db.models import Base, UTCDateTime

config = context.config
if config.config_file_name is not None:  # the alembic CLI with alembic.ini; never the tool itself
    from logging.config import fileConfig

    fileConfig(config.config_file_name)
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations must not import application types: the column is a plain DateTime in the
    # database, and UTC handling lives only in the model.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


_OPTIONS: dict[str, Any] = {
    "target_metadata": target_metadata,
    "render_as_batch": True,  # SQLite can only ALTER by copying the table
    "compare_type": True,
    "render_item": render_item,
}


def _url() -> str:
    url = os.environ.get("PROVENANCE_DB") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set PROVENANCE_DB or sqlalchemy.url")
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"}, **_OPTIONS
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # provenance.db.upgrade: the caller owns the transaction
        _run(connection)
        return
    from provenance.db.engine import connect  # same SQLite pragmas as the application

    engine = connect(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
