"""How voronka's engines set up their connections."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

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
