"""Backups taken while the database is in use, restored, and compared with what was there."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
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


@pytest.mark.postgres
def test_the_postgres_password_never_reaches_a_command_line(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_dump and pg_restore get the password in their environment: their argv, which every user of
    the machine can read in /proc for the whole run, holds none. Each tool is reached through a
    wrapper on PATH that copies its own /proc/PID/cmdline before it becomes the real tool."""
    secret = "s3cret-only-in-the-url"
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        real = shutil.which(tool)
        assert real is not None
        wrapper = wrappers / tool
        wrapper.write_text(
            f'#!/bin/sh\ntr "\\000" "\\n" < /proc/$$/cmdline > "{tmp_path}/{tool}.argv"\n'
            f'printf "%s" "$PGPASSWORD" > "{tmp_path}/{tool}.password"\nexec "{real}" "$@"\n'
        )
        wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrappers}:{os.environ['PATH']}")
    # The server trusts local connections, so the password is accepted whatever it is.
    url = make_url(postgres_url).set(password=secret).render_as_string(hide_password=False)
    monkeypatch.setenv("VORONKA_DATABASE_URL", url)
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--stages", "Lead,Won"]).exit_code == 0
    target = tmp_path / "voronka.backup"
    made = runner.invoke(app, ["--lang", "en", "backup", str(target)])
    assert made.exit_code == 0, made.stderr
    restored = runner.invoke(app, ["--lang", "en", "restore", str(target), "--yes"])
    assert restored.exit_code == 0, restored.stderr
    for tool in ("pg_dump", "pg_restore"):
        argv = (tmp_path / f"{tool}.argv").read_text()
        assert tool in argv
        assert secret not in argv
        assert (tmp_path / f"{tool}.password").read_text() == secret
