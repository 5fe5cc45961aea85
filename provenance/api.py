"""The Python API: a library opened by URL, for newsroom scripts and notebooks.

    from provenance import Library

    with Library("sqlite:///newsroom.db", store="evidence/") as library:
        library.ingest("archive/flood-2019.mp4", post_url="https://example.org/flood", posted_at="2019-05-01T10:00:00Z")
        result = library.check("https://x.com/someone/status/1849...")
        print(result.verdict, [m.sha256 for m in result.matches])
        print(result.to_dict())          # the JSON of `provenance check --json`

Each method is what the command of the same name does, returning the typed result the command prints
(`CheckResult`, `IngestResult`, `AuditResult`), and raising the errors of provenance.errors (each with
the exit code the command would use). The command line is a thin layer over this class.
"""

from __future__ import annotations

import threading

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from .audit import AuditOptions
    from .audit import ProgressFn as AuditProgressFn
    from .diskindex import IndexStatus
    from .pipeline import CheckResult, IngestResult, ProgressFn
    from .records import AuditResult


class Library:
    """A provenance library: its database (SQLite file or PostgreSQL) and its evidence store.

    `url`: an SQLAlchemy URL (`sqlite:///path.db`, `postgresql+psycopg://me@host/provenance`); default:
    PROVENANCE_DB, else the SQLite file in the user data folder, as on the command line. `store`: the
    evidence folder (default: PROVENANCE_STORE, else beside the default database). `tsa_url`: a
    Time-Stamp Authority that signs each recorded clip's SHA-256 (default: PROVENANCE_TSA, else none;
    see provenance.timestamps). `capture_pages`: keep a screenshot and web archive of each post URL's page
    (provenance.capture; the command line does unless --no-capture). Nothing is opened
    until the first call; `close()` (or leaving the `with` block) releases the database connections.
    """

    def __init__(self, url: str | None = None, *, store: str | Path | None = None, cookies: str | Path | None = None,
                 allow_private_urls: bool = False, tsa_url: str | None = None, capture_pages: bool = False) -> None:
        settings = Settings.resolve(db_url=url, cookies=Path(cookies) if cookies else None,
                                    allow_private_urls=allow_private_urls, tsa_url=tsa_url,
                                    capture_pages=capture_pages)
        if store is not None:
            settings = replace(settings, store_dir=Path(store).expanduser().absolute())
        self.settings = settings
        self._engine: Engine | None = None
        self._opening = threading.Lock()  # the desk runs checks on several threads over one Library

    @classmethod
    def from_settings(cls, settings: Settings) -> "Library":
        library = cls.__new__(cls)
        library.settings, library._engine, library._opening = settings, None, threading.Lock()
        return library

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> "Engine":
        """The database, its schema checked (created when the database is empty)."""
        with self._opening:
            if self._engine is None:
                from . import pipeline

                self._engine = pipeline.open_library(self.settings)
            return self._engine

    def check(self, target: str, *, post_url: str | None = None, posted_at: datetime | str | None = None,
              record: bool = True, progress: "ProgressFn | None" = None) -> "CheckResult":
        """Compare a clip (URL or file) with everything known; with `record`, add it and the check.
        `result.to_dict()` is the JSON of `provenance check --json`."""
        from . import pipeline
        from .fetch import check_target

        check_target(target)  # a missing file fails before the library is opened
        # The library's own engine: a long-running caller (the desk) must not open a pool per check.
        # Opened by the check on its library thread, while the clip decodes (pipeline.check).
        return pipeline.check(target, settings=self.settings, post_url=post_url, posted_at=_time(posted_at),
                              record=record, progress=progress, engine=lambda: self.engine)

    def ingest(self, target: str, *, post_url: str | None = None, posted_at: datetime | str | None = None,
               progress: "ProgressFn | None" = None) -> "IngestResult":
        """Add a clip (URL or file) to the library as known footage, with the post it was seen in."""
        from . import pipeline
        from .fetch import check_target

        check_target(target)
        return pipeline.ingest(target, settings=self.settings, post_url=post_url, posted_at=_time(posted_at),
                               progress=progress, engine=self.engine)

    def audit(self, source: str | None = None, *, urls_file: str | Path | None = None, resume: int | None = None,
              options: "AuditOptions | None" = None, progress: "AuditProgressFn | None" = None) -> "AuditResult":
        """Check every post of an account, channel, playlist or feed (or the URLs in `urls_file`), as
        `provenance audit` does. `provenance.reporting.audit.audit_to_dict(result)` is its JSON."""
        from . import audit as audit_lib

        return audit_lib.audit(source, settings=self.settings, urls_file=Path(urls_file) if urls_file else None,
                               resume=resume, options=options or audit_lib.AuditOptions(), progress=progress)

    def report(self, check_id: int, *, fmt: str = "md") -> str:
        """The report of a recorded check as text: "md", "json" or "html" (one self-contained page)."""
        from . import reporting

        return reporting.render_check(check_id, settings=self.settings, fmt=fmt)

    def index_status(self) -> "IndexStatus":
        """Where the on-disk index of the library is, its size, and whether it holds every clip."""
        from . import diskindex
        from .frames import MIN_QUALITY

        return diskindex.describe(self.engine, min_quality=MIN_QUALITY)


def _time(value: datetime | str | None) -> datetime | None:
    """A datetime as given, or ISO 8601 text (a time without a zone is UTC), as `--posted-at` takes it."""
    if value is None or isinstance(value, datetime):
        return value
    from .utc import parse_time

    return parse_time(value)
