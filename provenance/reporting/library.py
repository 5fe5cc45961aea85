"""Text for the library-management commands: `db status`, `export`, `import`."""

from __future__ import annotations

from pathlib import Path

from ..db import DatabaseStatus
from .text import safe
from ..wording import human_size

# The tables a person asks about first, in this order; any others (added by later schema versions)
# follow alphabetically.
_FIRST = ("clips", "sightings", "frames", "checks", "matches", "match_segments")


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    first = [(t, counts[t]) for t in _FIRST if t in counts]
    return first + sorted((t, n) for t, n in counts.items() if t not in _FIRST)


def status_text(status: DatabaseStatus) -> str:
    if status.revision is None:
        schema = f"none yet (empty database; created at {status.head} on first use)"
    else:
        schema = f"{status.revision} (up to date)"
    lines = [
        f"database  {safe(status.url, limit=500)}",
        f"backend   {status.backend}",
        f"schema    {schema}",
        f"size      {'unknown (in memory)' if status.size_bytes is None else human_size(status.size_bytes)}",
    ]
    width = max((len(t) for t in status.counts), default=0)
    lines += [f"  {t:<{width}}  {n:>12,}" for t, n in _ordered(status.counts)]
    return "\n".join(lines)


def transfer_text(verb: str, counts: dict[str, int], path: Path) -> str:
    shown = ", ".join(f"{n:,} {t}" for t, n in _ordered(counts) if t in _FIRST[:4])
    rows = sum(counts.values())
    return f"{verb} {shown} ({rows:,} rows in {len(counts)} tables) {'to' if verb == 'exported' else 'from'} " \
           f"{safe(path, limit=500)}"
