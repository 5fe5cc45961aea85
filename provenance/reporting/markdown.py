"""The report as Markdown, to paste into a ticket or a story draft: the answer, first seen, the
matches and the sighting timeline. No images.

Untrusted text is escaped for Markdown and for the HTML most Markdown renderers let through:
<, > and & become entities, every Markdown punctuation mark gets a backslash, line breaks become
spaces (a table row stays one row). Only http(s) URLs become links.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ..match import SPEED_CHANGE_MIN
from ..keyframes import UPLOAD_STEPS
from ..records import Verdict
from .text import safe
from .audit import AuditReport
from .build import span
from .model import CheckReport, PostView

# Markdown's inline punctuation; ( ) . - + : need no escape once [ ] are escaped and the text never
# starts a line (every untrusted value follows a label of ours).
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]#!|~])")
# GitHub-flavoured Markdown also links bare URLs, www. names and e-mail addresses in plain text.
_BARE_LINKS = ((re.compile(r"://"), r":\/\/"), (re.compile(r"(?i)\bwww\."), "www\\."), (re.compile("@"), "\\@"))
_URL_SPECIALS = str.maketrans({c: f"%{ord(c):02X}" for c in "|[]()"})
_AUTOLINKABLE = re.compile(r"^https?://[^\s\x00-\x1f\x7f<>\\`]+$", re.IGNORECASE)


def text(value: object, limit: int = 300) -> str:
    """Untrusted text made inert in Markdown (and in any HTML a renderer passes through)."""
    s = " ".join(safe(value, limit).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_PUNCT.sub(r"\\\1", s)
    for pattern, repl in _BARE_LINKS:
        s = pattern.sub(repl, s)
    return s


def url(value: str | None) -> str:
    """An http(s) URL as an autolink, else as inert text. A GFM table splits its rows at every `|`,
    autolinks included, and a renderer without autolinks reads `[..](..)` in one as a link or an
    image: those characters are percent-encoded, which names the same resource."""
    if not value:
        return "(no URL)"
    if _AUTOLINKABLE.match(value):
        return f"<{value.translate(_URL_SPECIALS)}>"
    return text(value)


def _when(dt: datetime | None) -> str:
    return "unknown" if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _posted(p: PostView) -> str:
    return _when(p.posted_at) if p.posted_at else f"unknown (observed {_when(p.observed_at)})"


def _who(p: PostView) -> str:
    return text(p.uploader, 80) if p.uploader else "unknown"


def render(r: CheckReport) -> str:
    out = [f"# Provenance report: check {r.check_id}", ""]
    out += [f"**{r.answer.headline}.** {text(r.answer.text, 1000)}", "", f"> {text(r.answer.caveat, 1000)}", ""]
    if r.post is not None:
        out += [f"- Post: {url(r.post.url)}" + (f" ({text(r.post.title, 120)})" if r.post.title else ""),
                f"- Posted: {_posted(r.post)}, {text(r.post.post_time.label)}",
                f"- Checked: {_when(r.checked_at)}", ""]

    out += ["## First seen", ""]
    fp = r.first_seen.post
    if fp is None:
        out += ["Not recorded with this check.", ""]
    else:
        if r.first_seen.is_this_post:
            out += ["This post is the earliest appearance known to this library.", ""]
        out += [f"- URL: {url(fp.url)}",
                f"- Platform: {text(fp.platform or 'unknown')}",
                f"- Uploader: {_who(fp)}",
                f"- Posted: {_posted(fp)}",
                f"- How the time is known: {text(fp.post_time.label)}. {text(fp.post_time.detail, 600)}",
                f"- Clip: `{r.first_seen.sha256}`", ""]

    out += ["## Matches", ""]
    if not r.matches:
        out += ["None.", ""]
    else:
        out += ["| # | clip | similarity | this clip | reference | changes | segments (this clip = reference) |",
                "|---|---|---|---|---|---|---|"]
        for m in r.matches:
            segs = "; ".join(f"{span(s.query_start_s)}-{span(s.query_end_s)} = {span(s.reference_start_s)}-"
                             f"{span(s.reference_end_s)}"
                             + (f" at {s.speed:g}x" if abs(s.speed - 1) > SPEED_CHANGE_MIN else "")
                             for s in m.segments)
            out.append(f"| {m.rank} | `{m.sha256[:12]}` | {m.similarity:.2f} | {m.query_coverage:.0%} | "
                       f"{m.reference_coverage:.0%} | {', '.join(m.transforms) or 'none'} | {segs} |")
        out.append("")
        notes = [f"- Match {m.rank}: established by {text(m.method_text, 600)}"
                 + (f"; {text(m.region_text, 300)}" if m.region_text else "") for m in r.matches]
        notes += [f"- Match {m.rank}: {text(m.mirror_note, 600)}" for m in r.matches if m.mirror_note]
        out += notes + ([""] if notes else [])

    if r.scenes:
        out += ["## Same scene, moment not established", "",
                "Known clips whose pictures match this clip's frame after frame (a fixed camera's view) but which "
                "cannot be placed in time: evidence of the place, not that this is the same footage.", ""]
        out += [f"- `{h.sha256[:12]}`: similarity {h.similarity:.2f} over {h.query_frames} frames. {text(h.reason, 600)}"
                for h in r.scenes] + [""]

    out += ["## Timeline of sightings", "", "| posted | how known | post | uploader | clip | |", "|---|---|---|---|---|---|"]
    for e in r.timeline:
        marks = [{"this_post": "this post", "first_seen": "first seen"}.get(e.role, "")]
        marks.append("reuse" if e.reuse else "")
        out.append(f"| {_posted(e.post)} | {text(e.post.post_time.label)} | {url(e.post.url)} | {_who(e.post)} | "
                   f"`{e.post.clip_sha256[:12]}` | {', '.join(m for m in marks if m)} |")
    out.append("")

    if r.flags:
        out += ["## Red flags", "", "Hints worth a closer look, not proof.", ""]
        out += [f"- **{text(f.title)}**: {text(f.detail, 600)}" for f in r.flags]
        out.append("")

    out += _credentials(r)
    out += _keyframes(r)
    c = r.clip
    rep = r.reproducibility
    out += ["## The clip", "",
            f"- SHA-256: `{c.sha256}`",
            f"- {c.duration_s:.1f} s, {c.width}x{c.height} {text(c.video_codec or 'unknown codec')}, "
            f"{'with' if c.has_audio else 'no'} audio, {c.size_bytes} bytes",
            "",
            "## Reproducibility", "",
            f"- Checked with provenance {text(rep.tool_version)} at {_when(r.checked_at)}; library size at check time: "
            + (f"{rep.library_clips} clips" if rep.library_clips is not None else
               f"not recorded ({rep.library_clips_now} clips now)"),
            f"- Report made {_when(rep.generated_at)} by provenance {text(rep.report_tool_version)} from "
            f"`{rep.database_url.replace('`', '')}`", ""]
    return "\n".join(out)


def _credentials(r: CheckReport) -> list[str]:
    out = ["## Content credentials (C2PA)", ""]
    reading = r.credentials
    if reading is None:
        return out + ["Not read: this check was made before provenance read content credentials.", ""]
    c = reading.credentials
    if c is None:
        return out + [f"None: the clip carries no C2PA manifest. Read {_when(reading.read_at)} by {text(reading.reader)}.", ""]
    out += ["A valid manifest proves who signed these claims about these exact bytes, not that the claims are true.", "",
            f"- Validation: **{text(c.state)}**",
            f"- Signer: {text(c.signer or 'unknown')}" + (f", issued by {text(c.issuer)}" if c.issuer else ""),
            f"- Claim generator: {text(c.claim_generator or 'unknown')}"]
    out += [f"- Failure: {text(f, 400)}" for f in c.failures]
    out += [f"- Action: {text(a.action)}" + (f" at {text(a.when)}" if a.when else "")
            + (f" by {text(a.software_agent)}" if a.software_agent else "") for a in c.actions]
    out += [f"- Made from: {text(i)}" for i in c.ingredients]
    return out + [f"- Read {_when(reading.read_at)} by {text(reading.reader)}", ""]


def _keyframes(r: CheckReport) -> list[str]:
    out = ["## Keyframes for reverse image search", ""]
    if not r.keyframes:
        out += ["None: this clip was recorded before shots were found.", ""]
    else:
        out += [f"One frame per shot; save them with `provenance keyframes {r.check_id} -o DIR` and search each by "
                "upload: " + "; ".join(f"{engine} ({url(page)}: {step})" for engine, page, step in UPLOAD_STEPS) + ".", ""]
        out += [f"- Shot {n}: {k.shot.start_s:.2f}-{k.shot.end_s:.2f} s, keyframe at {k.shot.keyframe_s:.2f} s"
                for n, k in enumerate(r.keyframes, start=1)]
        out.append("")
    if r.thumbnail_searches:
        out += [f"The post's own thumbnail on the platform ({url(r.platform_thumbnail)}), searched directly: "
                + ", ".join(f"{engine} {url(link)}" for engine, link in r.thumbnail_searches), ""]
    return out


def _cell(value: object, limit: int = 120) -> str:
    return text(value, limit) if value not in (None, "") else ""


def render_audit(a: AuditReport) -> str:
    """The audit's counts, its posts in a table (reused first), then each checked post's answer."""
    au, c = a.audit, a.counts
    title = f" ({text(au.title, 120)})" if au.title else ""
    out = [f"# Provenance audit {au.audit_id}", "",
           f"- Source: {url(au.source) if au.kind == 'listing' else text(au.source)}{title}",
           f"- Started {_when(au.created_at)}, " + (f"finished {_when(au.finished_at)}" if au.finished_at else
                                                     f"not finished ({text(au.status)})"),
           f"- {c['posts']} posts: reused {c['reused']} ({c['reused_self']} self, {c['reused_cross']} "
           f"cross-account), earliest known {c['earliest_known']}, no match {c['no_match']}, failed {c['failed']}"
           + (f", not checked yet {c['pending']}" if c["pending"] else ""), "",
           "## Posts, reused first", "",
           "| posted | post | verdict | first seen | similarity | check |", "|---|---|---|---|---|---|"]
    for row in a.rows:
        i = row.item
        post = url(row.url) + (f" {_cell(row.title)}" if row.title else "")
        verdict = row.words + (" (self)" if i.reuse == "self" else " (cross-account)" if i.reuse == "cross" else "")
        if row.outcome == "failed":
            verdict += f": {_cell(i.error or 'unknown error', 300)}"
        fs = row.first_seen
        first = (f"{url(fs.url)}, " + (f"posted {_when(fs.posted_at)}" if fs.posted_at else
                                       f"observed {_when(fs.observed_at)}")) if fs is not None else \
            "this post" if row.outcome in (Verdict.EARLIEST_KNOWN, Verdict.NO_MATCH) else ""
        similarity = f"{i.similarity:.2f}" if i.similarity is not None else ""
        check = f"[{i.check_id}](#check-{i.check_id})" if row.report is not None else ""
        out.append(f"| {_when(row.posted_at)} | {post} | {verdict} | {first} | {similarity} | {check} |")
    out.append("")
    reports = [row for row in a.rows if row.report is not None]
    if reports:
        out += ["## Answers", ""]
    for row in reports:
        r = row.report
        assert r is not None
        out += [f"### Check {r.check_id}", "", f"- Post: {url(row.url)}",
                f"- **{r.answer.headline}.** {text(r.answer.text, 1000)}",
                f"- Full report: `provenance report {r.check_id}`", ""]
    out += [f"Report made {_when(a.generated_at)} by provenance {text(a.tool_version)} from "
            f"`{a.database_url.replace('`', '')}`; remake it with `provenance report --audit {au.audit_id}`.", ""]
    return "\n".join(out)
