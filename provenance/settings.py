"""Where the library lives: database URL, evidence store, cookies. Resolved once, then passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .db import default_database_url
from .fetch import DownloadLimits

ENV_DB = "PROVENANCE_DB"  # any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/provenance
ENV_HOME = "PROVENANCE_HOME"  # folder for the default SQLite file and the evidence store
ENV_STORE = "PROVENANCE_STORE"  # evidence store folder, when it should live elsewhere


@dataclass(frozen=True)
class Settings:
    db_url: str
    store_dir: Path
    cookies: Path | None = None
    download_limits: DownloadLimits = DownloadLimits()  # when a download is given up (fetch.DOWNLOAD_*)

    @classmethod
    def resolve(cls, *, db_url: str | None = None, cookies: Path | None = None) -> "Settings":
        home = Path(os.environ.get(ENV_HOME) or platformdirs.user_data_dir("provenance", appauthor=False))
        store = Path(os.environ.get(ENV_STORE) or home / "evidence")
        url = db_url or os.environ.get(ENV_DB) or default_database_url(home)
        return cls(db_url=url, store_dir=store, cookies=cookies)
