"""How a post's time is known, and red flags: facts beside the frame matches worth a closer look.

Every flag is a hint for the reader to follow up, never proof on its own: files are re-encoded,
re-muxed and re-dated for innocent reasons all the time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..credentials import CredentialsReading
from ..records import Post, Signal
from ..pipeline import post_signals
from ..stored import StoredSighting
from ..utc import parse_iso
from ..wording import gap_words
from ..ytinfo import info_day, info_timestamp
from .model import Flag, PostTime
from .text import iso

# A phone writes the container's creation_time when it stops recording, and eyewitness footage of
# news is usually posted within hours or days. A file made more than a week before its post suggests
# older footage; one written more than a week after its post was re-written later (a platform's or
# downloader's remux), so its creation_time says nothing about the filming. A judgment call, not a
# measured rate: it only decides whether the reader is pointed at the gap, which is shown either way.
CREATION_TIME_MAX_GAP = timedelta(days=7)
# MP4/MOV count from 1904 and many tools write 0 when they know no time: such a value is "unset".
_EARLIEST_REAL_CREATION = datetime(1990, 1, 1, tzinfo=UTC)

# Encoder tags written by editing or converting software (case-insensitive substrings of the
# container's `encoder` tag), with what that software is. A small list of common ones, not a catalogue.
KNOWN_EDITORS: tuple[tuple[str, str, str], ...] = (
    ("capcut", "CapCut", "a mobile and desktop video editor"),
    ("inshot", "InShot", "a mobile video editor"),
    ("premiere", "Adobe Premiere", "a desktop video editor"),
    ("handbrake", "HandBrake", "a desktop video converter"),
    ("lavf", "FFmpeg (libavformat)",
     "the muxer inside most converters and editors and some platforms; yt-dlp also writes it when it "
     "merges a download's video and audio, so on a downloaded file it says little on its own"),
)


def post_time(s: StoredSighting) -> PostTime:
    """How the post time of a sighting is known, from what was stored with it."""
    snowflake = ""
    if s.post_created_at is not None:
        agree = s.posted_at is not None and abs((s.posted_at - s.post_created_at).total_seconds()) < 2
        snowflake = (" The X post id also encodes a creation time (snowflake): "
                     f"{iso(s.post_created_at, whole_seconds=True)}" + (", which agrees." if agree else "."))
    if s.posted_at is None:
        return PostTime(at=s.observed_at, source="observed", label="unknown; our own observation",
                        detail=("Neither the platform nor the user gave a post time. The time shown is when this "
                                "tool observed the post, so the post is at least that old." + snowflake))
    info = entry_info(s.info)
    if info is None:
        return PostTime(at=s.posted_at, source="user_given", label="given by the user (--posted-at)",
                        detail=("Given with --posted-at when this local file was added; the tool cannot confirm "
                                "it." + snowflake))
    stamp, day = info_timestamp(info), info_day(info)
    if stamp is not None and stamp == s.posted_at:
        return PostTime(at=s.posted_at, source="platform_timestamp", label="platform timestamp",
                        detail=("The platform's own time for the post, as yt-dlp read it (`timestamp`). A user-given "
                                "--posted-at equal to it could not be told apart." + snowflake))
    if day is not None and day == s.posted_at:
        return PostTime(at=s.posted_at, source="platform_date", label="platform date (day only)",
                        detail=("The platform gave only the day of the post (yt-dlp `upload_date`), shown as "
                                "midnight UTC." + snowflake))
    said = iso(stamp or day, whole_seconds=True)
    return PostTime(at=s.posted_at, source="user_given", label="given by the user (--posted-at)",
                    detail=(f"Given with --posted-at; the platform said {said}." if said else
                            "Given with --posted-at; the platform gave no post time.") + snowflake)


# A red flag's title for each kind of signal (pipeline._signals, credentials.credential_signals).
SIGNAL_TITLES = {
    "x_media_predates_post": "The video was uploaded long before this post",
    "c2pa_invalid": "Content credentials (C2PA) present but not valid",
    "c2pa_created_before_post": "Content credentials (C2PA) say the footage was created long before the post",
    "c2pa_created_after_post": "Content credentials (C2PA) say the footage was created after the post",
}


def red_flags(post: StoredSighting | None, tags: dict[str, str], signals: tuple[Signal, ...]) -> tuple[Flag, ...]:
    flags = [Flag(kind=s.kind, title=SIGNAL_TITLES.get(s.kind, s.kind), detail=s.detail, data=s.data)
             for s in signals]
    posted = post.posted_at if post is not None else None
    created = _creation_time(tags.get("creation_time"))
    if created is not None and posted is not None:
        gap = posted - created
        created_at, posted_at = iso(created, whole_seconds=True), iso(posted, whole_seconds=True)
        if gap > CREATION_TIME_MAX_GAP:
            flags.append(Flag(
                kind="creation_time_before_post", title="The file says it was made long before the post",
                detail=(f"The container's creation_time is {created_at}, {gap_words(gap)} before the post "
                        f"({posted_at}). The footage may be older than the post suggests; some cameras and "
                        "editors also write a wrong or reset clock."),
                data={"creation_time": created, "posted_at": posted, "gap_s": gap.total_seconds()}))
        elif -gap > CREATION_TIME_MAX_GAP:
            flags.append(Flag(
                kind="creation_time_after_post", title="The file was written after the post",
                detail=(f"The container's creation_time is {created_at}, {gap_words(-gap)} after the post "
                        f"({posted_at}): this file was re-written later (by a platform, a downloader or an "
                        "editor), so its creation_time says nothing about when the footage was filmed."),
                data={"creation_time": created, "posted_at": posted, "gap_s": gap.total_seconds()}))
    encoder = tags.get("encoder")
    if encoder:
        for needle, name, what in KNOWN_EDITORS:
            if needle in encoder.lower():
                flags.append(Flag(
                    kind="editor_encoder_tag", title=f"Last written by {name}",
                    detail=(f"The container's encoder tag is \"{encoder}\": the file was last written by {name}, "
                            f"{what}. A hint that it passed through editing or conversion software, not that "
                            "the picture was altered."),
                    data={"encoder": encoder, "software": name}))
                break
    return tuple(flags)


def signals_of(s: StoredSighting | None, credentials: CredentialsReading | None = None) -> tuple[Signal, ...]:
    """The check's signals, rebuilt from the stored post and credentials exactly as the check made them."""
    if s is None:
        return ()
    post = Post(url=s.url, platform=s.platform, post_id=s.post_id, posted_at=s.posted_at,
                post_created_at=s.post_created_at, media_created_at=s.media_created_at)
    return post_signals(post, credentials)


def entry_info(info: dict[str, Any] | None) -> dict[str, Any] | None:
    """The video's own info: the first entry of a playlist, else the info itself."""
    if not isinstance(info, dict):
        return None
    entries = info.get("entries")
    if isinstance(entries, list):
        first = next((e for e in entries if isinstance(e, dict)), None)
        return first if first is not None else info
    return info


def _creation_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = parse_iso(value)
    except (ValueError, OverflowError):
        return None
    return dt if dt >= _EARLIEST_REAL_CREATION else None
