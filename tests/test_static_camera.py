"""Fixed-camera footage: copies are found and placed by what moves; the same camera at another moment is
only "the same scene"; a still picture is no evidence at all.

The footage: two recordings of one fixed camera over a fish tank, minutes apart (idtrackerai 6.0.14's
test videos, fetched by scripts/install.sh into tests/.media). Every frame of either looks like every
other (pHashes within a few bits all along), which is what used to make such copies come back NO MATCH.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from provenance import localfeat, match, motion, pipeline
from provenance.frames import fingerprint
from tests.conftest import ffmpeg

MEDIA = Path(__file__).parent / ".media"
SAMPLES = Path(__file__).parent.parent / "samples"
ORIGINAL_TIME = datetime(2019, 5, 1, 10, 0, tzinfo=UTC)
REPOST_TIME = datetime(2024, 10, 19, 8, 0, tzinfo=UTC)
BANDS = ("drawbox=x=0:y=0:w=iw:h=ih*0.14:color=0xc8102e:t=fill,"
         "drawbox=x=0:y=ih*0.86:w=iw:h=ih*0.14:color=0x202020@0.9:t=fill")


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The library clip (recording A, 0-12 s) and copies and negatives made from A and B with ffmpeg."""
    a, b = _footage()
    root = tmp_path_factory.mktemp("camera")
    x264 = ["-c:v", "libx264", "-an"]
    made = {
        "library": ["-i", str(a), "-t", "12", "-vf", "scale=580:-2", *x264, "-crf", "18"],
        # A plain repost: downscaled and re-encoded hard.
        "copy": ["-i", str(a), "-t", "12", "-vf", "scale=360:-2", *x264, "-crf", "30"],
        # A mirrored 4-s excerpt from 6 s on.
        "mirrored_excerpt": ["-ss", "6", "-i", str(a), "-t", "4", "-vf", "hflip,scale=480:-2", *x264, "-crf", "26"],
        # The same camera at another moment: recording B.
        "other_moment": ["-i", str(b), "-t", "10", "-vf", "scale=480:-2", *x264, "-crf", "26"],
        # A red top band and a dark bottom band (14% each) over the copy, and over the other moment.
        "bands": ["-i", str(a), "-t", "12", "-vf", "scale=580:-2," + BANDS, *x264, "-crf", "24"],
        "other_moment_bands": ["-i", str(b), "-t", "10", "-vf", "scale=480:-2," + BANDS, *x264, "-crf", "26"],
        # A at 36% of the width, top left, over moving footage (Big Buck Bunny, looped); and B so.
        # One encoder thread: x264's output then does not depend on the machine's cores.
        "inset": _inset(a), "other_moment_inset": _inset(b),
        # All of A (18 s) for the insets' library: the more of a fixed camera the library holds, the
        # less a frame's hash tells the moment.
        "library_whole": ["-i", str(a), "-vf", "scale=580:-2", *x264, "-threads", "1", "-crf", "18"],
        # A still picture: one frame of A held for 6 s (a freeze frame).
        "still": ["-ss", "3", "-i", str(a), "-vf",
                  "scale=480:-2,trim=end_frame=1,loop=loop=149:size=1:start=0,setpts=N/25/TB", "-r", "25",
                  *x264, "-crf", "26"],
    }
    out = {}
    for name, args in made.items():
        out[name] = root / f"{name}.mp4"
        ffmpeg(*args, str(out[name]))
    return out


def _footage() -> tuple[Path, Path]:
    a, b = MEDIA / "idtrackerai_test_A.avi", MEDIA / "idtrackerai_test_B.avi"
    if not (a.is_file() and b.is_file()):
        message = "fixed-camera test footage missing: run scripts/install.sh test (fetches idtrackerai 6.0.14)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return a, b


def _inset(footage: Path) -> list[str]:
    graph = ("[0:v]scale=960:540:force_original_aspect_ratio=increase,crop=960:540,setsar=1[bg];"
             "[1:v]setpts=PTS-STARTPTS,scale=360:-2,setsar=1[fg];[bg][fg]overlay=24:24:shortest=1,format=yuv420p[out]")
    return ["-stream_loop", "2", "-i", str(SAMPLES / "bigbuckbunny.mp4"), "-ss", "2", "-i", str(footage), "-t", "8",
            "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264", "-threads", "1", "-an", "-crf", "23"]


