"""Engines, sessions and the schema: created or migrated on first use."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    column,
    create_engine,
    event,
    select,
    table,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from voronka.errors import VoronkaError
from voronka.sqlwrite import begin_write as begin_write  # re-exported: where callers have found them
from voronka.sqlwrite import bulk_insert as bulk_insert
from voronka.sqlwrite import dialect_insert as dialect_insert
from voronka.sqlwrite import reserved_ids as reserved_ids
from voronka.sqlwrite import stored_time as stored_time

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.orm import Session, sessionmaker

    from voronka.reading import Reader

HEAD_REVISION = "0017"
"""The newest migration. A database already there is recognised without loading Alembic (a
fifth of a second at every command); a test keeps this equal to the migrations' head."""


class DatabaseUnavailable(VoronkaError):
    """The database URL is malformed or the server does not answer."""

    key = "error.database_unavailable"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout, PostgreSQL
    connections no JIT."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(url=url, reason=str(exc)) from None
    if parsed.get_backend_name() == "sqlite":
        # LIFO: a request takes the connection used last, whose cache and statements are warm.
        engine = create_engine(parsed, connect_args={"timeout": 30}, json_serializer=_json_text, pool_use_lifo=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(parsed, pool_pre_ping=True, json_serializer=_json_text, pool_use_lifo=True)
    event.listen(engine, "connect", _postgresql_settings)
    return engine


def _json_text(value: Any) -> str:
    """JSON with letters kept as they are: SQLite's json_extract matches keys by their raw text,
    so a custom field called «Изделие» must not be stored as \\u-escapes."""
    return json.dumps(value, ensure_ascii=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: large imports and reports touch many index pages
    # Reads go through the OS page cache, which every connection shares: a server's pooled
    # connections (and the report's parallel readers) do not each start with a cold cache of their own.
    cursor.execute(f"PRAGMA mmap_size={READ_MMAP_BYTES}")
    # Large sorts (building an index after a big import, recounting the per-day cells, a report's
    # GROUP BY) may use two helper threads: a million-deal import's index builds and recount took
    # 11.1 s with them, 12.5 s without.
    cursor.execute("PRAGMA threads=2")
    cursor.close()


def _postgresql_settings(dbapi_connection: Any, _record: Any) -> None:
    """No JIT compilation: the reports' queries are short, but their plans look costly (the stalled
    deals' check, one subquery per stage) and PostgreSQL spent two seconds compiling one that then
    ran in a tenth of a second. Committed, so that the pool's rollback on return keeps it."""
    dbapi_connection.execute("SET jit = off")
    dbapi_connection.commit()


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("voronka") / "migrations"))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def ensure_schema(engine: Engine) -> None:
    """Create the schema or bring it up to date; cheap when it already is."""
    try:
        if _current_revision(engine) == HEAD_REVISION:
            return
        from alembic import command

        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # A migration that rebuilds a table drops the old one, and with foreign keys on SQLite
                # would first delete every row that refers to it (ON DELETE CASCADE). The pragma only
                # takes effect outside a transaction; the keys are checked before the commit instead.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            try:
                with connection.begin():
                    config = _alembic_config()
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
                    if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                        raise DatabaseUnavailable(url=engine.url.render_as_string(), reason="foreign keys broken")
            finally:
                if sqlite:
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    connection.commit()
    except OperationalError as exc:
        raise DatabaseUnavailable(url=engine.url.render_as_string(), reason=_first_line(exc)) from None


def _current_revision(engine: Engine) -> str | None:
    """The revision stamped in the database; None for a new one (no table yet)."""
    with engine.connect() as connection:
        try:
            return connection.scalar(select(column("version_num")).select_from(table("alembic_version")))
        except DBAPIError as exc:
            if (
                isinstance(exc, OperationalError)
                and "no such table" not in str(exc)
                and "does not exist" not in str(exc)
            ):
                raise
            return None


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def open_database(url: str) -> Engine:
    """An engine whose schema is ready: what the CLI and the web app start from."""
    engine = make_engine(url)
    ensure_schema(engine)
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            restore_report_indexes(connection)
    return engine


REPORT_INDEXES = (
    "ix_deals_funnel",
    "ix_deals_closed",
    "ix_deals_board",
    "ix_deals_arrivals",
    "ix_stage_reaches_period",
)
"""The wide indexes the reports and the kanban read, which a large import builds once after its load."""

