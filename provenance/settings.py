"""Where the library lives: database URL, evidence store, cookies. Resolved once, then passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .fetch import DownloadLimits

ENV_DB = "PROVENANCE_DB"  # any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/provenance
ENV_HOME = "PROVENANCE_HOME"  # folder for the default SQLite file and the evidence store
ENV_STORE = "PROVENANCE_STORE"  # evidence store folder, when it should live elsewhere
ENV_TSA = "PROVENANCE_TSA"  # a Time-Stamp Authority's URL: timestamp every clip and report (provenance.timestamps)


@dataclass(frozen=True)
class Settings:
    db_url: str
    store_dir: Path
    cookies: Path | None = None
    # Let a fetched page lead to loopback and private addresses (provenance.netguard).
    allow_private_urls: bool = False
    download_limits: DownloadLimits = DownloadLimits()  # when a download is given up (fetch.DOWNLOAD_*)
    tsa_url: str | None = None  # timestamp each recorded clip and each report written with this TSA
    # The host and port of the URL given may be private (netguard): true when the user typed it on
    # their own machine; false for a server (provenance.serve), where the URL comes from someone else.
    trust_named_host: bool = True
    # Capture the post's page (screenshot and web archive, provenance.capture) when a URL is checked or
    # ingested. Off unless asked for: the CLI turns it on (--no-capture turns it off), a server or a
    # script chooses.
    capture_pages: bool = False

    @classmethod
    def resolve(cls, *, db_url: str | None = None, cookies: Path | None = None,
                allow_private_urls: bool = False, tsa_url: str | None = None,
                capture_pages: bool = False) -> "Settings":
        # Absolute from here on: evidence paths are stored in the library, and a relative one would
        # point elsewhere for the next command run from another folder (reports would lose frames).
        home = _absolute(os.environ.get(ENV_HOME) or platformdirs.user_data_dir("provenance", appauthor=False))
        store = _absolute(os.environ.get(ENV_STORE) or home / "evidence")
        url = db_url or os.environ.get(ENV_DB) or default_database_url(home)
        return cls(db_url=url, store_dir=store, cookies=cookies, allow_private_urls=allow_private_urls,
                   tsa_url=tsa_url or os.environ.get(ENV_TSA) or None, capture_pages=capture_pages)


def default_database_url(data_dir: Path) -> str:
    """The SQLite file a library lives in when no URL is given (also provenance.db.default_database_url:
    defined here so that the settings load no SQLAlchemy, ~0.5 s of a check's start-up)."""
    return f"sqlite:///{data_dir / 'provenance.db'}"


def _absolute(path: str | Path) -> Path:
    return Path(path).expanduser().absolute()
