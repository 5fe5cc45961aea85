"""The wheel installs one top-level package, and `provenance db upgrade` works from it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_wheel_has_no_top_level_db_or_migrations_and_upgrades_a_database(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True)
    (wheel,) = (tmp_path / "dist").glob("provenance-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"provenance"}
    assert "provenance/migrations/env.py" in names
    assert "provenance/migrations/script.py.mako" in names
    assert any(n.startswith("provenance/migrations/versions/0001") for n in names)
    assert "provenance/db/models.py" in names
    assert {"provenance/schemas/report.v1.schema.json", "provenance/schemas/report.v2.schema.json"} <= set(names)
    assert {"provenance/reporting/templates/base.html.j2", "provenance/reporting/templates/check.html.j2",
            "provenance/reporting/templates/check_section.html.j2"} <= set(names)

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    db = tmp_path / "wheel.db"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import provenance; "
            "assert provenance.__file__.startswith(sys.argv[1]), provenance.__file__; "
            "from provenance.cli import main; sys.argv = ['provenance', 'db', 'upgrade', '--db', sys.argv[2]]; main()")
    out = subprocess.run([sys.executable, "-c", code, str(target), f"sqlite:///{db}"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "database at" in out.stdout and db.stat().st_size > 0

    # Reports find their templates and schema inside the installed package.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from provenance.reporting import html, jsonout; "
            "assert html.__file__.startswith(sys.argv[1]); html.environment().get_template('check.html.j2'); "
            "print(jsonout.schema()['$id'])")
    out = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "urn:provenance:report:v2"
