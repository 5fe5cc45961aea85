"""`provenance serve`: the JSON API against a real uvicorn on 127.0.0.1 (httpx), its security
(tokens, CSRF, private URLs, upload limits, sniffing), and token management on the command line."""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from provenance.errors import InputError
from provenance.reporting.results import CHECK_SCHEMA_VERSION
from provenance.serve import auth, exposed, inputs, openapi
from provenance.serve.app import REPORT_CSP
from provenance.settings import Settings
from tests.conftest import SAMPLES
from tests.conftest_serve import start_desk  # noqa: F401 - the fixture

SMALL_LIMIT = 100_000  # bytes; bikes.mp4 (510 KB) is over it


@pytest.fixture
def sqlite_settings(new_database, tmp_path: Path) -> Settings:
    """The heavier end-to-end tests run on SQLite only; the security tests on both databases."""
    return Settings(db_url=new_database("sqlite"), store_dir=tmp_path / "evidence")


def test_no_token_is_401_everywhere(settings, start_desk):
    desk = start_desk(settings)
    with desk.client(token=None) as c:
        for path in ("/api/checks/1", "/api/clips", "/api/audits", "/api/openapi.json", "/api/jobs/1"):
            r = c.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
            assert "token" in r.json()["error"]
        assert c.post("/api/checks", json={"url": "https://example.org/v"}).status_code == 401
        assert c.post("/api/ingest", files={"file": ("a.mp4", b"x")}).status_code == 401
        page = c.get("/", follow_redirects=False)  # pages send people to the login form
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert c.get("/library", follow_redirects=False).status_code == 303
    for bad in ("pvt_" + "A" * 43, "not-a-token", desk.token + "x"):
        with desk.client(token=bad) as c:
            assert c.get("/api/checks").status_code == 401
    with desk.client() as c:
        assert c.get("/api/checks").status_code == 200


def test_a_revoked_token_is_refused_at_once(settings, start_desk):
    desk = start_desk(settings)
    token, _ = auth.create_token(desk.library.engine, "freelancer")
    with desk.client(token=token) as c:
        assert c.get("/api/audits").status_code == 200
        auth.revoke_token(desk.library.engine, "freelancer")
        r = c.get("/api/audits")
        assert r.status_code == 401
        # The login form refuses it too, and a cookie set before the revocation stops working.
    with httpx.Client(base_url=desk.base) as browser:
        assert browser.post("/login", data={"token": token}).status_code == 401
    with desk.client() as c:  # another token is unaffected
        assert c.get("/api/audits").status_code == 200


def test_only_the_hash_of_a_token_is_stored(settings, run):
    created = run("token", "create", "alice")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert re.fullmatch(r"pvt_[A-Za-z0-9_-]{43}", token)
    from provenance.db import connect

    engine = connect(settings.db_url)
    try:
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(text("SELECT * FROM api_tokens"))]
    finally:
        engine.dispose()
    assert len(rows) == 1 and not any(token in str(v) for v in rows[0])
    assert auth.token_sha256(token) in rows[0]
    listed = run("token", "list")
    assert "alice" in listed.output and "active" in listed.output and token not in listed.output
    assert run("token", "create", "alice").exit_code == 2  # one token per name
    assert run("token", "revoke", "alice").exit_code == 0
    assert "revoked" in run("token", "list").output
    assert run("token", "revoke", "nobody").exit_code == 2
    assert run("token", "create", "<script>").exit_code == 2


def test_a_private_or_loopback_url_is_a_clear_400(settings, start_desk, media_server):
    desk = start_desk(settings)
    with desk.client() as c:
        for url in (media_server.url("bikes.mp4"), "http://localhost:9/v.mp4", "http://[::1]/v",
                    "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/v.mp4"):
            r = c.post("/api/checks", json={"url": url})
            assert r.status_code == 400, url
            assert "private or loopback" in r.json()["error"] and "--allow-private-urls" in r.json()["error"]
        assert c.post("/api/audits", json={"source": media_server.url("feed.xml")}).status_code == 400
        assert c.post("/api/ingest", json={"url": "file:///etc/passwd"}).status_code == 400
        assert c.get("/api/checks").json()["checks"] == []  # nothing was queued


