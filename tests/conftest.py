"""Shared fixtures: real sample clips, copies derived from them with the real ffmpeg, fresh libraries."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from provenance.cli import cli
from provenance.db import connect, ensure_schema, repository, session_scope
from provenance.settings import Settings
from tests.conftest_http import *  # noqa: F401,F403 - the 127.0.0.1 media server fixtures
from tests.conftest_pg import PgServer, pg_server  # noqa: F401 - the throwaway PostgreSQL server
from tests.conftest_tsa import other_tsa, tsa  # noqa: F401 - real RFC 3161 TSAs (openssl ts) on 127.0.0.1

SAMPLES = Path(__file__).parent.parent / "samples"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


TITLE_CARD = ("color=c=black:s=640x272:d=3:r=25,"
              "drawbox=x=100:y=80:w=440:h=40:color=white:t=fill,drawbox=x=160:y=150:w=320:h=20:color=gray:t=fill,"
              "drawbox=x=40:y=220:w=80:h=30:color=red:t=fill")

# An alpha ramp over the outer 24 px of an inset: it fades into the picture behind it.
SOFT_EDGES = "geq=lum='p(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='255*min(1,min(min(X,W-X),min(Y,H-Y))/24)'"

# An alpha ramp over the right and bottom 24 px only: two hard borders (left, top), two that fade.
HALF_SOFT_EDGES = "geq=lum='p(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='255*min(1,min(W-X,H-Y)/24)'"
# An alpha ramp over the lower 40% of the right edge and the right 35% of the top edge: two borders
# that run only part of their side.
PART_SOFT_EDGES = ("geq=lum='p(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':"
                   "a='255*if(gt(Y,0.6*H),min(1,(W-X)/24),1)*if(gt(X,0.65*W),min(1,Y/24),1)'")
# The top and bottom edges fade all along, the left edge over its lower 40% and the right over its upper
# 45%: each vertical border runs only part of its side (together, the whole of it), and no border meets
# another at a corner (provenance.insets, matcher version 20).
SPLIT_SOFT_EDGES = ("geq=lum='p(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':"
                    "a='255*min(1,Y/24)*min(1,(H-Y)/24)*if(gt(Y,0.6*H),min(1,X/24),1)*if(lt(Y,0.45*H),min(1,(W-X)/24),1)'")
# Two straight dark lines on a still background that run on from the inset's left and bottom borders
# (at x 32, y 416, 640x272 of 1280x720), as a studio backdrop's edges may.
BACKDROP_LINES = "drawbox=x=29:y=356:w=3:h=60:color=black:t=fill,drawbox=x=672:y=688:w=120:h=3:color=black:t=fill"
# Footage with few corners for keypoints (a heavy blur), as dark or flat footage has; pHash still sees it.
FEW_CORNERS = "boxblur=10:2"

# Each derived copy: output name -> ffmpeg arguments (without -y and the output path).
DERIVED: dict[str, list[str]] = {
    "bikes_reencoded_360w.mp4": ["-i", str(SAMPLES / "bikes.mp4"), "-vf", "scale=360:-2", "-c:v", "libx264",
                                 "-crf", "32", "-an"],
    "bikes_mirrored.mp4": ["-i", str(SAMPLES / "bikes.mp4"), "-vf", "hflip", "-c:v", "libx264", "-an"],
    "bikes_letterboxed.mp4": ["-i", str(SAMPLES / "bikes.mp4"), "-vf",
                              "pad=640:480:(ow-iw)/2:(oh-ih)/2:black", "-c:v", "libx264", "-an"],
    "bikes_excerpt_5s_to_9s.mp4": ["-ss", "5", "-i", str(SAMPLES / "bikes.mp4"), "-t", "4", "-c:v", "libx264",
                                   "-an"],
    "bikes_speed_1.2x.mp4": ["-i", str(SAMPLES / "bikes.mp4"), "-vf", "setpts=PTS/1.2", "-r", "25",
                             "-c:v", "libx264", "-an"],
    "bikes_first_4s_slowmo_0.5x.mp4": ["-i", str(SAMPLES / "bikes.mp4"), "-t", "4", "-vf", "setpts=2*PTS", "-r", "25",
                                       "-c:v", "libx264", "-an"],
    # Big Buck Bunny's 5.3-s sample re-encoded with its sound (AAC 48 kbit/s, stereo from 5.1): an
    # audio match as well as a picture match.
    "bigbuckbunny_with_sound_reencoded.mp4": ["-i", str(SAMPLES / "bigbuckbunny.mp4"), "-vf", "scale=480:-2",
                                              "-c:v", "libx264", "-crf", "30", "-c:a", "aac", "-b:a", "48k",
                                              "-ac", "2"],
    # Two different clips that both open with 2 s of black.
    "black_then_bikes.mp4": ["-f", "lavfi", "-i", "color=black:s=640x272:d=2:r=25", "-i", str(SAMPLES / "bikes.mp4"),
                             "-filter_complex", "[0:v]setsar=1[a];[1:v]setsar=1[b];[a][b]concat=n=2:v=1[v]",
                             "-map", "[v]", "-c:v", "libx264"],
    "black_then_carphone.mp4": ["-f", "lavfi", "-i", "color=black:s=176x144:d=2:r=30000/1001",
                                "-i", str(SAMPLES / "carphone_pristine.mp4"), "-filter_complex",
                                "[0:v]setsar=1[a];[1:v]setsar=1[b];[a][b]concat=n=2:v=1[v]", "-map", "[v]",
                                "-c:v", "libx264"],
    "bikes_cropped_15pct.mp4": ["-i", str(SAMPLES / "bikes.mp4"), "-vf", "crop=iw*0.7:ih*0.7,scale=480:-2",
                                "-c:v", "libx264", "-an"],
    # A 9:16 repost: the picture across the middle, a blurred copy of it filling the frame.
    "bikes_vertical_blur.mp4": ["-i", str(SAMPLES / "bikes.mp4"), "-filter_complex",
                                "[0:v]split[a][b];[a]scale=360:640:force_original_aspect_ratio=increase,crop=360:640,"
                                "boxblur=16[bg];[b]scale=360:-2[fg];[bg][fg]overlay=(W-w)/2:(H-h)/2",
                                "-c:v", "libx264", "-an"],
    # A caption strip added above the picture (the frame grows), meme style.
    "bikes_caption_band.mp4": ["-i", str(SAMPLES / "bikes.mp4"), "-vf",
                               "pad=iw:ih+96:0:96:white,drawbox=x=60:y=30:w=520:h=36:color=black:t=fill",
                               "-c:v", "libx264", "-an"],
    # Two different clips that open with the same 3-s title card (a still picture), then differ.
    "title_then_bikes.mp4": ["-f", "lavfi", "-i", TITLE_CARD, "-i", str(SAMPLES / "bikes.mp4"), "-filter_complex",
                             "[0:v]setsar=1[a];[1:v]setsar=1[b];[a][b]concat=n=2:v=1[v]", "-map", "[v]",
                             "-c:v", "libx264"],
    "title_then_carphone.mp4": ["-f", "lavfi", "-i", TITLE_CARD, "-i", str(SAMPLES / "carphone_pristine.mp4"),
                                "-filter_complex", "[0:v]setsar=1[a];[1:v]scale=640:272,setsar=1,fps=25[b];"
                                "[a][b]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264"],
    # A compilation: bigbuckbunny as it is, then bikes letterboxed, both at 640x360.
    "compilation_bbb_then_boxed_bikes.mp4": [
        "-i", str(SAMPLES / "bigbuckbunny.mp4"), "-i", str(SAMPLES / "bikes.mp4"), "-filter_complex",
        "[0:v]scale=640:360,setsar=1,fps=25[a];[1:v]pad=640:360:0:44:black,setsar=1,fps=25[b];"
        "[a][b]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264"],
    # Off-centre crops: the top-left 80% of the picture kept (right and bottom cut), and the bottom-right
    # 80% mirrored.
    "bikes_corner_top_left.mp4": ["-i", str(SAMPLES / "bikes.mp4"), "-vf", "crop=iw*0.8:ih*0.8:0:0,scale=512:-2",
                                  "-c:v", "libx264", "-crf", "26", "-an"],
    # The same corner, 1.25 s of it: too short for a match through part of the picture (match.REGION_MIN_STRENGTH).
    "bikes_corner_top_left_1.25s.mp4": ["-ss", "3", "-t", "1.25", "-i", str(SAMPLES / "bikes.mp4"), "-vf",
                                        "crop=iw*0.8:ih*0.8:0:0,scale=512:-2", "-c:v", "libx264", "-crf", "26", "-an"],
    "bikes_corner_bottom_right_mirrored.mp4": ["-i", str(SAMPLES / "bikes.mp4"), "-vf",
                                               "crop=iw*0.8:ih*0.8:iw*0.2:ih*0.2,hflip", "-c:v", "libx264",
                                               "-crf", "26", "-an"],
    # Picture-in-picture: bikes at half width inside Big Buck Bunny (x 560, y 60 of 1280x720), and the
    # reverse, Big Buck Bunny inside bikes-free footage, as a negative for a bikes library.
    "bikes_inset_in_bbb.mp4": ["-stream_loop", "1", "-i", str(SAMPLES / "bigbuckbunny.mp4"), "-i",
                               str(SAMPLES / "bikes.mp4"), "-filter_complex",
                               "[0:v]scale=1280:720,setsar=1[bg];[1:v]scale=640:-2[in];"
                               "[bg][in]overlay=560:60:shortest=1[out]", "-map", "[out]", "-t", "9",
                               "-c:v", "libx264", "-crf", "26"],
    "carphone_inset_in_bbb.mp4": ["-i", str(SAMPLES / "bigbuckbunny.mp4"), "-i",
                                  str(SAMPLES / "carphone_pristine.mp4"), "-filter_complex",
                                  "[0:v]scale=1280:720,setsar=1[bg];[1:v]scale=480:-2[in];"
                                  "[bg][in]overlay=80:300:shortest=1[out]", "-map", "[out]",
                                  "-c:v", "libx264", "-crf", "26"],
    # Insets whose edges fade into the background over 24 px (no border line for content.inset_box to
    # find): bikes at 480x204, x 640, y 300 of 1280x720; and carphone in the same place, a negative.
    "bikes_soft_inset_in_bbb.mp4": ["-stream_loop", "1", "-i", str(SAMPLES / "bigbuckbunny.mp4"), "-i",
                                    str(SAMPLES / "bikes.mp4"), "-filter_complex", "[0:v]scale=1280:720,setsar=1[bg];"
                                    "[1:v]scale=480:-2,format=yuva420p," + SOFT_EDGES + "[in];"
                                    "[bg][in]overlay=640:300:shortest=1[out]", "-map", "[out]", "-t", "9",
                                    "-c:v", "libx264", "-crf", "26"],
    "carphone_soft_inset_in_bbb.mp4": ["-stream_loop", "1", "-i", str(SAMPLES / "bigbuckbunny.mp4"), "-i",
                                       str(SAMPLES / "carphone_pristine.mp4"), "-filter_complex",
                                       "[0:v]scale=1280:720,setsar=1[bg];[1:v]scale=480:-2,format=yuva420p,"
                                       + SOFT_EDGES + "[in];[bg][in]overlay=640:300:shortest=1[out]", "-map", "[out]",
                                       "-c:v", "libx264", "-crf", "26"],
    # Footage with few corners, and the same at half width (640x272) at x 560, y 60 of a 1280x720 frame
    # of Big Buck Bunny with only two hard borders (its right and bottom edges fade): no four-border
    # inset for the hashing step, too few corners for keypoints (provenance.insets). And carphone in
    # the same place, a negative.
    "bikes_few_corners.mp4": ["-i", str(SAMPLES / "bikes.mp4"), "-vf", FEW_CORNERS, "-c:v", "libx264", "-crf", "20",
                              "-an"],
    "bikes_few_corners_inset_in_bbb.mp4": [
        "-stream_loop", "1", "-i", str(SAMPLES / "bigbuckbunny.mp4"), "-i", str(SAMPLES / "bikes.mp4"),
        "-filter_complex", f"[0:v]scale=1280:720,setsar=1[bg];[1:v]{FEW_CORNERS},scale=640:-2,format=yuva420p,"
        + HALF_SOFT_EDGES + "[in];[bg][in]overlay=560:60:shortest=1[out]", "-map", "[out]", "-t", "9",
        "-c:v", "libx264", "-crf", "26"],
    # The few-corners footage at half width bottom left over ONE frame of Big Buck Bunny held still, with
    # backdrop lines running on from two of its borders and two borders that fade part of the way: no
    # border run ends at a corner or level with another (provenance.insets, matcher version 17).
    "bikes_few_corners_inset_over_still.mp4": [
        "-ss", "1", "-i", str(SAMPLES / "bigbuckbunny.mp4"), "-i", str(SAMPLES / "bikes.mp4"),
        "-filter_complex", "[0:v]scale=1280:720,setsar=1,trim=end_frame=1," + BACKDROP_LINES
        + ",tpad=stop_mode=clone:stop_duration=10[bg];"
        f"[1:v]{FEW_CORNERS},scale=640:-2,format=yuva420p," + PART_SOFT_EDGES + "[in];"
        "[bg][in]overlay=32:416:shortest=1[out]", "-map", "[out]", "-t", "9", "-c:v", "libx264", "-crf", "26"],
    # The few-corners footage at half width top right over a plain grey backdrop, its vertical borders
    # showing in parts (SPLIT_SOFT_EDGES).
    "bikes_few_corners_inset_split_borders.mp4": [
        "-f", "lavfi", "-i", "color=c=0x808080:s=1280x720:r=25:d=10", "-i", str(SAMPLES / "bikes.mp4"),
        "-filter_complex", f"[1:v]{FEW_CORNERS},scale=640:-2,format=yuva420p," + SPLIT_SOFT_EDGES + "[in];"
        "[0:v][in]overlay=608:32:shortest=1[out]", "-map", "[out]", "-t", "9", "-c:v", "libx264", "-crf", "26"],
    "carphone_few_corners_inset_in_bbb.mp4": [
        "-stream_loop", "1", "-i", str(SAMPLES / "bigbuckbunny.mp4"), "-i", str(SAMPLES / "carphone_pristine.mp4"),
        "-filter_complex", f"[0:v]scale=1280:720,setsar=1[bg];[1:v]{FEW_CORNERS},scale=640:-2,format=yuva420p,"
        + HALF_SOFT_EDGES + "[in];[bg][in]overlay=560:60:shortest=1[out]", "-map", "[out]", "-t", "9",
        "-c:v", "libx264", "-crf", "26"],
}


@pytest.fixture(scope="session")
def derived(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Path of a derived copy, made with ffmpeg on first use (never committed)."""
    root = tmp_path_factory.mktemp("derived")

    def get(name: str) -> Path:
        out = root / name
        if not out.exists():
            ffmpeg(*DERIVED[name], str(out))
        return out

    return get


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(autouse=True)
def index_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user cache folder, where a PostgreSQL library's on-disk index goes (provenance.diskindex):
    each test's own, never the real one."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Makes fresh, empty databases for one test: new_database("sqlite") or ("postgresql") -> URL.
    PostgreSQL ones are dropped after the test; without a server the test is skipped (fails in CI)."""
    made: list[tuple[PgServer, str]] = []
    counter = itertools.count()

    def make(backend: str) -> str:
        if backend == "sqlite":
            n = next(counter)
            return f"sqlite:///{tmp_path / ('library.db' if n == 0 else f'library{n}.db')}"
        assert backend == "postgresql", backend
        server = request.getfixturevalue("pg_server")
        url = server.create_database()
        made.append((server, url))
        return url

    yield make
    for server, url in made:
        server.drop_database(url)


@pytest.fixture(params=[pytest.param(b, marks=getattr(pytest.mark, b)) for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that uses a database runs once on SQLite and once on PostgreSQL."""
    return request.param


@pytest.fixture
def settings(backend: str, new_database: Callable[[str], str], tmp_path: Path) -> Settings:
    """A fresh, empty library: its own database (SQLite file or PostgreSQL database) and evidence store."""
    return Settings(db_url=new_database(backend), store_dir=tmp_path / "evidence")


@pytest.fixture
def row_counts(settings: Settings) -> Callable[[], dict[str, int]]:
    def counts() -> dict[str, int]:
        engine = connect(settings.db_url)
        ensure_schema(engine)
        with session_scope(engine) as session:
            return repository.row_counts(session=session)

    return counts


@pytest.fixture
def run(settings, monkeypatch):
    """The real CLI in-process on the `settings` library: run("check", path, "--json") -> click Result."""
    monkeypatch.setenv("PROVENANCE_DB", settings.db_url)
    monkeypatch.setenv("PROVENANCE_STORE", str(settings.store_dir))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke
