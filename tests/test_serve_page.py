"""The desk's page in headless Chromium (Debian's, through Playwright): log in, check a link whose
page has a hostile title, follow the progress to the verdict, open the report; then drop a file.
Nothing may run that the app did not write, nothing load from elsewhere, no console error."""

from __future__ import annotations

import html
import re

import pytest

from provenance.settings import Settings
from tests.conftest_http import video_page
from tests.conftest_serve import start_desk  # noqa: F401 - the fixture
from tests.test_report import BROWSER_ARGS, chromium_path

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script> "quoted" & \u202eevil'


@pytest.mark.slow
def test_log_in_check_a_link_read_the_verdict_and_the_report(new_database, tmp_path, start_desk, media_server,
                                                             derived):
    from playwright.sync_api import sync_playwright

    settings = Settings(db_url=new_database("sqlite"), store_dir=tmp_path / "evidence")
    desk = start_desk(settings, allow_private_urls=True)
    (media_server.root / "hostile.html").write_text(
        video_page(html.escape(HOSTILE), media_server.url("bikes.mp4")), encoding="utf-8")
    dialogs: list[str] = []
    errors: list[str] = []
    elsewhere: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=BROWSER_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 900})
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None)
            context.route("**/*", lambda route: (
                None if route.request.url.startswith(desk.base) else elsewhere.append(route.request.url),
                route.continue_()))

            page.goto(desk.base + "/")
            assert page.url == desk.base + "/login"  # no token, no desk
            page.fill("#token", "pvt_" + "x" * 43)
            page.click("button[type=submit]")
            assert "not valid" in page.text_content("#error")
            # That page came with status 401, which Chromium logs as a failed load: expected, not an error.
            assert len(errors) == 1 and "401" in errors[0]
            errors.clear()
            page.fill("#token", desk.token)
            page.click("button[type=submit]")
            page.wait_for_url(desk.base + "/")

            page.fill("#url", media_server.url("hostile.html"))
            page.fill("#posted_at", "2024-10-19T08:00:00Z")
            page.click("#submit")
            page.wait_for_url(re.compile(r".*/jobs/\d+$"))  # the job's page: progress, then the verdict
            page.wait_for_selector("#verdict", timeout=180_000)
            assert page.text_content("#verdict").strip() == "NO MATCH"
            assert page.text_content("#post-title").replace("\ufffd", "") == HOSTILE.replace("\u202e", "")
            assert page.locator("#post-title img, #post-title script").count() == 0

            page.click("#report-link")
            page.wait_for_load_state("load")
            assert "/checks/" in page.url and "report" in page.url
            assert "No match" in page.content() or "no_match" in page.content() or "NO MATCH" in page.content()
            assert page.locator("img[src='x'], script").count() == 0

            # Drop a file: an excerpt of the clip just checked is a reuse of that post.
            page.goto(desk.base + "/")
            page.set_input_files("#file", str(derived("bikes_excerpt_5s_to_9s.mp4")))
            page.click("#submit")
            page.wait_for_selector("#verdict", timeout=180_000)
            assert page.text_content("#verdict").strip() == "REUSED"

            page.goto(desk.base + "/library?url=hostile")
            assert HOSTILE.replace("\u202e", "") in page.text_content("#sightings").replace("\ufffd", "")
            page.goto(desk.base + "/audits")
            assert page.locator("#source").count() == 1
        finally:
            browser.close()
    assert dialogs == [] and errors == [] and elsewhere == []
