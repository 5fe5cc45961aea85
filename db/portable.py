"""`provenance export` / `provenance import`: a whole library as one portable file.

The file is gzip-compressed JSON Lines:

    {"format": "provenance-library", "format_version": 1, "schema_revision": "0010", ...,
     "tables": {"clips": ["id", "sha256", ...], ...}}          header: what follows, column order
    {"table": "clips"}                                         then, per table, a start line
    [1, "ab12...", ...]                                        and one JSON array per row
    {"end": {"clips": 12, "frames": 3456, ...}}                trailer: rows written per table

Why this shape: it streams (a library of millions of frame hashes is written and read in constant
memory), needs nothing but Python to read (zcat FILE | head shows it), is the same whatever the
database (no SQL dialect inside), and is written generically from the ORM metadata, so every
table, including ones added later, is carried without code here. The trailer makes a truncated
file an error, not a silently smaller library. Values are exact: frame hashes are the stored
64-bit integers, times ISO 8601 with microseconds, floats Python's shortest round-trip repr.

Ids are preserved, so an import goes into an empty database only (a non-empty one is refused,
not merged): the copy is then row for row the library that was exported. The evidence files
(the clips themselves) are not in the database and not in the file: clips keep their
evidence_path; copy the evidence store folder alongside.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, Table, func, select, text, types
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DataError, SQLAlchemyError

from provenance import __version__
from provenance.db import models as orm
from provenance.db.engine import (
    HEAD_REVISION,
    connect,
    current_revision,
    database_is_empty,
    driver_message,
    ensure_schema,
    is_known_revision,
    migrate,
    shown_url,
    sqlite_file,
    stored_revision,
)
from provenance.errors import InputError, StoreError

FORMAT = "provenance-library"
FORMAT_VERSION = 1
_BATCH = 5_000  # rows per INSERT executemany / per progress update: large enough to amortise round trips

ProgressFn = Callable[[str, float | None], None]


def export_library(url: str, path: Path, *, progress: ProgressFn | None = None) -> dict[str, int]:
    """Write every table of the library at `url` to `path`; returns rows written per table."""
    import gzip  # here, not at the top: every command imports this module, few export

    engine = connect(url)
    try:
        ensure_schema(engine)
        revision = current_revision(engine)
        tables = orm.Base.metadata.sorted_tables  # parents before children: importable in order
        path = Path(path)
        # Written beside the target and renamed at the end: no half-written file under FILE.
        fd, tmp = _new_file_beside(path)
        try:
            # Level 6 (zlib's default): gzip's 9 spent a fifth of an export in zlib for 0.02% less.
            with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", filename="",
                                                            compresslevel=6) as gz:
                with _snapshot(engine) as conn:
                    counts = _write(conn, gz, tables, revision, progress)
                gz.flush()
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}; check the path and free space") from e
    except SQLAlchemyError as e:
        raise StoreError(f"cannot read the library for export: {driver_message(e)}") from e
    finally:
        engine.dispose()
    return counts


def _new_file_beside(path: Path) -> tuple[int, Path]:
    """A new, uniquely named file next to `path`, open for writing, with the mode the umask gives:
    an export is made to be handed on (it holds no secrets), and mkstemp's 0600 would hide it
    from the colleague it is for."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.part"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _snapshot(engine: Engine) -> Any:
    """A connection whose reads all see one moment: other processes may be writing meanwhile, and
    a check exported without its clip would not import."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    else:
        # pysqlite runs SELECTs outside any transaction; an explicit one holds one WAL snapshot.
        conn.exec_driver_sql("BEGIN")
    return conn


def _write(conn: Connection, out: IO[bytes], tables: list[Table], revision: str | None,
           progress: ProgressFn | None) -> dict[str, int]:
    totals = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables}
    grand_total = sum(totals.values()) or 1
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema_revision": revision,
        "provenance_version": __version__,
        "exported_at": datetime.now(UTC).isoformat(),
        "backend": conn.dialect.name,
        "tables": {t.name: [c.name for c in t.columns] for t in tables},
    }
    _line(out, header)
    counts: dict[str, int] = {}
    done = 0
    for table in tables:
        _line(out, {"table": table.name})
        n = 0
        # Only datetimes, bytes and decimals need converting; most columns (all of frames') go as read.
        encoders = [(i, _encoder(c.type)) for i, c in enumerate(table.columns) if _encoder(c.type)]
        stmt = select(table).order_by(*table.primary_key.columns)
        for partition in conn.execution_options(yield_per=_BATCH).execute(stmt).partitions():
            lines = []
            for row in partition:
                values = list(row)
                for i, encode in encoders:
                    if values[i] is not None:
                        values[i] = encode(values[i])
                lines.append(_JSON.encode(values))
            # One write per batch: gzip's per-call cost is most of the time otherwise.
            out.write(("\n".join(lines) + "\n").encode())
            n += len(partition)
            done += len(partition)
            if progress:
                progress(f"export {table.name}", done / grand_total)
        counts[table.name] = n
    _line(out, {"end": counts})
    return counts


# allow_nan (the default): a NaN in a float column stays NaN (Python's json reads it back).
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


_DECODE = json.JSONDecoder().decode


def _line(out: IO[bytes], value: Any) -> None:
    out.write(_JSON.encode(value).encode() + b"\n")


def _encoder(type_: types.TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """How a column's values become JSON; the inverse of _decoder. None: they already are."""
    impl = getattr(type_, "impl", type_)
    if isinstance(impl, types.DateTime | types.Date):
        return lambda v: v.isoformat()
    if isinstance(impl, types.LargeBinary):
        return lambda v: v.hex()
    if isinstance(impl, types.Numeric) and not isinstance(impl, types.Float) and impl.asdecimal:
        return str
    return None


