"""First seen, verdicts and recording, end to end on real clips and a real SQLite library."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provenance import pipeline
from provenance.errors import StoreError
from provenance.frames import REFERENCE_VARIANTS
from provenance.settings import Settings
from tests.conftest import SAMPLES

EARLY = datetime(2019, 5, 1, 10, 0, tzinfo=UTC)
LATE = datetime(2024, 10, 19, 8, 0, tzinfo=UTC)


def test_empty_library_gives_no_match_and_this_post_is_first_seen(settings):
    result = pipeline.check(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://a.example/1",
                            posted_at=LATE)
    assert result.verdict == "no_match" and result.matches == ()
    assert result.first_seen.is_this_post and result.first_seen.url == "https://a.example/1"
    assert result.first_seen.posted_at == LATE


def test_a_post_earlier_than_every_known_sighting_is_earliest_known(settings, derived):
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://late.example", posted_at=LATE)
    result = pipeline.check(str(derived("bikes_reencoded_360w.mp4")), settings=settings,
                            post_url="https://early.example", posted_at=EARLY)
    assert result.verdict == "earliest_known"
    assert result.first_seen.is_this_post and result.first_seen.posted_at == EARLY


def test_without_post_time_any_earlier_sighting_makes_it_reused(settings, derived):
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://late.example", posted_at=LATE)
    result = pipeline.check(str(derived("bikes_reencoded_360w.mp4")), settings=settings)
    assert result.verdict == "reused"
    assert result.first_seen.url == "https://late.example" and not result.first_seen.is_this_post


def test_first_seen_is_the_earliest_sighting_over_all_matching_clips(settings, derived):
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://b.example", posted_at=LATE)
    pipeline.ingest(str(derived("bikes_mirrored.mp4")), settings=settings, post_url="https://a.example",
                    posted_at=EARLY)
    result = pipeline.check(str(derived("bikes_reencoded_360w.mp4")), settings=settings,
                            posted_at=datetime(2025, 1, 1, tzinfo=UTC))
    assert result.verdict == "reused"
    assert len(result.matches) == 2
    assert result.first_seen.url == "https://a.example" and result.first_seen.posted_at == EARLY


def test_check_records_clip_sighting_check_and_matches(settings, row_counts, derived):
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, posted_at=EARLY)
    before = row_counts()
    result = pipeline.check(str(derived("bikes_mirrored.mp4")), settings=settings, posted_at=LATE)
    after = row_counts()
    assert result.check_id is not None
    assert after["clips"] == before["clips"] + 1
    assert after["sightings"] == before["sightings"] + 1
    assert after["checks"] == before["checks"] + 1
    assert after["matches"] == before["matches"] + 1
    # Each frame is kept whole and as centre crops: one row per view.
    # The frames between fast-changing samples too (bikes.mp4 has some: tests/test_between_frames.py).
    assert len(result.clip.fingerprint.stored_frames) > len(result.clip.fingerprint.frames)
    assert after["frames"] == before["frames"] + len(result.clip.fingerprint.stored_frames) * len(REFERENCE_VARIANTS)
    # The library grew: the next check of another copy finds both.
    again = pipeline.check(str(derived("bikes_reencoded_360w.mp4")), settings=settings, record=False)
    assert len(again.matches) == 2


def test_no_record_leaves_the_library_as_it_was(settings, row_counts, derived):
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, posted_at=EARLY)
    before = row_counts()
    result = pipeline.check(str(derived("bikes_mirrored.mp4")), settings=settings, record=False)
    assert result.check_id is None and result.verdict == "reused"
    assert row_counts() == before


def test_ingesting_the_same_file_twice_adds_a_sighting_not_a_clip(settings, row_counts):
    first = pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://a.example")
    counts = row_counts()
    second = pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://b.example")
    assert first.new_clip and not second.new_clip and first.clip_id == second.clip_id
    after = row_counts()
    assert after["clips"] == counts["clips"] and after["frames"] == counts["frames"]
    assert after["sightings"] == counts["sightings"] + 1


def test_the_same_post_seen_again_is_not_a_reuse_of_itself(settings):
    url = "https://a.example/post/1"
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url=url)
    result = pipeline.check(str(SAMPLES / "bikes.mp4"), settings=settings, post_url=url)
    assert result.verdict == "earliest_known"
    assert result.matches[0].transforms == ("identical",)
    assert result.matches[0].similarity == 1.0


def test_the_same_clip_in_the_same_post_is_one_sighting_completed_later(settings, row_counts):
    url = "https://a.example/post/2"
    first = pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url=url)
    counts = row_counts()
    checked = pipeline.check(str(SAMPLES / "bikes.mp4"), settings=settings, post_url=url)
    again = pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url=url, posted_at=EARLY)
    after = row_counts()
    assert after["sightings"] == counts["sightings"] and after["checks"] == counts["checks"] + 1
    assert checked.verdict == "earliest_known" and again.sighting_id == first.sighting_id
    # The post time given later fills in what the first sighting lacked.
    result = pipeline.check(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://b.example/3",
                            posted_at=LATE, record=False)
    assert result.verdict == "reused" and result.first_seen.posted_at == EARLY


def test_a_check_on_a_database_that_cannot_be_opened_fails_with_it_and_keeps_no_evidence(tmp_path):
    # The database opens on another thread while the clip is analysed: its failure still stops the
    # check with the database's error, and the evidence copy the check stored goes with it.
    not_a_database = tmp_path / "library.db"
    not_a_database.write_bytes(b"this is not an SQLite file" * 100)
    settings = Settings(db_url=f"sqlite:///{not_a_database}", store_dir=tmp_path / "evidence")
    with pytest.raises(StoreError):
        pipeline.check(str(SAMPLES / "carphone_pristine.mp4"), settings=settings)
    assert not [p for p in (tmp_path / "evidence").rglob("*") if p.is_file()]
    assert not_a_database.read_bytes() == b"this is not an SQLite file" * 100