def ingest_library(settings, camera) -> str:
    return pipeline.ingest(str(camera["library"]), settings=settings, post_url="https://example.org/cctv",
                           posted_at=ORIGINAL_TIME).clip.media.sha256


def check(settings, path):
    return pipeline.check(str(path), settings=settings, posted_at=REPOST_TIME)


def test_the_footage_is_static_every_frame_has_a_twin_seconds_away(camera):
    fp = fingerprint(camera["library"])
    times, hashes = [f.t for f in fp.frames], [f.phash for f in fp.frames]
    # For every frame, some frame at least 2 s away is within the matcher's 12 bits: frame alignment
    # alone cannot tell the moment.
    for t, h in zip(times, hashes, strict=True):
        assert min((h ^ k).bit_count() for u, k in zip(times, hashes, strict=True) if abs(u - t) >= 2) <= 12


def test_a_plain_copy_is_reused_and_placed(settings, camera):
    original = ingest_library(settings, camera)
    result = check(settings, camera["copy"])
    assert result.verdict == "reused"
    top = result.matches[0]
    # Placed by its frames where they are unambiguous enough, else by its motion; either way at 0 s.
    assert top.sha256 == original and top.method in ("frames", "motion")
    assert top.confidence is not None and 0 < top.confidence <= 1
    assert abs(top.offset_s) <= 0.5 and top.query_coverage > 0.9
    assert not result.scenes


def test_a_mirrored_excerpt_is_placed_where_it_was_cut(settings, camera):
    original = ingest_library(settings, camera)
    result = check(settings, camera["mirrored_excerpt"])
    assert result.verdict == "reused"
    top = result.matches[0]
    assert top.sha256 == original and "mirrored" in top.transforms
    assert abs(top.segments[0].reference_start_s - 6.0) <= 0.5


def test_the_same_camera_at_another_moment_is_the_same_scene_not_a_match(settings, camera, run):
    original = ingest_library(settings, camera)
    result = check(settings, camera["other_moment"])
    assert result.verdict == "no_match" and not result.matches
    assert [h.sha256 for h in result.scenes] == [original]
    assert "moment not established" in result.scenes[0].reason
    report = run("report", str(result.check_id), "--format", "md")
    assert report.exit_code == 0, report.output
    assert "Same scene, moment not established" in report.output and "Reused" not in report.output
    data = json.loads(run("report", str(result.check_id), "--format", "json").output)
    assert data["verdict"] == "no_match" and data["scenes"][0]["sha256"] == original and data["matches"] == []


def test_motion_is_read_at_the_reference_own_sample_times():
    # Samples 4 a second fall on a 25-fps source's frames, 0.24 and 0.28 s apart; a median step (0.24)
    # made place() drift a row every 4 s: an excerpt from 5 s on was placed at -0.2 s (matcher version 11).
    profile = fingerprint(SAMPLES / "bikes.mp4").motion
    assert set(np.round(np.diff(profile.times), 2)) == {0.24, 0.28}
    assert motion.sample_step(profile) == pytest.approx(0.25, abs=0.002)
    rows = np.flatnonzero(profile.times >= 5.0)
    placed = motion.place(profile, profile, query_rows=rows, mirrored=False)
    assert placed is not None and abs(placed.offset_s) <= 0.05
    agreed = motion.agreement(profile, profile, query_rows=rows, reference_times=profile.times[rows], mirrored=False)
    assert agreed is not None and agreed.correlation == pytest.approx(1.0) and agreed.peak_z >= motion.MOTION_MIN_PEAK_Z
    # Half a second off, the same frames agree far less.
    shifted = motion.agreement(profile, profile, query_rows=rows, reference_times=profile.times[rows] - 0.5,
                               mirrored=False)
    assert shifted is not None and shifted.correlation < 0.5


def _line_at_the_same_times(profile: motion.MotionProfile, *, bits: float = 4.0) -> "match._Line":
    """A close line at 1x mapping each frame of a clip to the same time of the library clip."""
    t = profile.times[1:]
    n = t.size
    pairs = match._Pairs(tq=t, tr=t.copy(), dist=np.full(n, bits), qidx=np.arange(n),
                         query_hash=np.arange(n, dtype=np.uint64), crop=np.zeros(n))
    return match._Line(speed=1.0, offset=0.0, pairs=pairs)


