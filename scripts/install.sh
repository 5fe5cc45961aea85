#!/usr/bin/env bash
# Installs what provenance needs into ./.venv: ffmpeg (apt-get, when missing and we are root), for
# the test extra PostgreSQL too, then the package itself. Usage: scripts/install.sh [extras], e.g. scripts/install.sh test
set -euo pipefail
cd "$(dirname "$0")/.."

# One `apt-get update` per run, however many packages below need installing.
apt_updated=
apt_update_once() {
  [ -n "$apt_updated" ] || apt-get update -qq
  apt_updated=1
}

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
  else
    echo "error: ffmpeg is missing; install it (e.g. sudo apt-get install ffmpeg) and run again" >&2
    exit 1
  fi
fi

# The browser tests (tests/test_report.py: an HTML report; tests/test_serve_page.py: the desk of
# `provenance serve`, through Playwright) use Debian's headless Chromium, never a downloaded browser;
# only the test extra needs it. Without it those tests are skipped locally and fail under CI.
if [[ ",${1:-}," == *",test,"* ]] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium chromium-driver fonts-liberation >/dev/null
  else
    echo "note: chromium is missing, so the report browser test will be skipped" \
         "(install it: sudo apt-get install chromium chromium-driver)" >&2
  fi
fi

# OpenSSL's command line, for the test suite only: tests/conftest_tsa.py runs `openssl ts -reply` as a
# real Time-Stamp Authority on 127.0.0.1. Without it the timestamp tests are skipped, or fail when CI is set.
if [[ ",${1:-}," == *",test,"* ]] && ! command -v openssl >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null
  else
    echo "note: openssl is missing, so the timestamp tests will be skipped (sudo apt-get install openssl)" >&2
  fi
fi

# PostgreSQL, for the test suite only: tests/conftest_pg.py starts a throwaway server from Debian's
# binaries (/usr/lib/postgresql/*/bin). Without it the PostgreSQL tests are skipped, or fail when CI is set.
if [ "${1:-}" = test ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt_update_once
    # The cluster the package would create and start is not used: the tests make their own.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  elif [ -n "${CI:-}" ]; then
    echo "error: PostgreSQL is missing and CI is set; install it (e.g. sudo apt-get install postgresql)" >&2
    exit 1
  else
    echo "note: PostgreSQL is not installed, so its tests will be skipped (sudo apt-get install postgresql)" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv

# Fixed-camera footage for the tests of static-camera matching (tests/test_static_camera.py): two
# recordings by one fixed camera, minutes apart, shipped in the PyPI wheel of idtrackerai 6.0.14
# (GPL-3.0-or-later; used here as test data, never committed). Without them those tests are skipped,
# or fail when CI is set.
MEDIA=tests/.media
if [[ ",${1:-}," == *",test,"* ]] && ! [ -f "$MEDIA/idtrackerai_test_B.avi" ]; then
  wheel_sha=301627dc5a203d9a5e5aa79be3f56754ce1cffc312ae0308834d7d1b0e93d854
  tmp=$(mktemp -d)
  if .venv/bin/python -m pip download -q --no-deps idtrackerai==6.0.14 -d "$tmp" >/dev/null 2>&1 &&
     [ "$(sha256sum "$tmp"/idtrackerai-6.0.14-py3-none-any.whl | cut -d' ' -f1)" = "$wheel_sha" ]; then
    mkdir -p "$MEDIA"
    .venv/bin/python - "$tmp/idtrackerai-6.0.14-py3-none-any.whl" "$MEDIA" <<'PYEOF'
import sys, zipfile
from pathlib import Path
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("test_A.avi", "test_B.avi"):
        (Path(sys.argv[2]) / f"idtrackerai_{name}").write_bytes(z.read(f"idtrackerai/data/{name}"))
PYEOF
  else
    echo "note: could not fetch the fixed-camera test footage (idtrackerai 6.0.14 wheel); its tests will be skipped" >&2
  fi
  rm -rf "$tmp"
fi
# pip's and setuptools' chatter goes to a log, shown only when the install fails.
log=.venv/install.log
if ! { .venv/bin/python -m pip install -q --upgrade pip &&
       .venv/bin/python -m pip install -q -e ".${1:+[$1]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "error: installing provenance into .venv failed (log above, also in $log)" >&2
  exit 1
fi
