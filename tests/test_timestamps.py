"""Trusted timestamps (RFC 3161) against a real TSA (OpenSSL's `openssl ts -reply` on 127.0.0.1): stamping
a check's clip and report, and `provenance verify` catching a changed byte, a swapped token, another TSA."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select, update

from provenance import timestamps
from provenance.db import connect, session_scope
from provenance.db import models as orm
from provenance.fetch import sha256_file
from tests.conftest import SAMPLES


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# --- the protocol ------------------------------------------------------------------------------


def test_a_token_verifies_for_its_bytes_only_and_only_under_its_tsa(tsa, other_tsa) -> None:
    token = timestamps.stamp(_sha(b"footage"), tsa.url)
    assert token.tsa_name == "CN=Desk Test TSA" and token.stamped_at.tzinfo is not None
    assert timestamps.verify(token.response, _sha(b"footage"), tsa.ca).ok
    changed = timestamps.verify(token.response, _sha(b"footagf"), tsa.ca)
    assert not changed.ok and "other bytes" in changed.reason
    elsewhere = timestamps.stamp(_sha(b"footage"), other_tsa.url)
    foreign = timestamps.verify(elsewhere.response, _sha(b"footage"), tsa.ca)
    assert not foreign.ok and "chains to" in foreign.reason
    assert not timestamps.verify(token.response, _sha(b"footage"), None).ok  # a test CA is in no system bundle


def test_openssl_verifies_the_token_over_the_file_itself(tsa, tmp_path) -> None:
    """The token is over the file's own SHA-256: anyone can check it without this tool."""
    clip = tmp_path / "clip.mp4"
    shutil.copyfile(SAMPLES / "carphone_pristine.mp4", clip)
    token = timestamps.stamp(sha256_file(clip), tsa.url)
    (tmp_path / "clip.tsr").write_bytes(token.response)
    result = subprocess.run(["openssl", "ts", "-verify", "-data", str(clip), "-in", str(tmp_path / "clip.tsr"),
                             "-CAfile", str(tsa.ca)], capture_output=True, text=True)
    assert result.returncode == 0 and "Verification: OK" in result.stdout


def test_a_tsa_login_is_sent_but_never_kept(tsa) -> None:
    with_login = tsa.url.replace("http://", "http://desk:s3cret@")
    token = timestamps.stamp(_sha(b"x"), with_login)
    assert token.tsa_url == tsa.url and "s3cret" not in repr(token)


# --- through the command line ---------------------------------------------------------------------


def _checked(run, tsa, tmp_path) -> tuple[Path, Path]:
    report = tmp_path / "report.html"
    result = run("check", str(SAMPLES / "bikes.mp4"), "--tsa", tsa.url, "--report", str(report), "--quiet")
    assert result.exit_code == 0, result.output
    assert f"{report}.tsr" in result.output
    return report, Path(f"{report}.tsr")


def test_check_with_a_tsa_stamps_clip_and_report_and_verify_passes(run, settings, tsa, tmp_path) -> None:
    report, token_file = _checked(run, tsa, tmp_path)
    assert len(tsa.requests) == 2  # the clip, then the report
    assert timestamps.verify(token_file.read_bytes(), sha256_file(report), tsa.ca).ok
    result = run("verify", "1", "--tsa-ca", str(tsa.ca))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [["ok", "clip"], ["ok", "report"]]
    assert all("timestamped" in line and "Desk Test TSA" in line for line in lines)


