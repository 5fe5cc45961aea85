"""Picture-in-picture from straight borders (provenance.insets): an inset with only two hard borders,
of footage with too few corners for keypoints, is found and placed as a rectangle; other footage in the
same place is not matched. Real clips made with ffmpeg (tests/conftest.py)."""

from __future__ import annotations

import json

from provenance import insets, localfeat, match, pipeline
from provenance.frames import small_grey
from tests.test_match import ORIGINAL_POST, ORIGINAL_TIME, check

# bikes_few_corners_inset_in_bbb.mp4: 640x272 at x 560, y 60 of a 1280x720 frame.
INSET = (560, 60, 640, 272)
# bikes_few_corners_inset_over_still.mp4: the same at x 32, y 416.
INSET_OVER_STILL = (32, 416, 640, 272)
# bikes_few_corners_inset_split_borders.mp4: the same at x 608, y 32.
INSET_SPLIT_BORDERS = (608, 32, 640, 272)
FRAME = (1280, 720)
# The rectangle comes from the two hard borders' runs, whose far ends fade over 24 px: within 16 px.
MAX_ERROR_PX = 16


def _ingest_few_corners(settings, derived) -> str:
    result = pipeline.ingest(str(derived("bikes_few_corners.mp4")), settings=settings, post_url=ORIGINAL_POST,
                             posted_at=ORIGINAL_TIME)
    return result.clip.media.sha256


def _assert_placed_inside(result, original: str, inset: tuple[int, int, int, int]) -> None:
    """The check found `original` as a picture-in-picture at `inset` (x, y, w, h of FRAME), in time."""
    assert result.verdict == "reused"
    top = result.matches[0]
    assert top.sha256 == original and top.method == "region" and "picture_in_picture" in top.transforms
    assert top.region is not None and top.region.inside == "query"
    found = (top.region.x * FRAME[0], top.region.y * FRAME[1], top.region.w * FRAME[0], top.region.h * FRAME[1])
    assert all(abs(f - t) <= MAX_ERROR_PX for f, t in zip(found, inset, strict=True)), found
    assert abs(top.offset_s) < 0.5


def test_an_inset_with_two_borders_and_few_corners_is_found_and_placed(settings, derived, run):
    original = _ingest_few_corners(settings, derived)
    result = check(settings, derived("bikes_few_corners_inset_in_bbb.mp4"))
    assert result.verdict == "reused"
    top = result.matches[0]
    assert top.sha256 == original and top.method == "region"
    assert "picture_in_picture" in top.transforms and "mirrored" not in top.transforms
    assert "cropped" not in top.transforms
    assert top.region is not None and top.region.inside == "query"
    found = (top.region.x * FRAME[0], top.region.y * FRAME[1], top.region.w * FRAME[0], top.region.h * FRAME[1])
    assert all(abs(f - t) <= MAX_ERROR_PX for f, t in zip(found, INSET, strict=True)), found
    assert abs(top.offset_s) < 0.5 and match.strength(top) >= insets.INSETS_MIN_STRENGTH
    report = json.loads(run("report", str(result.check_id), "--format", "json").output)
    assert report["matches"][0]["method"] == "region" and report["matches"][0]["region"]["in"] == "query"


def test_other_footage_in_the_same_place_does_not_match(settings, derived):
    _ingest_few_corners(settings, derived)
    result = check(settings, derived("carphone_few_corners_inset_in_bbb.mp4"))
    assert result.verdict == "no_match" and not result.matches


def test_an_inset_over_a_still_picture_is_found_though_no_border_run_ends_at_a_corner(settings, derived):
    # Over a still backdrop its own straight edges persist as the inset's borders do and run on from
    # them, and two borders fade part of the way: the runs' ends outline wrong rectangles (version 16
    # found none of the right size and matched nothing); the four border lines outline the inset.
    original = _ingest_few_corners(settings, derived)
    _assert_placed_inside(check(settings, derived("bikes_few_corners_inset_over_still.mp4")), original, INSET_OVER_STILL)


def test_two_borders_meeting_at_a_corner_outline_the_rectangle(derived):
    frames = localfeat.read_frames(derived("bikes_few_corners_inset_in_bbb.mp4"), 0.0, 8.0, 4.0)
    greys = [small_grey(g) for _, g in frames]
    found = insets.rectangles(greys)
    assert found, "no rectangle"
    outlined, box = found[0]
    # Two of the four sides are borders (the other two fade): the share the corner rule needs.
    assert 0.5 <= outlined < 1.0
    got = (box.left * FRAME[0], box.top * FRAME[1], (box.right - box.left) * FRAME[0],
           (box.bottom - box.top) * FRAME[1])
    assert all(abs(f - t) <= MAX_ERROR_PX for f, t in zip(got, INSET, strict=True)), got


def test_the_insets_constants_and_version_are_recorded_with_each_check():
    params = pipeline.matcher_params()
    assert params["matcher_version"] == match.MATCHER_VERSION == 20
    assert params["constants"]["insets.INSETS_MIN_STRENGTH"] == insets.INSETS_MIN_STRENGTH
    assert params["constants"]["insets.INSETS_MAX_RECTANGLES"] == insets.INSETS_MAX_RECTANGLES


def test_a_tiny_clip_whose_rectangles_are_too_small_to_hash_is_checked(settings, derived, tmp_path):
    """A 64x36 clip (bench's transnet negatives are 100x56): rectangles of 7-30 px, too small for the inset's
    picture; the fourth look skips them instead of failing the check."""
    from tests.conftest import ffmpeg

    _ingest_few_corners(settings, derived)
    tiny = tmp_path / "tiny_inset.mp4"
    ffmpeg("-i", str(derived("carphone_few_corners_inset_in_bbb.mp4")), "-vf", "scale=64:36", "-c:v", "libx264",
           str(tiny))
    result = check(settings, tiny)
    assert result.verdict == "no_match"


def test_an_inset_whose_sides_show_only_in_parts_is_outlined_by_the_two_runs_together(settings, derived):
    # Its top and bottom fade all along, its left side shows over the upper part only and its right
    # over the lower part only: no corner, no two runs level, no four lines (version 19 matched
    # nothing); the two vertical runs together span the inset (INSETS_UNION_RECTANGLES).
    original = _ingest_few_corners(settings, derived)
    _assert_placed_inside(check(settings, derived("bikes_few_corners_inset_split_borders.mp4")), original,
                          INSET_SPLIT_BORDERS)
