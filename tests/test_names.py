"""One name per concept: verdicts and transforms are StrEnums whose values are the stored and printed
text, and the shared wording and yt-dlp readers say what each copy used to say."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from provenance import frames, match, motion, pipeline
from provenance.records import Transform, Verdict
from provenance.reporting.results import check_summary, check_to_json
from provenance.reporting.text import iso
from provenance.utc import parse_iso
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


def test_one_iso_for_json_and_for_prose():
    half = datetime(2024, 10, 19, 8, 0, 0, 500_000, tzinfo=UTC)
    assert (iso(half), iso(half, whole_seconds=True), iso(None)) == ("2024-10-19T08:00:00.500Z", "2024-10-19T08:00:00Z",
                                                                    None)
    assert parse_iso("2024-10-19T10:00:00+02:00") == parse_iso("2024-10-19t08:00:00z") == half.replace(microsecond=0)
    assert parse_iso("2024-10-19 08:00") == half.replace(microsecond=0)  # no zone: UTC


def test_str_or_none():
    assert [str_or_none(v) for v in (None, "", 0, "x", 12)] == [None, None, "0", "x", "12"]


# --- one name per concept, in the code itself --------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "provenance"
# The installed package: provenance/, and db/ and migrations/, installed as provenance.db and
# provenance.migrations.
SOURCES = [p for folder in (PACKAGE, REPO / "db", REPO / "migrations") for p in sorted(folder.rglob("*.py"))]
MODULE_NAMES = {p.stem for p in SOURCES} | {"db", "migrations", "reporting"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"


def test_each_class_of_the_package_has_one_name_of_its_own():
    """Five Clips, four Matches, two Signals and two FirstSeens once made a reader guess which was meant.
    A report's own records are ...View, the clip a run works on AnalysedClip, the library's ReferenceClip
    (matching) and StoredClip (reports). db/ is left out: its ORM classes are the tables, named after the
    records they store, and never leave it."""
    defined: dict[str, list[str]] = {}
    for path in (p for p in SOURCES if p.is_relative_to(PACKAGE)):
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ClassDef):
                defined.setdefault(node.name, []).append(_where(path, node))
    assert {name: places for name, places in defined.items() if len(places) > 1} == {}
    for name in ("Clip", "FirstSeen", "Match", "Post", "Signal"):
        assert len(defined.get(name, [])) <= 1, name


def _private_uses(tree: ast.Module) -> list[ast.AST]:
    """Imports of another module's `_name`, and `module._name` through an imported module."""
    found: list[ast.AST] = []
    module_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            module_aliases |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(node)
                elif a.name in MODULE_NAMES:
                    module_aliases.add(a.asname or a.name)
    module_aliases -= {"os", "sys"}  # os._exit, sys._getframe: the standard library's own
    found += [node for node in ast.walk(tree)
              if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id in module_aliases and node.attr.startswith("_") and not node.attr.startswith("__")]
    return found