def test_what_moves_tells_a_close_line_through_another_moment_from_a_copy(camera):
    # The fish tank is the same picture all along: a line through recording B sits as close to the library
    # (recording A) as a copy's does, but the fish move elsewhere (matcher version 12, _moves_elsewhere):
    # along a line at 1x from 0 s, r 0.71 for the copy, 0.56 under the bands, -0.03 for recording B.
    library = fingerprint(camera["library"]).motion
    verdicts, profiles = {}, {}
    for name in ("copy", "other_moment", "bands"):
        profile = profiles[name] = fingerprint(camera[name]).motion
        line = _line_at_the_same_times(profile)
        rows = np.arange(1, profile.cells.shape[0])
        agreed = motion.agreement(profile, library, query_rows=rows, reference_times=line.pairs.tr, mirrored=False)
        assert agreed is not None and agreed.frames >= motion.MOTION_MIN_FRAMES
        moves = match._Moves(profile, rows, clip_id=1, motion_of=lambda _clip_id: library)
        verdicts[name] = (agreed.correlation, agreed.peak_z, match._moves_elsewhere(line, moves, mirrored=False))
    assert [elsewhere for *_, elsewhere in verdicts.values()] == [False, True, False], verdicts
    # Without the library's profile nothing is claimed.
    profile = profiles["other_moment"]
    line = _line_at_the_same_times(profile)
    rows = np.arange(1, profile.cells.shape[0])
    unknown = match._Moves(profile, rows, clip_id=1, motion_of=lambda _clip_id: None)
    assert not match._moves_elsewhere(line, unknown, mirrored=False)


def test_what_moves_inside_a_rectangle_tells_another_moment_from_a_copy(camera):
    # The third look (keypoints) matches rectangles, and keypoints find the fixed camera's tank at any
    # moment: its close lines must agree in what moves inside the two rectangles too (matcher version 13),
    # read from the pictures the look decoded, one every query step.
    box = (0.25, 0.2, 1.0, 0.95)
    library = match._box_motion(localfeat.read_frames(camera["library"], 0.0, 12.0, 4.0), box)
    elsewhere = {}
    for name in ("copy", "other_moment"):
        frames = localfeat.read_frames(camera[name], 0.0, 10.0, 4.0)
        profile = match._box_motion(frames, box)
        t = np.array([t for t, _ in frames])[1:]
        pairs = match._Pairs(tq=t, tr=t.copy(), dist=np.full(t.size, 4.0), qidx=np.arange(t.size),
                             query_hash=np.arange(t.size, dtype=np.uint64), crop=np.zeros(t.size))
        line = match._Line(speed=1.0, offset=0.0, pairs=pairs)
        moves = match._Moves(profile, np.arange(1, t.size + 1), clip_id=1, motion_of=lambda _clip_id: library)
        elsewhere[name] = match._moves_elsewhere(line, moves, mirrored=False)
    assert elsewhere == {"copy": False, "other_moment": True}


def test_a_still_picture_is_neither_a_match_nor_a_scene(settings, camera):
    ingest_library(settings, camera)
    result = check(settings, camera["still"])
    assert result.verdict == "no_match" and not result.matches and not result.scenes


def test_motion_profiles_place_a_copy_and_not_another_moment(camera):
    library = fingerprint(camera["library"]).motion
    copy = fingerprint(camera["copy"]).motion
    other = fingerprint(camera["other_moment"]).motion
    rows = np.arange(1, copy.cells.shape[0])
    placed = motion.place(copy, library, query_rows=rows, mirrored=False)
    assert placed is not None and abs(placed.offset_s) <= 0.25 and placed.speed == 1.0
    assert motion.place(other, library, query_rows=np.arange(1, other.cells.shape[0]), mirrored=False) is None


def test_bands_over_the_fixed_camera_are_placed_by_keypoints_and_another_moment_is_not(settings, camera):
    # The whole picture meets the library clip, but no line settles the query: the clip gets the third
    # look (match.LOCAL_WHOLE_CANDIDATES), whose rectangle, hashed without its margins, leaves the bands
    # out. Under the same bands the same camera at another moment is still only the same scene.
    original = ingest_library(settings, camera)
    # Not recorded: the library would then hold another clip under the same bands, which the whole
    # picture meets more closely than the footage (one whole-picture candidate: LOCAL_WHOLE_CANDIDATES).
    other = pipeline.check(str(camera["other_moment_bands"]), settings=settings, posted_at=REPOST_TIME, record=False)
    assert other.verdict == "no_match" and not other.matches
    assert [h.sha256 for h in other.scenes] == [original]
    result = check(settings, camera["bands"])
    assert result.verdict == "reused"
    top = result.matches[0]
    assert top.sha256 == original and top.method == "local_features" and top.region is None
    assert len(top.segments) == 1
    seg = top.segments[0]
    assert abs(seg.reference_start_s - seg.query_start_s) < 0.5 and seg.query_end_s - seg.query_start_s > 10


