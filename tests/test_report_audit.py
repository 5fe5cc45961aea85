"""Audit reports: one page (HTML), JSON with its schema, Markdown, for a real audit of the RSS feed on
127.0.0.1 (tests/conftest_http.py `audit_feed`), and a hostile feed opened in a real headless Chromium."""

from __future__ import annotations

import html as htmllib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from referencing import Registry, Resource

from provenance import audit as audit_lib
from provenance import reporting
from provenance.reporting import audit as audit_text
from provenance.audit import AuditOptions
from provenance.cli import cli
from provenance.errors import InputError
from provenance.reporting import jsonout
from provenance.settings import Settings
from tests.conftest_http import AuditFeed, rss_feed
from tests.test_audit import ingest_library
from tests.test_report import EARLY, EVIL_PAGE, EVIL_TITLE, validate, watched_page

FAST = AuditOptions(workers=2, sleep_s=0.0)
ORDER = ["reused", "earliest_known", "no_match", "failed", "pending"]


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory, audit_feed: AuditFeed) -> Iterator[tuple[Settings, int]]:
    """One library with the feed audited, shared by this module's read-only tests (an audit takes
    a while). Its Settings are made exactly as conftest's `settings` fixture makes them (a fresh
    SQLite file and evidence store); a PostgreSQL run of `settings` should parametrize this too."""
    root = tmp_path_factory.mktemp("audited")
    settings = Settings(db_url=f"sqlite:///{root / 'library.db'}", store_dir=root / "evidence")
    ingest_library(audit_feed, settings)
    result = audit_lib.audit(audit_feed.url, settings=settings, options=FAST)
    yield settings, result.audit_id


def audit_validate(data: dict) -> None:
    """Against the audit report schema, its check reports resolved through the check report schema."""
    schema, check_schema = jsonout.schema(jsonout.AUDIT_SCHEMA_FILE), jsonout.schema()
    registry = Registry().with_resource(check_schema["$id"], Resource.from_contents(check_schema))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, registry=registry,
                                    format_checker=jsonschema.FormatChecker()).validate(data)


def expected_outcome(expected: str) -> str:
    return "reused" if expected.startswith("reused") else expected


def rank(outcome: str) -> int:
    return ORDER.index(outcome)


# --- the page ----------------------------------------------------------------------------------


def test_html_audit_page_rows_reused_first_linking_to_each_check_section(audited, audit_feed):
    settings, audit_id = audited
    result = audit_lib.load_result(audit_lib.pipeline.open_library(settings), audit_id)
    page = reporting.render_audit(audit_id, settings=settings, fmt="html")
    assert "<script" not in page and "Content-Security-Policy" in page
    table = page.split('<table class="posts">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr class="(\w+)">(.*?)</tr>', table, re.S)
    assert len(rows) == len(audit_feed.posts) == 10
    outcomes = [o for o, _ in rows]
    assert outcomes == sorted(outcomes, key=rank) and outcomes[0] == "reused"
    assert sorted(outcomes) == sorted(expected_outcome(p.expected) for p in audit_feed.posts)
    # Reused rows say self or cross-account and give the first-seen post with its date.
    for outcome, cells in rows:
        if outcome == "reused":
            assert ("self</span>" in cells) != ("cross-account</span>" in cells)
            assert re.search(r"posted \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", cells)
            assert re.search(r"<td>0\.\d\d|<td>1\.00", cells)
    assert table.count('class="tag reuse">self<') == 3 and table.count('class="tag reuse">cross-account<') == 2
    assert "https://other.example/bikes-original" in table
    # Failed rows carry their error, and no check link.
    failed = [cells for o, cells in rows if o == "failed"]
    errors = {i.url: i.error for i in result.items if i.state == "failed"}
    assert len(failed) == 2 and all(errors.values())
    for cells in failed:
        assert 'class="error untrusted"' in cells and "#check-" not in cells
        assert any(htmllib.escape(e, quote=True) in cells or htmllib.escape(e, quote=False) in cells
                   for e in errors.values())
    # Every checked row links to its check's section, and each section is on the page once.
    links = re.findall(r'href="#(check-\d+)"', table)
    sections = re.findall(r'<section class="check" id="(check-\d+)">', page)
    checked = {f"check-{i.check_id}" for i in result.items if i.check_id is not None}
    assert len(links) == len(sections) == 8 and set(links) == set(sections) == checked
    assert links == sections  # in the table's order
    # A thumbnail per checked row, cut from the evidence files.
    assert table.count('<img class="rowthumb" src="data:image/jpeg;base64,') == 8
    # The posts' own rows stay in listing order nowhere: the first row is the oldest reuse.
    first_url = re.search(r'href="([^"]+)"', rows[0][1]).group(1)
    reused = [p for p in audit_feed.posts if p.expected.startswith("reused")]
    assert first_url == reused[0].url


