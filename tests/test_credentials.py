"""C2PA content credentials: clips signed at test time with a certificate chain made at test time
(OpenSSL), read by the real c2pa-rs reader through a check, an ingest and the reports."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import func, select

from provenance.credentials import INVALID, TRUSTED, TRUST_ANCHORS_ENV, VALID, read_credentials
from provenance.db import connect, session_scope
from provenance.db import models as orm
from provenance.reporting import jsonout
from tests.conftest import SAMPLES

HOSTILE = '<script>alert("c2pa")</script><img src=x onerror=alert(1)>'
_EXTENSIONS = """\
[req]
distinguished_name=dn
[dn]
[v3ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[v3leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=emailProtection
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""


class Signing:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        conf = folder / "ext.cnf"
        conf.write_text(_EXTENSIONS)

        def ssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

        ssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
        ssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Desk Test Root/O=provenance tests", "-days", "2",
            "-out", "ca.pem", "-extensions", "v3ca", "-config", str(conf))
        ssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key")
        ssl("pkcs8", "-topk8", "-nocrypt", "-in", "leaf.key", "-out", "leaf.pk8")
        ssl("req", "-new", "-key", "leaf.key", "-subj", "/CN=Test Camera/O=provenance tests", "-out", "leaf.csr")
        ssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", str(conf), "-extensions", "v3leaf", "-out", "leaf.pem")
        self.ca = folder / "ca.pem"
        self.chain = (folder / "leaf.pem").read_bytes() + self.ca.read_bytes()
        self.key = (folder / "leaf.pk8").read_bytes()

    def sign(self, source: Path, name: str, *, created: str = "2020-01-02T03:04:05Z", title: str = "clip.mp4",
             generator: str = "test-camera") -> Path:
        import c2pa

        manifest = {"claim_generator_info": [{"name": generator, "version": "1.0"}], "title": title,
                    "format": "video/mp4",
                    "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                        {"action": "c2pa.created", "when": created,
                         "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}}]}
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, self.chain, self.key, None))
        out = self.folder / name
        c2pa.Builder(json.dumps(manifest)).sign_file(str(source), str(out), signer)
        return out


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> Signing:
    return Signing(tmp_path_factory.mktemp("c2pa"))


