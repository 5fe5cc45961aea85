"""Sampling, bar cutting, quality and hashing on real frames (OpenCV, imagehash)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from provenance.errors import MediaError
from provenance.content import content_box
from provenance.records import ContentBox
from provenance.frames import (MIN_QUALITY, QUERY_VARIANTS, QUERY_ZOOM, REFERENCE_VARIANTS, SAMPLE_FPS, Variant,
                               fingerprint, hash_frame)
from provenance.match import FRAME_MATCH_MAX_DISTANCE
from provenance.probe import probe
from tests.conftest import SAMPLES


@pytest.fixture(scope="module")
def real_frame() -> np.ndarray:
    cap = cv2.VideoCapture(str(SAMPLES / "bikes.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 50)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@pytest.mark.parametrize("value", [0, 16, 128, 255])
def test_flat_frames_never_count_as_evidence(value):
    frame = np.full((360, 640, 3), value, dtype=np.uint8)
    noisy = np.clip(frame.astype(int) + np.random.default_rng(1).integers(-2, 3, frame.shape), 0, 255).astype(np.uint8)
    assert hash_frame(noisy, 0.0).quality < MIN_QUALITY


def test_real_frames_count(real_frame):
    assert hash_frame(real_frame, 0.0).quality >= MIN_QUALITY


def test_letterbox_bars_are_cut_before_hashing(real_frame):
    h, w = real_frame.shape[:2]
    boxed = cv2.copyMakeBorder(real_frame, 100, 100, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    box = content_box(cv2.cvtColor(boxed, cv2.COLOR_BGR2GRAY))
    assert box.top == pytest.approx(100 / (h + 200), abs=0.01)
    assert box.bottom == pytest.approx((h + 100) / (h + 200), abs=0.01)
    assert box.left == 0.0 and box.right == 1.0
    plain, boxed_hash = hash_frame(real_frame, 0.0), hash_frame(boxed, 0.0)
    assert hamming(plain.phash, boxed_hash.phash) <= 4


def test_pillarbox_bars_are_cut_too(real_frame):
    boxed = cv2.copyMakeBorder(real_frame, 0, 0, 120, 120, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    box = content_box(cv2.cvtColor(boxed, cv2.COLOR_BGR2GRAY))
    assert box.left > 0.1 and box.right < 0.9
    assert hamming(hash_frame(real_frame, 0.0).phash, hash_frame(boxed, 0.0).phash) <= 4


def test_query_views_include_the_mirror_image(real_frame):
    frame = hash_frame(real_frame, 0.0, variants=QUERY_VARIANTS)
    mirrored = frame.variants[QUERY_VARIANTS.index(Variant(mirrored=True)) - 1]
    assert mirrored == hash_frame(cv2.flip(real_frame, 1), 0.0).phash
    assert hamming(frame.phash, mirrored) > 12  # a flip is not a near-duplicate by itself


@pytest.mark.parametrize("crop", [0.05, 0.10, 0.15, 0.20])
def test_a_cropped_copy_meets_one_of_the_library_views(real_frame, crop):
    h, w = real_frame.shape[:2]
    dy, dx = round(h * crop), round(w * crop)
    cropped = real_frame[dy:h - dy, dx:w - dx]
    library = hash_frame(real_frame, 0.0, variants=REFERENCE_VARIANTS)
    query = hash_frame(cropped, 0.0, variants=QUERY_VARIANTS)
    stored = (library.phash, *library.variants)
    matched = [query.phash, query.variants[QUERY_VARIANTS.index(Variant(crop=QUERY_ZOOM)) - 1]]
    closest = min(hamming(q, r) for q in matched for r in stored)
    assert closest <= FRAME_MATCH_MAX_DISTANCE // 2
    # Without the views, the whole pictures are far apart.
    assert hamming(query.phash, library.phash) > closest


def test_fingerprint_samples_at_a_fixed_rate():
    fp = fingerprint(SAMPLES / "bikes.mp4", duration_s=10.0)
    times = np.array([f.t for f in fp.frames])
    assert len(fp.frames) == pytest.approx(10.0 * SAMPLE_FPS, abs=1)
    assert np.allclose(np.diff(times), 1 / SAMPLE_FPS, atol=0.03)
    assert all(len(f.variants) == len(REFERENCE_VARIANTS) - 1 for f in fp.frames)
    assert fp.decoded_duration_s == pytest.approx(10.0, abs=0.1)
    # Plain footage is not mistaken for footage framed in a fill or band.
    assert all(f.box == ContentBox() for f in fp.frames)


@pytest.mark.parametrize("name", ["bigbuckbunny.mp4", "bikes.mp4", "carphone_distorted.mp4"])
def test_hashing_beside_the_decoder_gives_the_same_fingerprint_bit_for_bit(name):
    # The frames are hashed on a thread of their own while the decoder goes on: the same hashes, boxes,
    # fills (bikes is letterboxed), insets and motion, in the same order, as hashing them in turn.
    together = fingerprint(SAMPLES / name, query=True)
    in_turn = fingerprint(SAMPLES / name, query=True, overlap=False)
    assert len(together.frames) >= 16
    assert together.frames == in_turn.frames
    assert together.content_box == in_turn.content_box
    assert together.decoded_duration_s == in_turn.decoded_duration_s
    assert np.array_equal(together.motion.times, in_turn.motion.times)
    assert np.array_equal(together.motion.cells, in_turn.motion.cells)


def test_probe_reads_streams_and_tags():
    info = probe(SAMPLES / "bigbuckbunny.mp4")
    assert info.video.width == 1280 and info.video.height == 720 and info.video.codec == "h264"
    assert info.video.fps == pytest.approx(25.0)
    assert info.has_audio and info.duration_s == pytest.approx(5.312, abs=0.01)
    assert "creation_time" in info.tags and "encoder" in info.tags
    assert not probe(SAMPLES / "bikes.mp4").has_audio


def test_probe_refuses_a_non_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(MediaError, match="not a readable video"):
        probe(path)


def test_the_batched_phash_gives_imagehashs_bits_on_every_view_of_real_frames():
    import imagehash
    from PIL import Image

    from provenance.frames import (MATCH_VARIANTS, REFERENCE_VARIANTS, SECOND_LOOK_VARIANTS, _thumb, _view,
                                   phash_many, small_grey)

    # The stored views, the query's, and the second look's, on three clips.
    views = [*REFERENCE_VARIANTS, *MATCH_VARIANTS, *(v for v in SECOND_LOOK_VARIANTS if not v.inset)]
    thumbs = []
    for name in ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"):
        cap = cv2.VideoCapture(str(SAMPLES / name))
        for _ in range(40):
            ok, frame = cap.read()
            if not ok:
                break
            grey = small_grey(frame)
            thumbs += [_thumb(_view(grey, v)) for v in views]
        cap.release()
    assert len(thumbs) >= 2000
    expected = [int.from_bytes(np.packbits(imagehash.phash(Image.fromarray(t)).hash.flatten()).tobytes(), "big")
                for t in thumbs]
    assert phash_many(thumbs) == expected


def test_an_inset_is_found_by_its_borders_and_plain_footage_has_none(derived):
    from provenance.content import inset_box
    from provenance.frames import small_grey

    def greys(path, n=32):
        cap, out = cv2.VideoCapture(str(path)), []
        while len(out) < n:
            ok, frame = cap.read()
            if not ok:
                break
            out.append(small_grey(frame))
        cap.release()
        return out[::2]

    box = inset_box(greys(derived("bikes_inset_in_bbb.mp4"), 64))
    assert box is not None
    assert abs(box.left - 560 / 1280) < 0.02 and abs(box.right - 1200 / 1280) < 0.02
    assert abs(box.top - 60 / 720) < 0.02 and abs(box.bottom - 332 / 720) < 0.02
    for plain in ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"):
        assert inset_box(greys(SAMPLES / plain, 64)) is None, plain


@pytest.mark.slow
def test_fingerprint_refuses_frames_too_large_before_decoding_them(tmp_path):
    # A check decodes while ffprobe runs: the decoder itself refuses what probe.MAX_FRAME_PIXELS refuses.
    import subprocess

    huge = tmp_path / "huge.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=8000x8000:d=0.2:r=10", "-c:v",
                    "libx264", "-preset", "ultrafast", str(huge)], check=True)
    with pytest.raises(MediaError, match="frames too large: 8000x8000"):
        fingerprint(huge)


def _hashed_all_at_once(path):
    """A query's frames hashed as before the second look was deferred: every view of QUERY_VARIANTS,
    the inset looked for in each stretch, all while decoding; and decoded by OpenCV, as before PyAV
    decoded clean files (provenance.decode)."""
    from provenance.decode import _sample_opencv
    from provenance.frames import _Hasher

    hasher = _Hasher(QUERY_VARIANTS, overlap=False, hashed=None)
    try:
        _sample_opencv(path, SAMPLE_FPS, hasher.add, progress=None, duration_s=None)
        return hasher.finish()[0]
    finally:
        hasher.close()


@pytest.mark.parametrize("name", ["bikes_inset_in_bbb.mp4", "bikes_corner_top_left.mp4", "bikes_letterboxed.mp4",
                                  "carphone_distorted.mp4"])
@pytest.mark.parametrize("keep_bytes", [None, 0, 200_000])
def test_the_second_look_views_hashed_later_are_those_hashed_with_the_others_bit_for_bit(derived, name, keep_bytes):
    # A query's second-look views (off-centre corners, the inset) are hashed only when the matcher's
    # second look asks, from the small grey frames kept (or, past keep_bytes, at once): the same hashes
    # and insets as when every view was hashed while decoding, and the same first-look hashes.
    from provenance.frames import SECOND_LOOK_VARIANTS

    path = SAMPLES / name if (SAMPLES / name).exists() else derived(name)
    before = _hashed_all_at_once(path)
    kw = {} if keep_bytes is None else {"keep_bytes": keep_bytes}
    fp = fingerprint(path, query=True, **kw)
    first = len(QUERY_VARIANTS) - len(SECOND_LOOK_VARIANTS) - 1
    assert [(f.t, f.phash, f.quality, f.box, f.variants) for f in fp.frames] == \
        [(f.t, f.phash, f.quality, f.box, f.variants[:first]) for f in before]
    rows = list(range(len(before)))
    hashes, insets = fp.second_look.views(rows)
    assert hashes.tolist() == [list(f.variants[first:]) for f in before]
    assert insets == [f.inset for f in before]
    if name == "bikes_inset_in_bbb.mp4":
        assert sum(i is not None for i in insets) > len(rows) // 2  # the inset views were hashed, not zeros


def test_a_query_fingerprint_sent_from_a_decoder_process_keeps_its_second_look():
    # The worker's decoder pool (provenance.jobs) sends AnalysedClips back pickled.
    import pickle

    fp = fingerprint(SAMPLES / "bikes.mp4", query=True)
    back = pickle.loads(pickle.dumps(fp))
    rows = list(range(len(fp.frames)))
    hashes, insets = back.second_look.views(rows)
    assert back.frames == fp.frames
    assert hashes.tolist() == fp.second_look.views(rows)[0].tolist() and insets == fp.second_look.views(rows)[1]
    assert hashes.any()