def test_the_fetch_of_a_server_job_exempts_not_even_the_named_host(sqlite_settings, media_server):
    """The 400 above resolves the name once; the fetch itself must refuse again (a name can change its
    answer in between), so the guard must not let the job's own URL through as the CLI does."""
    from provenance import pipeline

    url = media_server.url("bikes.mp4")
    with pytest.raises(InputError, match="refused to connect"):
        pipeline.check(url, settings=replace(sqlite_settings, trust_named_host=False), record=False)


def test_an_upload_over_the_limit_is_413(settings, start_desk):
    desk = start_desk(settings, max_upload=SMALL_LIMIT)
    clip = (SAMPLES / "bikes.mp4").read_bytes()
    with desk.client() as c:
        r = c.post("/api/checks", files={"file": ("bikes.mp4", clip, "video/mp4")})
        assert r.status_code == 413 and "larger than this server takes" in r.json()["error"]

        def chunks():  # no Content-Length: the limit is counted as the body arrives
            for i in range(0, len(clip), 65536):
                yield clip[i:i + 65536]

        boundary = "b0undary"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.mp4\"\r\n"
                "Content-Type: video/mp4\r\n\r\n").encode()

        def body():
            yield head
            yield from chunks()
            yield f"\r\n--{boundary}--\r\n".encode()

        r = c.post("/api/checks", content=body(),
                   headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 413
        assert c.post("/api/checks", content=b"{" * (inputs.MAX_JSON_BODY + 1),
                      headers={"content-type": "application/json"}).status_code == 413
        assert c.get("/api/checks").json()["checks"] == []


def test_an_upload_is_told_by_its_bytes_not_its_name(settings, start_desk):
    desk = start_desk(settings)
    with desk.client() as c:
        r = c.post("/api/checks", files={"file": ("clip.mp4", b"<html><script>alert(1)</script>", "video/mp4")})
        assert r.status_code == 400 and "not a video" in r.json()["error"]
        assert c.get("/api/checks").json()["checks"] == []
    assert not list(desk.upload_dir.iterdir())  # the refused upload is not kept


def test_bad_requests_say_what_is_wrong(settings, start_desk):
    desk = start_desk(settings)
    with desk.client() as c:
        assert "not JSON" in c.post("/api/checks", content=b"nope",
                                    headers={"content-type": "application/json"}).json()["error"]
        assert "give a URL" in c.post("/api/checks", json={}).json()["error"]
        r = c.post("/api/checks", json={"url": "https://example.org/v", "posted_at": "yesterday"})
        assert r.status_code == 400 and "ISO 8601" in r.json()["error"]
        assert c.get("/api/checks/999").status_code == 404
        assert c.get("/api/checks/abc").status_code == 404
        assert c.get("/api/clips?since=soon").status_code == 400
        assert c.get("/api/checks/1/report?format=pdf").status_code == 400


def test_the_page_cookie_needs_the_csrf_value_for_every_post(settings, start_desk):
    desk = start_desk(settings)
    with httpx.Client(base_url=desk.base) as browser:
        r = browser.post("/login", data={"token": desk.token}, follow_redirects=False)
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and desk.token.lower() in cookie
        page = browser.get("/")
        assert page.status_code == 200
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)
        assert browser.post("/api/checks", json={"url": "https://example.org/v"}).status_code == 403
        assert browser.post("/api/checks", json={"url": "https://example.org/v"},
                            headers={"x-csrf-token": "0" * 64}).status_code == 403
        assert browser.post("/checks", files={"file": ("a.mp4", b"x")}, data={"url": ""}).status_code == 403
        assert browser.post("/logout", data={}).status_code == 403
        other_site = browser.post("/api/checks", json={}, headers={"x-csrf-token": csrf,
                                                                   "origin": "https://evil.example"})
        assert other_site.status_code == 403
        ok = browser.post("/api/checks", json={}, headers={"x-csrf-token": csrf})
        assert ok.status_code == 400  # past the CSRF check: now it is only missing its URL
        assert browser.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303


def test_the_openapi_description_names_every_api_route(settings, start_desk):
    desk = start_desk(settings)
    with desk.client() as c:
        served = c.get("/api/openapi.json").json()
    assert served == openapi.DESCRIPTION and served["openapi"].startswith("3.")
    from provenance.serve import api_routes
    from provenance.serve.app import Desk

    routes = api_routes.routes(Desk.__new__(Desk))
    declared = {(r.path, m.lower()) for r in routes for m in r.methods if m != "HEAD"}
    described = {(p, m) for p, ops in served["paths"].items() for m in ops}
    assert declared == described
    for name in ("/api/checks", "/api/checks/{id}", "/api/checks/{id}/report", "/api/clips", "/api/ingest",
                 "/api/audits", "/api/openapi.json"):
        assert name in served["paths"]


