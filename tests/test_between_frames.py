"""Footage that changes faster than the sampling: the library keeps the frames between its samples there
(frames.densify), so a copy cut at another instant meets its own frames and is placed where it is.

The footage: samples/bikes.mp4, a fast bike race (half of its 1/4-s steps change the picture's pHash
by more than 16 bits). The copy is cut 0.12 s in, half a sampling step from the library's samples.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from provenance import frames, pipeline
from provenance.db import models as orm
from provenance.records import FrameHash
from tests.conftest import SAMPLES, ffmpeg

CUT_AT_S = 0.12


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("between") / "bikes_cut.mp4"
    ffmpeg("-ss", str(CUT_AT_S), "-i", str(SAMPLES / "bikes.mp4"), "-t", "6", "-c:v", "libx264", "-threads", "1",
           "-crf", "28", "-an", str(out))
    return out


def _frame(t: float, phash: int) -> FrameHash:
    return FrameHash(t=t, phash=phash, quality=1.0)


def test_two_far_steps_running_mark_a_stretch_and_a_single_one_is_a_cut():
    near, far = 0x0F0F0F0F0F0F0F0F, 0xF0F0F0F0F0F0F0F0  # 64 bits apart
    cut = [_frame(0.0, near), _frame(0.25, near), _frame(0.5, far), _frame(0.75, far)]
    assert frames.fast_stretches(cut) == ()
    flicker = [_frame(0.0, near), _frame(0.25, far), _frame(0.5, near), _frame(0.75, near)]
    assert frames.fast_stretches(flicker) == ((0.0, 0.5),)
    # Steps at the limit are not fast; a gap of unusable frames is not a step.
    at_limit = [_frame(0.0, 0), _frame(0.25, (1 << frames.FAST_STEP_BITS) - 1), _frame(0.5, 0)]
    assert frames.fast_stretches(at_limit) == ()
    gap = [_frame(0.0, near), _frame(1.0, far), _frame(2.0, near)]
    assert frames.fast_stretches(gap) == ()


def test_fast_footage_keeps_every_frame_between_its_samples_and_slow_footage_none():
    fast = frames.fingerprint(SAMPLES / "bikes.mp4")
    dense = frames.densify(SAMPLES / "bikes.mp4", fast)
    stretches = frames.fast_stretches(fast.frames)
    assert stretches and dense.frames == fast.frames
    # bikes.mp4 is 25 fps: every video frame inside a stretch, none outside, none a sample's.
    sampled = {f.t for f in fast.frames}
    inside = sum(round((end - start) * 25) + 1 - sum(start - 1e-6 <= t <= end + 1e-6 for t in sampled)
                 for start, end in stretches)
    assert len(dense.between) == inside
    assert all(any(s - 1e-6 <= f.t <= e + 1e-6 for s, e in stretches) and f.t not in sampled for f in dense.between)
    assert all(len(f.variants) == len(frames.REFERENCE_VARIANTS) - 1 for f in dense.between)
    assert [f.t for f in dense.stored_frames] == sorted(f.t for f in (*fast.frames, *dense.between))
    slow = frames.fingerprint(SAMPLES / "carphone_pristine.mp4")
    assert frames.fast_stretches(slow.frames) == () and frames.densify(SAMPLES / "carphone_pristine.mp4", slow) is slow


def test_a_copy_cut_between_samples_meets_its_own_frames(settings, copy):
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings)
    result = pipeline.check(str(copy), settings=settings, record=False)
    assert result.verdict.value == "reused"
    match = result.matches[0]
    # Without the frames between (matcher version 7) the copy was met by 14 frames at similarity 0.76,
    # placed 0.14 s off at speed 1.016.
    assert abs(match.speed - 1.0) <= 0.02 and abs(match.offset_s - CUT_AT_S) <= 0.1
    assert match.matched_frames >= 20 and match.similarity >= 0.85


def test_a_recorded_check_keeps_the_frames_between_and_an_unrecorded_one_stores_nothing(settings, copy):
    pipeline.check(str(copy), settings=settings, record=False)
    engine = create_engine(settings.db_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(orm.Frame)) == 0
    result = pipeline.check(str(copy), settings=settings)
    sampled = len(result.clip.fingerprint.frames)
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(orm.Frame).where(orm.Frame.variant == 0))
    engine.dispose()
    assert stored > sampled


def test_the_second_decode_shows_its_progress(settings):
    seen: list[tuple[str, float | None]] = []
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, progress=lambda stage, f: seen.append((stage, f)))
    between = [f for stage, f in seen if stage == frames.BETWEEN_STAGE]
    assert between and between == sorted(between) and all(f is not None and 0.0 <= f <= 1.0 for f in between)
    # After the first decode's own progress.
    assert max(i for i, (stage, _) in enumerate(seen) if stage == "hash") < seen.index((frames.BETWEEN_STAGE, between[0]))


def test_a_recorded_check_of_a_file_the_library_holds_decodes_it_once(settings, copy):
    def stages(run) -> list[str]:
        seen: list[str] = []
        run(lambda stage, _f: seen.append(stage))
        return seen

    first = stages(lambda p: pipeline.check(str(copy), settings=settings, progress=p))
    assert frames.BETWEEN_STAGE in first  # fast footage, new to the library: its frames between are kept
    engine = create_engine(settings.db_url)
    with engine.connect() as conn:
        rows = conn.scalar(select(func.count()).select_from(orm.Frame))
    again = stages(lambda p: pipeline.check(str(copy), settings=settings, progress=p))
    # Checked again: add_clip keeps the stored copy, so the second decode would go unused.
    assert "hash" in again and frames.BETWEEN_STAGE not in again
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(orm.Frame)) == rows
        assert conn.scalar(select(func.count()).select_from(orm.Check)) == 2
    engine.dispose()


def test_a_file_ingested_again_from_another_post_decodes_once_and_gains_a_sighting(settings):
    def stages(url: str) -> list[str]:
        seen: list[str] = []
        pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url=url,
                        progress=lambda stage, _f: seen.append(stage))
        return seen

    assert frames.BETWEEN_STAGE in stages("https://example.org/first")
    engine = create_engine(settings.db_url)
    with engine.connect() as conn:
        rows = conn.scalar(select(func.count()).select_from(orm.Frame))
    again = stages("https://example.org/second")
    assert "hash" in again and frames.BETWEEN_STAGE not in again
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(orm.Frame)) == rows
        assert conn.scalar(select(func.count()).select_from(orm.Sighting)) == 2
    engine.dispose()