def test_verify_finds_one_changed_byte_in_the_evidence_file(run, settings, tsa, tmp_path) -> None:
    _checked(run, tsa, tmp_path)
    (evidence,) = [p for p in settings.store_dir.rglob("*.mp4")]
    data = bytearray(evidence.read_bytes())
    data[len(data) // 2] ^= 0x01
    evidence.write_bytes(bytes(data))
    result = run("verify", "1", "--tsa-ca", str(tsa.ca))
    assert result.exit_code == 6
    assert "FAILED  clip" in result.output and "the file changed" in result.output
    assert "ok      report" in result.output


def test_verify_finds_a_swapped_token_and_another_tsa(run, settings, tsa, other_tsa, tmp_path) -> None:
    report, _ = _checked(run, tsa, tmp_path)
    engine = connect(settings.db_url)
    foreign = timestamps.stamp(sha256_file(report), other_tsa.url).response
    with session_scope(engine) as session:
        clip_token, report_token = session.scalars(select(orm.Timestamp.response).order_by(orm.Timestamp.id)).all()
        # The report's row now holds the clip's token, and the clip's row a token from another TSA.
        session.execute(update(orm.Timestamp).where(orm.Timestamp.subject == "report").values(response=clip_token))
        session.execute(update(orm.Timestamp).where(orm.Timestamp.subject == "clip").values(response=foreign))
    result = run("verify", "1", "--tsa-ca", str(tsa.ca))
    assert result.exit_code == 6
    out = result.output
    assert "FAILED  report" in out and "other bytes" in out
    assert "FAILED  clip" in out and "chains to" in out


def test_a_tsa_that_fails_stops_the_check_and_records_nothing(run, settings, row_counts, tmp_path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/tsr"
    result = run("check", str(SAMPLES / "bikes.mp4"), "--tsa", dead, "--quiet")
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "TSA" in lines[0] and dead in lines[0]
    assert not any(row_counts().values())
    assert list(settings.store_dir.rglob("*.mp4")) == []


def test_ingest_stamps_and_a_later_check_verifies_the_clip(run, settings, tsa) -> None:
    assert run("ingest", str(SAMPLES / "carphone_pristine.mp4"), "--tsa", tsa.url, "--quiet").exit_code == 0
    assert run("check", str(SAMPLES / "carphone_pristine.mp4"), "--quiet").exit_code == 0  # no TSA this time
    result = run("verify", "1", "--tsa-ca", str(tsa.ca))
    assert result.exit_code == 0, result.output
    assert "ok      clip" in result.output and "timestamped" in result.output


def test_verify_without_stamps_checks_the_bytes_and_says_not_timestamped(run, settings) -> None:
    assert run("check", str(SAMPLES / "carphone_pristine.mp4"), "--quiet").exit_code == 0
    result = run("verify", "1")
    assert result.exit_code == 0 and "not timestamped" in result.output


def test_verify_of_an_unknown_check_is_one_line_exit_2(run, settings) -> None:
    result = run("verify", "7")
    assert result.exit_code == 2 and result.output.strip().startswith("error: no check with id 7")


def test_the_python_api_stamps_with_its_tsa(settings, tsa) -> None:
    from provenance import Library

    with Library(settings.db_url, store=settings.store_dir, tsa_url=tsa.url) as library:
        result = library.ingest(str(SAMPLES / "carphone_pristine.mp4"))
    assert result.new_clip and len(tsa.requests) == 1
    engine = connect(settings.db_url)
    with session_scope(engine) as session:
        (row,) = session.scalars(select(orm.Timestamp)).all()
        assert row.sha256 == result.clip.media.sha256 and row.subject == "clip"


# --- audits, folders, and the TSA's login ------------------------------------------------------------


def test_an_audit_with_a_tsa_stamps_every_checked_post(audit_feed, settings, tsa) -> None:
    from dataclasses import replace

    from provenance import audit as audit_lib
    from provenance.audit import AuditOptions

    result = audit_lib.audit(audit_feed.url, settings=replace(settings, tsa_url=tsa.url),
                             options=AuditOptions(workers=2, sleep_s=0.0, limit=4))
    checked = [i.check_id for i in result.items if i.check_id is not None]
    assert checked and len(tsa.requests) >= len(checked)
    engine = connect(settings.db_url)
    with session_scope(engine) as session:
        stamped = set(session.scalars(select(orm.Timestamp.check_id).where(orm.Timestamp.subject == "clip")))
    engine.dispose()
    assert stamped == set(checked)
    from provenance.attest import verify_check

    for check_id in checked:
        assert all(v.ok for v in verify_check(check_id, settings=settings, roots_file=tsa.ca))


def test_a_folder_ingest_with_a_tsa_stamps_each_file(run, settings, tsa, tmp_path) -> None:
    folder = tmp_path / "archive"
    folder.mkdir()
    for name in ("bikes.mp4", "carphone_pristine.mp4"):
        shutil.copyfile(SAMPLES / name, folder / name)
    result = run("ingest", str(folder), "--tsa", tsa.url, "--quiet")
    assert result.exit_code == 0, result.output
    engine = connect(settings.db_url)
    with session_scope(engine) as session:
        rows = session.execute(select(orm.Timestamp.sha256, orm.Timestamp.response)).all()
    engine.dispose()
    assert sorted(sha for sha, _ in rows) == sorted(sha256_file(folder / n) for n in ("bikes.mp4", "carphone_pristine.mp4"))
    assert all(timestamps.verify(token, sha, tsa.ca).ok for sha, token in rows)


def test_a_tsa_login_never_reaches_the_library_an_export_or_an_error(run, settings, tsa, tmp_path) -> None:
    import socket

    secret = "s3cret-pw"
    with_login = tsa.url.replace("http://", f"http://desk:{secret}@")
    assert run("check", str(SAMPLES / "carphone_pristine.mp4"), "--tsa", with_login, "--quiet").exit_code == 0
    engine = connect(settings.db_url)
    with session_scope(engine) as session:
        assert session.scalars(select(orm.Timestamp.tsa_url)).all() == [tsa.url]
    engine.dispose()
    dump = tmp_path / "lib.jsonl.gz"
    assert run("export", str(dump)).exit_code == 0
    import gzip

    assert secret not in gzip.decompress(dump.read_bytes()).decode("utf-8", "replace")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://desk:{secret}@127.0.0.1:{s.getsockname()[1]}/tsr"
    failed = run("check", str(SAMPLES / "bikes.mp4"), "--tsa", dead, "--quiet")
    assert failed.exit_code == 3 and secret not in failed.output
