"""Quantities in words, worded the same in every output (terminal, Markdown, HTML, JSON details)."""

from __future__ import annotations

from datetime import timedelta


def human_size(n: int) -> str:
    """Bytes in decimal units, as file managers show them: 950 bytes, 1.2 MB, 3.4 GB."""
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def gap_words(gap: timedelta) -> str:
    """A long gap between two times: whole days from two days on, else hours ("3 days", "5 hours")."""
    return f"{gap.days} days" if gap.days >= 2 else f"{gap.total_seconds() / 3600:.0f} hours"
