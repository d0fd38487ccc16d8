"""Backups taken while the database is in use, restored, and compared with what was there."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import DemoFiller
from voronka.cli import app
from voronka.demo import DemoOptions


def _funnel(runner: CliRunner, db_url: str) -> dict[str, object]:
    answer = runner.invoke(app, ["--db", db_url, "funnel", "--by", "source", "--format", "json"])
    assert answer.exit_code == 0, answer.stderr
    data: dict[str, object] = json.loads(answer.stdout)
    return data


def test_a_backup_restores_exactly_what_was_there(db_url: str, fill_demo: DemoFiller, tmp_path: Path) -> None:
    runner = CliRunner()
    fill_demo(db_url, DemoOptions(leads=400))
    before = _funnel(runner, db_url)
    target = tmp_path / "backups" / "voronka.backup"
    made = runner.invoke(app, ["--db", db_url, "--lang", "en", "backup", str(target)])
    assert made.exit_code == 0, made.stderr
    assert target.stat().st_size > 0
    assert not list(target.parent.glob("*.partial"))
    source = tmp_path / "more.csv"
    source.write_text("id,created_at,stage\nextra-1,2026-03-01,Заявка\n", encoding="utf-8")
    assert runner.invoke(app, ["--db", db_url, "import", "deals", str(source)]).exit_code == 0
    assert _funnel(runner, db_url) != before
    restored = runner.invoke(app, ["--db", db_url, "--lang", "en", "restore", str(target), "--yes"])
    assert restored.exit_code == 0, restored.stderr
    assert _funnel(runner, db_url) == before


def test_a_bad_backup_file_is_a_one_line_error(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["--db", db_url, "init", "--stages", "Lead,Won"])
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup at all" * 100)
    for args in (["restore", str(junk), "--yes"], ["restore", str(tmp_path / "missing"), "--yes"]):
        answer = runner.invoke(app, ["--db", db_url, "--lang", "en", *args])
        assert answer.exit_code == 1
        assert answer.stderr.startswith("Error: Backup or restore failed")
        assert len(answer.stderr.strip().splitlines()) == 1
    assert runner.invoke(app, ["--db", db_url, "funnel"]).exit_code == 0  # still usable


@pytest.mark.postgres
def test_without_pg_dump_the_error_says_what_to_install(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    answer = CliRunner().invoke(app, ["--db", postgres_url, "--lang", "en", "backup", str(tmp_path / "x.backup")])
    assert answer.exit_code == 1
    assert "pg_dump is not installed" in answer.stderr


def test_sqlite_backup_while_a_writer_holds_the_database(tmp_path: Path, fill_demo: Callable[..., None]) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path / 'live.db'}"
    from voronka.db import open_database

    open_database(url).dispose()
    fill_demo(url, DemoOptions(leads=300))
    writer = sqlite3.connect(tmp_path / "live.db", timeout=30)
    writer.execute("BEGIN")
    writer.execute("UPDATE accounts SET name = name")  # an open write transaction, as a running app has
    answer = CliRunner().invoke(app, ["--db", url, "backup", str(tmp_path / "copy.db")])
    writer.rollback()
    writer.close()
    assert answer.exit_code == 0, answer.stderr
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("SELECT count(*) FROM deals").fetchone()[0] > 200
    copy.close()
