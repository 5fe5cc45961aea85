"""One name per concept: verdicts and transforms are StrEnums whose values are the stored and printed
text, and the shared wording and yt-dlp readers say what each copy used to say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from provenance import pipeline
from provenance.records import Transform, Verdict
from provenance.reporting.results import check_summary, check_to_json
from provenance.wording import gap_words, human_size
from provenance.ytinfo import info_day, info_time, info_timestamp, str_or_none
from tests.conftest import SAMPLES

SCHEMAS = Path(__file__).resolve().parent.parent / "provenance" / "schemas"


def _enums(node: object, key: str) -> list[set[str]]:
    """Every `enum` listed under `key` (directly or for its items) anywhere in a JSON schema."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, dict):
                enum = v.get("enum") or (v.get("items") or {}).get("enum")
                if enum:
                    found.append({e for e in enum if e is not None})
            found += _enums(v, key)
    elif isinstance(node, list):
        for v in node:
            found += _enums(v, key)
    return found


def test_the_json_schemas_list_exactly_the_enum_values():
    verdicts, transforms = [], []
    for schema in SCHEMAS.glob("*.json"):
        doc = json.loads(schema.read_text())
        verdicts += _enums(doc, "verdict")
        transforms += _enums(doc, "transforms")
    assert verdicts and transforms
    assert all(v == {str(m) for m in Verdict} for v in verdicts)
    assert all(t == {str(m) for m in Transform} for t in transforms)


def test_members_are_written_as_their_plain_values():
    assert json.dumps({"verdict": Verdict.EARLIEST_KNOWN, "transforms": [Transform.PICTURE_IN_PICTURE]}) == \
        '{"verdict": "earliest_known", "transforms": ["picture_in_picture"]}'
    assert f"{Verdict.NO_MATCH}|{Transform.SPEED_CHANGED:>14}" == "no_match| speed_changed"
    assert ",".join([Transform.MIRRORED, Transform.CROPPED]) == "mirrored,cropped"
    # Text read back from the database finds the member's entry.
    assert {Verdict.REUSED: 1}["reused"] == 1 and "mirrored" == Transform.MIRRORED


def test_the_database_stores_the_plain_text(settings, derived):
    """PostgreSQL's driver would write an Enum by its name (REUSED); a StrEnum must go in as its value."""
    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://a.example/1",
                    posted_at=datetime(2019, 5, 1, tzinfo=UTC))
    result = pipeline.check(str(derived("bikes_mirrored.mp4")), settings=settings, post_url="https://b.example/2",
                            posted_at=datetime(2024, 10, 19, tzinfo=UTC))
    assert result.verdict is Verdict.REUSED and result.matches[0].transforms == (Transform.MIRRORED,)
    data = json.loads(check_to_json(result))
    assert data["verdict"] == "reused" and data["matches"][0]["transforms"] == ["mirrored"]
    assert check_summary(result).startswith("REUSED: ") and "[mirrored]" in check_summary(result)
    engine = pipeline.open_library(settings)
    try:
        with engine.connect() as conn:
            verdict = conn.execute(text("SELECT verdict FROM checks WHERE id = :i"), {"i": result.check_id}).scalar()
            transforms = conn.execute(text("SELECT transforms FROM matches WHERE check_id = :i"),
                                      {"i": result.check_id}).scalar()
    finally:
        engine.dispose()
    assert (verdict, transforms) == ("reused", "mirrored")


@pytest.mark.parametrize("n, words", [(0, "0 bytes"), (999, "999 bytes"), (1_234, "1.2 KB"), (1_250_000, "1.2 MB"),
                                      (3_400_000_000, "3.4 GB"), (5_000_000_000_000, "5.0 TB")])
def test_human_size(n, words):
    assert human_size(n) == words


@pytest.mark.parametrize("gap, words", [(timedelta(days=3, hours=5), "3 days"), (timedelta(days=2), "2 days"),
                                        (timedelta(hours=47, minutes=40), "48 hours"), (timedelta(hours=5), "5 hours")])
def test_gap_words(gap, words):
    assert gap_words(gap) == words


def test_info_times():
    stamp = datetime(2024, 10, 19, 8, 0, tzinfo=UTC)
    day = datetime(2024, 10, 18, tzinfo=UTC)
    both = {"timestamp": stamp.timestamp(), "upload_date": "20241018"}
    assert (info_timestamp(both), info_day(both), info_time(both)) == (stamp, day, stamp)
    assert info_time({"upload_date": "20241018"}) == day
    for bad in ({"timestamp": True}, {"timestamp": 1e20}, {"upload_date": "2024-10-18"}, {"upload_date": "20241399"},
                {}):
        assert info_time(bad) is None


def test_str_or_none():
    assert [str_or_none(v) for v in (None, "", 0, "x", 12)] == [None, None, "0", "x", "12"]
