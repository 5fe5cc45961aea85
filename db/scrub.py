"""What must never be stored: the analyst's secrets in yt-dlp's raw info, and NUL characters.

yt-dlp copies the session's cookies into the info it returns (`formats[].cookies`,
`requested_downloads[].cookies`, and `http_headers` may carry Cookie or Authorization). A library
is shared and exported, so whoever reads it could take over the analyst's login: those keys are
dropped, at any depth, before the info is stored (models.ScrubbedJSON) and again when an export
is imported (the same column type), and migration 0006 scrubs rows stored before.

PostgreSQL refuses NUL (U+0000) in text, and a page can put one in a title: it is removed from
every text and JSON value written (models.NulFreeText and friends), on both backends, so a SQLite
library always imports into PostgreSQL.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SECRET_KEY", "scrub_info", "strip_nul"]

# Keys (dict keys and HTTP header names, any case) whose values are credentials. Broad on purpose:
# dropping a harmless field loses nothing a report shows; keeping a token hands out a login.
SECRET_KEY = re.compile(
    r"^(set-)?cookies?$|authori[sz]ation|token|csrf|api[-_]?key|passw(or)?d|secret|session",
    re.IGNORECASE,
)


def strip_nul(value: Any) -> Any:
    """`value` with every NUL removed from its strings, dict keys included, at any depth."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strip_nul(v) for v in value]
    return value


def scrub_info(value: Any) -> Any:
    """yt-dlp's raw info without cookies, auth headers or tokens (any key SECRET_KEY matches), and
    without NUL characters."""
    if isinstance(value, dict):
        return {strip_nul(k): scrub_info(v) for k, v in value.items()
                if not (isinstance(k, str) and SECRET_KEY.search(k))}
    if isinstance(value, (list, tuple)):
        return [scrub_info(v) for v in value]
    return strip_nul(value)
