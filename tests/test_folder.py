"""`provenance ingest DIR`: every video below a folder, in parallel, known files skipped by SHA-256."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from provenance import folder, pipeline
from provenance.cli import cli
from provenance.errors import InputError
from tests.conftest import SAMPLES


@pytest.fixture
def archive(tmp_path, derived):
    """A folder tree: three real clips in two subfolders, a byte-for-byte copy of one, a text file,
    a file with a video extension that is no video, and an empty .mov."""
    root = tmp_path / "archive"
    (root / "2019" / "may").mkdir(parents=True)
    (root / "2024").mkdir()
    shutil.copy(SAMPLES / "bikes.mp4", root / "2019" / "may" / "bikes.mp4")
    shutil.copy(SAMPLES / "carphone_pristine.mp4", root / "2019" / "carphone.MP4")
    shutil.copy(derived("bikes_mirrored.mp4"), root / "2024" / "mirrored.mp4")
    shutil.copy(SAMPLES / "bikes.mp4", root / "2024" / "bikes copy.mp4")  # the duplicate
    (root / "2024" / "notes.txt").write_text("interview notes, not footage\n")
    (root / "2024" / "broken.mkv").write_bytes(b"this is not a matroska file" * 100)
    (root / "2024" / "empty.mov").write_bytes(b"")
    return root


def test_a_folder_is_ingested_in_parallel_and_a_rerun_adds_nothing(settings, archive, row_counts):
    seen = []
    result = folder.ingest_folder(archive, settings=settings, workers=2, progress=seen.append)
    by_name = {f.path.name: f for f in result.files}
    assert {n for n, f in by_name.items() if f.outcome == "ingested"} == {"bikes.mp4", "carphone.MP4",
                                                                          "mirrored.mp4"}
    assert by_name["bikes copy.mp4"].outcome == "known"
    assert "same file as" in by_name["bikes copy.mp4"].reason and "bikes.mp4" in by_name["bikes copy.mp4"].reason
    assert by_name["notes.txt"].outcome == "skipped" and ".txt" in by_name["notes.txt"].reason
    assert by_name["broken.mkv"].outcome == "failed" and by_name["broken.mkv"].reason
    assert by_name["empty.mov"].outcome == "failed" and "empty" in by_name["empty.mov"].reason
    assert result.footage_s == pytest.approx(10.0 + 4.0 + 10.0, abs=0.5)
    # Progress after every file, ending at all of them.
    assert [p.done for p in seen] == list(range(1, 8)) and seen[-1].total == 7
    assert (seen[-1].ingested, seen[-1].known, seen[-1].skipped, seen[-1].failed) == (3, 1, 1, 2)
    counts = row_counts()
    assert counts["clips"] == 3 and counts["sightings"] == 3

    # The library finds what was ingested.
    check = pipeline.check(str(SAMPLES / "carphone_distorted.mp4"), settings=settings, record=False)
    assert [m.sha256 for m in check.matches] == [by_name["carphone.MP4"].sha256]

    again = folder.ingest_folder(archive, settings=settings, workers=2)
    assert again.of("ingested") == ()
    assert {f.path.name for f in again.of("known")} == {"bikes.mp4", "carphone.MP4", "mirrored.mp4",
                                                          "bikes copy.mp4"}
    assert all(f.reason == "already in the library" for f in again.of("known"))
    assert row_counts() == counts


def test_one_worker_gives_the_same_library_as_two(settings, backend, new_database, archive, row_counts, tmp_path):
    from provenance.settings import Settings

    two = folder.ingest_folder(archive, settings=settings, workers=2)
    other = Settings(db_url=new_database(backend), store_dir=tmp_path / "ev1")
    one = folder.ingest_folder(archive, settings=other, workers=1)
    assert [(f.path, f.outcome, f.sha256) for f in one.files] == [(f.path, f.outcome, f.sha256) for f in two.files]


def test_cli_ingests_a_folder_and_prints_a_summary(settings, archive, monkeypatch):
    monkeypatch.setenv("PROVENANCE_DB", settings.db_url)
    monkeypatch.setenv("PROVENANCE_STORE", str(settings.store_dir))
    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", str(archive), "--workers", "2"], catch_exceptions=False)
    assert result.exit_code == 0
    first = result.output.splitlines()[0]
    assert first.startswith("3 ingested") and "1 already known, 1 skipped (not video), 2 failed" in first
    assert "notes.txt" in result.output and "broken.mkv" in result.output
    again = runner.invoke(cli, ["ingest", str(archive), "--quiet"], catch_exceptions=False)
    assert again.exit_code == 0 and again.output.startswith("0 ingested")
    assert "notes.txt" not in again.output and "broken.mkv" in again.output  # --quiet: failures only
    bad = runner.invoke(cli, ["ingest", str(archive), "--url", "https://example.org/x"])
    assert bad.exit_code == InputError.exit_code and "folder" in bad.output


def test_a_path_that_is_not_a_folder_is_bad_input(settings, tmp_path):
    with pytest.raises(InputError):
        folder.ingest_folder(tmp_path / "missing", settings=settings)