@pytest.mark.slow
def test_ingest_and_check_uploads_then_read_the_report_and_search(sqlite_settings, start_desk, derived):
    desk = start_desk(sqlite_settings)
    with desk.client() as c:
        r = c.post("/api/ingest", files={"file": ("whatever.bin", (SAMPLES / "bikes.mp4").read_bytes())},
                   data={"url": "https://example.org/original-post", "posted_at": "2019-05-01T10:00:00Z"})
        assert r.status_code == 202 and r.json()["status_url"] == f"/api/jobs/{r.json()['id']}"
        assert desk.wait(c, r.json()["status_url"])["status"] == "done"
        r = c.post("/api/checks", files={"file": ("x", derived("bikes_excerpt_5s_to_9s.mp4").read_bytes())},
                   data={"url": "https://example.org/repost", "posted_at": "2024-10-19T08:00:00Z"})
        assert r.status_code == 202
        body = r.json()
        assert body["status_url"] == f"/api/checks/{body['id']}"
        job = desk.wait(c, body["status_url"])
        assert job["status"] == "done", job
        assert set(job) >= {"id", "status", "progress", "error", "result"}
        assert job["result"]["verdict"] == "reused" and job["result"]["schema_version"] == CHECK_SCHEMA_VERSION
        assert job["result"]["first_seen"]["url"] == "https://example.org/original-post"
        page = c.get(f"/api/checks/{body['id']}/report?format=html")
        assert page.status_code == 200 and page.headers["content-security-policy"] == REPORT_CSP
        meta = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page.text).group(1)
        assert REPORT_CSP.startswith(html.unescape(meta))  # the file's own policy, and a sandbox on top
        assert page.headers["x-content-type-options"] == "nosniff"
        as_json = c.get(f"/api/checks/{body['id']}/report?format=json")
        assert as_json.headers["content-type"].startswith("application/json")
        assert as_json.json()["verdict"] == "reused" and as_json.json()["check_id"] == job["check_id"]
        assert c.get(f"/api/checks/{body['id']}/report?format=md").text.startswith("#")
        found = c.get("/api/clips", params={"url": "original-post"}).json()["sightings"]
        assert [s["url"] for s in found] == ["https://example.org/original-post"]
        assert found[0]["clip_first_posted_at"] == "2019-05-01T10:00:00Z"
        assert c.get("/api/clips", params={"since": "2020-01-01"}).json()["sightings"][0]["url"] == \
            "https://example.org/repost"
        assert c.get("/api/clips", params={"url": "nothing-like-this"}).json()["sightings"] == []
    # The uploads were the jobs' own temporary copies: gone once the jobs ended.
    assert desk.upload_dir.is_dir() and not list(desk.upload_dir.iterdir())


@pytest.mark.slow
def test_a_url_check_through_the_local_media_server(sqlite_settings, start_desk, media_server):
    desk = start_desk(sqlite_settings, allow_private_urls=True)
    with desk.client() as c:
        r = c.post("/api/checks", json={"url": media_server.url("bikes.mp4"), "posted_at": "2024-01-01T00:00:00Z"})
        assert r.status_code == 202
        job = desk.wait(c, r.json()["status_url"])
        assert job["status"] == "done" and job["result"]["verdict"] == "no_match"
        assert job["result"]["post"]["url"] == media_server.url("bikes.mp4")
        missing = c.post("/api/checks", json={"url": media_server.url("status/404")})
        failed = desk.wait(c, missing.json()["status_url"])
        assert failed["status"] == "failed" and failed["error"] and failed["error_code"] in (2, 3)
        assert c.get(f"/api/checks/{missing.json()['id']}/report").status_code == 409


def test_exposed_hosts():
    assert not exposed("127.0.0.1") and not exposed("::1") and not exposed("localhost") and not exposed("[::1]")
    assert exposed("0.0.0.0") and exposed("::") and exposed("192.168.1.5") and exposed("desk.example.org")


