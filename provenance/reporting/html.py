"""The report as one self-contained HTML page (Jinja2, autoescaped; no script, no external request).

Templates (provenance/reporting/templates):
    base.html.j2           the page: Content-Security-Policy, inline CSS (screen and print), footer
    check_section.html.j2  macro check_section(report, level): everything about one check, in a
                           <section id="check-ID">; a page with many checks (an audit) calls it once per post
    check.html.j2          the page of one check: base + one section

An audit page plugs in as one more template, `audit.html.j2`, rendered with `environment()`:
it extends base.html.j2, draws the summary counts and one table row per post (report.thumbnail,
posted_at, verdict, first seen, similarity; reused first) linking to `#{{ report.anchor }}`, then
calls `check_section(report, 2)` for each post's CheckReport (built by build.build_check_report for
each of the audit's check ids), so every check looks the same alone or in an audit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from ..keyframes import UPLOAD_STEPS
from ..records import Verdict
from .text import iso, visible
from ..wording import human_size
from .audit import AuditReport
from .build import span
from .model import CheckReport, MatchView

if TYPE_CHECKING:
    from jinja2 import Environment

# Only these become links; anything else (javascript:, data:, file:, a relative path) is shown as text.
_LINKABLE = re.compile(r"^https?://[^\s\x00-\x1f\x7f<>\"'`]+$", re.IGNORECASE)
# The segment map's drawing area (SVG user units).
_MAP_LEFT, _MAP_WIDTH = 110.0, 480.0


def link(url: str | None, text: str | None = None) -> Markup:
    """An <a> for an http(s) URL, else the text alone; both escaped."""
    if not url:
        return Markup('<span class="none">(no URL)</span>')
    shown = visible(text or url)
    if _LINKABLE.match(url):
        return Markup('<a href="{}" rel="noopener noreferrer nofollow">{}</a>').format(visible(url), shown)
    return Markup('<span class="url">{}</span>').format(shown)


def _shown(value: Any) -> Any:
    """Every value a template prints: untrusted text with its controls, escape sequences and bidi
    characters replaced visibly (U+FFFD), as in the terminal and in Markdown; line breaks stay."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value, keep_lines=True)
    return value


def when(dt: datetime | None) -> str:
    return "unknown" if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(t: float | None) -> str:
    return "" if t is None else f"{t:.2f} s"


def size(n: int | None) -> str:
    return "unknown" if n is None else human_size(n)


def segment_map(m: MatchView, query_duration: float) -> list[dict[str, float]]:
    """Each segment as x positions on the query bar (top) and the reference bar (bottom)."""
    q_total = max(query_duration, 1e-6)
    r_total = max(m.reference.duration_s, m.reference.decoded_s, 1e-6)

    def x(t: float, total: float) -> float:
        return round(_MAP_LEFT + _MAP_WIDTH * min(max(t / total, 0.0), 1.0), 1)

    return [{"q0": x(s.query_start_s, q_total), "q1": x(s.query_end_s, q_total),
             "r0": x(s.reference_start_s, r_total), "r1": x(s.reference_end_s, r_total)} for s in m.segments]


def environment() -> Environment:
    # Imported here: every command loads this module through the CLI, few of them render HTML.
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("provenance.reporting", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, finalize=_shown)
    env.filters.update(link=link, when=when, iso=iso, seconds=seconds, size=size, span=span)
    env.globals.update(segment_map=segment_map, map_left=_MAP_LEFT, map_width=_MAP_WIDTH, Verdict=Verdict,
                       upload_steps=UPLOAD_STEPS)
    return env


def render(report: CheckReport, **context: Any) -> str:
    return environment().get_template("check.html.j2").render(report=report, **context)


def render_audit(report: AuditReport) -> str:
    """One page for a whole audit (audit.html.j2): counts, one row per post, each check's section."""
    return environment().get_template("audit.html.j2").render(audit=report)
