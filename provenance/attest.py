"""Standing behind a check later: timestamp a report as written, and verify a check's files.

`verify` answers, for each file a check stands on (the clip's evidence file, each report that was
timestamped): does it still hold the bytes recorded, and does each TSA token over those bytes
verify against the TSA's certificate? Any "no" is reported per file; nothing is repaired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .db import connect, ensure_schema, session_scope, timestamps as stored_stamps
from .errors import InputError
from .fetch import sha256_file
from .settings import Settings
from .timestamps import Stamp, stamp, verify

TOKEN_SUFFIX = ".tsr"  # beside a stamped report, as `openssl ts -verify -in` expects it


@dataclass(frozen=True)
class FileVerification:
    subject: str  # "clip" | "report"
    path: str | None
    ok: bool
    problem: str  # "" when ok: what is wrong, in words
    stamped_at: datetime | None = None  # the earliest token that verifies
    tsa_name: str | None = None
    tokens: int = 0  # how many tokens were checked


def stamp_report(check_id: int, path: Path, *, settings: Settings) -> Stamp:
    """Timestamp the report just written to `path` for `check_id`, record the token, and write it
    beside the report as PATH.tsr."""
    if settings.tsa_url is None:
        raise InputError("no TSA to timestamp with; give --tsa URL or set PROVENANCE_TSA")
    path = Path(path).absolute()
    token = stamp(sha256_file(path), settings.tsa_url)
    engine = connect(settings.db_url)
    ensure_schema(engine)
    with session_scope(engine) as session:
        stored_stamps.add_stamps((token,), subject=stored_stamps.REPORT, check_id=check_id, path=str(path),
                                 session=session)
    token_file = path.with_name(path.name + TOKEN_SUFFIX)
    try:
        token_file.write_bytes(token.response)
    except OSError as e:
        raise InputError(f"the report's timestamp is recorded, but {token_file} cannot be written: "
                         f"{e.strerror or e}; `provenance verify {check_id}` still checks it") from e
    return token


def verify_check(check_id: int, *, settings: Settings, roots_file: Path | None = None) -> tuple[FileVerification, ...]:
    """Each file of check `check_id`, re-hashed and with every token verified against the roots in
    `roots_file` (PEM; default: this machine's CA bundle)."""
    return tuple(_verify_file(f, roots_file) for f in files_of_check(check_id, settings=settings))


def files_of_check(check_id: int, *, settings: Settings) -> tuple[stored_stamps.StampedFile, ...]:
    """The files check `check_id` stands on (its clip, its stamped reports) with their stamps."""
    engine = connect(settings.db_url)
    ensure_schema(engine)
    with session_scope(engine) as session:
        files = stored_stamps.files_of_check(check_id, session=session)
    if files is None:
        raise InputError(f"no check with id {check_id}; give the id a check printed (\"recorded as check N\")")
    return files


def _verify_file(file: stored_stamps.StampedFile, roots_file: Path | None) -> FileVerification:
    def failed(problem: str) -> FileVerification:
        return FileVerification(subject=file.subject, path=file.path, ok=False, problem=problem,
                                tokens=len(file.stamps))

    if file.path is None:
        return failed("no file was kept for it")
    try:
        now = sha256_file(Path(file.path))
    except FileNotFoundError:
        return failed("the file is missing")
    except OSError as e:
        return failed(f"the file cannot be read ({e.strerror or e})")
    if now != file.sha256:
        return failed(f"the file changed: it was {file.sha256}, it is now {now}")
    if not file.stamps:
        return FileVerification(subject=file.subject, path=file.path, ok=True, problem="")
    results = [verify(s.response, file.sha256, roots_file) for s in file.stamps]
    bad = [r for r in results if not r.ok]
    if bad:
        return failed(bad[0].reason + (f" ({len(bad)} of {len(results)} tokens)" if len(results) > 1 else ""))
    first = min(results, key=lambda r: r.stamped_at)
    return FileVerification(subject=file.subject, path=file.path, ok=True, problem="", stamped_at=first.stamped_at,
                            tsa_name=first.tsa_name, tokens=len(results))