def test_an_inset_of_the_fixed_camera_is_placed_by_what_moves_inside_it(settings, camera, run):
    # The inset's pictures meet the library clip frame after frame, but a fixed camera's frames place no
    # moment (every one is within a few bits of every other), so no look placed it by its hashes. The
    # fourth look's rectangle is then placed by what moves inside it (matcher version 6).
    original = pipeline.ingest(str(camera["library_whole"]), settings=settings, post_url="https://example.org/cctv",
                               posted_at=ORIGINAL_TIME).clip.media.sha256
    result = check(settings, camera["inset"])
    assert result.verdict == "reused"
    top = result.matches[0]
    assert top.sha256 == original and top.method == "motion" and 0 < top.confidence <= 1
    assert "picture_in_picture" in top.transforms
    region = top.region
    assert region is not None and region.inside == "query"
    # The inset: x 24/960, y 24/540, w 360/960, h 291/540 (A is 1160x938), within a few pixels.
    assert abs(region.x - 0.025) < 0.01 and abs(region.y - 0.044) < 0.025
    assert abs(region.w - 0.375) < 0.02 and abs(region.h - 0.539) < 0.04
    # Cut at 2 s of the recording; the library holds it from 0 s.
    assert abs(top.segments[0].reference_start_s - 2.0) <= 0.5 and top.segments[0].query_start_s <= 0.5
    data = json.loads(run("report", str(result.check_id), "--format", "json").output)
    assert data["matches"][0]["method"] == "motion" and data["matches"][0]["region"]["in"] == "query"
    assert "inside x 3%" in data["matches"][0]["region_text"]


def test_the_same_camera_at_another_moment_in_an_inset_is_not_placed(settings, camera):
    pipeline.ingest(str(camera["library_whole"]), settings=settings, post_url="https://example.org/cctv",
                    posted_at=ORIGINAL_TIME)
    result = check(settings, camera["other_moment_inset"])
    assert result.verdict == "no_match" and not result.matches


