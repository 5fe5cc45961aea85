"""The report step: every text the tool gives a person or a machine. Reports of recorded checks are
one model (model.CheckReport), built from the database, rendered as self-contained HTML, JSON (with a
published JSON Schema) or Markdown.

    text.py      untrusted text made safe to show (every terminal line goes through text.safe); ISO times
    results.py   what check, ingest and ingest DIR print when they finish (the result as JSON, or a summary)
    library.py   what db status, export and import print
    build.py     StoredCheck (db.repository.load_check_for_report) -> CheckReport
    audit.py     what audit and audits print; a stored audit -> AuditReport: its rows, reused first,
                 each with its CheckReport
    evidence.py  frame pairs from the stored hashes, thumbnails from the evidence files
    flags.py     how post times are known; red flags
    html.py, jsonout.py, markdown.py   one renderer per format
"""

from __future__ import annotations

import os
from pathlib import Path

from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..settings import Settings

if TYPE_CHECKING:
    from .audit import AuditReport, build_audit_report
    from .build import build_check_report
    from .model import CheckReport

# The report pages (Jinja2, the database, OpenCV for thumbnails) load when a page is made, not when a
# command only needs text.safe or results: a check's summary then loads none of it (tests/test_startup.py).
_LAZY = {"AuditReport": ".audit", "build_audit_report": ".audit", "build_check_report": ".build",
         "CheckReport": ".model", "html": None, "jsonout": None, "markdown": None}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = importlib.import_module(_LAZY[name] or f".{name}", __name__)
    return module if _LAZY[name] is None else getattr(module, name)

FORMATS = ("html", "json", "md")
_SUFFIXES = {".html": "html", ".htm": "html", ".json": "json", ".md": "md", ".markdown": "md"}

__all__ = ["FORMATS", "AuditReport", "CheckReport", "build_audit_report", "build_check_report", "check_destination",
           "format_for", "render",
           "render_audit", "render_check", "write_audit_report", "write_check_report"]


def format_for(path: Path | str | None, fmt: str | None, *, option: str = "--format") -> str:
    """The format asked for, else the one the file name says; Markdown for the terminal. `option`:
    the command's option that gives the format, for the message."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    if path is None:
        return "md"
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise InputError(f"cannot tell the report format from {Path(path).name!r}; "
                         f"name it .html, .json or .md, or give {option} html|json|md")
    return _SUFFIXES[suffix]


def render(report: CheckReport, fmt: str) -> str:
    from . import html, jsonout, markdown

    if fmt == "html":
        return html.render(report)
    if fmt == "json":
        return jsonout.render(report)
    if fmt == "md":
        return markdown.render(report)
    raise InputError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


def render_check(check_id: int, *, settings: Settings, fmt: str) -> str:
    """A recorded check's report as text in `fmt` (html, json or md)."""
    from .build import build_check_report

    fmt = format_for(None, fmt)
    return render(build_check_report(check_id, settings=settings, images=fmt == "html"), fmt)


def write_check_report(check_id: int, path: Path, *, settings: Settings, fmt: str | None = None) -> str:
    """Write a recorded check's report to `path` (format from `fmt` or the file name); returns the format."""
    fmt = format_for(path, fmt)
    _write(path, render_check(check_id, settings=settings, fmt=fmt))
    return fmt


def render_audit(audit_id: int, *, settings: Settings, fmt: str) -> str:
    """A stored audit's report as text in `fmt`: html (one page, every check's section), json or md."""
    from . import html, jsonout, markdown
    from .audit import AUDIT_PAIRED_MATCHES, build_audit_report

    fmt = format_for(None, fmt)
    # JSON has every match's frame pairs (hashes and distances); Markdown shows none; the HTML page the
    # first-seen and strongest matches' (with pictures), the check's own report the rest.
    paired = {"json": None, "md": 0}.get(fmt, AUDIT_PAIRED_MATCHES)
    report = build_audit_report(audit_id, settings=settings, images=fmt == "html", paired_matches=paired)
    if fmt == "html":
        return html.render_audit(report)
    if fmt == "json":
        return jsonout.render_audit(report)
    return markdown.render_audit(report)


def write_audit_report(audit_id: int, path: Path, *, settings: Settings, fmt: str | None = None) -> str:
    """Write a stored audit's report to `path` (format from `fmt` or the file name); returns the format."""
    fmt = format_for(path, fmt)
    _write(path, render_audit(audit_id, settings=settings, fmt=fmt))
    return fmt


def check_destination(path: Path, fmt: str | None, *, option: str = "--report-format") -> str:
    """Refuse, before any work, a report file whose format cannot be told or whose folder cannot take it.
    For `check --report` and `audit --report`, whose format option is `option`."""
    fmt = format_for(path, fmt, option=option)
    folder = Path(path).parent
    if not folder.is_dir():
        raise InputError(f"cannot write the report to {path}: no folder {folder}; create it or choose another path")
    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write the report to {path}: the folder {folder} is not writable; choose another path")
    return fmt


def _write(path: Path, text: str) -> None:
    path = Path(path)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write the report to {path}: {e.strerror or e}; check the folder exists and "
                         "is writable") from e
