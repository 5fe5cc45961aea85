"""Hostile and careless media (issue 11): clips too poor to tell, odd names, noisy decoders, huge frames.

Each test runs the real CLI (in process, or as a subprocess where stderr or signals matter) on media
made with the real ffmpeg."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import text

from provenance.db import connect, ensure_schema
from provenance.errors import FetchError
from provenance.fetch import DownloadLimits, fetch
from provenance.folder import WORKER_MEMORY_BYTES, FolderResult, available_memory, ingest_folder, workers_for
from provenance.match import MIN_MATCHED_FRAMES
from tests.conftest import SAMPLES, ffmpeg

# These tests are about media, not storage: SQLite is enough (the `backend` fixture, overridden).
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])
_SCRIPT = Path(sys.executable).parent / "provenance"  # the installed console script
PROVENANCE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "provenance.cli"]


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


def cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    """The installed command as a user runs it: its own process, a UTF-8 terminal locale."""
    # OPENCV_* left out: the command's own defaults for the decoders' logging are under test too.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    return subprocess.run([*PROVENANCE, *args], env={**inherited, "LC_ALL": "C.UTF-8", **env},
                          capture_output=True, timeout=timeout)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {"PROVENANCE_DB": f"sqlite:///{tmp_path / 'library.db'}", "PROVENANCE_STORE": str(tmp_path / "evidence")}


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8_is_ingested_checked_and_shown_escaped(tmp_path: Path, cli_env):
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9 clip.mp4")  # Latin-1 bytes, as an old camera or a Windows share writes them
    shutil.copyfile(SAMPLES / "bikes.mp4", folder / name)
    shutil.copyfile(SAMPLES / "carphone_pristine.mp4", folder / "plain.mp4")

    first = cli("ingest", str(folder), env=cli_env)
    assert first.returncode == 0, first.stderr.decode(errors="replace")
    assert first.stdout.decode().startswith("2 ingested"), first.stdout
    again = cli("ingest", str(folder), env=cli_env)
    assert again.returncode == 0 and again.stdout.decode().startswith("0 ingested")
    assert "caf\\xe9 clip.mp4: already in the library" in again.stdout.decode()

    other = tmp_path / os.fsdecode(b"\xff\xfe.mp4")
    shutil.copyfile(SAMPLES / "bikes.mp4", other)
    single = cli("ingest", str(other), env=cli_env)
    assert single.returncode == 0, single.stderr.decode(errors="replace")
    checked = cli("check", str(folder / name), "--json", env=cli_env)
    assert checked.returncode == 0, checked.stderr.decode(errors="replace")
    assert json.loads(checked.stdout)["post"]["title"] == "caf\\xe9 clip.mp4"
    missing = cli("check", str(folder / os.fsdecode(b"gone\xe9.mp4")), env=cli_env)
    assert missing.returncode == 2 and b"gone\\xe9.mp4" in missing.stderr and b"Traceback" not in missing.stderr


@pytest.mark.slow
def test_a_damaged_file_gives_one_line_and_no_decoder_chatter(tmp_path: Path, cli_env):
    faststart = tmp_path / "faststart.mp4"  # the index first, so a cut file still probes and starts decoding
    ffmpeg("-i", str(SAMPLES / "bikes.mp4"), "-c", "copy", "-movflags", "+faststart", str(faststart))
    data = faststart.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[:len(data) // 2])
    damaged = bytearray(data)  # bytes overwritten through the middle: decodes, with errors on many frames
    for i in range(len(data) // 3, 2 * len(data) // 3, 997):
        damaged[i] ^= 0x5A
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(damaged))

    cut = cli("check", str(truncated), "--no-record", env=cli_env)
    assert cut.returncode == 4
    assert cut.stderr.decode().splitlines() == [cut.stderr.decode().strip()]
    assert cut.stderr.startswith(b"error: truncated video")
    noisy = cli("check", str(corrupt), "--no-record", env=cli_env)
    assert noisy.returncode in (0, 4)
    assert b"[h264" not in noisy.stderr and b"@ 0x" not in noisy.stderr, noisy.stderr[:500]


def test_a_whole_video_whose_subtitles_run_on_is_not_taken_for_a_truncated_one(tmp_path: Path, cli_env):
    # 3 s of pictures and a subtitle track to 8 s: the container says 8 s, the video stream 3 s. The
    # held-out corpus's flash-mob clip (a Matroska file with a data stream past its pictures) was refused so.
    subs = tmp_path / "subs.srt"
    subs.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n\n2\n00:00:07,000 --> 00:00:08,000\nbye\n")
    clip = tmp_path / "subtitled.mp4"
    ffmpeg("-t", "3", "-i", str(SAMPLES / "bikes.mp4"), "-i", str(subs), "-map", "0:v", "-map", "1",
           "-c:v", "libx264", "-c:s", "mov_text", str(clip))
    checked = cli("check", str(clip), "--no-record", "--json", env=cli_env)
    assert checked.returncode == 0, checked.stderr.decode(errors="replace")
    assert json.loads(checked.stdout)["verdict"] == "no_match"


def test_a_long_url_downloads_under_a_name_of_ours(media_server, tmp_path: Path):
    # yt-dlp named its files after the video id, which the generic extractor takes from the URL's
    # last path segment: 250 characters (the most a served file name can have) plus ".mp4.part"
    # went past the 255 a file name may have, and the check failed with "File name too long".
    long_name = "clip-" + "x" * 245 + ".mp4"
    shutil.copyfile(SAMPLES / "bikes.mp4", media_server.root / long_name)
    url = media_server.url(long_name) + "?utm_source=" + "q" * 400
    media = fetch(url, store_dir=tmp_path / "evidence")
    assert media.sha256 == hashlib.sha256((SAMPLES / "bikes.mp4").read_bytes()).hexdigest()
    assert media.path.name == f"{media.sha256}.mp4"
    assert [p.name for p in (tmp_path / "evidence").iterdir() if p.name.startswith(".")] == []


class _DripHandler(BaseHTTPRequestHandler):
    """Promises a 10 MB video, then sends 10 bytes every 0.1 s (100 B/s) for at most DRIP_FOR_S."""

    DRIP_FOR_S = 20.0
    BURST = 0  # bytes sent at once before the drip

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(10_000_000))
        self.end_headers()
        header = (SAMPLES / "bikes.mp4").read_bytes()
        ends = time.monotonic() + self.DRIP_FOR_S
        sent = self.BURST
        try:
            self.wfile.write(header[:sent])
            while time.monotonic() < ends:
                self.wfile.write(header[sent:sent + 10])
                self.wfile.flush()
                sent += 10
                time.sleep(0.1)
        except OSError:
            pass  # the client gave up: what the test wants

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class _BurstThenDripHandler(_DripHandler):
    """The first 4 kB at once (yt-dlp sees a video and starts its .part file), then the drip."""

    BURST = 4096


@pytest.fixture
def drip_url() -> Iterator[str]:
    yield from _serve(_DripHandler)


@pytest.fixture
def burst_drip_url() -> Iterator[str]:
    yield from _serve(_BurstThenDripHandler)


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("limits,said", [
    (DownloadLimits(deadline_s=60, min_rate=1000, rate_window_s=2), "slower than 1 kB/s"),
    (DownloadLimits(deadline_s=3, min_rate=0, rate_window_s=2), "took longer than 3 s"),
], ids=["too-slow", "deadline"])
def test_a_dripping_server_is_given_up_on_with_exit_3(drip_url, tmp_path: Path, limits, said):
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch(drip_url, store_dir=tmp_path / "evidence", limits=limits)
    assert time.monotonic() - started < 8, "gave up long after the limit"
    assert caught.value.exit_code == 3 and said in caught.value.message
    assert "127.0.0.1" in caught.value.message


@pytest.mark.slow
@sqlite_only
def test_a_folder_with_a_frame_too_large_to_decode_ingests_the_rest(run, tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(SAMPLES / "bikes.mp4", folder / "a_good.mp4")
    # 8000x8000 (64 MP): a decoder takes ~0.9 GB for it, and workers die of it when memory is short.
    # 0.2 s of flat colour keeps the file at ~0.2 MB.
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=8000x8000:d=0.2:r=10", "-c:v", "libx264", "-preset", "ultrafast",
           str(folder / "b_huge.mp4"))
    result = run("ingest", str(folder), "--workers", "2")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 ingested"), result.output
    assert "1 failed" in result.output
    assert re.search(r"failed +\S*b_huge\.mp4: frames too large: 8000x8000", result.output), result.output
    alone = run("check", str(folder / "b_huge.mp4"))
    assert alone.exit_code == 4 and "frames too large" in alone.stderr


def _children() -> list[int]:
    mine = os.getpid()
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == mine:
                pids.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return pids


def _has_open(pid: int, names: set[str]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.path.basename(os.readlink(f"/proc/{pid}/fd/{fd}")) in names:
                return True
        except OSError:
            pass
    return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the worker through /proc (Linux)")
@sqlite_only
def test_a_worker_killed_on_a_file_marks_that_file_failed_and_the_run_goes_on(settings, tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(SAMPLES / "bikes.mp4", folder / "a_good.mp4")
    # The poison: any worker that opens it is killed (SIGKILL, as the OOM killer does), every time.
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=1280x720:d=20:r=25", "-c:v", "libx264", "-preset", "ultrafast",
           str(folder / "b_poison.mp4"))
    shutil.copyfile(SAMPLES / "carphone_pristine.mp4", folder / "c_good.mp4")
    poison_sha = hashlib.sha256((folder / "b_poison.mp4").read_bytes()).hexdigest()
    names = {"b_poison.mp4", f"{poison_sha}.mp4"}
    outcome: list[object] = []

    def ingest() -> None:
        try:
            outcome.append(ingest_folder(folder, settings=settings, workers=2))
        except BaseException as e:  # noqa: BLE001 - shown by the assertion below
            outcome.append(e)

    thread = threading.Thread(target=ingest)
    thread.start()
    killed = 0
    deadline = time.monotonic() + 240
    while thread.is_alive() and time.monotonic() < deadline:
        for pid in _children():
            if _has_open(pid, names):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.02)
    thread.join(timeout=30)
    (result,) = outcome
    assert isinstance(result, FolderResult), result
    assert killed >= 1
    by_name = {f.path.name: f for f in result.files}
    assert by_name["a_good.mp4"].outcome == "ingested" and by_name["c_good.mp4"].outcome == "ingested"
    assert by_name["b_poison.mp4"].outcome == "failed"
    assert "decoder process died" in by_name["b_poison.mp4"].reason


@sqlite_only
def test_workers_are_capped_by_available_memory(settings, tmp_path: Path):
    assert workers_for(8, available_bytes=2 * WORKER_MEMORY_BYTES + 1) == 2
    assert workers_for(8, available_bytes=WORKER_MEMORY_BYTES // 2) == 1
    assert workers_for(3, available_bytes=None) == 3  # memory unknown: as asked
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(SAMPLES / "carphone_pristine.mp4", folder / "one.mp4")
    available = available_memory()
    assert available is not None and available > 0  # Linux: /proc/meminfo
    result = ingest_folder(folder, settings=settings, workers=100_000)
    assert result.workers == workers_for(100_000, available_bytes=available) < 100_000
    assert [f.outcome for f in result.files] == ["ingested"]


def _session_members(sid: int) -> list[int]:
    """Processes in session `sid` (the CLI started with start_new_session, and everything it started)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[3]) == sid:
                pids.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return pids


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _wait_for(condition, timeout: float) -> bool:  # noqa: ANN001
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.01)
    return False


