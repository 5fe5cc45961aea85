"""export -> import moves a library between backends with nothing lost; bad input changes nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from provenance import pipeline
from provenance.db import audits, connect, export_library, import_library, session_scope, tokens
from provenance.db import models as orm
from provenance.errors import InputError, StoreError
from provenance.settings import Settings
from tests.conftest import SAMPLES
from tests.test_pipeline import EARLY, LATE


def _fill(settings: Settings, derived, tsa_url: str) -> None:
    """A library with a row in every table: clips, frames, sightings, checks, matches, segments, audits,
    timestamps (the check's clip stamped by the TSA at `tsa_url`), API tokens."""
    from dataclasses import replace

    pipeline.ingest(str(SAMPLES / "bikes.mp4"), settings=settings, post_url="https://a.example/original",
                    posted_at=EARLY)
    pipeline.ingest(str(SAMPLES / "carphone_pristine.mp4"), settings=settings)
    result = pipeline.check(str(derived("bikes_mirrored.mp4")), settings=replace(settings, tsa_url=tsa_url),
                            post_url="https://b.example/r", posted_at=LATE)
    assert result.verdict == "reused" and result.matches[0].segments
    # An audit that checked that post, so the audit tables are carried too.
    engine = connect(settings.db_url)
    with session_scope(engine) as s:
        audit_id = audits.create_audit(session=s, kind="urls", source="posts.txt", options={"since": None},
                                       key="k", title="posts", created_at=LATE, tool_version="test",
                                       posts=[("https://b.example/r", LATE, "a post")])
        (item,) = audits.pending_items(audit_id, session=s)
        assert audits.finish_item(item.item_id, session=s, check_id=result.check_id, at=LATE)
        # A token of `provenance serve`, carried as its hash like every other row.
        tokens.add_token("desk editor", "ab" * 32, at=EARLY, session=s)
        tokens.revoke_token("desk editor", at=LATE, session=s)
    engine.dispose()


def _rows(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, as the application reads them (aware datetimes, parsed JSON)."""
    engine = connect(url)
    with session_scope(engine) as s:
        out = {t.name: [tuple(r) for r in s.execute(select(t).order_by(*t.primary_key.columns))]
               for t in orm.Base.metadata.sorted_tables}
    engine.dispose()
    return out


def _no_tables(url: str) -> bool:
    from sqlalchemy import inspect

    engine = connect(url)
    try:
        return not inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _body(path: Path) -> list[bytes]:
    """The file without its header line (which names the source backend and the export time)."""
    with gzip.open(path) as f:
        return f.read().splitlines()[1:]


@pytest.mark.postgresql
def test_sqlite_to_postgresql_to_sqlite_loses_nothing(new_database, derived, tmp_path, tsa):
    first = Settings(db_url=new_database("sqlite"), store_dir=tmp_path / "evidence")
    _fill(first, derived, tsa.url)
    original = _rows(first.db_url)
    assert all(original.values()), {t: len(r) for t, r in original.items()}

    pg, back = new_database("postgresql"), new_database("sqlite")
    counts = export_library(first.db_url, tmp_path / "a.jsonl.gz")
    assert counts == {t: len(r) for t, r in original.items()}
    assert import_library(pg, tmp_path / "a.jsonl.gz") == counts
    assert _rows(pg) == original
    export_library(pg, tmp_path / "b.jsonl.gz")
    import_library(back, tmp_path / "b.jsonl.gz")
    assert _rows(back) == original
    # Byte for byte the same rows whichever backend wrote them: hashes, times and floats exact.
    assert _body(tmp_path / "a.jsonl.gz") == _body(tmp_path / "b.jsonl.gz")
    hashes = [r[4] for r in original["frames"]]
    assert any(h < 0 for h in hashes)  # the 64-bit hashes with the top bit set came through too
    assert all(r[-1].tzinfo is not None and r[-1].microsecond for r in original["clips"])

    # The imported library is a working one: the ids continue after the imported ones.
    on_pg = Settings(db_url=pg, store_dir=first.store_dir)
    again = pipeline.check(str(derived("bikes_reencoded_360w.mp4")), settings=on_pg, posted_at=LATE)
    assert again.verdict == "reused" and len(again.matches) == 2
    assert again.first_seen.url == "https://a.example/original"
    assert again.check_id == max(r[0] for r in original["checks"]) + 1


def test_import_refuses_a_non_empty_database_and_changes_nothing(settings, tmp_path):
    pipeline.ingest(str(SAMPLES / "carphone_pristine.mp4"), settings=settings, post_url="https://a.example/1")
    export_library(settings.db_url, tmp_path / "x.jsonl.gz")
    before = _rows(settings.db_url)
    with pytest.raises(StoreError, match="not empty") as e:
        import_library(settings.db_url, tmp_path / "x.jsonl.gz")
    assert "\n" not in e.value.message
    assert _rows(settings.db_url) == before


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "missing_end", "wrong_count", "end_not_counts", "not_gzip", "newer_schema"])
def test_a_damaged_file_imports_nothing(settings, new_database, tmp_path, damage):
    source = Settings(db_url=new_database("sqlite"), store_dir=tmp_path / "evidence")
    pipeline.ingest(str(SAMPLES / "carphone_pristine.mp4"), settings=source, post_url="https://a.example/1")
    good = tmp_path / "good.jsonl.gz"
    export_library(source.db_url, good)
    lines = gzip.open(good).read().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl.gz"
    if damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "corrupt":
        data = bytearray(good.read_bytes())
        for i in range(len(data) // 2, len(data) // 2 + 16):
            data[i] ^= 0xFF
        bad.write_bytes(bytes(data))
    elif damage == "missing_end":
        bad.write_bytes(gzip.compress(b"".join(lines[:-1])))
    elif damage == "wrong_count":
        end = json.loads(lines[-1])
        end["end"]["frames"] += 1
        bad.write_bytes(gzip.compress(b"".join(lines[:-1]) + json.dumps(end).encode() + b"\n"))
    elif damage == "end_not_counts":
        bad.write_bytes(gzip.compress(b"".join(lines[:-1]) + b'{"end": 5}\n'))
    elif damage == "not_gzip":
        bad.write_bytes(b"".join(lines))
    else:
        header = json.loads(lines[0])
        header["schema_revision"] = "9999"
        bad.write_bytes(gzip.compress(json.dumps(header).encode() + b"\n" + b"".join(lines[1:])))
    with pytest.raises(InputError) as e:
        import_library(settings.db_url, bad)
    assert "\n" not in e.value.message and str(bad) in e.value.message
    assert _no_tables(settings.db_url)  # all or nothing, the schema included
    # The same database takes the good file afterwards.
    import_library(settings.db_url, good)
    assert _rows(settings.db_url) == _rows(source.db_url)


def test_rows_the_database_rejects_import_nothing(settings, new_database, tmp_path):
    source = Settings(db_url=new_database("sqlite"), store_dir=tmp_path / "evidence")
    pipeline.ingest(str(SAMPLES / "carphone_pristine.mp4"), settings=source, post_url="https://a.example/1")
    good = tmp_path / "good.jsonl.gz"
    export_library(source.db_url, good)
    lines = gzip.open(good).read().splitlines(keepends=True)
    start = lines.index(b'{"table":"frames"}\n')
    row = json.loads(lines[start + 1])
    row[1] = 999  # clip_id of a clip that is not in the file
    lines[start + 1] = json.dumps(row).encode() + b"\n"
    bad = tmp_path / "dangling.jsonl.gz"
    bad.write_bytes(gzip.compress(b"".join(lines)))
    with pytest.raises(StoreError, match="nothing was imported") as e:
        import_library(settings.db_url, bad)
    assert "\n" not in e.value.message
    assert _no_tables(settings.db_url)
