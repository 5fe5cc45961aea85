"""Case bundles (BagIt): made from a recorded check with a real TSA (openssl ts on 127.0.0.1), then
verified by `provenance verify BUNDLE` and by bagit itself; a changed byte anywhere is found."""

from __future__ import annotations

import zipfile
from pathlib import Path

import bagit
import pytest

from tests.conftest import SAMPLES


@pytest.fixture
def checked(run, tsa, tmp_path) -> Path:
    report = tmp_path / "report.html"
    result = run("check", str(SAMPLES / "bikes.mp4"), "--tsa", tsa.url, "--report", str(report), "--quiet")
    assert result.exit_code == 0, result.output
    return report


def test_a_zip_bundle_holds_the_case_and_verifies(run, settings, tsa, checked, tmp_path) -> None:
    out = tmp_path / "case-1.zip"
    result = run("bundle", "1", "-o", str(out), "--tsa", tsa.url)
    assert result.exit_code == 0, result.output
    assert "3 timestamp tokens" in result.output  # clip, stamped report, manifest
    names = zipfile.ZipFile(out).namelist()
    assert {"case-1/bagit.txt", "case-1/manifest-sha256.txt", "case-1/manifest-sha256.txt.tsr",
            "case-1/data/reports/report.html", "case-1/data/reports/report.json", "case-1/data/reports/report.md",
            "case-1/data/reports/stamped/report.html",
            "case-1/data/timestamps/reports/stamped/report.html.1.tsr"} <= set(names)
    (clip,) = [n for n in names if n.startswith("case-1/data/clip/")]
    assert f"case-1/data/timestamps/clip/{Path(clip).name}.1.tsr" in names
    result = run("verify", str(out), "--tsa-ca", str(tsa.ca))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("ok") for line in lines)
    assert sum(" UTC by CN=Desk Test TSA" in line for line in lines) == 3  # clip, stamped report, manifest


def test_a_changed_byte_in_a_folder_bundle_is_found(run, settings, tsa, checked, tmp_path) -> None:
    out = tmp_path / "case"
    assert run("bundle", "1", "-o", str(out), "--tsa", tsa.url).exit_code == 0
    bagit.Bag(str(out)).validate()  # any BagIt validator accepts it
    md = out / "data" / "reports" / "report.md"
    md.write_bytes(md.read_bytes().replace(b"check", b"chock", 1))
    result = run("verify", str(out), "--tsa-ca", str(tsa.ca))
    assert result.exit_code == 6
    assert "FAILED  bundle  data/reports/report.md: the file changed" in result.output


def test_a_rewritten_manifest_does_not_hide_a_change(run, settings, tsa, checked, tmp_path) -> None:
    """Someone who changes a file and rewrites the manifests to match is caught by the manifest's token."""
    out = tmp_path / "case"
    assert run("bundle", "1", "-o", str(out), "--tsa", tsa.url).exit_code == 0
    md = out / "data" / "reports" / "report.md"
    md.write_text(md.read_text(encoding="utf-8") + "\nforged line\n", encoding="utf-8")
    bag = bagit.Bag(str(out))
    bag.save(manifests=True)
    bag.validate()  # the bag is consistent again
    result = run("verify", str(out), "--tsa-ca", str(tsa.ca))
    assert result.exit_code == 6
    assert "FAILED  bundle  manifest-sha256.txt" in result.output


def test_bundle_refuses_an_existing_path_and_an_unknown_check(run, settings, checked, tmp_path) -> None:
    result = run("bundle", "1", "-o", str(checked))
    assert result.exit_code == 2 and "already exists" in result.output
    result = run("bundle", "9", "-o", str(tmp_path / "x.zip"))
    assert result.exit_code == 2 and "no check with id 9" in result.output
    assert not (tmp_path / "x.zip").exists()


def test_verify_of_a_file_that_is_not_a_bundle_is_one_line_exit_2(run, settings, tmp_path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    result = run("verify", str(junk))
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
