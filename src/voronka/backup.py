"""Backups of the database, taken while the app runs, and restoring one.

SQLite: the online backup API copies the file page by page under a consistent read, so the web app
may keep writing; the copy is written beside the target and renamed into place (no half-written
backup). PostgreSQL: ``pg_dump`` in its custom format (the schema named by the URL's search_path,
or the whole database), restored by ``pg_restore`` in one transaction.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from voronka.errors import VoronkaError


class BackupFailed(VoronkaError):
    """A backup or restore could not be made."""

    key = "error.backup_failed"


def backup(engine: Engine, target: Path) -> Path:
    """Write a backup of the database to ``target`` and return it."""
    target = target.expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    if engine.dialect.name == "sqlite":
        return _sqlite_backup(_sqlite_path(engine), target)
    return _pg_dump(engine, target)


def restore(engine: Engine, source: Path) -> None:
    """Replace the database's contents with the backup ``source``."""
    source = source.expanduser()
    if not source.is_file():
        raise BackupFailed(reason=f"{source} is not a file")
    engine.dispose()  # no pooled connection may hold the old contents
    if engine.dialect.name == "sqlite":
        _sqlite_restore(source, _sqlite_path(engine))
    else:
        _pg_restore(engine, source)


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupFailed(reason="an in-memory database has nothing to back up")
    return Path(database)


def _sqlite_backup(database: Path, target: Path) -> Path:
    partial = target.with_name(target.name + ".partial")
    source = sqlite3.connect(database)
    copy = sqlite3.connect(partial)
    try:
        with copy:
            source.backup(copy, pages=1024)
    finally:
        copy.close()
        source.close()
    partial.replace(target)
    return target


def _sqlite_restore(source: Path, database: Path) -> None:
    try:
        with sqlite3.connect(source) as check:
            check.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupFailed(reason=f"{source} is not an SQLite backup ({exc})") from None
    backup_of = sqlite3.connect(source)
    live = sqlite3.connect(database, timeout=30)
    try:
        backup_of.backup(live)
    finally:
        live.close()
        backup_of.close()


def _libpq(engine: Engine) -> tuple[str, list[str], dict[str, str]]:
    """The URL as libpq reads it without its password, the schema options for pg_dump (from
    ``search_path``), and the environment for the child: the password travels in ``PGPASSWORD``,
    which only the same user can read, never on the command line, which ``ps`` and ``/proc``
    show to every user of the machine for the whole run."""
    url = make_url(engine.url.render_as_string(hide_password=False)).set(drivername="postgresql")
    environment = dict(os.environ)
    if url.password is not None:
        environment["PGPASSWORD"] = str(url.password)
        url = url._replace(password=None)  # URL.set() reads None as "unchanged"
    raw = url.query.get("options", "")
    options = " ".join(raw) if isinstance(raw, tuple) else raw
    schemas: list[str] = []
    for part in unquote(options).split():
        if part.startswith("-csearch_path="):
            schemas = [s for s in part.split("=", 1)[1].split(",") if s]
    plain = url.set(query={}).render_as_string(hide_password=False)
    return plain, [arg for schema in schemas for arg in ("--schema", schema)], environment


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupFailed(
            reason=f"{name} is not installed: it comes with PostgreSQL's client tools (postgresql-client)"
        )
    return found


def _pg_dump(engine: Engine, target: Path) -> Path:
    url, schemas, environment = _libpq(engine)
    partial = target.with_name(target.name + ".partial")
    _run([_tool("pg_dump"), "--format=custom", "--no-owner", *schemas, "--file", str(partial), url], environment)
    partial.replace(target)
    return target


def _pg_restore(engine: Engine, source: Path) -> None:
    url, _, environment = _libpq(engine)
    _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction", "--dbname", url,
          str(source)], environment)  # fmt: skip


def _run(command: list[str], environment: dict[str, str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise BackupFailed(reason=lines[-1] if lines else f"{Path(command[0]).name} failed")