def _spelled(tree: ast.Module, words: set[str]) -> list[ast.Constant]:
    """String literals among `words` used as values (compared, passed, returned). The plain words may
    still name things: a JSON field or count ({"reused": n}, c["reused"]), a SQL label, a column heading."""
    naming: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            naming |= {id(k) for k in node.keys if k is not None}
        elif isinstance(node, ast.Subscript):
            naming.add(id(node.slice))
        elif isinstance(node, ast.FormattedValue):
            naming.add(id(node.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "label":
            naming |= {id(a) for a in node.args}
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in words and id(node) not in naming]


WORDS = {str(m) for m in Verdict} | {str(m) for m in Transform}


def test_no_module_reaches_for_another_modules_private_names():
    """A name with a leading underscore is its module's own: another module that needs it gets it made public."""
    assert [_where(path, node) for path in SOURCES for node in _private_uses(_tree(path))] == []


def test_verdicts_and_transforms_are_written_as_enum_members():
    """A verdict or transform spelled as a string (v == "reused") can drift from records.Verdict unseen."""
    assert [f"{_where(path, node)} {node.value!r}" for path in SOURCES if path != PACKAGE / "records.py"
            for node in _spelled(_tree(path), WORDS)] == []


def test_the_name_checks_find_what_they_look_for():
    code = ("from provenance.fetch import _one_line\n"
            "from provenance import fetch, records\n"
            "def f(v, counts):\n"
            "    fetch._classify(v)\n"
            "    return v == 'reused' or records.Verdict('no_match') or counts['reused'] or {'mirrored': 1}\n")
    tree = ast.parse(code)
    assert [n.lineno for n in _private_uses(tree)] == [1, 4]
    assert sorted(n.value for n in _spelled(tree, WORDS)) == ["no_match", "reused"]


def test_the_readme_states_the_matchers_numbers():
    """README said speeds 0.8-1.25 and 4 lines per reference while the code did 0.5-2.0 and 8. Each number
    it gives about matching is read here from the constant it describes."""
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    step = round(match.SPEEDS[1] - match.SPEEDS[0], 3)
    motion_speeds = sorted(motion.MOTION_SPEEDS)
    said = [
        f"keeps {frames.SAMPLE_FPS:g} frames a second",
        f"over {frames.FILL_WINDOW_FRAMES / frames.SAMPLE_FPS:g}-s stretches",
        "cut by " + " and ".join(f"{v.crop:.0%}" for v in frames.REFERENCE_VARIANTS if v.crop) + " per side",
        f"cut by {frames.QUERY_ZOOM:.1%} more",
        f"within {match.FRAME_MATCH_MAX_DISTANCE} bits of a query hash",
        f"speed {match.SPEEDS[0]:.1f} to {match.SPEEDS[-1]:.1f} in steps of {step:g}",
        f"beyond {match.COMMON_SPEEDS[0]:g}-{match.COMMON_SPEEDS[1]:g} the matched frames need a similarity "
        f"of at least {match.FAR_SPEED_MIN_SIMILARITY:g}",
        f"at least {match.MIN_MATCHED_FRAMES} frames ({match.MIN_MATCHED_FRAMES / frames.SAMPLE_FPS:g} s) on one line",
        f"at least {match.MIN_DISTINCT_FRAMES} different pictures",
        f"up to {match.MAX_LINES_PER_REFERENCE} lines per reference",
        f"about as well {match.AMBIGUITY_OFF_LINE_S:g} s away",
        f"({match.MAX_AMBIGUOUS_SHARE:.0%} or more of its frames match the reference",
        f"a {motion.MOTION_GRID}x{motion.MOTION_GRID} grid",
        "at speeds " + ", ".join(f"{s:g}" for s in motion_speeds[:-1]) + f" and {motion_speeds[-1]:g}",
        f"now {match.MATCHER_VERSION})",
        f"change the picture by more than {frames.FAST_STEP_BITS} bits",
        f"(up to {frames.BETWEEN_FPS:g} a second)",
        f"a line of fewer than {match.WEAK_LINE_MIN_FRAMES} frames whose median pair is {match.WEAK_LINE_BITS} bits",
        f"fewer than {match.MIN_MATCHED_FRAMES} usable frames at {frames.SAMPLE_FPS:g} fps",
        f"span at least {match.SCENE_MIN_S:g} s, cover {match.STILL_SCENE_MIN_SHARE:.0%} of the query",
        f"shorter than {match.SCENE_MIN_S:g} s in either clip",
        f"({match.SCENE_MIN_SHARE:.0%} of the query's frames or",
        f"a strength (frames x similarity) of at least {match.REGION_MIN_STRENGTH:g}, about "
        f"{match.REGION_MIN_STRENGTH / frames.SAMPLE_FPS:g} s of frames",
        f"correlate (r {match.LINE_MOTION_MIN_CORRELATION:g} or more)",
        f"met only by lines of fewer than {match.WEAK_LINE_MIN_FRAMES} frames at a median of {match.LONE_LINE_BITS} bits",
        f"({match.LINE_MOTION_MIN_Z:g} standard deviations, where there is room to shift)",
    ]
    assert [s for s in said if s not in readme] == []
