"""X/Twitter: its hosts, and snowflake ids (the creation time is written into every post and media id)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

# Snowflake layout: 41 bits of milliseconds since Twitter's epoch, then 22 bits of worker/sequence.
TWITTER_EPOCH_MS = 1288834974657  # 2010-11-04T01:42:54.657Z
_TIMESTAMP_SHIFT = 22
_MAX_ID = (1 << 63) - 1  # ids are signed 64-bit
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# The hosts that serve X posts (twitter.com still redirects to x.com).
X_HOSTS = frozenset({"x.com", "www.x.com", "twitter.com", "www.twitter.com", "mobile.twitter.com"})

# Ids from before snowflake were sequential and stayed below ~3e10, which would decode to the
# first few seconds after the epoch. Anything decoding to under a minute past it is treated as
# not a snowflake, so an old sequential id never gets a made-up creation time.
_MIN_OFFSET_MS = 60_000

# A person usually posts within minutes or hours of uploading a video. When the media id is a
# day or more older than the post, the video was uploaded earlier — usually by someone else, and
# X reuses the existing media when a clip is re-posted. That is a reuse signal (X domain notes).
MEDIA_REUSE_MIN_GAP = timedelta(hours=24)


def snowflake_time(snowflake_id: int | str) -> datetime | None:
    """The creation time (aware UTC) encoded in a snowflake id, or None if it is not one."""
    if isinstance(snowflake_id, bool):
        return None
    if isinstance(snowflake_id, str):
        text = snowflake_id.strip()
        if not text.isdecimal() or not text.isascii():
            return None
        snowflake_id = int(text)
    if not isinstance(snowflake_id, int) or not 0 < snowflake_id <= _MAX_ID:
        return None
    offset_ms = snowflake_id >> _TIMESTAMP_SHIFT
    if offset_ms < _MIN_OFFSET_MS:
        return None
    # Integer milliseconds through timedelta: exact, where a float timestamp could round.
    return _UNIX_EPOCH + timedelta(milliseconds=TWITTER_EPOCH_MS + offset_ms)


def media_predates_post(post_created_at: datetime | None, media_created_at: datetime | None) -> timedelta | None:
    """How long before the post its media was uploaded, when that is long enough to suggest reuse."""
    if post_created_at is None or media_created_at is None:
        return None
    gap = post_created_at - media_created_at
    return gap if gap >= MEDIA_REUSE_MIN_GAP else None
