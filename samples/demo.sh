#!/usr/bin/env bash
# The main job on the bundled samples: install, add bikes.mp4 to a fresh library as the original
# post, then check a re-encoded, downscaled 5-second excerpt of it, reposted later, with an HTML report.
# The library is the embedded SQLite default, kept in ./.demo so the demo never touches your own.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PROVENANCE_HOME="$PWD/.demo"
rm -rf .demo && mkdir -p .demo
ffmpeg -v error -y -ss 3 -i samples/bikes.mp4 -t 5 -vf scale=480:-2 -c:v libx264 -crf 30 .demo/repost.mp4

echo "\$ provenance ingest samples/bikes.mp4 --url https://example.org/original-post --posted-at 2019-05-01T10:00:00Z"
.venv/bin/provenance ingest samples/bikes.mp4 --url https://example.org/original-post --posted-at 2019-05-01T10:00:00Z
echo
echo "\$ provenance check .demo/repost.mp4 --url https://example.org/repost --posted-at 2024-10-19T08:00:00Z --report .demo/report.html"
.venv/bin/provenance check .demo/repost.mp4 --url https://example.org/repost --posted-at 2024-10-19T08:00:00Z --report .demo/report.html
