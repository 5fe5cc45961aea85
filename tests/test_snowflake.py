from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from provenance.snowflake import MEDIA_REUSE_MIN_GAP, media_predates_post, snowflake_time

UTC = timezone.utc


def test_known_tweet_matches_api_created_at() -> None:
    # Tweet 204697221847986177: the API gave created_at "Mon May 21 22:16:35 +0000 2012".
    # (204697221847986177 >> 22) = 48803620779 ms; + 1288834974657 = 1337638595436 ms.
    assert snowflake_time(204697221847986177) == datetime(2012, 5, 21, 22, 16, 35, 436000, tzinfo=UTC)


def test_known_id_from_string() -> None:
    # (1212092628029698048 >> 22) = 288985402114 ms; + 1288834974657 = 1577820376771 ms since 1970.
    expected = datetime(2019, 12, 31, 19, 26, 16, 771000, tzinfo=UTC)
    assert snowflake_time("1212092628029698048") == expected
    assert snowflake_time(1212092628029698048) == expected
    assert round(expected.timestamp() * 1000) == (1212092628029698048 >> 22) + 1288834974657


def test_result_is_aware_utc() -> None:
    t = snowflake_time(1849000000000000000)
    assert t is not None and t.tzinfo is not None and t.utcoffset() == timedelta(0)
    assert t == datetime(2024, 10, 23, 8, 8, 47, 415000, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    ["", "abc", "12a3", "-5", "1.5", " ", "１２３４５６７８９０１２３", 0, -1, 20, 29700859247, 1 << 63, True],
)
def test_not_a_snowflake(value: object) -> None:
    # 20 and 29700859247 are pre-snowflake sequential ids: they would decode to 2010-11-04 01:42.
    assert snowflake_time(value) is None  # type: ignore[arg-type]


def test_media_predates_post() -> None:
    post = datetime(2024, 10, 23, 12, 0, tzinfo=UTC)
    assert media_predates_post(post, post - timedelta(minutes=5)) is None
    assert media_predates_post(post, post - timedelta(hours=23, minutes=59)) is None
    assert media_predates_post(post, post - MEDIA_REUSE_MIN_GAP) == timedelta(hours=24)
    assert media_predates_post(post, post - timedelta(days=400)) == timedelta(days=400)
    assert media_predates_post(post, post + timedelta(hours=30)) is None  # media after post: no signal
    assert media_predates_post(None, post) is None
    assert media_predates_post(post, None) is None


def test_gap_between_real_ids() -> None:
    post = snowflake_time(1849000000000000000)
    media = snowflake_time(1212092628029698048)
    gap = media_predates_post(post, media)
    assert gap is not None and gap > timedelta(days=365 * 4)


def test_agrees_with_yt_dlp_twitter_test_data() -> None:
    # yt-dlp's twitter extractor test for twitter.com/freethenipple/status/643211948184596480
    # records the API's created_at as timestamp 1442188653 (2015-09-13T23:57:33Z) and the video's
    # media id as 643211870443208704, uploaded some 19 s before the post.
    post = snowflake_time(643211948184596480)
    media = snowflake_time(643211870443208704)
    assert post == datetime(2015, 9, 13, 23, 57, 33, 404000, tzinfo=UTC)
    assert int(post.timestamp()) == 1442188653
    assert media == datetime(2015, 9, 13, 23, 57, 14, 869000, tzinfo=UTC)
    assert media_predates_post(post, media) is None  # uploaded with the post: no reuse signal
