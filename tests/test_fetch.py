"""fetch() against real files and a real yt-dlp talking to a local HTTP server (tests.conftest_http)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from provenance.errors import FetchError, InputError, MediaError
from provenance.fetch import fetch, strip_smuggled
from tests.conftest_http import SAMPLES, SERVED_MTIME, MediaServer

UTC = timezone.utc


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_stored(media, store: Path) -> None:  # type: ignore[no-untyped-def]
    assert media.path.parent == store / media.sha256[:2]
    assert media.path.name.startswith(media.sha256 + ".")
    assert sha256_of(media.path) == media.sha256
    assert media.size_bytes == media.path.stat().st_size
    # Nothing half-written or temporary left behind in the store.
    leftovers = [p for p in store.rglob("*") if p.is_file() and p != media.path]
    assert leftovers == []


def ffprobe(path: Path) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


# --- URLs --------------------------------------------------------------------------------------


def test_direct_mp4(media_server: MediaServer, tmp_path: Path) -> None:
    url = media_server.url("bikes.mp4")
    calls: list[tuple[str, float | None]] = []
    media = fetch(url, store_dir=tmp_path, progress=lambda step, f: calls.append((step, f)))

    assert media.source == "url"
    assert_stored(media, tmp_path)
    assert media.path.suffix == ".mp4"
    # yt-dlp downloads a direct .mp4 as is: the evidence copy is byte-identical to what was served.
    assert media.sha256 == sha256_of(SAMPLES / "bikes.mp4")
    post = media.post
    assert post.platform == "Generic"
    assert post.url == url
    assert post.post_id == "bikes"
    assert post.title == "bikes"
    # No page, no post: the generic extractor's only date is the server's Last-Modified header,
    # which says when the file was put there, so it is kept in the raw info but is not a post time.
    assert post.posted_at is None
    assert post.info["timestamp"] == SERVED_MTIME.timestamp()
    assert post.post_created_at is None and post.media_created_at is None
    assert post.info is not None and post.info["extractor_key"] == "Generic"
    json.dumps(post.info)  # the raw info is plain JSON
    assert calls and all(step == "download" for step, _ in calls)
    assert calls[-1] == ("download", 1.0)


def test_og_video_page(media_server: MediaServer, tmp_path: Path) -> None:
    url = media_server.url("og.html")
    media = fetch(url, store_dir=tmp_path)

    assert_stored(media, tmp_path)
    assert media.sha256 == sha256_of(SAMPLES / "bikes.mp4")
    assert media.post.title == "Bikes on the bridge"
    assert media.post.description == "A short clip of cyclists."
    assert media.post.url == url
    # The generic extractor names the site as the uploader of an og:video page.
    assert media.post.uploader == f"127.0.0.1:{media_server.port}"


def test_json_ld_page(media_server: MediaServer, tmp_path: Path) -> None:
    url = media_server.url("jsonld.html")
    media = fetch(url, store_dir=tmp_path)

    assert media.sha256 == sha256_of(SAMPLES / "carphone_pristine.mp4")
    post = media.post
    # yt-dlp's JSON-LD reader turns uploadDate into a full `timestamp`, not just a day.
    assert post.posted_at == datetime(2019, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert post.title == "Man on a car phone"
    assert post.uploader == "Jane Reporter"
    assert post.duration_s == 4.0
    assert post.url == url  # the page, not the smuggled contentUrl
    assert "#" not in post.url


def test_hls_playlist(media_server: MediaServer, tmp_path: Path) -> None:
    calls: list[tuple[str, float | None]] = []
    media = fetch(media_server.url("hls/index.m3u8"), store_dir=tmp_path,
                  progress=lambda step, f: calls.append((step, f)))

    assert_stored(media, tmp_path)
    probe = ffprobe(media.path)
    assert any(s["codec_type"] == "video" for s in probe["streams"])
    assert float(probe["format"]["duration"]) == pytest.approx(10.0, abs=0.5)  # bikes.mp4 is 10 s
    assert media.post.posted_at is None  # a bare playlist is no post; Last-Modified is not a post time
    assert calls and calls[-1] == ("download", 1.0)


def test_user_overrides_win(media_server: MediaServer, tmp_path: Path) -> None:
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    media = fetch(media_server.url("bikes.mp4"), store_dir=tmp_path,
                  post_url="https://example.org/post/1", posted_at=when)
    assert media.post.url == "https://example.org/post/1"
    assert media.post.posted_at == when


def test_missing_page_is_404(media_server: MediaServer, tmp_path: Path) -> None:
    url = media_server.url("missing.html")
    with pytest.raises(FetchError) as info:
        fetch(url, store_dir=tmp_path)
    message = info.value.message
    assert "404" in message and url in message
    assert "\n" not in message and "ERROR:" not in message
    assert isinstance(info.value.__cause__, Exception)  # raised from yt-dlp's error


def test_forbidden_asks_for_cookies(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"HTTP 403.*--cookies FILE"):
        fetch(media_server.url("status/403"), store_dir=tmp_path)


def test_rate_limited(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="rate limited"):
        fetch(media_server.url("status/429"), store_dir=tmp_path)


def test_page_without_video_is_unsupported(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported URL") as info:
        fetch(media_server.url("nothing.html"), store_dir=tmp_path)
    assert "\n" not in info.value.message


@pytest.mark.parametrize("target", ["ftp://example.org/clip.mp4", "rtsp://camera.local/stream", "file:///tmp/x.mp4"])
def test_other_schemes_rejected(target: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported URL scheme"):
        fetch(target, store_dir=tmp_path)


def test_missing_cookies_file(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cookies file not found"):
        fetch(media_server.url("bikes.mp4"), store_dir=tmp_path, cookies=tmp_path / "nope.txt")


def test_cookies_file_is_not_rewritten(media_server: MediaServer, tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n", encoding="utf-8")
    before = cookies.read_bytes()
    fetch(media_server.url("bikes.mp4"), store_dir=tmp_path / "store", cookies=cookies)
    assert cookies.read_bytes() == before


def test_strip_smuggled() -> None:
    plain = "https://example.org/watch?v=1"
    smuggled = plain + '#__youtubedl_smuggle=%7B%22referer%22%3A+%22https%3A%2F%2Fexample.org%2F%22%7D'
    assert strip_smuggled(smuggled) == plain
    assert strip_smuggled(plain) == plain
    assert strip_smuggled(plain + "#t=10") == plain + "#t=10"
    assert strip_smuggled(plain + "#__youtubedl_smuggle=not-json") == plain


# --- local files -------------------------------------------------------------------------------


def test_local_file_is_stored(tmp_path: Path) -> None:
    store = tmp_path / "store"
    media = fetch(str(SAMPLES / "carphone_pristine.mp4"), store_dir=store)

    assert media.source == "file"
    assert_stored(media, store)
    assert media.sha256 == sha256_of(SAMPLES / "carphone_pristine.mp4")
    assert media.post.platform == "local"
    assert media.post.title == "carphone_pristine.mp4"
    assert media.post.url is None and media.post.posted_at is None


def test_local_file_extension_lowercased(tmp_path: Path) -> None:
    clip = tmp_path / "Clip.MOV"
    clip.write_bytes((SAMPLES / "carphone_pristine.mp4").read_bytes())
    media = fetch(str(clip), store_dir=tmp_path / "store")
    assert media.path.name == f"{media.sha256}.mov"


def test_same_file_twice_is_stored_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    src = str(SAMPLES / "carphone_pristine.mp4")
    first = fetch(src, store_dir=store)
    past = 1_600_000_000
    os.utime(first.path, (past, past))  # a rewrite would move the mtime to now

    second = fetch(src, store_dir=store)
    assert second.path == first.path
    assert first.path.stat().st_mtime == past
    assert [p for p in store.rglob("*") if p.is_file()] == [first.path]


def test_local_overrides(tmp_path: Path) -> None:
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    media = fetch(str(SAMPLES / "carphone_pristine.mp4"), store_dir=tmp_path,
                  post_url="https://x.com/someone/status/1", posted_at=when)
    assert media.post.url == "https://x.com/someone/status/1"
    assert media.post.posted_at == when


def test_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        fetch(str(tmp_path / "nope.mp4"), store_dir=tmp_path / "store")


def test_bare_host_gets_url_hint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="start it with https://"):
        fetch("x.com/someone/status/1849000000000000000", store_dir=tmp_path)


def test_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directory"):
        fetch(str(tmp_path), store_dir=tmp_path / "store")


def test_empty_local_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(MediaError, match=r"empty file: .*0 bytes"):
        fetch(str(empty), store_dir=tmp_path / "store")


def test_x_post_ids_are_decoded() -> None:
    # The fields yt-dlp's twitter extractor gives (from its own test data): `id` is the video's
    # media id, `display_id` the post; here the media is a reused, years-older upload.
    from provenance.fetch import _post_from_info

    info = {
        "id": "1212092628029698048",
        "display_id": "1849000000000000000",
        "extractor_key": "Twitter",
        "webpage_url": "https://x.com/someone/status/1849000000000000000",
        "uploader": "Some One",
        "uploader_id": "someone",
        "timestamp": 1729670927,
        "duration": 12.5,
    }
    post = _post_from_info(info, info["webpage_url"], info)
    assert post.platform == "Twitter"
    assert post.post_id == "1849000000000000000"
    assert post.post_created_at == datetime(2024, 10, 23, 8, 8, 47, 415000, tzinfo=UTC)
    assert post.media_created_at == datetime(2019, 12, 31, 19, 26, 16, 771000, tzinfo=UTC)
    assert post.posted_at == datetime(2024, 10, 23, 8, 8, 47, tzinfo=UTC)
    assert post.duration_s == 12.5


def test_non_x_ids_are_not_decoded() -> None:
    from provenance.fetch import _post_from_info

    info = {"id": "1212092628029698048", "display_id": "1849000000000000000", "extractor_key": "Generic",
            "webpage_url": "https://example.org/v/1849000000000000000", "upload_date": "20190501"}
    post = _post_from_info(info, info["webpage_url"], info)
    assert post.post_created_at is None and post.media_created_at is None
    assert post.posted_at == datetime(2019, 5, 1, tzinfo=UTC)  # a day only: midnight UTC