def import_library(url: str, path: Path, *, progress: ProgressFn | None = None) -> dict[str, int]:
    """Load an export into the empty database at `url`, all or nothing; returns rows per table.

    Nothing means nothing: the schema is created in the import's own transaction, so a failed
    import leaves an empty database empty, and an SQLite file it created is removed with the folders
    it made for it."""
    import gzip

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}; give a file written by provenance export")
    new_file = _new_sqlite_file(url)
    engine = connect(url)
    imported = False
    try:
        create_schema = stored_revision(engine) != HEAD_REVISION and database_is_empty(engine)
        if not create_schema:
            ensure_schema(engine)  # refuses another revision or another application's database
        tables = {t.name: t for t in orm.Base.metadata.sorted_tables}
        try:
            with gzip.open(path, "rb") as lines, engine.begin() as conn:
                if create_schema:
                    # The file's own schema first, then the migrations after it run on its rows,
                    # as they ran on every library that was upgraded (they merge duplicates, fill
                    # in new columns): a file from an older provenance imports as it would have
                    # been migrated.
                    counts = _read(conn, _lines(lines, path), tables, path, progress,
                                   on_header=lambda revision: migrate(conn, revision))
                    migrate(conn, lock=False)
                else:
                    _refuse_non_empty(conn, tables.values(), engine)
                    counts = _read(conn, _lines(lines, path), tables, path, progress)
                _reset_sequences(conn, tables.values())
        except SQLAlchemyError as e:
            raise StoreError(f"cannot import {path}: {driver_message(e)}; nothing was imported") from e
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            # A value the column cannot take (a bad date, hex, number) or a malformed marker line.
            raise InputError(f"{path} is damaged ({type(e).__name__}: {e}); nothing was imported") from e
        imported = True
    finally:
        engine.dispose()
        if not imported and new_file is not None:
            _remove_new_sqlite_file(*new_file)
    return counts


def _new_sqlite_file(url: str) -> tuple[Path, list[Path]] | None:
    """For an SQLite URL naming a file that does not exist yet: the file, and the folders that
    connect() will create for it (deepest first). None otherwise."""
    try:
        file = sqlite_file(make_url(url))
    except (ArgumentError, ValueError):
        return None  # connect() refuses it
    if file is None or file.exists():
        return None
    folders = []
    folder = file.absolute().parent
    while not folder.exists():
        folders.append(folder)
        folder = folder.parent
    return file, folders


def _remove_new_sqlite_file(file: Path, folders: list[Path]) -> None:
    """Remove an SQLite file this import created, unless another process has put tables in it since."""
    try:
        with closing(sqlite3.connect(f"file:{quote(str(file.absolute()))}?mode=ro", uri=True)) as db:
            if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                return
    except sqlite3.Error:
        return
    for leftover in (file, *(file.with_name(file.name + s) for s in ("-wal", "-shm", "-journal"))):
        leftover.unlink(missing_ok=True)
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty: something else is in it now
            break


