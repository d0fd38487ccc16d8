"""Real databases for every test: SQLite always, PostgreSQL when a server answers.

PostgreSQL tests run in a schema of their own (dropped at the end) and start each test from empty
tables. They skip, saying why, when no server answers, unless VORONKA_REQUIRE_POSTGRES=1 (CI), where
a missing server fails them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from voronka.connectors.store import SecretStore
from voronka.db import make_engine, open_database, session_factory
from voronka.models import Base

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def postgres_base_url() -> str:
    return os.environ.get("VORONKA_TEST_POSTGRES_URL", DEFAULT_POSTGRES)


def _postgres_problem(url: str) -> str | None:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"no PostgreSQL server answers at {url} ({type(exc).__name__})"
    return None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    open_database(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh schema on the PostgreSQL server, migrated once for the session."""
    base = postgres_base_url()
    problem = _postgres_problem(base)
    if problem:
        if os.environ.get("VORONKA_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"VORONKA_REQUIRE_POSTGRES=1 but {problem}")
        pytest.skip(problem)
    schema = f"voronka_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}?options=-csearch_path%3D{schema}"
    open_database(url).dispose()
    yield url
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _empty_postgres(url: str) -> Engine:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database of each backend."""
    if request.param == "sqlite":
        path = tmp_path / "voronka.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    _empty_postgres(url).dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as session:
        yield session


@pytest.fixture
def sqlite_session(tmp_path: Path, sqlite_template: Path) -> Iterator[Session]:
    """SQLite only: for property tests that build many small databases."""
    path = tmp_path / "prop.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    """A secrets file of the test's own for CRM connections."""
    return SecretStore(tmp_path / "secrets.json")
