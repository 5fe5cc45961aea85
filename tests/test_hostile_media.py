"""Hostile and careless media (issue 11): clips too poor to tell, odd names, noisy decoders, huge frames.

Each test runs the real CLI (in process, or as a subprocess where stderr or signals matter) on media
made with the real ffmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenance.match import MIN_MATCHED_FRAMES
from tests.conftest import SAMPLES, ffmpeg

# These tests are about media, not storage: SQLite is enough (the `backend` fixture, overridden).
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def _one_error_line(result) -> str:  # noqa: ANN001 - click's Result
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()] if result.stderr_bytes is not None else []
    assert len(lines) == 1, result.stderr
    return lines[0]


@sqlite_only
def test_check_of_a_black_clip_says_no_usable_frames_exit_4(run, tmp_path: Path):
    black = tmp_path / "black.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=black:s=320x240:d=3:r=25", "-c:v", "libx264", str(black))
    result = run("check", str(black))
    assert result.exit_code == 4, result.output
    line = _one_error_line(result)
    assert line.startswith("error: no usable frames") and "black" in line
    # Ingest still takes it (it is footage someone may check later, when there is something to see).
    assert run("ingest", str(black), "--quiet").exit_code == 0


def _one_frame(out: Path) -> None:
    ffmpeg("-i", str(SAMPLES / "bikes.mp4"), "-frames:v", "1", "-c:v", "libx264", "-an", str(out))


def _fifth_of_a_second(out: Path) -> None:
    ffmpeg("-i", str(SAMPLES / "bikes.mp4"), "-t", "0.2", "-c:v", "libx264", "-an", str(out))


def _still_picture(out: Path) -> None:
    png = out.with_suffix(".png")
    ffmpeg("-ss", "3", "-i", str(SAMPLES / "bikes.mp4"), "-frames:v", "1", str(png))
    png.rename(out)


@sqlite_only
@pytest.mark.parametrize("make", [_one_frame, _fifth_of_a_second, _still_picture],
                         ids=["1-frame", "0.2-s", "picture-renamed-mp4"])
def test_check_of_a_too_short_clip_says_too_short_to_tell_exit_4(run, tmp_path: Path, make):
    clip = tmp_path / "short.mp4"
    make(clip)
    result = run("check", str(clip))
    assert result.exit_code == 4, result.output
    assert "NO MATCH" not in result.output
    line = _one_error_line(result)
    assert line.startswith("error: too short to tell") and f"at least {MIN_MATCHED_FRAMES}" in line
