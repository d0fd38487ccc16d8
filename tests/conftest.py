"""Real databases for every test: SQLite always, PostgreSQL when a server answers.

PostgreSQL tests run in a schema of their own (dropped at the end) and start each test from empty
tables. They skip, saying why, when no server answers, unless VORONKA_REQUIRE_POSTGRES=1 (CI), where
a missing server fails them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from voronka.crm.accounts import default_account
from voronka.crm.auth import set_password_costs
from voronka.db import make_engine, open_database, session_factory
from voronka.demo import DemoOptions, build_demo
from voronka.models import Base
from voronka.secretstore import SecretStore

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Still Argon2, at a test's cost: each web fixture hashes a few passwords, 0.35 s each at the
# recommended 64 MiB (a test of its own holds the recommended costs, see test_web_security).
set_password_costs(time_cost=1, memory_cost=1024)
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


class DemoCache:
    """Each demo business is built once per test session into an SQLite file; tests get copies.

    Building the 3,000-lead demo takes seconds; copying its file takes milliseconds.
    """

    def __init__(self, folder: Path, template: Path) -> None:
        self.folder, self.template = folder, template
        self._files: dict[tuple[str, str], Path] = {}
        self._schemas: dict[tuple[str, str], str] = {}

    def postgres_schema(self, options: DemoOptions, timezone: str, url: str) -> str:
        """A schema beside the tests' own holding this demo, built once (dropped with the server's test
        schemas at the end: its name starts like theirs)."""
        key = (repr(options), timezone)
        if key not in self._schemas:
            schema = f"voronka_test_demo_{uuid.uuid4().hex[:10]}"
            base = postgres_base_url()
            admin = create_engine(base)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            schema_url = f"{base}?options=-csearch_path%3D{schema}"
            engine = open_database(schema_url)
            with session_factory(engine)() as session:
                account = default_account(session=session, timezone=timezone)
                build_demo(session=session, account=account, options=options)
                session.commit()
            engine.dispose()
            self._schemas[key] = schema
        return self._schemas[key]

    def drop_schemas(self) -> None:
        if not self._schemas:
            return
        admin = create_engine(postgres_base_url())
        with admin.begin() as connection:
            for schema in self._schemas.values():
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    def file(self, options: DemoOptions, timezone: str) -> Path:
        key = (repr(options), timezone)
        if key not in self._files:
            path = self.folder / f"demo{len(self._files)}.db"
            shutil.copy(self.template, path)
            engine = make_engine(f"sqlite:///{path}")
            with session_factory(engine)() as session:
                account = default_account(session=session, timezone=timezone)
                build_demo(session=session, account=account, options=options)
                session.commit()
            engine.dispose()
            self._files[key] = path
        return self._files[key]


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[DemoCache]:
    cache = DemoCache(tmp_path_factory.mktemp("demos"), sqlite_template)
    yield cache
    cache.drop_schemas()


DemoFiller = Callable[..., None]


@pytest.fixture
def fill_demo(demo_cache: DemoCache) -> DemoFiller:
    """``fill_demo(db_url, options, timezone="UTC")`` puts a demo business into an empty database.

    SQLite gets a copy of the cached file (no connection to it may be open yet); PostgreSQL a copy of
    the cached schema's rows.
    """

    def fill(url: str, options: DemoOptions, timezone: str = "UTC") -> None:
        if url.startswith("sqlite:///"):
            shutil.copy(demo_cache.file(options, timezone), url.removeprefix("sqlite:///"))
            return
        _copy_postgres_schema(demo_cache.postgres_schema(options, timezone, url), url)

    return fill


def _copy_postgres_schema(source_schema: str, url: str) -> None:
    """Copy every table of ``source_schema`` into the (empty) schema ``url`` works in, and move the
    id sequences past the copied ids."""
    engine = make_engine(url)
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            connection.execute(text(f'INSERT INTO "{table.name}" SELECT * FROM "{source_schema}"."{table.name}"'))
            if "id" in table.c and table.c.id.autoincrement is not False and table.c.id.primary_key:
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                        f'COALESCE((SELECT max(id) FROM "{table.name}"), 0) + 1, false)'
                    )
                )
    engine.dispose()


class _Opened:
    """Sessions opened on database URLs during a test, each closed with its engine at the end."""

    def __init__(self) -> None:
        self.opened: list[tuple[Engine, Session]] = []

    def session(self, url: str) -> Session:
        engine = make_engine(url)
        session = session_factory(engine)()
        self.opened.append((engine, session))
        return session

    def close(self) -> None:
        for engine, session in self.opened:
            session.close()
            engine.dispose()


@pytest.fixture
def demo_session(db_url: str, fill_demo: DemoFiller) -> Iterator[Callable[..., Session]]:
    """``demo_session(options, timezone="UTC")``: a session on this backend's database holding the demo."""
    opened = _Opened()

    def make(options: DemoOptions, timezone: str = "UTC") -> Session:
        fill_demo(db_url, options, timezone)
        return opened.session(db_url)

    yield make
    opened.close()


@pytest.fixture
def sqlite_demo(tmp_path: Path, demo_cache: DemoCache) -> Iterator[Callable[..., Session]]:
    """SQLite only: ``sqlite_demo(options, timezone="UTC")`` gives a session on a copy of the demo."""
    opened = _Opened()

    def make(options: DemoOptions, timezone: str = "UTC") -> Session:
        path = tmp_path / f"demo{len(opened.opened)}.db"
        shutil.copy(demo_cache.file(options, timezone), path)
        return opened.session(f"sqlite:///{path}")

    yield make
    opened.close()
