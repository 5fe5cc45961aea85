"""Reports of recorded checks: each format, built from the library, on real clips, checked against the
published JSON Schema, and the HTML opened in a real headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import jsonschema
import numpy as np
import pytest

from provenance import pipeline, reporting
from provenance.errors import InputError
from provenance.frames import hash_frame
from provenance.match import FRAME_MATCH_MAX_DISTANCE
from provenance.reporting.results import check_to_dict
from provenance.reporting import jsonout, markdown
from provenance.reporting.html import link
from tests.conftest import SAMPLES, ffmpeg

EARLY = datetime(2019, 5, 1, 10, 0, tzinfo=UTC)
MIDDLE = datetime(2020, 6, 1, 12, 0, tzinfo=UTC)
LATE = datetime(2024, 10, 19, 8, 0, tzinfo=UTC)
EVIL_TITLE = "<img src=x onerror=alert(1)><script>alert(2)</script>"
EVIL_URL = "javascript:alert(document.domain)"
# A 240-px JPEG thumbnail hashes within a few bits of the full frame (pHash sees 32x32).
THUMBNAIL_HASH_SLACK = 6


def validate(data: dict) -> None:
    schema = jsonout.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(data)


def _decode(uri: str) -> np.ndarray:
    data = base64.b64decode(uri.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def report_json(check_id: int, settings) -> dict:
    data = json.loads(reporting.render_check(check_id, settings=settings, fmt="json"))
    validate(data)
    return data


def assert_contains(whole, part, path="$"):
    """Every field of `part` is in `whole` with the same value (dicts may have more keys)."""
    if isinstance(part, dict):
        assert isinstance(whole, dict), path
        for k, v in part.items():
            assert k in whole, f"{path}.{k} missing"
            assert_contains(whole[k], v, f"{path}.{k}")
    elif isinstance(part, list):
        assert isinstance(whole, list) and len(whole) == len(part), path
        for i, (w, p) in enumerate(zip(whole, part, strict=True)):
            assert_contains(w, p, f"{path}[{i}]")
    else:
        assert whole == part, f"{path}: {whole!r} != {part!r}"


@pytest.fixture
def several(settings, derived):
    """bikes posted in 2019, its mirror image posted in 2020, then a re-encode checked as a 2024 post."""
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://example.org/original",
                    posted_at=EARLY)
    pipeline.ingest(str(derived("bikes_mirrored.mp4")), settings=settings, post_url="https://example.org/mirrored",
                    posted_at=MIDDLE)
    return pipeline.check(str(derived("bikes_reencoded_360w.mp4")), settings=settings,
                          post_url="https://example.org/repost", posted_at=LATE)


# --- the model and the JSON -------------------------------------------------------------------


def test_no_match_report_says_what_it_means_in_every_format(settings):
    result = pipeline.check(str(SAMPLES / "carphone_pristine.mp4"), settings=settings,
                            post_url="https://example.org/p", posted_at=LATE)
    data = report_json(result.check_id, settings)
    assert data["verdict"] == "no_match" and data["matches"] == []
    assert data["answer"]["text"] == "No known earlier copy in a library of 0 clips."
    assert "does not mean" in data["answer"]["caveat"]
    assert data["reproducibility"]["library_clips"] == 0 and data["params"]["library_clips"] == 0
    assert [e["role"] for e in data["timeline"]] == ["this_post"]
    assert data["first_seen"]["is_this_post"] and data["first_seen"]["url"] == "https://example.org/p"
    md = reporting.render_check(result.check_id, settings=settings, fmt="md")
    assert "**No match.**" in md and "## Matches\n\nNone." in md
    html = reporting.render_check(result.check_id, settings=settings, fmt="html")
    assert "No known earlier copy in a library of 0 clips." in html
    assert html.count("data:image/jpeg") == 2  # no pairs; the clip's own thumbnail and its one keyframe


def test_report_json_keeps_every_field_of_check_json(settings, several):
    data = report_json(several.check_id, settings)
    check = json.loads(json.dumps(check_to_dict(several)))
    # content_credentials.read_at is the same reading: both come from the one check.
    # check --json is at version 3 for page_capture alone, which reports show as page_captures
    # (tests/test_capture.py); every other field is the report's, with its value.
    assert check.pop("schema_version") == 3 and data["schema_version"] == 2
    assert check.pop("page_capture")["capture"] is None and data["page_captures"] == []
    assert_contains(data, check)


def test_several_matches_first_seen_timeline_and_frame_pairs(settings, several):
    data = report_json(several.check_id, settings)
    assert data["verdict"] == "reused" and len(data["matches"]) == 2
    assert data["first_seen"]["url"] == "https://example.org/original"
    assert data["first_seen"]["post_time"]["source"] == "user_given"
    assert data["answer"]["text"].startswith("Reused footage: this clip's frames 0:00-0:10 match a video first "
                                             "posted on 2019-05-01")
    assert [(e["url"], e["role"], e["reuse"]) for e in data["timeline"]] == [
        ("https://example.org/original", "first_seen", False),
        ("https://example.org/mirrored", "earlier", True),
        ("https://example.org/repost", "this_post", True)]
    by_url = {m["sightings"][0]["url"]: m for m in data["matches"]}
    plain, mirrored = by_url["https://example.org/original"], by_url["https://example.org/mirrored"]
    assert mirrored["transforms"] == ["mirrored"] and "this clip is most likely the flipped copy" in mirrored["mirror_note"]
    for m in (plain, mirrored):
        pairs = m["frame_pairs"]
        assert len(pairs) == 4
        # Spread over the match, and on the match's line (same timing: the copies are not retimed).
        assert pairs[0]["query_t"] < 1.0 and pairs[-1]["query_t"] > 8.0
        for p in pairs:
            assert abs(p["reference_t"] - p["query_t"]) <= 0.2
            assert p["distance"] is not None and p["distance"] <= FRAME_MATCH_MAX_DISTANCE
            assert p["mirrored"] == (m is mirrored)
            assert int(p["query_hash"], 16) ^ int(p["reference_hash"], 16) == 0 or \
                (int(p["query_hash"], 16) ^ int(p["reference_hash"], 16)).bit_count() == p["distance"]
    assert all("hashed again" in p["note"] and p["query_view"].startswith("mirror image") for p in mirrored["frame_pairs"])
    assert all(p["note"] is None for p in plain["frame_pairs"])
    # Thumbnails are in the HTML only: two per pair, one of the clip and one per keyframe.
    html = reporting.render_check(several.check_id, settings=settings, fmt="html")
    assert data["keyframes"] and html.count('src="data:image/jpeg;base64,') == 2 * 8 + 1 + len(data["keyframes"])
    assert "mirror image, whole picture" in html
    # The pictures are the frames that were hashed: each thumbnail hashes close to its stored hash.
    images = [_decode(uri) for uri in re.findall(r'src="(data:image/jpeg;base64,[^"]+)"', html)]
    pairs = [p for m in sorted(data["matches"], key=lambda m: m["rank"]) for p in m["frame_pairs"]]
    checked = 0
    for i, p in enumerate(pairs):
        for image, view, stored in ((images[2 * i], p["query_view"], p["query_hash"]),
                                    (images[2 * i + 1], p["reference_view"], p["reference_hash"])):
            if view == "whole picture":
                assert (hash_frame(image, 0.0).phash ^ int(stored, 16)).bit_count() <= THUMBNAIL_HASH_SLACK
                checked += 1
    assert checked >= 8


def test_red_flags_creation_time_and_editor_tag(settings, tmp_path):
    clip = tmp_path / "old_footage.mp4"
    ffmpeg("-i", str(SAMPLES / "bikes.mp4"), "-c", "copy", "-metadata", "creation_time=2015-03-01T09:00:00Z",
           str(clip))
    result = pipeline.check(str(clip), settings=settings, posted_at=LATE)
    flags = {f["kind"]: f for f in report_json(result.check_id, settings)["red_flags"]}
    assert set(flags) == {"creation_time_before_post", "editor_encoder_tag"}
    assert "2015-03-01T09:00:00Z" in flags["creation_time_before_post"]["detail"]
    assert flags["editor_encoder_tag"]["data"]["software"] == "FFmpeg (libavformat)"
    assert "says little" in flags["editor_encoder_tag"]["detail"]


def test_a_past_check_reports_what_the_check_saw(settings, several, derived):
    before = report_json(several.check_id, settings)
    # Later activity: a new sighting of the original, another check.
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://example.org/later-post")
    pipeline.check(str(derived("bikes_letterboxed.mp4")), settings=settings)
    after = report_json(several.check_id, settings)
    for key in ("verdict", "answer", "first_seen", "matches", "timeline", "params", "clip", "post", "red_flags"):
        assert after[key] == before[key], key
    assert after["reproducibility"]["library_clips_now"] == before["reproducibility"]["library_clips_now"] + 1


def test_deleted_evidence_files_leave_hashes_and_say_the_images_are_unavailable(settings, several):
    data = report_json(several.check_id, settings)
    for path in [data["clip"]["evidence_path"]] + [m["reference"]["evidence_path"] for m in data["matches"]]:
        Path(path).unlink()
    data = report_json(several.check_id, settings)
    assert data["clip"]["evidence_present"] is False
    by_url = {m["sightings"][0]["url"]: m for m in data["matches"]}
    # Plain views are stored: distances stay. A mirror image needs a file: it says so.
    assert all(p["distance"] is not None for p in by_url["https://example.org/original"]["frame_pairs"])
    assert all(p["distance"] is None and "neither evidence file" in p["note"]
               for p in by_url["https://example.org/mirrored"]["frame_pairs"])
    html = reporting.render_check(several.check_id, settings=settings, fmt="html")
    assert "data:image" not in html
    assert "this clip frame image unavailable" in html and "evidence file is gone" in html
    assert "(file no longer present)" in html


def test_unknown_check_id_is_a_clear_input_error(settings):
    with pytest.raises(InputError, match=r"no check with id 7 in (sqlite|postgresql)"):
        reporting.render_check(7, settings=settings, fmt="md")


def test_markdown_has_answer_first_seen_matches_and_timeline(settings, several):
    md = reporting.render_check(several.check_id, settings=settings, fmt="md")
    assert md.startswith(f"# Provenance report: check {several.check_id}\n\n**Reused footage.**")
    for heading in ("## First seen", "## Matches", "## Timeline of sightings"):
        assert heading in md
    assert "- URL: <https://example.org/original>" in md
    assert re.search(r"\| 0:00-0:10 = 0:00-0:10 \|", md)
    assert "data:image" not in md


# --- untrusted text ----------------------------------------------------------------------------


@pytest.mark.parametrize("url,linked", [
    ("https://example.org/a?b=1&c=<2>", False),  # < > never reach an href
    ("https://example.org/a?b=1&c=2", True),
    ("HTTP://EXAMPLE.ORG/", True),
    ("javascript:alert(1)", False),
    (" javascript:alert(1)", False),
    ("JaVaScRiPt:alert(1)", False),
    ("data:text/html,<script>alert(1)</script>", False),
    ("file:///etc/passwd", False),
    ("//evil.example/x", False),
    ("https://example.org/\"onmouseover=alert(1)", False),
])
def test_only_http_urls_become_links(url, linked):
    html = str(link(url))
    assert html.startswith("<a href=") == linked
    assert "<script" not in html and "\"onmouseover" not in html


def test_markdown_escapes_markup_in_untrusted_text():
    out = markdown.text(EVIL_TITLE + " [x](javascript:alert(3)) **bold** | cell www.evil.example")
    assert "<" not in out and ">" not in out
    assert "\\[x\\]" in out and "\\*\\*bold\\*\\*" in out and "\\|" in out and "www\\." in out
    assert markdown.url(EVIL_URL) == "javascript:alert(document.domain)"  # text, not a link
    assert markdown.url("https://example.org/x") == "<https://example.org/x>"


EVIL_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>t</title>
<script type="application/ld+json">
{{"@context": "https://schema.org", "@type": "VideoObject", "name": {title},
  "description": {title}, "contentUrl": "{base}/bikes.mp4", "uploadDate": "2021-02-03T04:05:06Z",
  "author": {{"@type": "Person", "name": {title}}}}}
</script></head><body></body></html>
"""