def _lines(lines: IO[bytes], path: Path) -> Iterator[Any]:
    try:
        for number, line in enumerate(lines, 1):
            try:
                yield _DECODE(line.decode())
            except ValueError as e:
                raise InputError(f"{path} line {number} is not JSON ({e}); the file is damaged") from e
    except (OSError, EOFError, zlib.error) as e:  # gzip: not gzip, truncated, corrupt, CRC mismatch
        raise InputError(f"{path} is not a complete provenance export: {e}") from e


def _refuse_non_empty(conn: Connection, tables: Any, engine: Engine) -> None:
    held = {t.name: n for t in tables if (n := conn.execute(select(func.count()).select_from(t)).scalar_one())}
    if held:
        what = ", ".join(f"{n} {name}" for name, n in held.items())
        raise StoreError(
            f"{shown_url(engine.url)} is not empty ({what}); an export keeps its ids "
            "and is imported into an empty database only: give a new one with --db"
        )


def _read(conn: Connection, lines: Iterator[Any], tables: dict[str, Table], path: Path,
          progress: ProgressFn | None, on_header: Callable[[str], object] | None = None) -> dict[str, int]:
    """Insert the file's rows; `on_header` is called with its schema revision once it is known good."""
    header = next(lines, None)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"{path} is not a provenance export (no {FORMAT} header)")
    if header.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path} is export format {header.get('format_version')}; this provenance reads "
                         f"format {FORMAT_VERSION}: use the provenance that wrote it, or a newer one")
    revision = header.get("schema_revision")
    if not isinstance(revision, str) or not is_known_revision(revision):
        raise InputError(f"{path} has schema revision {revision!r}, unknown to this provenance; "
                         "a newer provenance wrote it: upgrade provenance")
    columns = _columns(header, tables, path)
    if on_header is not None:
        on_header(revision)
    counts: dict[str, int] = {}
    table: Table | None = None
    batch: list[dict[str, Any]] = []
    decoders: list[tuple[int, Callable[[Any], Any]]] = []
    names: list[str] = []

    def flush() -> None:
        if batch:
            assert table is not None
            try:
                if conn.dialect.name == "postgresql":
                    _copy(conn, table, names, batch)
                else:
                    conn.execute(table.insert(), batch)
            except (OverflowError, DataError) as e:
                # A value of the file's that the column's type cannot hold (a 70-bit integer, a string
                # too long): the file's fault, so bad input, not a database problem.
                raise InputError(_unstorable(path, table, names, batch, conn.dialect.name, e)) from e
            counts[table.name] = counts.get(table.name, 0) + len(batch)
            if progress:
                progress(f"import {table.name}", None)
            batch.clear()

    for item in lines:
        if isinstance(item, list):
            if table is None or len(item) != len(names):
                raise InputError(f"{path} has a row outside a table or of the wrong width; the file is damaged")
            for i, decode in decoders:
                if item[i] is not None:
                    try:
                        item[i] = decode(item[i])
                    except (ValueError, TypeError, OverflowError) as e:
                        raise InputError(f"{path}: {table.name}.{names[i]} holds {_short(item[i])}, which is "
                                         f"not valid there ({e}); the file is damaged, nothing was imported") from e
            batch.append(dict(zip(names, item)))
            if len(batch) >= _BATCH:
                flush()
        elif isinstance(item, dict) and "table" in item:
            flush()
            if item["table"] not in columns:
                raise InputError(f"{path} has rows for table {item['table']!r} its header does not list")
            table = tables[item["table"]]
            names = columns[table.name]
            decoders = [(i, d) for i, n in enumerate(names) if (d := _decoder(table.c[n].type))]
            counts.setdefault(table.name, 0)
        elif isinstance(item, dict) and "end" in item:
            flush()
            expected = item["end"]
            if {k: v for k, v in expected.items() if v} != {k: v for k, v in counts.items() if v}:
                raise InputError(f"{path} says it holds {expected} rows but has {counts}; the file is damaged")
            if next(lines, None) is not None:
                raise InputError(f"{path} has data after its end line; the file is damaged")
            return counts
        else:
            raise InputError(f"{path} has a line that is neither a row nor a table marker; the file is damaged")
    raise InputError(f"{path} ends before its end line: it is truncated (nothing was imported)")