def test_sniffing():
    assert inputs.sniff((SAMPLES / "bikes.mp4").read_bytes()[:200]) == "mp4"
    assert inputs.sniff(b"\x1a\x45\xdf\xa3" + b"\0" * 60) == "mkv"
    assert inputs.sniff(b"<!DOCTYPE html><html>") is None and inputs.sniff(b"") is None
    assert inputs.sniff(b"%PDF-1.7" + b"\0" * 200) is None


def test_the_listing_of_a_server_audit_exempts_not_even_the_named_host(media_server):
    from datetime import UTC, datetime

    from provenance.listing import list_url
    from tests.conftest_http import rss_feed

    (media_server.root / "serve-feed.xml").write_text(rss_feed(
        "posts", media_server.base, [("one", media_server.url("bikes.mp4"), datetime(2021, 1, 1, tzinfo=UTC))]))
    url = media_server.url("serve-feed.xml")
    assert len(list_url(url).posts) == 1  # typed on the command line: its own host may be loopback
    with pytest.raises(InputError, match="refused to connect"):
        list_url(url, trust_named=False)


def _serve_cli(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "provenance.cli", "serve", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_provenance_serve_on_the_command_line(sqlite_settings, tmp_path):
    env = dict(os.environ, PROVENANCE_DB=sqlite_settings.db_url, PROVENANCE_STORE=str(sqlite_settings.store_dir))
    token = subprocess.run([sys.executable, "-m", "provenance.cli", "token", "create", "desk"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = _serve_cli("--port", str(port), env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/checks", headers={"authorization": f"Bearer {token}"})
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
                time.sleep(0.2)
        assert r.status_code == 200 and r.json() == {"checks": []}
        assert httpx.get(f"http://127.0.0.1:{port}/api/checks").status_code == 401
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "warning" not in err  # loopback: nothing to warn about
    assert token not in err  # the log names no token


def test_serve_warns_when_other_machines_can_connect_and_refuses_bad_sizes(sqlite_settings):
    env = dict(os.environ, PROVENANCE_DB=sqlite_settings.db_url, PROVENANCE_STORE=str(sqlite_settings.store_dir))
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the warning comes, then the bind fails.
    server = _serve_cli("--host", "192.0.2.1", "--port", "8700", env=env)
    _, err = server.communicate(timeout=60)
    assert "warning: listening on 192.0.2.1" in err and "TLS" in err
    bad = subprocess.run([sys.executable, "-m", "provenance.cli", "serve", "--max-upload", "lots"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "bad size 'lots'" in bad.stderr


@pytest.mark.slow
def test_an_audit_through_the_api(sqlite_settings, start_desk, media_server):
    from datetime import UTC, datetime

    from tests.conftest_http import rss_feed

    (media_server.root / "serve-audit.xml").write_text(rss_feed(
        "posts", media_server.base, [("one", media_server.url("bikes.mp4"), datetime(2021, 1, 1, tzinfo=UTC))]))
    desk = start_desk(sqlite_settings, allow_private_urls=True)
    with desk.client() as c:
        assert c.post("/api/audits", json={}).status_code == 400
        r = c.post("/api/audits", json={"source": media_server.url("serve-audit.xml"), "limit": 5})
        assert r.status_code == 202 and r.json()["status_url"].startswith("/api/jobs/")
        job = desk.wait(c, r.json()["status_url"])
        assert job["status"] == "done", job
        audits = c.get("/api/audits").json()
        assert [a["audit_id"] for a in audits["audits"]] == [job["audit_id"]] and audits["running"] == []
        assert audits["audits"][0]["counts"]["posts"] == 1
        report = c.get(f"/api/audits/{job['audit_id']}/report?format=json")
        assert report.status_code == 200 and report.json()["audit_id"] == job["audit_id"]
        assert c.get(f"/api/audits/{job['audit_id']}/report").headers["content-security-policy"] == REPORT_CSP


def test_a_full_queue_is_503_and_keeps_no_upload(sqlite_settings, start_desk, monkeypatch):
    from provenance.serve import jobs

    desk = start_desk(sqlite_settings)
    monkeypatch.setattr(jobs, "MAX_QUEUED_UPLOADS", 0)
    with desk.client() as c:
        r = c.post("/api/checks", files={"file": ("b.mp4", (SAMPLES / "bikes.mp4").read_bytes())})
        assert r.status_code == 503 and "uploads waiting" in r.json()["error"]
        assert c.get("/api/checks").json()["checks"] == []
    assert desk.upload_dir.is_dir() and not list(desk.upload_dir.iterdir())
