"""How voronka's engines set up their connections."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from voronka.db import make_engine


def test_postgresql_connections_never_jit_compile(postgres_url: str) -> None:
    """The stalled deals' check spent two seconds in JIT compilation for a tenth of a second of work;
    every pooled connection keeps JIT off, also after the pool has rolled it back."""
    engine = make_engine(postgres_url)
    for _ in range(2):  # the second checkout is the same connection, returned with a rollback
        with engine.connect() as connection:
            assert connection.scalar(text("SHOW jit")) == "off"
            connection.rollback()
    engine.dispose()


def test_sqlite_connections_sort_with_helper_threads(tmp_path: Path) -> None:
    """A large import's index builds and per-day recount are sorts; SQLite runs them on helper
    threads only where the connection allows it, and keeps WAL and foreign keys as it should."""
    engine = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    with engine.connect() as connection:
        settings = [connection.scalar(text(f"PRAGMA {name}")) for name in ("threads", "foreign_keys", "journal_mode")]
    engine.dispose()
    assert settings == [2, 1, "wal"]


def test_a_bulk_insert_stores_every_row_in_order_whatever_the_grouping(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite takes a bulk insert's rows many to a statement, as many as its limit of parameters
    allows, and the rest one by one; PostgreSQL copies them. Either way every row lands, in order."""
    from voronka import sqlwrite as db
    from voronka.crm.accounts import default_account
    from voronka.models import Source

    account = default_account(session=session)
    connection = session.connection()
    names = [f"source {n:02}" for n in range(23)]
    monkeypatch.setattr(db, "ROWS_PER_INSERT", 5)  # 2 statements of 5 rows, then 1 row alone
    db.bulk_insert(connection, Source.__table__, ("account_id", "name"), [(account.id, n) for n in names[:11]])
    raw = connection.connection.dbapi_connection
    if connection.dialect.name == "sqlite":  # a limit of 7 parameters: 4 statements of 3 rows of 2
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 7)
    db.bulk_insert(connection, Source.__table__, ("name", "account_id"), [(n, account.id) for n in names[11:]])
    stored = session.execute(select(Source.name, Source.account_id).order_by(Source.id)).all()
    assert [tuple(row) for row in stored] == [(n, account.id) for n in names]