def _workers_of(sid: int) -> list[int]:
    return [pid for pid in _session_members(sid) if b"spawn_main" in _cmdline(pid)]


def _ingest_three_samples(tmp_path: Path, cli_env: dict[str, str], *, output: int) -> subprocess.Popen:
    """The real CLI ingesting a folder of three samples with two workers, in a session of its own."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i, sample in enumerate(["bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"]):
        shutil.copyfile(SAMPLES / sample, folder / f"{i}_{sample}")
    return subprocess.Popen([*PROVENANCE, "ingest", str(folder), "--workers", "2"], start_new_session=True,
                            env={**os.environ, "LC_ALL": "C.UTF-8", **cli_env}, stdout=output, stderr=output)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="watches processes through /proc (Linux)")
def test_ctrl_c_while_a_folder_ingest_starts_gives_one_line_and_exit_130(tmp_path: Path, cli_env):
    proc = _ingest_three_samples(tmp_path, cli_env, output=subprocess.PIPE)
    try:
        # Ctrl-C as a terminal sends it: to the whole process group, while the workers are starting.
        assert _wait_for(lambda: _workers_of(proc.pid), 60), "no workers started"
        time.sleep(0.5)  # into their imports, where a KeyboardInterrupt printed a traceback from each
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
    assert proc.returncode == 130, err.decode(errors="replace")[-2000:]
    assert len(lines) == 1 and lines[0].startswith("interrupted"), lines[:20]
    assert _wait_for(lambda: _session_members(proc.pid) == [], 10), "workers outlived the command"


def _evidence(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*") if p.is_file()) if store.exists() else []


@sqlite_only
def test_no_evidence_copy_stays_after_no_record_a_failed_check_or_a_database_error(run, settings, tmp_path: Path):
    store = settings.store_dir
    # --no-record: nothing recorded, so nothing kept.
    assert run("check", str(SAMPLES / "carphone_pristine.mp4"), "--no-record").exit_code == 0
    assert _evidence(store) == []
    # A media failure after the copy was made (too short to tell) and one while reading it (truncated).
    short = tmp_path / "short.mp4"
    _one_frame(short)
    assert run("check", str(short)).exit_code == 4
    data = (SAMPLES / "bikes.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    ffmpeg("-i", str(SAMPLES / "bikes.mp4"), "-c", "copy", "-movflags", "+faststart", str(tmp_path / "fs.mp4"))
    truncated.write_bytes((tmp_path / "fs.mp4").read_bytes()[:len(data) // 2])
    assert run("check", str(truncated)).exit_code == 4
    assert run("ingest", str(truncated)).exit_code == 4
    assert _evidence(store) == []
    # A database error while the check is written: a real SQLite trigger refuses the insert.
    engine = connect(settings.db_url)
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON checks BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    failed = run("check", str(SAMPLES / "carphone_pristine.mp4"))
    assert failed.exit_code == 5, failed.output
    assert _evidence(store) == []
    # What is recorded keeps its copy, and a --no-record check of it leaves that copy alone.
    assert run("ingest", str(SAMPLES / "bikes.mp4"), "--quiet").exit_code == 0
    kept = _evidence(store)
    assert len(kept) == 1
    assert run("check", str(SAMPLES / "bikes.mp4"), "--no-record").exit_code == 0
    assert _evidence(store) == kept


def _fetch_dirs(store: Path) -> set[Path]:
    return set(store.glob(".fetch-*")) if store.exists() else set()


def _start_check(url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*PROVENANCE, "check", url], start_new_session=True,
                            env={**os.environ, "LC_ALL": "C.UTF-8", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _downloading(store: Path, before: set[Path]) -> Path | None:
    """The new download folder once its .part file is there."""
    for d in _fetch_dirs(store) - before:
        if any(p.name.endswith(".part") for p in d.iterdir()):
            return d
    return None


@pytest.mark.slow
def test_downloads_killed_midway_leave_nothing_once_the_next_fetch_starts(burst_drip_url, tmp_path: Path,
                                                                          cli_env):
    drip_url = burst_drip_url
    store = Path(cli_env["PROVENANCE_STORE"])
    killed = _start_check(drip_url, cli_env)
    try:
        assert _wait_for(lambda: _downloading(store, set()) is not None, 30), "the download never started"
        dead = _downloading(store, set())
        killed.kill()  # SIGKILL: no clean-up of its own
        killed.wait(timeout=10)
        assert dead.exists()
        # SIGTERM: the command cleans up after itself, with one line and 143.
        termed = _start_check(drip_url, cli_env)
        assert _wait_for(lambda: _downloading(store, {dead}) is not None, 30)
        gone = _downloading(store, {dead})
        termed.terminate()
        _, err = termed.communicate(timeout=30)
        assert termed.returncode == 143 and err.decode().startswith("interrupted"), err.decode()[-2000:]
        assert not gone.exists()
        # A download still running is never touched, however old its folder looks.
        alive = _start_check(drip_url, cli_env)
        try:
            assert _wait_for(lambda: _downloading(store, {dead}) is not None, 30)
            running = _downloading(store, {dead})
            long_ago = time.time() - 3600
            for d in (dead, running):
                os.utime(d, (long_ago, long_ago))
            checked = cli("check", str(SAMPLES / "carphone_pristine.mp4"), "--no-record", env=cli_env)
            assert checked.returncode == 0, checked.stderr
            assert not dead.exists() and running.exists()
        finally:
            alive.kill()
            alive.wait(timeout=10)
    finally:
        killed.kill()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="watches processes through /proc (Linux)")
def test_workers_end_when_the_folder_ingest_is_killed(tmp_path: Path, cli_env):
    proc = _ingest_three_samples(tmp_path, cli_env, output=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: _workers_of(proc.pid), 60), "no workers started"
        time.sleep(2)  # past their start-up, into their first files
    finally:
        proc.kill()  # SIGKILL: the command gets no chance to stop them itself
        proc.wait(timeout=10)
    left = _wait_for(lambda: not _workers_of(proc.pid), 15)
    leftovers = _workers_of(proc.pid)
    for pid in leftovers:  # started by this test: end them whatever the outcome
        os.kill(pid, signal.SIGKILL)
    assert left, f"workers {leftovers} outlived their parent"