@pytest.fixture
def evil_check(settings, media_server):
    """A post whose title, description and uploader are markup, with a javascript: post URL."""
    page = media_server.root / "evil.html"
    page.write_text(EVIL_PAGE.format(title=json.dumps(EVIL_TITLE), base=media_server.base), encoding="utf-8")
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://example.org/original",
                    posted_at=EARLY)
    result = pipeline.check(media_server.url("evil.html"), settings=settings, post_url=EVIL_URL)
    assert result.post.title == EVIL_TITLE and result.post.uploader == EVIL_TITLE
    return result


def test_untrusted_post_renders_as_text_in_every_format(settings, evil_check):
    data = report_json(evil_check.check_id, settings)  # one match: the same file
    assert len(data["matches"]) == 1 and data["matches"][0]["transforms"] == ["identical"]
    assert data["post"]["title"] == EVIL_TITLE and data["post"]["url"] == EVIL_URL
    # The platform's time was overridden only for the URL: the time is the page's own.
    assert data["post"]["post_time"]["source"] == "platform_timestamp"
    html = reporting.render_check(evil_check.check_id, settings=settings, fmt="html")
    assert "<script" not in html and "<img src=x" not in html and "javascript:" not in html.replace(
        "javascript:alert(document.domain)</span>", "")
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    md = reporting.render_check(evil_check.check_id, settings=settings, fmt="md")
    assert "<img" not in md and "<script" not in md and "](javascript" not in md


BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


def chromium_path() -> str:
    """Debian's chromium (CI installs it); without it the test fails in CI and is skipped elsewhere."""
    found = os.environ.get("PROVENANCE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    reason = None
    if not found:
        reason = "no chromium on PATH (apt-get install chromium chromium-driver, or set PROVENANCE_CHROMIUM)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing (pip install -e '.[test]')"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {reason}")
        pytest.skip(reason)
    return found


@dataclass
class WatchedPage:
    page: Any
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def watched_page(path: Path) -> Iterator[WatchedPage]:
    """`path` open in headless Chromium, with every dialog, page error and request it causes recorded."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    watched = WatchedPage(page=None)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 900}, java_script_enabled=True)
            page = context.new_page()
            page.on("dialog", lambda d: (watched.dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: watched.errors.append(str(e)))
            context.route("**/*", lambda route: (watched.requests.append(route.request.url), route.continue_()))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            watched.page = page
            yield watched
        finally:
            browser.close()


@pytest.mark.slow
def test_html_report_in_headless_chromium_runs_nothing_and_loads_nothing(settings, evil_check, tmp_path):
    out = tmp_path / "report.html"
    reporting.write_check_report(evil_check.check_id, out, settings=settings)
    with watched_page(out) as watched:
        page = watched.page
        title = page.get_by_text(EVIL_TITLE, exact=False).first
        assert title.is_visible()
        counts = page.evaluate("""() => ({
            scripts: document.querySelectorAll('script').length,
            badImages: [...document.images].filter(i => !i.src.startsWith('data:')).length,
            jsLinks: [...document.links].filter(a => !/^https?:/i.test(a.href)).length,
            dataImages: [...document.images].filter(i => i.src.startsWith('data:image/jpeg')).length,
            keyframes: [...document.images].filter(i => i.alt.startsWith('keyframe of shot')).length,
            heading: document.querySelector('h1').textContent,
        })""")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the report: {shot}")
    dialogs, requests, errors = watched.dialogs, watched.requests, watched.errors
    assert dialogs == [] and errors == []
    assert requests == [out.as_uri()]
    assert counts["scripts"] == 0 and counts["badImages"] == 0 and counts["jsLinks"] == 0
    # 4 frame pairs of the one match, the clip's thumbnail and one per keyframe
    assert counts["keyframes"] >= 1 and counts["dataImages"] == 9 + counts["keyframes"]
    assert EVIL_TITLE in counts["heading"]
    assert shot.stat().st_size > 10_000


# --- the command line --------------------------------------------------------------------------


def test_check_with_report_writes_it_and_report_remakes_it(run, tmp_path, derived):
    assert run("ingest", str(SAMPLES / "bikes.mp4"), "--url", "https://example.org/original",
               "--posted-at", "2019-05-01T10:00:00Z", "--quiet").exit_code == 0
    html = tmp_path / "check.html"
    result = run("check", str(derived("bikes_mirrored.mp4")), "--report", str(html), "--quiet")
    assert result.exit_code == 0, result.output
    assert f"report      {html}" in result.output
    check_id = int(re.search(r"recorded as check (\d+)", result.output).group(1))
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in page and "Reused footage" in page

    as_json = tmp_path / "r.json"
    result = run("report", str(check_id), "-o", str(as_json))
    assert result.exit_code == 0
    validate(json.loads(as_json.read_text(encoding="utf-8")))

    result = run("report", str(check_id), "--format", "md")
    assert result.exit_code == 0 and result.output.startswith(f"# Provenance report: check {check_id}")

    same = tmp_path / "again.html"
    assert run("report", str(check_id), "-o", str(same)).exit_code == 0
    strip = re.compile(r"Report made [^<]*by")  # the report time is the one thing that differs
    assert strip.sub("", same.read_text(encoding="utf-8")) == strip.sub("", page)


def test_check_report_json_via_report_format(run, tmp_path):
    out = tmp_path / "report.out"
    result = run("check", str(SAMPLES / "carphone_pristine.mp4"), "--report", str(out), "--report-format", "json",
                 "--json")
    assert result.exit_code == 0
    printed = json.loads(result.output)
    written = json.loads(out.read_text(encoding="utf-8"))
    validate(written)
    assert written["check_id"] == printed["check_id"] and written["verdict"] == "no_match"


@pytest.mark.parametrize("args,words", [
    (("check", str(SAMPLES / "bikes.mp4"), "--report", "r.html", "--no-record"), "drop --no-record"),
    (("check", str(SAMPLES / "bikes.mp4"), "--report", "r.txt"), "cannot tell the report format"),
    (("check", str(SAMPLES / "bikes.mp4"), "--report", "no/such/folder/r.html"), "no folder no/such/folder"),
    (("report", "12345"), "no check with id 12345"),
    (("report", "1", "-o", "r.pdf"), "cannot tell the report format"),
])
def test_bad_report_requests_are_one_line_exit_2_and_change_nothing(run, row_counts, args, words):
    before = row_counts()
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]
    assert row_counts() == before


# --- how post times are known, and red flags, from stored posts -------------------------------


def _sighting(**kw):
    from provenance.stored import StoredSighting

    base = dict(sighting_id=1, clip_sha256="0" * 64, source="check", url="https://x.com/a/status/1", platform="Twitter",
                post_id="1", uploader=None, uploader_id=None, posted_at=None, observed_at=LATE, title=None,
                description=None, post_created_at=None, media_created_at=None, info=None)
    return StoredSighting(**{**base, **kw})


@pytest.mark.parametrize("kw,source,words", [
    (dict(posted_at=EARLY, info={"timestamp": EARLY.timestamp()}), "platform_timestamp", "platform's own time"),
    (dict(posted_at=datetime(2019, 5, 1, tzinfo=UTC), info={"upload_date": "20190501"}), "platform_date", "only the day"),
    (dict(posted_at=MIDDLE, info={"timestamp": EARLY.timestamp()}), "user_given", "the platform said 2019-05-01T10:00:00Z"),
    (dict(posted_at=MIDDLE, info=None), "user_given", "local file"),
    (dict(posted_at=None, info={"title": "x"}), "observed", "when this tool observed"),
    (dict(posted_at=EARLY, post_created_at=EARLY, info={"timestamp": EARLY.timestamp()}), "platform_timestamp",
     "snowflake): 2019-05-01T10:00:00Z, which agrees"),
])
def test_how_the_post_time_is_known(kw, source, words):
    from provenance.reporting.flags import post_time

    t = post_time(_sighting(**kw))
    assert t.source == source and words in t.detail
    assert t.at == (kw["posted_at"] or LATE)


def test_red_flags_from_x_ids_and_a_file_written_after_its_post():
    from provenance.reporting.flags import red_flags, signals_of

    post = _sighting(posted_at=LATE, post_created_at=LATE, media_created_at=EARLY)
    signals = signals_of(post)
    flags = red_flags(post, {"creation_time": "2025-01-10T00:00:00.000000Z", "encoder": "CapCut 12.3"}, signals)
    assert [f.kind for f in flags] == ["x_media_predates_post", "creation_time_after_post", "editor_encoder_tag"]
    assert "says nothing about when the footage was filmed" in flags[1].detail
    assert flags[2].data["software"] == "CapCut" and "not that the picture was altered" in flags[2].detail
    # A zero (unset) creation_time and an unknown encoder raise nothing.
    assert red_flags(_sighting(posted_at=LATE), {"creation_time": "1970-01-01T00:00:00Z", "encoder": "x264"}, ()) == ()


def test_a_re_edit_gets_one_frame_pair_per_piece_on_the_right_reference_time(settings, tmp_path):
    # bikes cut into five 2-s pieces and put back in another order: five segments of one reference.
    order = (8, 0, 4, 2, 6)
    parts = ";".join(f"[0:v]trim={a}:{a + 2},setpts=PTS-STARTPTS[p{i}]" for i, a in enumerate(order))
    clip = tmp_path / "reordered.mp4"
    ffmpeg("-i", str(SAMPLES / "bikes.mp4"), "-filter_complex",
           parts + ";" + "".join(f"[p{i}]" for i in range(5)) + "concat=n=5:v=1[v]", "-map", "[v]",
           "-c:v", "libx264", "-an", str(clip))
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings)
    result = pipeline.check(str(clip), settings=settings)
    (match,) = report_json(result.check_id, settings)["matches"]
    assert len(match["segments"]) == 5 and len(match["frame_pairs"]) == 5
    for piece, pair in zip(order, match["frame_pairs"], strict=True):
        query_piece = int(pair["query_t"] // 2)
        assert order[query_piece] == piece
        # Where this piece came from: its time inside the piece, plus the piece's start in the original.
        assert pair["reference_t"] == pytest.approx(piece + pair["query_t"] - 2 * query_piece, abs=0.2)
        assert pair["distance"] <= FRAME_MATCH_MAX_DISTANCE


def test_a_check_from_before_library_sizes_were_recorded_says_so(settings, several):
    from sqlalchemy import update

    from provenance.db import connect, session_scope
    from provenance.db import models as orm

    engine = connect(settings.db_url)
    old_params = {k: v for k, v in several.params.items() if k != "library_clips"}
    with session_scope(engine) as session:
        session.execute(update(orm.Check).where(orm.Check.id == several.check_id).values(params=old_params))
    engine.dispose()
    data = report_json(several.check_id, settings)
    assert data["reproducibility"]["library_clips"] is None and data["reproducibility"]["library_clips_now"] == 3
    html = reporting.render_check(several.check_id, settings=settings, fmt="html")
    assert "not recorded by this check (it holds 3 clips now)" in html


def test_the_database_url_is_shown_without_its_password():
    from provenance.db import shown_url

    assert shown_url("postgresql+psycopg://me:s3cret@db.example/provenance") == \
        "postgresql+psycopg://me:***@db.example/provenance"
    assert "s3cret" not in shown_url("not a url://me:s3cret@x")
    # libpq also takes the password as a query parameter.
    shown = shown_url("postgresql+psycopg://me@db.example/provenance?password=s3cret&sslmode=require")
    assert "s3cret" not in shown and "password=" in shown and "sslmode=require" in shown
