"""The decode step on real files (PyAV and OpenCV, the real ffmpeg making the variants): the frames a
check samples through PyAV, skipping what no sampled frame needs, are OpenCV's frames bit for bit."""

from __future__ import annotations

import hashlib
import logging
import random
import subprocess
from pathlib import Path

import pytest

from provenance import decode
from provenance.frames import SAMPLE_FPS, fingerprint
from tests.conftest import SAMPLES

BIKES = SAMPLES / "bikes.mp4"

# name -> ffmpeg arguments between the input and the output: the containers, codecs and colour tags a
# downloaded clip comes in, each decoded through PyAV.
PLAIN = {
    "x264_bframes.mp4": ["-c:v", "libx264", "-bf", "3"],
    "mpegts_offset.ts": ["-c:v", "libx264", "-f", "mpegts"],  # starts at 1.4 s
    "fragmented.mp4": ["-c:v", "libx264", "-movflags", "frag_keyframe+empty_moov+default_base_moof"],
    "vp9.webm": ["-c:v", "libvpx-vp9", "-b:v", "300k", "-deadline", "realtime"],
    "ntsc_rate.mkv": ["-c:v", "libx264", "-r", "24000/1001"],
    "full_range.mp4": ["-c:v", "libx264", "-pix_fmt", "yuvj420p"],
    "bt709.mp4": ["-c:v", "libx264", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"],
    "ten_bit.mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p10le"],
    "odd_size.mkv": ["-c:v", "libx264", "-pix_fmt", "yuv444p", "-vf", "scale=641:273"],
    "with_sound.mp4": ["-f", "lavfi", "-i", "sine=d=4", "-shortest", "-c:v", "libx264", "-c:a", "aac"],
}
# What PyAV would convert otherwise than OpenCV: decoded by OpenCV, from the start.
NOT_PLAIN = {
    "interlaced.mp4": ["-c:v", "libx264", "-flags", "+ilme+ildct", "-x264-params", "tff=1"],
    "hdr.mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p10le", "-colorspace", "bt2020nc", "-color_primaries",
                "bt2020", "-color_trc", "smpte2084"],
    "turned.mp4": ["-c:v", "copy", "-metadata:s:v", "rotate=90"],
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("decode")
    out = {}
    for name, args in {**PLAIN, **NOT_PLAIN}.items():
        path = folder / name
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-t", "4", "-i", str(BIKES), *args, str(path)], check=True)
        out[name] = path
    # An edit list: a stream copy cut at 1.3 s keeps the frames before it, marked to be discarded.
    path = folder / "edit_list.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", "1.3", "-i", str(SAMPLES / "bigbuckbunny.mp4"), "-c", "copy",
                    str(path)], check=True)
    out[path.name] = path
    # Damage: bytes overwritten inside the frames (the index kept whole at the front).
    whole = folder / "whole.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-t", "4", "-i", str(BIKES), "-c:v", "libx264", "-movflags",
                    "faststart", str(whole)], check=True)
    data = bytearray(whole.read_bytes())
    rng = random.Random(3)
    for _ in range(30):
        at = rng.randrange(len(data) // 4, len(data) - 64)
        data[at:at + 20] = bytes(rng.randrange(256) for _ in range(20))
    out["damaged.mp4"] = folder / "damaged.mp4"
    out["damaged.mp4"].write_bytes(bytes(data))
    return out


def _frames(path: Path, *, opencv: bool) -> tuple[list[tuple[float, str, tuple[int, ...]]], float]:
    got: list[tuple[float, str, tuple[int, ...]]] = []

    def take(t: float, image) -> None:
        got.append((t, hashlib.sha256(image.tobytes()).hexdigest(), image.shape))

    if opencv:
        last = decode._sample_opencv(path, SAMPLE_FPS, take, progress=None, duration_s=None)
    else:
        last = decode.sample(path, SAMPLE_FPS, take)
    return got, last


@pytest.mark.parametrize("name", [*PLAIN, "edit_list.mp4"])
def test_pyav_hands_over_opencvs_frames_bit_for_bit_at_opencvs_times(clips, name, caplog):
    path = clips[name]
    assert decode._plan(path, SAMPLE_FPS) is not None  # decoded through PyAV, not OpenCV
    with caplog.at_level(logging.DEBUG, logger="provenance.decode"):
        pyav = _frames(path, opencv=False)
    assert "frames decoded" in caplog.text
    assert pyav == _frames(path, opencv=True)
    assert len(pyav[0]) >= 12


@pytest.mark.parametrize("name", ["bigbuckbunny.mp4", "bikes.mp4", "carphone_distorted.mp4"])
def test_the_samples_decode_the_same_through_both(name):
    assert _frames(SAMPLES / name, opencv=False) == _frames(SAMPLES / name, opencv=True)


def test_frames_no_sampled_frame_needs_are_not_decoded(clips, caplog):
    # 4 of 30 frames a second are kept; x264's B-frames that nothing refers to are skipped.
    with caplog.at_level(logging.DEBUG, logger="provenance.decode"):
        decode.sample(clips["x264_bframes.mp4"], SAMPLE_FPS, lambda t, image: None)
    decoded, total = (int(w) for w in caplog.text.split("frames decoded")[0].split()[-3::2])
    assert total == 100
    assert decoded <= 0.75 * total


@pytest.mark.parametrize("name", [*NOT_PLAIN, "damaged.mp4"])
def test_what_pyav_would_convert_otherwise_is_decoded_by_opencv(clips, name):
    path = clips[name]
    with pytest.raises(decode.OpenCVNeeded):
        decode.sample(path, SAMPLE_FPS, lambda t, image: None)
    # fingerprint starts again with OpenCV: its frames are OpenCV's.
    expected, last = _frames(path, opencv=True)
    fp = fingerprint(path)
    assert [f.t for f in fp.frames] == [t for t, _, _ in expected]
    assert fp.decoded_duration_s == last


def test_a_container_without_frame_times_is_decoded_by_opencv(tmp_path):
    # AVI keeps no presentation times with B-frames: a plan from its packets would be wrong.
    avi = tmp_path / "bframes.avi"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-t", "4", "-i", str(BIKES), "-c:v", "mpeg4", "-bf", "2", str(avi)],
                   check=True)
    assert decode._plan(avi, SAMPLE_FPS) is None
    assert len(_frames(avi, opencv=False)[0]) == 16
