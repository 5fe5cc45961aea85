"""The Python API, through its public names only: `from provenance import Library`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import provenance
from provenance import InputError, Library
from provenance.cli import cli
from tests.conftest import SAMPLES

REPO = Path(__file__).resolve().parent.parent
ORIGINAL = "https://example.org/original-post"


def test_library_is_public():
    assert "Library" in provenance.__all__ and provenance.Library is Library


def test_check_and_ingest_return_what_the_command_line_prints(settings, derived):
    with Library(settings.db_url, store=settings.store_dir) as library:
        added = library.ingest(str(SAMPLES / "bikes.mp4"), post_url=ORIGINAL, posted_at="2019-05-01T10:00:00Z")
        assert added.new_clip and added.to_dict()["post"]["url"] == ORIGINAL
        result = library.check(str(derived("bikes_mirrored.mp4")), post_url="https://example.org/repost",
                               posted_at="2024-10-19T08:00:00Z", record=False)
    assert result.verdict == "reused" and result.first_seen.url == ORIGINAL
    assert [m.sha256 for m in result.matches] == [added.clip.media.sha256]
    assert "mirrored" in result.matches[0].transforms

    printed = CliRunner().invoke(cli, ["check", str(derived("bikes_mirrored.mp4")), "--json", "--no-record",
                                       "--url", "https://example.org/repost", "--posted-at", "2024-10-19T08:00:00Z",
                                       "--db", settings.db_url], env={"PROVENANCE_STORE": str(settings.store_dir)})
    assert printed.exit_code == 0, printed.output
    ours, theirs = json.loads(json.dumps(result.to_dict())), json.loads(printed.output)
    for varies in ("checked_at", "check_id"):
        ours.pop(varies), theirs.pop(varies)
    for data in (ours, theirs):  # when the clip was read for credentials varies too
        assert data["content_credentials"].pop("read_at")
    assert ours == theirs  # the JSON contract, field for field


def test_a_missing_file_is_refused_before_the_library_is_opened(tmp_path):
    db = tmp_path / "library.db"
    with Library(f"sqlite:///{db}", store=tmp_path / "evidence") as library, \
            pytest.raises(InputError, match="no such file") as raised:
        library.check(str(tmp_path / "missing.mp4"))
    assert raised.value.exit_code == 2 and not db.exists()


def test_a_recorded_check_has_a_report(settings):
    with Library(settings.db_url, store=settings.store_dir) as library:
        library.ingest(str(SAMPLES / "bikes.mp4"), post_url=ORIGINAL, posted_at="2019-05-01T10:00:00Z")
        result = library.check(str(SAMPLES / "bikes.mp4"), post_url="https://example.org/repost")
        assert result.check_id is not None
        text = library.report(result.check_id, fmt="md")
        assert ORIGINAL in text
        assert library.index_status().state == "current"


def test_the_readme_example_runs(tmp_path):
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Python API"):]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = dict(os.environ, PROVENANCE_HOME=str(tmp_path))
    env.pop("PROVENANCE_DB", None)
    out = subprocess.run([sys.executable, "-c", example], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[0] == "reused" and ORIGINAL in out.stdout


def test_one_library_opens_its_database_once_for_many_calls(settings, monkeypatch):
    """A long-running caller (the desk) runs many checks on one Library: one engine, not one per call."""
    from provenance import pipeline

    opened = []
    real_open = pipeline.open_library
    monkeypatch.setattr(pipeline, "open_library", lambda s: opened.append(s) or real_open(s))
    with Library(settings.db_url, store=settings.store_dir) as library:
        library.ingest(str(SAMPLES / "bikes.mp4"), post_url=ORIGINAL, posted_at="2019-05-01T10:00:00Z")
        for _ in range(2):
            assert library.check(str(SAMPLES / "bikes.mp4"), record=False).verdict == "reused"
        assert len(opened) == 1 and library.engine.pool.checkedout() == 0
