"""Reading yt-dlp's info dicts: its text fields and the post times it gives."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any


def str_or_none(value: Any) -> str | None:
    """An info field as text; missing and empty are both None."""
    return None if value is None or value == "" else str(value)


def info_timestamp(info: dict[str, Any]) -> datetime | None:
    """yt-dlp's `timestamp` (Unix seconds), aware UTC; None when missing or out of range."""
    timestamp = info.get("timestamp")
    if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        try:
            return datetime.fromtimestamp(timestamp, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return None


def info_day(info: dict[str, Any]) -> datetime | None:
    """yt-dlp's `upload_date` (YYYYMMDD, a day only) as midnight UTC; None when missing or invalid."""
    upload_date = info.get("upload_date")
    if isinstance(upload_date, str) and re.fullmatch(r"\d{8}", upload_date):
        try:
            return datetime.strptime(upload_date, "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            pass
    return None


def info_time(info: dict[str, Any]) -> datetime | None:
    """The time a yt-dlp info dict (or playlist entry) gives: `timestamp`, else the day `upload_date`."""
    return info_timestamp(info) or info_day(info)
