"""Text for people and machines: untrusted internet text made visible, times in ISO 8601 UTC.

Titles, uploaders and URLs come from the internet: in terminal text, control characters (which
could forge or hide lines with ANSI escapes) are replaced; JSON escapes them itself.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# Whole terminal escape sequences, 7-bit (ESC ...) and 8-bit (C1 introducers): CSI (colours, cursor
# moves), OSC (window title, clipboard, hyperlinks), DCS/SOS/PM/APC strings, and lone ESC + one byte.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
# What is left that a terminal or a page would obey instead of show: C0 and C1 controls, and the
# invisible and bidi formatting characters (U+202E turns text around, and can hide what follows).
_INVISIBLE = "\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f{_INVISIBLE}]")
_CONTROL_BUT_LINES = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_INVISIBLE}]")


def iso(dt: datetime | None, *, whole_seconds: bool = False) -> str | None:
    """ISO 8601 UTC with a Z; whole seconds as given (or always, for prose and tables), else milliseconds."""
    if dt is None:
        return None
    spec = "seconds" if whole_seconds or dt.microsecond == 0 else "milliseconds"
    return dt.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def visible(text: str, *, keep_lines: bool = False) -> str:
    """Untrusted text with every escape sequence, control, invisible and bidi character replaced by
    U+FFFD, so it shows as what it is (`keep_lines`: tabs and line breaks stay)."""
    s = _ESCAPE_SEQUENCE.sub("\N{REPLACEMENT CHARACTER}", text)
    return (_CONTROL_BUT_LINES if keep_lines else _CONTROL).sub("\N{REPLACEMENT CHARACTER}", s)


def safe(text: object, limit: int = 200) -> str:
    """Untrusted text made safe for one terminal line: every line the CLI prints goes through this."""
    s = visible(str(text))
    return s if len(s) <= limit else s[: limit - 1] + "\N{HORIZONTAL ELLIPSIS}"
