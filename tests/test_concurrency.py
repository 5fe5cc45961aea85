"""Several real `provenance` processes on one library at once lose nothing and duplicate nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from provenance.db import connect, session_scope
from provenance.db import models as orm
from provenance.frames import REFERENCE_VARIANTS
from tests.conftest import SAMPLES

EARLY = "2019-05-01T10:00:00Z"


def _command() -> list[str]:
    script = Path(sys.executable).parent / "provenance"  # the installed console script
    return [str(script)] if script.exists() else [sys.executable, "-m", "provenance.cli"]


@pytest.mark.slow
def test_processes_checking_and_ingesting_overlapping_clips_at_once(settings, derived):
    bikes, mirrored, carphone = SAMPLES / "bikes.mp4", derived("bikes_mirrored.mp4"), SAMPLES / "carphone_pristine.mp4"
    jobs = [
        # The same clip and post from two processes: one clip, one sighting.
        ["ingest", str(bikes), "--url", "https://a.example/orig", "--posted-at", EARLY],
        ["ingest", str(bikes), "--url", "https://a.example/orig", "--posted-at", EARLY],
        # The same clip in another post: another sighting of it.
        ["ingest", str(bikes), "--url", "https://b.example/other"],
        # Two checks of one new clip in one post: one clip, one sighting, two checks.
        ["check", "--json", str(mirrored), "--url", "https://c.example/repost"],
        ["check", "--json", str(mirrored), "--url", "https://c.example/repost"],
        # One clip met by an ingest and a check at once, in one post.
        ["ingest", str(carphone), "--url", "https://e.example/1"],
        ["check", "--json", str(carphone), "--url", "https://e.example/1"],
    ]
    env = {**os.environ, "PROVENANCE_DB": settings.db_url, "PROVENANCE_STORE": str(settings.store_dir)}
    # All start together on an empty database: creating the schema is part of the race.
    procs = [subprocess.Popen([*_command(), *job, "--quiet"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for job in jobs]
    outputs = [p.communicate(timeout=300) for p in procs]
    for job, p, (out, err) in zip(jobs, procs, outputs, strict=True):
        assert p.returncode == 0, f"{job}: exit {p.returncode}: {err}"
    check_ids = {json.loads(out)["check_id"] for job, (out, _) in zip(jobs, outputs, strict=True)
                 if job[0] == "check"}

    engine = connect(settings.db_url)
    with session_scope(engine) as s:
        shas = s.scalars(select(orm.Clip.sha256)).all()
        sightings = s.execute(select(orm.Clip.sha256, orm.Sighting.url, orm.Sighting.posted_at)
                              .join(orm.Clip, orm.Clip.id == orm.Sighting.clip_id)).all()
        checks = s.execute(select(orm.Check.id, orm.Check.clip_id, orm.Check.sighting_id)).all()
        frames = s.execute(select(orm.Frame.clip_id, func.count(), func.count(func.distinct(orm.Frame.t)))
                           .group_by(orm.Frame.clip_id)).all()
        frame_keys = s.scalar(select(func.count()).select_from(
            select(orm.Frame.clip_id, orm.Frame.t, orm.Frame.variant).distinct().subquery()))
        total_frames = s.scalar(select(func.count()).select_from(orm.Frame))
    engine.dispose()

    assert len(shas) == len(set(shas)) == 3
    assert sorted((url for _, url, _ in sightings)) == [
        "https://a.example/orig", "https://b.example/other", "https://c.example/repost", "https://e.example/1"]
    assert len({(sha, url) for sha, url, _ in sightings}) == len(sightings)
    # Nothing lost: every check that reported an id is stored, with its clip and sighting.
    assert {c.id for c in checks} == check_ids and len(check_ids) == 3
    assert all(c.sighting_id is not None for c in checks)
    # Each clip's frames were written once and completely: every sampled time in every view.
    assert total_frames == frame_keys
    assert len(frames) == 3
    assert all(n == distinct_t * len(REFERENCE_VARIANTS) for _, n, distinct_t in frames)
    posted = {url: at for _, url, at in sightings}
    assert posted["https://a.example/orig"] is not None
