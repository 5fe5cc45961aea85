"""Matching on real footage: copies derived with ffmpeg must match their source; unrelated clips must not."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from provenance import frames, match, pipeline
from provenance.records import ContentBox, ReferenceClip
from tests.conftest import SAMPLES

ORIGINAL_POST = "https://example.org/original-post"
ORIGINAL_TIME = datetime(2019, 5, 1, 10, 0, tzinfo=UTC)
REPOST_TIME = datetime(2024, 10, 19, 8, 0, tzinfo=UTC)


def ingest_original(settings, name: str = "bikes.mp4") -> str:
    result = pipeline.ingest(str(SAMPLES / name), settings=settings, post_url=ORIGINAL_POST, posted_at=ORIGINAL_TIME)
    return result.clip.media.sha256


def check(settings, path, **kw):
    return pipeline.check(str(path), settings=settings, posted_at=kw.pop("posted_at", REPOST_TIME), **kw)


def test_reencoded_downscaled_copy_is_reused(settings, derived):
    original = ingest_original(settings)
    result = check(settings, derived("bikes_reencoded_360w.mp4"))
    assert result.verdict == "reused"
    top = result.matches[0]
    assert top.sha256 == original
    assert top.similarity > 0.8
    assert top.query_coverage > 0.9 and top.reference_coverage > 0.9
    assert "mirrored" not in top.transforms
    assert abs(top.offset_s) < 0.5 and top.speed == 1.0
    assert result.first_seen.url == ORIGINAL_POST and result.first_seen.posted_at == ORIGINAL_TIME


def test_mirrored_copy_matches_with_transform(settings, derived):
    original = ingest_original(settings)
    result = check(settings, derived("bikes_mirrored.mp4"))
    assert result.matches and result.matches[0].sha256 == original
    assert "mirrored" in result.matches[0].transforms


def test_letterboxed_copy_matches(settings, derived):
    original = ingest_original(settings)
    result = check(settings, derived("bikes_letterboxed.mp4"))
    top = result.matches[0]
    assert top.sha256 == original and result.verdict == "reused"
    assert "letterboxed" in top.transforms
    assert top.query_coverage > 0.9


def test_excerpt_is_found_and_placed_within_a_second(settings, derived):
    original = ingest_original(settings)
    result = check(settings, derived("bikes_excerpt_5s_to_9s.mp4"))
    top = result.matches[0]
    assert top.sha256 == original
    assert "excerpt" in top.transforms
    assert len(top.segments) == 1
    seg = top.segments[0]
    assert abs(seg.reference_start_s - (5.0 + seg.query_start_s)) <= 1.0
    assert abs(seg.reference_end_s - (5.0 + seg.query_end_s)) <= 1.0
    assert abs(top.offset_s - 5.0) <= 1.0
    assert 0.3 < top.reference_coverage < 0.5


def test_sped_up_copy_matches_with_its_speed(settings, derived):
    ingest_original(settings)
    top = check(settings, derived("bikes_speed_1.2x.mp4")).matches[0]
    assert "speed_changed" in top.transforms
    assert abs(top.speed - 1.2) < 0.03


def test_slow_motion_piece_is_placed_with_its_speed(settings, derived):
    ingest_original(settings)
    top = check(settings, derived("bikes_first_4s_slowmo_0.5x.mp4")).matches[0]
    (seg,) = top.segments
    assert abs(seg.speed - 0.5) < 0.03 and "speed_changed" in top.transforms
    assert abs(seg.reference_start_s - 0.5 * seg.query_start_s) <= 1.0
    assert abs(seg.reference_end_s - 0.5 * seg.query_end_s) <= 1.0


def test_distorted_carphone_matches_pristine(settings):
    original = ingest_original(settings, "carphone_pristine.mp4")
    result = check(settings, SAMPLES / "carphone_distorted.mp4")
    assert [m.sha256 for m in result.matches] == [original]
    assert result.matches[0].query_coverage > 0.8


@pytest.mark.parametrize("known,query", [
    ("bikes.mp4", "bigbuckbunny.mp4"),
    ("bigbuckbunny.mp4", "carphone_pristine.mp4"),
    ("carphone_pristine.mp4", "bikes.mp4"),
    ("bikes.mp4", "carphone_distorted.mp4"),
])
def test_unrelated_samples_do_not_match(settings, known, query):
    ingest_original(settings, known)
    result = check(settings, SAMPLES / query)
    assert result.verdict == "no_match" and result.matches == ()
    assert result.first_seen.is_this_post


def test_clips_sharing_only_black_opening_do_not_match(settings, derived):
    pipeline.ingest(str(derived("black_then_bikes.mp4")), settings=settings, posted_at=ORIGINAL_TIME)
    result = check(settings, derived("black_then_carphone.mp4"))
    assert result.verdict == "no_match"
    # The black opening is sampled but never counts as evidence.
    frames = result.clip.fingerprint.frames
    assert any(f.t < 1.9 for f in frames) and result.clip.usable_frames < len(frames)


def test_matches_are_sorted_strongest_first(settings, derived):
    ingest_original(settings)
    pipeline.ingest(str(derived("bikes_excerpt_5s_to_9s.mp4")), settings=settings)
    result = check(settings, derived("bikes_reencoded_360w.mp4"))
    assert len(result.matches) == 2
    strengths = [m.matched_frames * m.similarity for m in result.matches]
    assert strengths == sorted(strengths, reverse=True)
    assert result.matches[0].reference_coverage > 0.9  # the full original, not the excerpt


def test_a_compilation_lists_each_source_with_its_segment_and_own_transforms(settings, derived):
    bunny = ingest_original(settings, "bigbuckbunny.mp4")
    bikes = ingest_original(settings, "bikes.mp4")
    result = check(settings, derived("compilation_bbb_then_boxed_bikes.mp4"))
    by_sha = {m.sha256: m for m in result.matches}
    assert set(by_sha) == {bunny, bikes}
    (bunny_seg,) = by_sha[bunny].segments
    (bikes_seg,) = by_sha[bikes].segments
    assert bunny_seg.query_start_s < 0.5 and abs(bunny_seg.query_end_s - 5.3) <= 1.0
    assert abs(bikes_seg.query_start_s - 5.3) <= 1.0 and abs(bikes_seg.reference_start_s) <= 1.0
    assert "letterboxed" in by_sha[bikes].transforms
    assert "letterboxed" not in by_sha[bunny].transforms


def test_cropped_copy_matches_with_transform(settings, derived):
    original = ingest_original(settings)
    result = check(settings, derived("bikes_cropped_15pct.mp4"))
    top = result.matches[0]
    assert top.sha256 == original and result.verdict == "reused"
    assert "cropped" in top.transforms
    assert top.query_coverage > 0.8


def test_clips_sharing_only_a_title_card_do_not_match(settings, derived):
    pipeline.ingest(str(derived("title_then_bikes.mp4")), settings=settings, posted_at=ORIGINAL_TIME)
    result = check(settings, derived("title_then_carphone.mp4"))
    assert result.verdict == "no_match", result.matches
    # The card itself is textured enough to count as a picture: it is the still rule that keeps it out.
    assert result.clip.usable_frames == len(result.clip.fingerprint.frames)


@pytest.mark.parametrize("name", ["bikes_vertical_blur.mp4", "bikes_caption_band.mp4"])
def test_footage_framed_in_a_fill_or_band_matches(settings, derived, name):
    original = ingest_original(settings)
    result = check(settings, derived(name))
    top = result.matches[0]
    assert top.sha256 == original and result.verdict == "reused"
    assert top.query_coverage > 0.8
    (seg,) = top.segments
    assert abs(seg.reference_start_s - seg.query_start_s) <= 1.0


def test_a_match_through_part_of_the_picture_needs_two_seconds_of_frames(settings, derived, monkeypatch):
    # Every off-centre view is one more hypothesis (matcher version 11): 1.25 s of a kept corner, met at
    # 0.98 in 6 frames (strength 5.9), is not enough, as 4 frames of a coin on a table met a mouse cage.
    original = ingest_original(settings)
    assert check(settings, derived("bikes_corner_top_left_1.25s.mp4"), record=False).verdict == "no_match"
    needed = match.REGION_MIN_STRENGTH
    monkeypatch.setattr(match, "REGION_MIN_STRENGTH", match.MIN_MATCH_STRENGTH)
    (top,) = check(settings, derived("bikes_corner_top_left_1.25s.mp4"), record=False).matches
    assert top.sha256 == original and top.method == "region"
    assert match.strength(top) < needed == match.LOCAL_MIN_STRENGTH


@pytest.mark.parametrize("name, x, y, mirrored", [("bikes_corner_top_left.mp4", 0.0, 0.0, False),
                                                  ("bikes_corner_bottom_right_mirrored.mp4", 0.2, 0.2, True)])
def test_an_off_centre_crop_is_found_and_the_kept_part_placed(settings, derived, name, x, y, mirrored):
    original = ingest_original(settings)
    result = check(settings, derived(name))
    assert result.verdict == "reused"
    top = result.matches[0]
    assert top.sha256 == original and top.method == "region"
    assert top.region is not None and top.region.inside == "reference"
    assert abs(top.region.x - x) < 0.03 and abs(top.region.y - y) < 0.03
    assert abs(top.region.w - 0.8) < 0.03 and abs(top.region.h - 0.8) < 0.03
    assert "cropped" in top.transforms and ("mirrored" in top.transforms) == mirrored
    assert abs(top.offset_s) < 0.5


def test_picture_in_picture_is_found_and_the_inset_placed(settings, derived, run):
    original = ingest_original(settings)
    result = check(settings, derived("bikes_inset_in_bbb.mp4"))
    assert result.verdict == "reused"
    top = result.matches[0]
    assert top.sha256 == original and top.method == "region" and "picture_in_picture" in top.transforms
    # The inset: x 560, y 60, 640x272 of 1280x720.
    assert top.region is not None and top.region.inside == "query"
    assert abs(top.region.x - 560 / 1280) < 0.02 and abs(top.region.y - 60 / 720) < 0.02
    assert abs(top.region.w - 0.5) < 0.02 and abs(top.region.h - 272 / 720) < 0.02
    assert abs(top.offset_s) < 0.5 and top.query_coverage > 0.8
    # The report's frame pairs compare the inset, hashed again from the evidence file, with the reference.
    import json
    report = json.loads(run("report", str(result.check_id), "--format", "json").output)
    pairs = report["matches"][0]["frame_pairs"]
    assert pairs and all(p["distance"] is not None and p["distance"] <= 8 and "region" in p["note"] for p in pairs)
    assert report["matches"][0]["method"] == "region" and report["matches"][0]["region"]["in"] == "query"


def test_an_inset_of_other_footage_does_not_match(settings, derived):
    ingest_original(settings)
    result = check(settings, derived("carphone_inset_in_bbb.mp4"))
    assert result.verdict == "no_match" and not result.matches


def test_a_clip_met_through_many_parts_of_one_frame_counts_less_than_one_met_in_one_place():
    # Candidates for the third look (match.meeting_scores): clip 0 is met by query frames 0 and 1 each
    # through one view at 14 bits (an inset, where it is); clip 1 by frames 0-2 each through four views
    # at 12 bits (a pale picture that every pale part of the query comes near). More frames met clip 1,
    # yet clip 0 met more specifically; the closest pair of a frame counts, once.
    import numpy as np

    group = np.array([0, 0, 0] + [1] * 12)
    frame = np.array([0, 1, 1] + [f for f in range(3) for _ in range(4)])
    column = np.array([5, 5, 5] + [0, 1, 2, 3] * 3)
    dist = np.array([14.0, 14.0, 16.0] + [12.0] * 12)
    starts = np.array([0, 3])
    scores = match.meeting_scores(group, frame, column, dist, starts, 16)
    assert scores[0] == pytest.approx(2 * (1 - 14 / 17))
    assert scores[1] == pytest.approx(3 * (1 - 12 / 17) / 4)
    assert scores[0] > scores[1]


@pytest.mark.parametrize("name, second_look", [("bikes_reencoded_360w.mp4", False), ("bikes_letterboxed.mp4", False),
                                               ("bikes_corner_top_left.mp4", True),
                                               ("bikes_corner_bottom_right_mirrored.mp4", True),
                                               ("bikes_inset_in_bbb.mp4", True)])
def test_the_second_look_hashed_only_when_it_runs_gives_the_same_evidence(tmp_path, derived, name, second_look):
    # fingerprint(query=True) leaves the second look's views unhashed until that look runs: the matches
    # and hints are those of a query whose every view was hashed while decoding, and a query the first
    # look settles never hashes them.
    import dataclasses

    from provenance.frames import MIN_QUALITY, fingerprint
    from provenance.settings import Settings
    from tests.test_frames import _hashed_all_at_once

    settings = Settings(db_url=f"sqlite:///{tmp_path / 'lib.db'}", store_dir=tmp_path / "evidence")
    ingest_original(settings)
    library = pipeline.load_library(pipeline.open_library(settings))
    path = derived(name)
    fp = fingerprint(path, query=True)
    before = dataclasses.replace(fp, frames=tuple(_hashed_all_at_once(path)), second_look=None)
    now = match.find_evidence(match.query_frames(fp, min_quality=MIN_QUALITY), library)
    assert now == match.find_evidence(match.query_frames(before, min_quality=MIN_QUALITY), library)
    assert now.matches and (now.matches[0].method == "region") == second_look
    kept = [s.greys is not None for s in fp.second_look._stretches]
    assert all(kept) != second_look  # the grey frames are let go once their views are hashed


def _line(frames: int, bits: float, speed: float = 1.0) -> "match._Line":
    t = np.arange(frames) / 4.0
    pairs = match._Pairs(tq=t, tr=t * speed + 2.0, dist=np.full(frames, bits), qidx=np.arange(frames),
                         query_hash=np.arange(frames, dtype=np.uint64), crop=np.zeros(frames))
    return match._Line(speed=speed, offset=2.0, pairs=pairs)


def test_a_short_line_at_the_edge_of_the_frame_threshold_is_chance():
    # What the goldfish pond's other moments made against its every-frame library: 5-6 frames at 12 bits.
    assert not match._strong_enough(_line(match.WEAK_LINE_MIN_FRAMES - 1, match.WEAK_LINE_BITS))
    assert not match._strong_enough(_line(5, match.FRAME_MATCH_MAX_DISTANCE, speed=1.07))
    # As long a line as a 3.5-s excerpt, or closer frames, still counts.
    assert match._strong_enough(_line(match.WEAK_LINE_MIN_FRAMES, match.FRAME_MATCH_MAX_DISTANCE))
    assert match._strong_enough(_line(5, match.WEAK_LINE_BITS - 1))


def _pairs_on_a_line(q0: float, frames: int, bits: float, offset: float, seed: int) -> "match._Pairs":
    t = q0 + np.arange(frames) / 4.0
    pictures = np.random.default_rng(seed).integers(0, 2**63, frames, dtype=np.int64).astype(np.uint64)
    return match._Pairs(tq=t, tr=t + offset, dist=np.full(frames, bits), qidx=np.round(t * 4).astype(np.int64),
                        query_hash=pictures, crop=np.zeros(frames))


def test_a_short_line_at_the_edge_of_chance_extends_a_match_but_makes_none_alone():
    # What a fixed camera's other moment made on the held-out tune half (matcher version 13): a coin on
    # a table under a 9:16 fill met a mouse cage in a line of 5 frames at a median of 10 bits.
    n = 40
    query = match.QueryFrames(times=np.arange(n) / 4.0, hashes=np.zeros((n, 1), dtype=np.uint64),
                              letterbox=np.zeros(n), pillarbox=np.zeros(n), duration_s=n / 4.0, step_s=0.25)
    clip = ReferenceClip(clip_id=1, sha256="1" * 64, duration_s=30.0, usable_frames=120, content_box=ContentBox())
    lone = _pairs_on_a_line(8.0, 6, match.LONE_LINE_BITS, offset=12.0, seed=1)
    found, _ = match._align(query, clip, lone, mirrored=False, same_file=False)
    assert found is None
    closer = _pairs_on_a_line(8.0, 6, match.LONE_LINE_BITS - 1, offset=12.0, seed=1)
    found, _ = match._align(query, clip, closer, mirrored=False, same_file=False)
    assert found is not None and found.matched_frames == 6
    # Beside a line that is neither short nor far (a compilation's main piece), the short one still counts.
    main = _pairs_on_a_line(0.0, 20, 4.0, offset=2.0, seed=2)
    both = match._concat([main, lone])
    found, _ = match._align(query, clip, both, mirrored=False, same_file=False)
    assert found is not None and found.matched_frames == 26 and len(found.segments) == 2


def test_a_captioned_fixed_camera_at_another_moment_is_not_a_line_but_its_copy_is():
    # The held-out tune half's mouse cage (matcher version 11): its other moment under a caption band made
    # a line of 11 frames at a median of 12 bits, plain and mirrored; its captioned copies, 21 or more.
    # A 4-s excerpt (the shortest piece the benches place) still makes a line long enough.
    assert match.WEAK_LINE_MIN_FRAMES / frames.SAMPLE_FPS < 4.0
    assert not match._strong_enough(_line(11, 12, speed=1.0))
    assert match._strong_enough(_line(21, 12, speed=1.0))


def test_a_clip_kept_frame_by_frame_is_not_taken_for_the_clip_a_query_met_most():
    # The held-out tune half's goldfish pond, kept frame by frame (200 frames in 8 s), met a picture-in-
    # picture query by chance about as much as the clip the inset showed (32 frames in 8 s) did truly.
    dense = ReferenceClip(clip_id=1, sha256="1" * 64, duration_s=8.0, usable_frames=200, content_box=ContentBox())
    plain = ReferenceClip(clip_id=2, sha256="2" * 64, duration_s=8.0, usable_frames=32, content_box=ContentBox())
    met: dict = {}
    match._note_met(met, frames_met=np.array([5, 2]), scores=np.array([0.25, 0.24]), starts=np.array([0, 2]),
                    ends=np.array([2, 4]), order=np.arange(4), clip_sorted=np.array([1, 1, 2, 2]),
                    tq=np.zeros(4), tr=np.zeros(4), mirrored=False, clips={1: dense, 2: plain})
    assert met[2].score == 0.24 and met[1].score == pytest.approx(0.25 / 6.25)


def test_a_frame_met_as_well_through_the_other_orientation_is_ambiguous():
    # What the held-out tune half's mouse cage (filmed from above, near-symmetric) made at another moment:
    # a mirrored line at 8-10 bits whose frames the plain view met just as closely elsewhere.
    line = _line(12, 9.0, speed=0.9)
    own_view = line.pairs  # no pair off the line: nothing ambiguous through this view alone
    assert match._ambiguous_share(line, own_view) == 0.0
    as_close = match._Rivals(qidx=np.arange(12), dist=np.full(12, 9.0 + match.AMBIGUITY_MARGIN_BITS))
    assert match._ambiguous_share(line, own_view, as_close) == 1.0
    assert match._is_still(line, own_view, as_close)
    # A true mirrored copy: the plain view is far (beyond the margin) or does not meet the frames at all.
    farther = match._Rivals(qidx=np.arange(12), dist=np.full(12, 9.0 + match.AMBIGUITY_MARGIN_BITS + 1))
    assert match._ambiguous_share(line, own_view, farther) == 0.0
    assert not match._is_still(line, own_view, match._Rivals(qidx=np.arange(0), dist=np.zeros(0)))
    # Half the frames met as well the other way round is enough to call the line a still.
    half = match._Rivals(qidx=np.arange(6), dist=np.full(6, 8.0))
    assert match._ambiguous_share(line, own_view, half) == 0.5 and match._is_still(line, own_view, half)
    # A close line at a common speed counts whatever the other orientation says.
    close = _line(12, match.AMBIGUITY_CLOSE_BITS)
    assert not match._is_still(close, close.pairs, match._Rivals(qidx=np.arange(12), dist=np.zeros(12)))


def _moving_query(frames: int, seed: int) -> "match.QueryFrames":
    from provenance.motion import MOTION_GRID, MotionProfile

    rng = np.random.default_rng(seed)
    times = np.arange(frames) / 4.0
    profile = MotionProfile(times=times, cells=rng.integers(0, 255, (frames, MOTION_GRID * MOTION_GRID), dtype=np.uint8))
    return match.QueryFrames(times=times, hashes=np.zeros((frames, 1), dtype=np.uint64), letterbox=np.zeros(frames),
                             pillarbox=np.zeros(frames), duration_s=frames / 4.0, step_s=0.25, motion=profile,
                             motion_rows=np.arange(frames))


def _met_by(frames_met: np.ndarray) -> "match._StillCandidate":
    n = frames_met.size
    pairs = match._Pairs(tq=frames_met / 4.0, tr=frames_met / 2.0, dist=np.full(n, 9.0), qidx=frames_met,
                         query_hash=np.arange(n, dtype=np.uint64), crop=np.zeros(n))
    return match._StillCandidate(mirrored=False, pairs=pairs)


@pytest.mark.parametrize("share", [0.34, 0.5, 0.56])
def test_a_same_scene_hint_needs_most_query_frames_to_meet_the_clip(share):
    # The held-out tune half's coin and pen on a table met a mouse cage's pale floor with 34-53% of its
    # frames, spread over 6 s of both clips, and what moves lined up nowhere: that is no "same scene".
    query, reference = _moving_query(32, 1), _moving_query(64, 2).motion
    clip = ReferenceClip(clip_id=1, sha256="1" * 64, duration_s=16.0, usable_frames=64, content_box=ContentBox())
    spread = np.unique(np.linspace(0, 31, int(round(share * 32))).astype(np.int64))
    assert match._spans_a_scene(query, _met_by(spread))
    assert match._place_by_motion(query, clip, [_met_by(spread)], reference, same_file=False) is None
    # Met by most of its frames (the same fixed camera at another moment: 62-100%), it is the same scene.
    most = np.arange(0, 32)[: int(match.SCENE_MIN_SHARE * 32) + 1]
    most = np.unique(np.r_[most, 31])
    hint = match._place_by_motion(query, clip, [_met_by(most)], reference, same_file=False)
    assert isinstance(hint, match.SceneHint) and hint.query_frames == most.size
