"""A killed process leaves the database usable: imports killed at several points, then re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from voronka.db import REPORT_INDEXES, make_engine, open_database
from voronka.models import Deal

BULK = 110_000  # above the size from which SQLite imports drop and rebuild the report indexes


def _write_deals(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("id,created_at,stage\n")
        for n in range(rows):
            handle.write(f"d{n},2026-{1 + n % 12:02d}-{1 + n % 28:02d} 10:00,Lead\n")


def _voronka(db_url: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "voronka", "--db", db_url, "--lang", "en", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _deals(db_url: str) -> int:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        count = int(connection.scalar(select(func.count()).select_from(Deal)) or 0)
    engine.dispose()
    return count


def _indexes(path: Path) -> set[str]:
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        names = set(connection.scalars(text("SELECT name FROM sqlite_master WHERE type = 'index'")))
    engine.dispose()
    return names


@pytest.mark.slow
def test_a_killed_large_import_leaves_a_database_the_next_import_completes(tmp_path: Path) -> None:
    db = tmp_path / "voronka.db"
    url = f"sqlite:///{db}"
    open_database(url).dispose()
    assert _voronka(url, "init", "--stages", "Lead,Won").wait(timeout=60) == 0
    source = tmp_path / "deals.csv"
    _write_deals(source, BULK)
    for delay in (0.8, 2.0, 3.5):  # reading, loading, and near the index rebuild
        process = _voronka(url, "import", "deals", str(source))
        time.sleep(delay)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        assert _deals(url) in (0, BULK)  # all or nothing, never a part
        assert set(REPORT_INDEXES) <= _indexes(db), f"report indexes lost after a kill at {delay} s"
    finished = _voronka(url, "import", "deals", str(source))
    _out, err = finished.communicate(timeout=300)
    assert finished.returncode == 0, err.decode()
    assert _deals(url) == BULK
    assert set(REPORT_INDEXES) <= _indexes(db)
    funnel = _voronka(url, "funnel", "--format", "json")
    assert funnel.wait(timeout=60) == 0


def test_a_database_left_without_its_report_indexes_is_repaired_when_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'voronka.db'}"
    engine = open_database(url)
    with engine.begin() as connection:
        for name in REPORT_INDEXES:
            connection.exec_driver_sql(f'DROP INDEX "{name}"')
    engine.dispose()
    open_database(url).dispose()
    assert set(REPORT_INDEXES) <= _indexes(tmp_path / "voronka.db")