POSTGRESQL_INCLUDES = {"ix_deals_board": ["id"], "ix_stage_reaches_period": ["deal_id"]}
"""The deal id carried in these indexes' entries on PostgreSQL (migration 0011), for the stalled
check; SQLite's entries hold the rowid already. Not declared in the models: a ``postgresql_*``
argument there makes SQLAlchemy import the PostgreSQL dialect at every start, SQLite's included."""


def report_indexes(dialect: str = "sqlite") -> list[Any]:
    """The report indexes as ``dialect`` builds them (PostgreSQL's with their INCLUDE columns)."""
    from voronka import schema

    tables = (schema.deals, schema.stage_reaches)
    indexes = [index for t in tables for index in t.indexes if index.name in REPORT_INDEXES]
    if dialect == "postgresql":
        for index in indexes:  # the same value every time: the schema as migrated, not a state
            if index.name in POSTGRESQL_INCLUDES:
                index.dialect_options["postgresql"]["include"] = POSTGRESQL_INCLUDES[index.name]
    return indexes


def restore_report_indexes(connection: Connection) -> None:
    """Create any report index that is missing: an import killed between dropping and rebuilding
    them (before the fix that made that transactional) left a database without them."""
    present: set[str] = set(connection.scalars(select(column("name")).select_from(table("sqlite_master"))))
    for index in report_indexes():
        if index.name not in present:
            index.create(bind=connection)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose flushes keep the ``deal_days`` summary in step with the deals they write."""
    from sqlalchemy.orm import sessionmaker

    from voronka import deal_days_tracking  # it stores through this module's bulk_insert

    factory = sessionmaker(engine, expire_on_commit=False)
    deal_days_tracking.track(factory)
    return factory


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on any error."""
    with committed(session_factory(engine)()) as session:
        yield session


@contextmanager
def committed(session: Session) -> Iterator[Session]:
    """``session``, committed when the block ends and rolled back when it fails, then closed."""
    with session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def refresh_statistics(connection: Connection, tables: Sequence[str] = ("deals", "stage_reaches")) -> None:
    """Let the query planner know the tables' new sizes after a large load (no user values here;
    ``tables`` are our own table names).

    SQLite needs them to seek the reports' covering index by time range (a skip-scan) instead of
    reading it whole (full statistics: a sampled ANALYZE misjudges how few values the index's
    leading columns take, and the skip-scan is lost; the stage log is read per deal only and needs
    none). PostgreSQL without them takes a freshly filled table for empty: it planned the
    diagnosis's reading of a million-deal ``deal_days`` as one row and sorted it on disk.
    """
    if connection.dialect.name in ("sqlite", "postgresql"):
        for table in tables:
            connection.exec_driver_sql(f"ANALYZE {table}")


LOADED_TABLES = ("deals", "stage_changes", "stage_reaches", "deal_days")
"""The tables a large import writes."""


def vacuum_loaded_tables(engine: Engine) -> None:
    """After a large load is committed, let PostgreSQL read the reports' covering indexes alone.

    An index-only scan skips the table only for pages the visibility map marks all-visible, and
    only VACUUM marks them: right after a million-row import every report visited the table for
    each row it counted (the statistics' queries ran 2–3 times slower), until autovacuum — if it is
    on at all — came by. VACUUM cannot run inside a transaction, hence after the commit; SQLite
    needs nothing (its statistics were refreshed inside the load's transaction). Only our own table
    names are in the statements.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for name in LOADED_TABLES:
            connection.exec_driver_sql(f"VACUUM {name}")


T = TypeVar("T")
READERS = 2
READ_MMAP_BYTES = 1 << 30


def parallel_reads(session: Reader, tasks: Sequence[Callable[[Reader], T]]) -> list[T]:
    """The results of read-only ``tasks``, run two at a time on connections of their own (sessions,
    when ``session`` is one).

    They read committed data. With a database file or a server, SQLite and PostgreSQL both work
    on two queries at once (sqlite3 releases the GIL while it runs a statement); an in-memory
    SQLite database has one connection only, so there the tasks run one after another.
    """
    bind = session if isinstance(session, Connection) else session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    shared = engine.dialect.name != "sqlite" or engine.url.database not in (None, "", ":memory:")
    if not shared or len(tasks) < 2:
        return [task(session) for task in tasks]

    def run(task: Callable[[Reader], T]) -> T:
        with engine.connect() as own:
            if engine.dialect.name == "sqlite":
                # Read through the OS page cache directly: a fresh connection's own cache is empty,
                # and copying every page into it was a fifth of a large report's time.
                own.exec_driver_sql(f"PRAGMA mmap_size={READ_MMAP_BYTES}")
            return task(own)

    with ThreadPoolExecutor(max_workers=READERS) as pool:
        return list(pool.map(run, tasks))