@pytest.fixture(scope="module")
def alike(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fixed camera whose moments all look alike: one frame of the fish tank, with street footage
    (samples/bikes.mp4) moving in a small window of it. The library holds the window's first 5 s; the
    same camera at another moment shows its last 5 s. Each frame of either is within a few bits of many
    frames of the other, at many offsets and speeds."""
    root = tmp_path_factory.mktemp("alike")
    background = root / "background.png"
    ffmpeg("-ss", "3", "-i", str(_footage()[0]), "-frames:v", "1", "-vf", "scale=640:-2",
           str(background))

    def scene(window: list[str]) -> list[str]:
        graph = "[1:v]scale=160:-2,setsar=1[fg];[0:v][fg]overlay=400:60:shortest=1,format=yuv420p[out]"
        return ["-loop", "1", "-i", str(background), *window, "-i", str(SAMPLES / "bikes.mp4"),
                "-filter_complex", graph, "-map", "[out]", "-r", "25", "-c:v", "libx264", "-threads", "1", "-an",
                "-crf", "18"]

    out = {name: root / f"{name}.mp4" for name in ("library", "other_moment", "copy", "corner", "other_corner")}
    ffmpeg(*scene(["-t", "5"]), str(out["library"]))
    ffmpeg(*scene(["-ss", "5"]), str(out["other_moment"]))
    ffmpeg("-i", str(out["library"]), "-vf", "scale=480:-2", "-c:v", "libx264", "-threads", "1", "-an", "-crf", "28",
           str(out["copy"]))
    # The top-right 80% (the window inside), darkened and with more contrast, of the library clip and of the
    # other moment.
    corner = "crop=iw*0.8:ih*0.8:iw*0.2:0,scale=640:-2,eq=gamma=0.6:contrast=1.4"
    for source, name in (("library", "corner"), ("other_moment", "other_corner")):
        ffmpeg("-i", str(out[source]), "-vf", corner, "-c:v", "libx264", "-threads", "1", "-an", "-crf", "24",
               str(out[name]))
    return out


def test_another_moment_whose_frames_all_look_alike_is_not_placed_at_any_speed(settings, alike):
    # Matcher version 6 placed it as a copy slowed to 0.53x: 19 frames, each within 6 bits of the
    # library clip on that line, but as close to it elsewhere. A line through such frames is a still
    # unless it runs at a common retiming speed (matcher version 7); the motion profiles then find
    # nothing to place.
    original = pipeline.ingest(str(alike["library"]), settings=settings, post_url="https://example.org/cam",
                               posted_at=ORIGINAL_TIME).clip.media.sha256
    result = check(settings, alike["other_moment"])
    assert result.verdict == "no_match" and not result.matches
    assert all(h.sha256 == original for h in result.scenes)


def test_a_copy_of_the_camera_whose_frames_look_alike_is_still_placed(settings, alike):
    original = pipeline.ingest(str(alike["library"]), settings=settings, post_url="https://example.org/cam",
                               posted_at=ORIGINAL_TIME).clip.media.sha256
    result = check(settings, alike["copy"])
    assert result.verdict == "reused"
    top = result.matches[0]
    assert top.sha256 == original and top.speed == 1.0 and abs(top.offset_s) <= 0.25
    assert top.query_coverage > 0.9


def test_a_corner_of_another_moment_whose_frames_look_alike_is_not_placed_slowed_down(settings, alike):
    # Matcher version 15 placed the other moment's corner as a copy slowed to 0.5x: keypoints found the
    # rectangle, and 12 frames of it sat within 4 bits of the library's on a 0.5x line (the first look's
    # whole pictures: 11 bits). Since version 16 the third look keeps no line beyond the common speeds
    # (match.LOCAL_FAR_SPEEDS); what is left is the same scene, and what moves places no moment.
    original = pipeline.ingest(str(alike["library"]), settings=settings, post_url="https://example.org/cam",
                               posted_at=ORIGINAL_TIME).clip.media.sha256
    other = pipeline.check(str(alike["other_corner"]), settings=settings, posted_at=REPOST_TIME, record=False)
    assert other.verdict == "no_match" and not other.matches
    assert [h.sha256 for h in other.scenes] == [original]
    copy = pipeline.check(str(alike["corner"]), settings=settings, posted_at=REPOST_TIME, record=False)
    assert copy.verdict == "reused" and copy.matches[0].sha256 == original
    assert copy.matches[0].speed == 1.0 and abs(copy.matches[0].offset_s) <= 0.25


@pytest.fixture(scope="module")
def still_scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fixed camera on a scene in which nothing moves (a sleeping baby, a face held still): one frame
    of the fish tank, with a camera's temporal noise (ffmpeg's noise filter) and nothing else changing.
    Every frame is within a few bits of every other and its motion is under motion.MOTION_MIN_ENERGY,
    so neither the frames nor the motion profile can tell one moment (or one recording) from another.
    And a logo sting: the library clip opens with one; a query is the sting alone."""
    root = tmp_path_factory.mktemp("still_scene")
    a, _ = _footage()
    background = root / "background.png"
    ffmpeg("-ss", "3", "-i", str(a), "-frames:v", "1", "-vf", "scale=640:-2", str(background))
    x264 = ["-c:v", "libx264", "-threads", "1", "-an"]

    def still(seconds: float, seed: int) -> list[str]:
        return ["-loop", "1", "-i", str(background), "-t", str(seconds), "-vf",
                f"noise=alls=4:allf=t:all_seed={seed},format=yuv420p", "-r", "25", *x264, "-crf", "18"]

    logo = ("color=0x123a7a:s=640x516:r=25:d=2.5,"
            "drawbox=x=iw*0.3:y=ih*0.38:w=iw*0.4:h=ih*0.24:color=white@0.9:t=fill,format=yuv420p")

    def after_logo(footage: Path) -> list[str]:
        graph = (f"{logo}[logo];[0:v]scale=640:516,setsar=1,fps=25,format=yuv420p[main];"
                 "[logo][main]concat=n=2:v=1:a=0[out]")
        return ["-i", str(footage), "-t", "6", "-filter_complex", graph, "-map", "[out]", *x264, "-crf", "20"]

    out = {name: root / f"{name}.mp4" for name in ("library", "copy", "other_moment", "branded", "logo_only",
                                                    "corner", "unrelated_corner")}
    ffmpeg(*still(6, 1), str(out["library"]))
    ffmpeg("-i", str(out["library"]), "-vf", "scale=360:-2", *x264, "-crf", "28", str(out["copy"]))
    # Its top-left corner kept (75% of each side), blown up again: met by no stored view.
    corner = "crop=iw*0.75:ih*0.75:0:0,scale=640:-2,format=yuv420p"
    ffmpeg("-i", str(out["library"]), "-vf", corner, *x264, "-crf", "24", str(out["corner"]))
    # The same corner of a still of other footage (Big Buck Bunny), with the same noise.
    ffmpeg("-ss", "4", "-i", str(SAMPLES / "bigbuckbunny.mp4"), "-frames:v", "1", "-vf", "scale=640:-2",
           str(root / "other.png"))
    ffmpeg("-loop", "1", "-i", str(root / "other.png"), "-t", "6", "-vf", f"noise=alls=4:allf=t:all_seed=3,{corner}",
           "-r", "25", *x264, "-crf", "24", str(out["unrelated_corner"]))
    ffmpeg(*still(5, 7), str(out["other_moment"]))
    ffmpeg(*after_logo(a), str(out["branded"]))
    ffmpeg("-f", "lavfi", "-i", logo, *x264, "-crf", "20", str(out["logo_only"]))
    return out


def test_a_copy_of_a_still_scene_is_said_to_show_the_same_still_picture(settings, still_scene, run):
    # Matcher version 8 said nothing at all: a still query was no evidence, like a title card. It is
    # the same still picture as the known clip, whose moment (and recording) nothing can establish:
    # a same-scene hint, never a "reused".
    library = fingerprint(still_scene["library"]).motion
    assert motion.energy(library) < motion.MOTION_MIN_ENERGY
    original = pipeline.ingest(str(still_scene["library"]), settings=settings, post_url="https://example.org/nursery",
                               posted_at=ORIGINAL_TIME).clip.media.sha256
    for name in ("copy", "other_moment"):  # the copy not recorded: the library would then hold two stills
        result = pipeline.check(str(still_scene[name]), settings=settings, posted_at=REPOST_TIME,
                                record=name == "other_moment")
        assert result.verdict == "no_match" and not result.matches, name
        assert [h.sha256 for h in result.scenes] == [original], name
        assert "same still picture" in result.scenes[0].reason
    report = run("report", str(result.check_id), "--format", "md")
    assert report.exit_code == 0, report.output
    assert "Same scene, moment not established" in report.output and "same still picture" in report.output
    assert "Reused" not in report.output


def test_a_kept_corner_of_a_still_scene_is_said_to_show_the_same_still_picture_there(settings, still_scene):
    # No stored view meets the corner; keypoints locate it in the known clip, and its rectangle's frames
    # are all stills in which nothing moves. Matcher version 13 said nothing; since version 14 it says what
    # the first look says of a whole-picture copy: the same still picture, and where keypoints found it.
    original = pipeline.ingest(str(still_scene["library"]), settings=settings, post_url="https://example.org/nursery",
                               posted_at=ORIGINAL_TIME).clip.media.sha256
    result = pipeline.check(str(still_scene["corner"]), settings=settings, posted_at=REPOST_TIME, record=False)
    assert result.verdict == "no_match" and not result.matches
    assert [h.sha256 for h in result.scenes] == [original]
    reason = result.scenes[0].reason
    assert "same still picture" in reason and "found by keypoints" in reason, reason
    # The kept part of the known clip's picture is named: its top-left corner, about 75% of each side.
    assert "x 0%, y 0%" in reason and "part of the known clip's picture" in reason, reason
    unrelated = pipeline.check(str(still_scene["unrelated_corner"]), settings=settings, posted_at=REPOST_TIME,
                               record=False)
    assert unrelated.verdict == "no_match" and not unrelated.matches and not unrelated.scenes


def test_a_logo_sting_alone_is_no_evidence_not_even_a_still_picture(settings, still_scene):
    # The library clip: a 2.5-s logo sting, then the fish tank. The query: the same sting alone, a still
    # in both clips but shorter than match.SCENE_MIN_S: no match and no hint. (The same sting before
    # the same camera at another moment is a known false match at 0.575x: README, Limits.)
    pipeline.ingest(str(still_scene["branded"]), settings=settings, post_url="https://example.org/branded",
                    posted_at=ORIGINAL_TIME)
    alone = pipeline.check(str(still_scene["logo_only"]), settings=settings, posted_at=REPOST_TIME, record=False)
    assert alone.verdict == "no_match" and not alone.matches and not alone.scenes
