"""Local features (provenance.localfeat): keypoints place an inset the frame hashes cannot see, on real
footage made with ffmpeg; other footage in the same place is not matched."""

from __future__ import annotations

import json

from provenance import localfeat, match, pipeline
from tests.conftest import SAMPLES
from tests.test_match import check, ingest_original

# bikes_soft_inset_in_bbb.mp4 (tests/conftest.py): 480x204 at x 640, y 300 of a 1280x720 frame.
INSET = (640, 300, 480, 204)
FRAME = (1280, 720)
# "Within a few pixels" of the true rectangle, in the query's 1280x720 pixels.
MAX_ERROR_PX = 8


def test_an_inset_without_a_border_is_placed_by_local_features(settings, derived, run):
    original = ingest_original(settings)
    result = check(settings, derived("bikes_soft_inset_in_bbb.mp4"))
    assert result.verdict == "reused"
    top = result.matches[0]
    assert top.sha256 == original and top.method == "local_features"
    assert "picture_in_picture" in top.transforms and "mirrored" not in top.transforms
    assert top.region is not None and top.region.inside == "query"
    found = (top.region.x * FRAME[0], top.region.y * FRAME[1], top.region.w * FRAME[0], top.region.h * FRAME[1])
    assert all(abs(f - t) <= MAX_ERROR_PX for f, t in zip(found, INSET, strict=True)), found
    assert abs(top.offset_s) < 0.5 and top.query_coverage > 0.8 and top.confidence is not None
    report = json.loads(run("report", str(result.check_id), "--format", "json").output)
    assert report["matches"][0]["method"] == "local_features" and report["matches"][0]["region"]["in"] == "query"


def test_other_footage_in_the_same_place_does_not_match(settings, derived):
    ingest_original(settings)
    result = check(settings, derived("carphone_soft_inset_in_bbb.mp4"))
    assert result.verdict == "no_match" and not result.matches


def test_keypoints_locate_the_footage_and_refuse_unrelated_footage(derived):
    bikes = localfeat.read_frames(SAMPLES / "bikes.mp4", 0.0, 10.0, 4.0)
    inset = localfeat.read_frames(derived("bikes_soft_inset_in_bbb.mp4"), 0.0, 9.0, 4.0)
    placed = localfeat.locate(inset, bikes)
    assert placed is not None and not placed.mirrored and placed.inliers >= localfeat.LOCAL_MIN_INLIERS
    assert placed.inset and placed.in_reference == (0.0, 0.0, 1.0, 1.0)
    # Scale in working pixels (both frames shrunk to LOCAL_WORK_SIZE wide): 180 px of inset for 480 of bikes.
    assert abs(placed.scale - (480 * localfeat.LOCAL_WORK_SIZE / 1280) / localfeat.LOCAL_WORK_SIZE) < 0.02
    # The same layout with other footage inside: no transform passes the geometric check.
    other = localfeat.read_frames(derived("carphone_soft_inset_in_bbb.mp4"), 0.0, 9.0, 4.0)
    assert localfeat.locate(other, bikes) is None


def test_the_local_features_constants_are_recorded_with_each_check():
    constants = pipeline.matcher_params()["constants"]
    assert pipeline.matcher_params()["matcher_version"] == match.MATCHER_VERSION
    assert constants["localfeat.LOCAL_MIN_INLIERS"] == localfeat.LOCAL_MIN_INLIERS
    assert constants["match.LOCAL_CANDIDATE_DISTANCE"] == match.LOCAL_CANDIDATE_DISTANCE
    assert constants["match.LOCAL_WHOLE_CANDIDATES"] == match.LOCAL_WHOLE_CANDIDATES


def test_keypoint_frames_are_the_hashing_shrink_at_the_keypoint_size():
    # One shrink for both uses (frames.small_grey): the keypoint frames are the hashing frames' grey
    # picture at LOCAL_WORK_SIZE instead of frames.WORK_SIZE, never enlarged.
    import cv2

    from provenance import frames

    cap = cv2.VideoCapture(str(SAMPLES / "bikes.mp4"))
    ok, image = cap.read()
    cap.release()
    assert ok
    read = localfeat.read_frames(SAMPLES / "bikes.mp4", 0.0, 0.01, 4.0)
    assert len(read) == 1 and (read[0][1] == frames.small_grey(image, localfeat.LOCAL_WORK_SIZE)).all()
    assert max(read[0][1].shape) == min(localfeat.LOCAL_WORK_SIZE, max(image.shape[:2]))
    assert max(frames.small_grey(image).shape) == min(frames.WORK_SIZE, max(image.shape[:2]))
    assert frames.small_grey(image, 10 * max(image.shape)).shape == image.shape[:2]