def test_json_audit_report_keeps_audit_json_and_validates(audited, audit_feed):
    settings, audit_id = audited
    data = json.loads(reporting.render_audit(audit_id, settings=settings, fmt="json"))
    audit_validate(data)
    plain = audit_text.audit_to_dict(audit_lib.load_result(audit_lib.pipeline.open_library(settings), audit_id))
    # Every field of `audit --json`, same values, items in listing order.
    for k, v in plain.items():
        if k != "items":
            assert data[k] == v, k
    assert [{k: v for k, v in i.items() if k != "check_report"} for i in data["items"]] == plain["items"]
    assert data["report_schema"] == "urn:provenance:audit-report:v2"
    by_pos = {i["position"]: i for i in data["items"]}
    shown = [by_pos[p]["outcome"] for p in data["order"]]
    assert shown == sorted(shown, key=rank) and sorted(data["order"]) == sorted(by_pos)
    assert data["counts"] == {"posts": 10, "reused": 5, "reused_self": 3, "reused_cross": 2, "earliest_known": 1,
                              "no_match": 2, "failed": 2, "pending": 0}
    for item in data["items"]:
        rep = item["check_report"]
        if item["state"] == "failed":
            assert rep is None and item["error"]
            continue
        validate(rep)  # each is a full check report, as `provenance report ID --format json`
        assert rep["check_id"] == item["check_id"] and rep["verdict"] == item["verdict"]
        assert rep["post"]["url"] == item["post"]["url"]
        if item["outcome"] == "reused":
            assert rep["first_seen"]["url"] == item["first_seen"]["url"]
            assert rep["matches"] and rep["matches"][0]["frame_pairs"]
    # The schema refuses what it should: an unknown outcome, a check report missing its answer.
    bad = json.loads(json.dumps(data))
    bad["items"][0]["outcome"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        audit_validate(bad)
    bad = json.loads(json.dumps(data))
    next(i for i in bad["items"] if i["check_report"])["check_report"].pop("answer")
    with pytest.raises(jsonschema.ValidationError):
        audit_validate(bad)


def test_markdown_audit_report_table_and_answers(audited, audit_feed):
    settings, audit_id = audited
    md = reporting.render_audit(audit_id, settings=settings, fmt="md")
    assert md.startswith(f"# Provenance audit {audit_id}\n")
    assert "- 10 posts: reused 5 (3 self, 2 cross-account), earliest known 1, no match 2, failed 2" in md
    table = md.split("## Posts, reused first", 1)[1].split("## Answers", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| posted")]
    assert len(rows) == 10
    words = {"Reused footage": "reused", "Earliest known appearance": "earliest_known", "No match": "no_match",
             "Failed": "failed"}
    outcomes = [next(v for k, v in words.items() if f"| {k}" in row) for row in rows]
    assert outcomes == sorted(outcomes, key=rank)
    assert sum("(self)" in r for r in rows) == 3 and sum("(cross-account)" in r for r in rows) == 2
    for row in rows:
        if "| Failed" in row:
            assert "| Failed: " in row and "](#check-" not in row
    checks = re.findall(r"\]\(#check-(\d+)\)", table)
    answers = re.findall(r"^### Check (\d+)$", md, re.M)
    assert len(checks) == 8 and checks == answers
    assert md.count("- **Reused footage.** Reused footage: this clip's frames") == 5
    # Untrusted text never opens markup: titles carry dashes and the pipes of a table row are ours alone.
    assert all(row.count(" | ") + 2 == 7 or row.count("|") == 7 for row in rows)
    assert "<img" not in md and "<script" not in md


def test_audit_page_keeps_the_first_seen_match_pairs_and_points_to_the_rest(audited):
    settings, audit_id = audited
    full = reporting.build_audit_report(audit_id, settings=settings, images=False, paired_matches=None)
    lean = reporting.build_audit_report(audit_id, settings=settings, images=False, paired_matches=1)
    bare = reporting.build_audit_report(audit_id, settings=settings, images=False, paired_matches=0)
    assert all(m.pairs == () and m.pairs_omitted for r in bare.reports for m in r.matches)
    several = [r for r in full.reports if len(r.matches) >= 2]
    assert several  # p10 matches p01 and its mirror image p05
    by_id = {r.check_id: r for r in lean.reports}
    for r in full.reports:
        first = r.first_seen.sha256
        for m, kept in zip(r.matches, by_id[r.check_id].matches, strict=True):
            assert m.pairs and not m.pairs_omitted
            if m.rank == 1 or (r.verdict == "reused" and m.sha256 == first):
                assert kept.pairs == m.pairs and not kept.pairs_omitted
            else:
                assert kept.pairs == () and kept.pairs_omitted
    page = reporting.html.render_audit(lean)
    omitted = sum(m.pairs_omitted for r in lean.reports for m in r.matches)
    assert omitted >= 1 and page.count("Frame pairs of this match are left out of this page") == omitted


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def run_in(monkeypatch):
    def make(settings: Settings):
        monkeypatch.setenv("PROVENANCE_DB", settings.db_url)
        monkeypatch.setenv("PROVENANCE_STORE", str(settings.store_dir))
        runner = CliRunner()
        return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)

    return make


def test_cli_report_audit_writes_each_format(audited, run_in, tmp_path):
    settings, audit_id = audited
    run = run_in(settings)
    out = tmp_path / "audit.html"
    r = run("report", "--audit", str(audit_id), "-o", str(out))
    assert r.exit_code == 0, r.output
    assert f"html report of audit {audit_id} written to {out}" in r.stderr
    assert out.read_text(encoding="utf-8").count('<section class="check"') == 8
    r = run("report", "--audit", str(audit_id), "--format", "json", "-o", str(tmp_path / "a.txt"))
    assert r.exit_code == 0
    audit_validate(json.loads((tmp_path / "a.txt").read_text(encoding="utf-8")))
    r = run("report", "--audit", str(audit_id), "--format", "md")
    assert r.exit_code == 0 and r.stdout.startswith(f"# Provenance audit {audit_id}\n")


@pytest.mark.parametrize("args,words", [
    (["--audit", "999"], "no audit 999 in "),
    (["7", "--audit", "1"], "give a check ID or --audit ID"),
    ([], "give a check ID or --audit ID"),
])
def test_cli_report_audit_bad_requests_are_one_line_exit_2(settings, run_in, args, words):
    r = run_in(settings)("report", *args)
    assert r.exit_code == 2
    assert r.stderr.startswith("error: ") and words in r.stderr and r.stderr.count("\n") == 1


def test_unknown_audit_id_is_an_input_error(settings):
    with pytest.raises(InputError, match="no audit 42 .*provenance audits"):
        reporting.build_audit_report(42, settings=settings)


@pytest.mark.slow
def test_cli_audit_with_report_writes_the_page(audit_feed, settings, run_in, tmp_path):
    posts = [p for p in audit_feed.posts if p.name in ("p01-bunny", "p06-deleted", "p10-bunny-again")]
    urls = tmp_path / "posts.txt"
    urls.write_text("".join(f"{p.url}\n" for p in posts), encoding="utf-8")
    out = tmp_path / "audit.md"
    r = run_in(settings)("audit", "--urls", str(urls), "--sleep", "0", "--quiet", "--report", str(out))
    assert r.exit_code == 0, r.output
    md = out.read_text(encoding="utf-8")
    # Undated URLs are checked from the end of the list up: p10 first (no match), then p01, whose
    # page is dated earlier, is the earliest known appearance of the same file.
    assert "- 3 posts: reused 0 (0 self, 0 cross-account), earliest known 1, no match 1, failed 1" in md
    assert "| Failed: not found (HTTP 404)" in md and md.count("](#check-") == 2
    # A bad report name fails before any work.
    r = run_in(settings)("audit", "--urls", str(urls), "--report", str(tmp_path / "audit.pdf"))
    assert r.exit_code == 2 and "cannot tell the report format" in r.stderr


# --- untrusted text in a real browser ----------------------------------------------------------


@pytest.fixture
def evil_audit(settings, media_server):
    """A feed whose title and post title are markup, its post a page whose title and uploader are too."""
    from provenance import pipeline

    root = media_server.root / "evil-audit"
    root.mkdir(exist_ok=True)
    (root / "post.html").write_text(EVIL_PAGE.format(title=json.dumps(EVIL_TITLE), base=media_server.base),
                                    encoding="utf-8")
    escaped = htmllib.escape(EVIL_TITLE, quote=False)  # XML text: the feed reader unescapes it
    (root / "feed.xml").write_text(rss_feed(escaped, f"{media_server.base}/evil-audit/", [
        (escaped, f"{media_server.base}/evil-audit/post.html", EARLY.replace(year=2021)),
        (escaped, f"{media_server.base}/evil-audit/gone.html", EARLY.replace(year=2022))]), encoding="utf-8")
    pipeline.ingest(str(Path(__file__).parent.parent / "samples" / "bikes.mp4"), settings=settings,
                    post_url="https://example.org/original", posted_at=EARLY)
    result = audit_lib.audit(media_server.url("evil-audit/feed.xml"), settings=settings, options=FAST)
    assert result.title == EVIL_TITLE and {i.title for i in result.items} == {EVIL_TITLE}
    assert [i.verdict for i in result.items if i.state == "done"] == ["reused"]
    return result


def test_hostile_audit_renders_as_text_in_every_format(settings, evil_audit):
    page = reporting.render_audit(evil_audit.audit_id, settings=settings, fmt="html")
    assert "<script" not in page and "<img src=x" not in page
    assert page.count("&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;") >= 4
    md = reporting.render_audit(evil_audit.audit_id, settings=settings, fmt="md")
    assert "<img" not in md and "<script" not in md
    data = json.loads(reporting.render_audit(evil_audit.audit_id, settings=settings, fmt="json"))
    audit_validate(data)
    assert data["title"] == EVIL_TITLE


@pytest.mark.slow
def test_audit_page_in_headless_chromium_runs_nothing_and_loads_nothing(settings, evil_audit, tmp_path):
    out = tmp_path / "audit.html"
    reporting.write_audit_report(evil_audit.audit_id, out, settings=settings)
    with watched_page(out) as watched:
        page = watched.page
        assert page.get_by_text(EVIL_TITLE, exact=False).first.is_visible()
        found = page.evaluate("""() => ({
            scripts: document.querySelectorAll('script').length,
            badImages: [...document.images].filter(i => !i.src.startsWith('data:')).length,
            outLinks: [...document.links].filter(a => !/^https?:/i.test(a.href)
                                                    && !/^#(check-[0-9]+|posts)$/.test(a.getAttribute('href'))).length,
            anchors: [...document.links].filter(a => a.getAttribute('href').startsWith('#check-'))
                .map(a => !!document.getElementById(a.getAttribute('href').slice(1))),
            heading: document.querySelector('h1').textContent,
            rowThumbs: document.querySelectorAll('img.rowthumb').length,
        })""")
        page.click("a[href^='#check-']")  # the row's link lands on the check's section
        at_section = page.evaluate("() => location.hash")
        shot = tmp_path / "audit.png"
        page.goto(out.as_uri())
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the audit report: {shot}")
    dialogs, requests, errors = watched.dialogs, watched.requests, watched.errors
    assert dialogs == [] and errors == []
    assert set(requests) == {out.as_uri()}
    assert found["scripts"] == 0 and found["badImages"] == 0 and found["outLinks"] == 0
    assert found["anchors"] == [True] and found["rowThumbs"] == 1
    assert EVIL_TITLE in found["heading"]
    assert at_section == f"#check-{evil_audit.items[0].check_id}" or at_section.startswith("#check-")
    assert shot.stat().st_size > 10_000