def _one_byte_changed(path: Path, out: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[data.find(b"mdat") + 5000] ^= 0xFF  # inside the picture data: the file still decodes
    out.write_bytes(bytes(data))
    return out


# --- reading ------------------------------------------------------------------------------------


def test_a_signed_clip_reads_valid_with_its_signer_and_actions(signing) -> None:
    reading = read_credentials(signing.sign(SAMPLES / "bikes.mp4", "signed.mp4"))
    c = reading.credentials
    assert c is not None and c.state == VALID and not c.failures
    assert (c.signer, c.issuer, c.claim_generator) == ("Test Camera", "provenance tests", "test-camera 1.0")
    assert [a.action for a in c.actions] == ["c2pa.created"]
    assert c.created_at == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert reading.reader.startswith("c2pa-rs ")


def test_an_unsigned_clip_has_none(signing) -> None:
    assert read_credentials(SAMPLES / "bikes.mp4").credentials is None


def test_one_changed_byte_makes_the_manifest_invalid(signing, tmp_path) -> None:
    changed = _one_byte_changed(signing.sign(SAMPLES / "bikes.mp4", "signed2.mp4"), tmp_path / "changed.mp4")
    c = read_credentials(changed).credentials
    assert c is not None and c.state == INVALID
    assert any("bmffHash.mismatch" in f for f in c.failures)


def test_a_signer_under_a_given_trust_anchor_is_trusted(signing, monkeypatch) -> None:
    signed = signing.sign(SAMPLES / "bikes.mp4", "signed3.mp4")
    monkeypatch.setenv(TRUST_ANCHORS_ENV, str(signing.ca))
    assert read_credentials(signed).credentials.state == TRUSTED


# --- through a check, the reports and the library --------------------------------------------------


def test_check_flags_credentials_created_long_before_the_post(run, settings, signing, tmp_path) -> None:
    signed = signing.sign(SAMPLES / "bikes.mp4", "hostile.mp4", title=HOSTILE, generator=HOSTILE)
    result = run("check", str(signed), "--posted-at", "2024-05-01T00:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    cred = data["content_credentials"]
    assert cred["present"] and cred["state"] == "valid" and cred["signer"] == "Test Camera"
    assert cred["actions"][0]["when"] == "2020-01-02T03:04:05Z"
    assert [s["kind"] for s in data["signals"]] == ["c2pa_created_before_post"]

    report = tmp_path / "r.json"
    assert run("report", str(data["check_id"]), "--format", "json", "-o", str(report)).exit_code == 0
    doc = json.loads(report.read_text())
    jsonschema.Draft202012Validator(jsonout.schema(), format_checker=jsonschema.FormatChecker()).validate(doc)
    assert doc["content_credentials"]["title"] == HOSTILE  # JSON keeps the text; escaping is the reader's job
    assert "c2pa_created_before_post" in [f["kind"] for f in doc["red_flags"]]

    page = tmp_path / "r.html"
    assert run("report", str(data["check_id"]), "--format", "html", "-o", str(page)).exit_code == 0
    html = page.read_text()
    assert "Content credentials (C2PA)" in html and "Test Camera" in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert" in html

    md = tmp_path / "r.md"
    assert run("report", str(data["check_id"]), "--format", "md", "-o", str(md)).exit_code == 0
    assert "Validation: **valid**" in md.read_text() and "<script>" not in md.read_text()


def test_a_changed_signed_clip_is_a_red_flag_and_an_unsigned_one_says_none(run, settings, signing, tmp_path) -> None:
    changed = _one_byte_changed(signing.sign(SAMPLES / "bikes.mp4", "signed4.mp4"), tmp_path / "changed.mp4")
    data = json.loads(run("check", str(changed), "--json").output)
    assert data["content_credentials"]["state"] == "invalid"
    assert "c2pa_invalid" in [s["kind"] for s in data["signals"]]
    md = tmp_path / "r.md"
    assert run("report", str(data["check_id"]), "--format", "md", "-o", str(md)).exit_code == 0
    assert "present but not valid" in md.read_text()

    plain = json.loads(run("check", str(SAMPLES / "carphone_pristine.mp4"), "--json").output)
    assert plain["content_credentials"]["present"] is False and plain["signals"] == []


def test_the_reading_is_kept_once_per_clip_and_travels_with_export(run, settings, signing, tmp_path) -> None:
    signed = signing.sign(SAMPLES / "bikes.mp4", "signed5.mp4")
    assert run("ingest", str(signed), "--quiet").exit_code == 0
    assert run("check", str(signed), "--json").exit_code == 0  # the same clip again: its first reading stays
    engine = connect(settings.db_url)
    with session_scope(engine) as session:
        rows = session.scalars(select(orm.ContentCredential)).all()
        assert [(r.state, r.summary["signer"]) for r in rows] == [("valid", "Test Camera")]
        assert rows[0].manifest["active_manifest"] in rows[0].manifest["manifests"]
    engine.dispose()
    dump = tmp_path / "lib.jsonl.gz"
    assert run("export", str(dump)).exit_code == 0
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    assert run("import", str(dump), "--db", target).exit_code == 0
    copy = connect(target)
    with session_scope(copy) as session:
        assert session.scalar(select(func.count()).select_from(orm.ContentCredential)) == 1
    copy.dispose()


def test_bundle_carries_the_manifest(run, settings, signing, tmp_path) -> None:
    signed = signing.sign(SAMPLES / "bikes.mp4", "signed6.mp4")
    data = json.loads(run("check", str(signed), "--json").output)
    out = tmp_path / "case"
    assert run("bundle", str(data["check_id"]), "-o", str(out)).exit_code == 0
    manifest = json.loads((out / "data" / "content-credentials.json").read_text())
    assert manifest["active_manifest"] in manifest["manifests"]
    shutil.rmtree(out)


def test_created_times_far_from_the_post_are_flagged_both_ways(signing) -> None:
    from datetime import timedelta

    from provenance.credentials import CREATED_BEFORE_POST_MAX_GAP, credential_signals

    c = read_credentials(signing.sign(SAMPLES / "bikes.mp4", "signed7.mp4", created="2024-05-01T12:00:00Z")).credentials
    created = c.created_at
    assert credential_signals(c, created + CREATED_BEFORE_POST_MAX_GAP / 2) == ()  # posted the same day
    (before,) = credential_signals(c, created + timedelta(days=3))
    assert before.kind == "c2pa_created_before_post" and before.data["gap_s"] == 3 * 86400
    (after,) = credential_signals(c, created - timedelta(days=2))
    assert after.kind == "c2pa_created_after_post" and "signed again" in after.detail
    assert credential_signals(c, None) == () and credential_signals(None, created) == ()
