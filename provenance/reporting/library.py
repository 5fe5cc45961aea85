"""Text for the library-management commands: `db status`, `export`, `import`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..db import DatabaseStatus
from .text import safe
from ..wording import human_size

if TYPE_CHECKING:
    from .diskindex import IndexStatus

# The tables a person asks about first, in this order; any others (added by later schema versions)
# follow alphabetically.
_FIRST = ("clips", "sightings", "frames", "checks", "matches", "match_segments")


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    first = [(t, counts[t]) for t in _FIRST if t in counts]
    return first + sorted((t, n) for t, n in counts.items() if t not in _FIRST)


def index_status_text(status: "IndexStatus") -> str:
    if status.folder is None:
        return f"index     in memory ({status.detail})"
    lines = [f"index     {safe(status.folder, limit=500)}"]
    if not status.exists:
        lines.append(f"  state   {status.state}: {status.detail}" if status.detail else "  state   not built yet")
        return "\n".join(lines)
    tables = ", ".join(f"{r:,} rows ({'/'.join(map(str, f))} bits)" for r, f in status.segments) or "none"
    lines += [f"  size    {human_size(status.size_bytes)}",
              f"  holds   {status.rows:,} frame hashes of {status.clips:,} clips"
              + (f" (library: {status.library_clips:,} clips)" if status.library_clips is not None else ""),
              f"  sound   {status.audio_rows:,} audio sub-fingerprints",
              f"  tables  {tables}; {status.rows - sum(r for r, _ in status.segments):,} rows compared one by one",
              f"  built   {status.built_at}, updated {status.updated_at} ({status.catch_ups} catch-ups since)"]
    if status.detail:
        lines.append(f"  state   {status.state}: {status.detail}")
    return "\n".join(lines)


def status_text(status: DatabaseStatus, index: "IndexStatus | None" = None) -> str:
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
    if index is not None:
        lines.append(index_status_text(index))
    return "\n".join(lines)


def transfer_text(verb: str, counts: dict[str, int], path: Path) -> str:
    shown = ", ".join(f"{n:,} {t}" for t, n in _ordered(counts) if t in _FIRST[:4])
    rows = sum(counts.values())
    return f"{verb} {shown} ({rows:,} rows in {len(counts)} tables) {'to' if verb == 'exported' else 'from'} " \
           f"{safe(path, limit=500)}"