def _copy(conn: Connection, table: Table, names: list[str], rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: COPY .. FROM STDIN on the same connection and transaction, about 5x the rows per
    second of psycopg's executemany (bench/transfer.py). Values go through each column's own
    SQLAlchemy bind processing first (UTC datetimes to naive UTC, JSON), as an INSERT would."""
    dialect = conn.dialect
    procs = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    columns = ", ".join(f'"{n}"' for n in names)
    driver = conn.connection.driver_connection
    assert driver is not None
    import psycopg  # on PostgreSQL it is the driver, so it is installed

    try:
        with driver.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([p(row[n]) if p else row[n] for n, p in zip(names, procs, strict=True)])
    except psycopg.DataError as e:
        raise DataError(None, None, e) from e  # as SQLAlchemy would wrap it: the caller names the value
    except psycopg.Error as e:  # a raw cursor: SQLAlchemy does not wrap its errors
        raise StoreError(f"cannot import into {table.name}: {e}; nothing was imported") from e


# Bits of the integer column types where they are narrowest: PostgreSQL (SQLite's integers are
# all 64-bit), so that what a file may hold does not depend on the database it goes into.
_INT_BITS: tuple[tuple[type[types.Integer], int], ...] = (
    (types.SmallInteger, 16), (types.BigInteger, 64), (types.Integer, 32))


def _unstorable(path: Path, table: Table, names: list[str], rows: list[dict[str, Any]], backend: str,
                error: BaseException) -> str:
    """The error line for a batch the database refused as data: which value, when it can be found."""
    for row in rows:
        for name in names:
            value = row[name]
            impl = getattr(table.c[name].type, "impl", table.c[name].type)
            if not isinstance(value, int) or isinstance(value, bool) or not isinstance(impl, types.Integer):
                continue
            bits = 64 if backend == "sqlite" else next(b for t, b in _INT_BITS if isinstance(impl, t))
            if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                return (f"{path}: {table.name}.{name} holds {_short(value)}, more than its {bits}-bit column "
                        "can store; the file is damaged, nothing was imported")
    reason = driver_message(error) if isinstance(error, DataError) else str(error)
    return (f"{path}: a {table.name} row holds a value the database cannot store ({_short(reason, 200)}); "
            "the file is damaged, nothing was imported")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "..."


def _columns(header: dict[str, Any], tables: dict[str, Table], path: Path) -> dict[str, list[str]]:
    """The file's columns per table, each checked to exist here. A file from an older schema may
    lack newer tables or nullable columns; the database fills those in (empty, NULL, default)."""
    out: dict[str, list[str]] = {}
    for name, cols in (header.get("tables") or {}).items():
        table = tables.get(name)
        unknown = [c for c in cols if table is None or c not in table.c]
        if unknown:
            raise InputError(f"{path} has {name}.{unknown[0] if table is not None else '*'}, which this "
                             "provenance's schema lacks; a newer provenance wrote it: upgrade provenance")
        out[name] = list(cols)
    return out


def _decoder(type_: types.TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """The inverse of _encoder: JSON back to the column's Python type. None: JSON already is it."""
    impl = getattr(type_, "impl", type_)  # TypeDecorator (UTCDateTime): decode as what it stores
    if isinstance(type_, orm.UTCDateTime):
        return _aware_datetime
    if isinstance(impl, types.DateTime):
        return datetime.fromisoformat
    if isinstance(impl, types.Date):
        return date.fromisoformat
    if isinstance(impl, types.LargeBinary):
        return bytes.fromhex
    if isinstance(impl, types.Numeric) and not isinstance(impl, types.Float) and impl.asdecimal:
        return Decimal
    return None


def _aware_datetime(value: str) -> datetime:
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        # Exports write every time with its offset; a bare one would be read as UTC by guesswork.
        raise ValueError("a time without a time zone")
    return when


def _reset_sequences(conn: Connection, tables: Any) -> None:
    """Rows came with their ids, so PostgreSQL's id sequences must move past them (SQLite takes
    max(id) + 1 by itself), or the next insert would collide."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, types.Integer):
            continue
        col = pk[0].name
        conn.execute(
            text(f'SELECT setval(pg_get_serial_sequence(:t, :c), COALESCE(MAX("{col}"), 1), MAX("{col}") IS NOT NULL) '
                 f'FROM "{table.name}"'),
            {"t": table.name, "c": col},
        )
