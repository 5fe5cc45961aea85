"""UTC: every time the tool stores, compares or prints is timezone-aware UTC (trusted timestamps from a
TSA are timestamps.py)."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(when: datetime) -> datetime:
    """Aware UTC; a naive time is taken to be UTC already (what users and containers mostly mean)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_iso(text: str) -> datetime:
    """ISO 8601 text (a Z or z zone, or none meaning UTC) as aware UTC. ValueError when it is not a
    time; OverflowError when its UTC falls outside years 1-9999 (0001-01-01T00:00:00+01:00)."""
    return as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00")))


def parse_time(value: str | None) -> datetime | None:
    """A time given by a person (`--posted-at`, `--since`, the API's `posted_at`): ISO 8601, a time
    without a zone taken as UTC; InputError (exit 2) when it is not one."""
    from .errors import InputError

    if value is None:
        return None
    try:
        return parse_iso(value)
    except (ValueError, OverflowError):
        raise InputError(f"bad time {value!r}; use ISO 8601 such as 2024-10-19T08:00:00Z "
                         "(in UTC, between years 1 and 9999)") from None
