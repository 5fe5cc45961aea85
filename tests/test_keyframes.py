"""Shots and keyframes for reverse image search: cuts found on the frames the hash step decodes,
keyframes written from the evidence file, shown in the reports with the ways to search them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import cv2
import jsonschema
import pytest

from provenance.frames import fingerprint
from provenance.keyframes import search_links
from provenance.reporting import jsonout
from provenance.reporting.build import platform_thumbnail
from provenance.stored import StoredSighting
from tests.conftest import SAMPLES, ffmpeg

# carphone_pristine is 4.22 s long, so the cut to the film is there.
CUT_S = 4.22


@pytest.fixture(scope="module")
def two_shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real cut: a man in a car, then the animated film, each scaled to 640x360."""
    out = tmp_path_factory.mktemp("shots") / "two_shots.mp4"
    ffmpeg("-i", str(SAMPLES / "carphone_pristine.mp4"), "-i", str(SAMPLES / "bigbuckbunny.mp4"), "-filter_complex",
           "[0:v]scale=640:360,setsar=1,fps=25[a];[1:v]scale=640:360,setsar=1,fps=25[b];[a][b]concat=n=2:v=1[out]",
           "-map", "[out]", "-c:v", "libx264", "-crf", "23", str(out))
    return out


def test_a_cut_between_two_shots_is_found_and_each_has_a_keyframe_inside_it(two_shots) -> None:
    shots = fingerprint(two_shots).shots
    assert len(shots) == 2
    first, second = shots
    assert first.start_s == 0.0 and abs(first.end_s - CUT_S) <= 0.26 and first.end_s == second.start_s
    assert first.start_s <= first.keyframe_s < first.end_s and second.start_s <= second.keyframe_s < second.end_s


@pytest.mark.parametrize("one_shot", ["carphone_pristine.mp4", "bigbuckbunny.mp4"])
def test_one_continuous_shot_is_one_shot(one_shot) -> None:
    assert len(fingerprint(SAMPLES / one_shot).shots) == 1


def test_keyframes_are_written_and_shown_in_the_reports(run, settings, two_shots, tmp_path) -> None:
    data = json.loads(run("check", str(two_shots), "--json").output)
    check_id = str(data["check_id"])
    out = tmp_path / "kf"
    result = run("keyframes", check_id, "-o", str(out))
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.jpg"))
    assert [f.name[:12] for f in files] == ["keyframe-01-", "keyframe-02-"]
    images = [cv2.imread(str(f)) for f in files]
    assert all(i is not None and i.shape[:2] == (360, 640) for i in images)
    # The two keyframes are the two shots: a car interior and the film look nothing alike.
    hists = [cv2.calcHist([i], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3) for i in images]
    assert cv2.compareHist(*[cv2.normalize(h, h) for h in hists], cv2.HISTCMP_BHATTACHARYYA) > 0.35
    again = run("keyframes", check_id, "-o", str(out))
    assert again.exit_code == 2 and "already exists" in again.output

    report = tmp_path / "r.json"
    assert run("report", check_id, "--format", "json", "-o", str(report)).exit_code == 0
    doc = json.loads(report.read_text())
    jsonschema.Draft202012Validator(jsonout.schema(), format_checker=jsonschema.FormatChecker()).validate(doc)
    assert len(doc["keyframes"]) == 2 and doc["thumbnail_searches"] == [] and doc["platform_thumbnail"] is None
    page = tmp_path / "r.html"
    assert run("report", check_id, "--format", "html", "-o", str(page)).exit_code == 0
    html = page.read_text()
    assert "Keyframes for reverse image search" in html and html.count('alt="keyframe of shot') == 2
    assert "https://tineye.com/" in html


def test_keyframes_of_a_missing_check_fail_with_one_line(run, settings, tmp_path) -> None:
    result = run("keyframes", "999", "-o", str(tmp_path / "kf"))
    assert result.exit_code == 2 and "no check with id 999" in result.output
    assert not (tmp_path / "kf").exists()


def test_search_links_take_plain_web_urls_only_and_encode_them() -> None:
    links = dict(search_links("https://pbs.example/media/a.jpg?name=small&x=1"))
    assert set(links) == {"Google Lens", "Yandex Images", "Bing Visual Search", "TinEye"}
    assert links["TinEye"] == "https://tineye.com/search?url=https%3A%2F%2Fpbs.example%2Fmedia%2Fa.jpg%3Fname%3Dsmall%26x%3D1"
    assert search_links("javascript:alert(1)") == () and search_links(None) == ()


def test_the_platform_thumbnail_comes_from_the_post_info_and_only_as_a_web_url() -> None:
    def sighting(thumbnail: str) -> StoredSighting:
        return StoredSighting(sighting_id=1, clip_sha256="0" * 64, source="check", url="https://x.example/p/1",
                              platform="x", post_id="1", uploader=None, uploader_id=None, posted_at=None,
                              observed_at=datetime(2026, 1, 1, tzinfo=UTC), title=None, description=None,
                              post_created_at=None, media_created_at=None, info={"thumbnail": thumbnail})

    assert platform_thumbnail(sighting("https://pbs.example/t.jpg")) == "https://pbs.example/t.jpg"
    assert platform_thumbnail(sighting("javascript:alert(1)")) is None
    assert platform_thumbnail(None) is None
