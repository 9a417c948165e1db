"""The same flow on the default SQLite (WAL, immediate transactions): a nested pytest run of
test_flow.py with DATABASE_URL pointing at a SQLite file and its own Redis dbs."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_the_flow_passes_on_sqlite(tmp_path):
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        VAR_DIR=str(tmp_path),
        REDIS_TEST_DB="13",
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/platform/test_flow.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "--reuse-db",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "4 passed" in out.stdout and "locked" not in out.stdout + out.stderr
    assert (tmp_path / "test.sqlite3").stat().st_size > 0  # the run used SQLite (kept by --reuse-db)
