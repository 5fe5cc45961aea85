"""Times given by a person (`--posted-at`, `--since`, the API's `posted_at`)."""

from __future__ import annotations

from datetime import UTC, datetime

from .errors import InputError


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601; a time without a zone is taken as UTC."""
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        # OverflowError: a time whose UTC falls outside years 1-9999 (0001-01-01T00:00:00+01:00).
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InputError(f"bad time {value!r}; use ISO 8601 such as 2024-10-19T08:00:00Z "
                         "(in UTC, between years 1 and 9999)") from None
