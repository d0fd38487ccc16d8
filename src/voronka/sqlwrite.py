"""Writing rows fast and safely, on SQLite and PostgreSQL alike: SQLite's write lock taken before a
read that decides a write, ``INSERT … ON CONFLICT`` in the bind's dialect, bulk inserts that skip
the ORM (grouped statements on SQLite, COPY on PostgreSQL), ids reserved up front, and times as the
database stores them. The per-day summary (``deal_days``) and the importers store through this; it
imports nothing of voronka's, so neither depends on ``db`` (which builds sessions with their hooks).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from functools import lru_cache
from itertools import chain
from operator import methodcaller
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Connection, DateTime, Table, TableClause, bindparam, column, func, insert, select
from sqlalchemy.engine import Dialect

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def begin_write(connection: Connection) -> None:
    """Open SQLite's write transaction now (BEGIN IMMEDIATE) unless one is open.

    Python's sqlite3 opens a transaction only before INSERT/UPDATE/DELETE, so DDL or reads issued
    first run outside it — a DROP INDEX would commit at once and survive a crash of the import —
    and a read-then-write transaction may fail to upgrade under a concurrent writer."""
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def dialect_name(bind: Session | Connection) -> str:
    """``sqlite`` or ``postgresql``: the database a session or connection speaks to."""
    return bind.dialect.name if isinstance(bind, Connection) else bind.get_bind().dialect.name


def dialect_insert(bind: Session | Connection, model: Any) -> Any:
    """``INSERT`` in the session's or connection's dialect, which has ``on_conflict_do_nothing``/
    ``_do_update`` (PostgreSQL and SQLite both speak ``ON CONFLICT``). The dialect modules load
    here, when a write needs them: importing them costs a command's start-up a tenth of a second."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if dialect_name(bind) == "postgresql" else sqlite
    return dialect.insert(model)


def bulk_insert(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    stored: Collection[str] = (),
) -> None:
    """Insert many rows given as tuples in ``columns`` order.

    The statement is compiled once by SQLAlchemy for the connection's dialect and every value goes
    through its column type's own bind processor, so what is stored is exactly what a Core insert
    would store; the per-row parameter handling of an ordinary executemany is what this skips
    (about half of a large import's time). The ``stored`` columns' values are times already
    converted by ``stored_time`` (by a large import's reader, on the other core).
    """
    dialect = connection.dialect
    processors = [
        (index, _fast(processor, table.c[name].type))
        for index, name in enumerate(columns)
        if name not in stored
        and (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    listed = list(rows)
    if not listed:
        return
    if dialect.name == "postgresql":
        _copy_rows(connection, table, columns, _processed_rows(listed, processors))
        return
    _insert_in_groups(connection, table.name, tuple(columns), _processed_rows(listed, processors))


ROWS_PER_INSERT = 200
"""Rows per statement of a SQLite bulk insert. SQLite runs a statement's program — opening the table,
each index and each foreign key's parent — once per execution: a million deals, their stage log and
reaches went in in 9.2 s at 200 rows per statement, 9.7 s at 50, 14.1 s at one."""


def _insert_in_groups(connection: Connection, table_name: str, columns: tuple[str, ...], rows: list[Any]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order, values as the driver takes them) into SQLite with
    statements of up to ``ROWS_PER_INSERT`` rows, as many as its limit of parameters allows (sqlite3
    takes positional parameters, which the statements list row by row)."""
    dialect = connection.dialect
    raw = connection.connection.dbapi_connection
    getlimit = getattr(raw, "getlimit", None)
    limit = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit is not None else 999
    per = max(1, min(ROWS_PER_INSERT, limit // len(columns)))
    whole = len(rows) - len(rows) % per
    if whole:
        grouped = [tuple(chain.from_iterable(rows[start : start + per])) for start in range(0, whole, per)]
        connection.exec_driver_sql(_values_insert(dialect, table_name, columns, per), grouped)
    if whole < len(rows):
        connection.exec_driver_sql(_values_insert(dialect, table_name, columns, 1), rows[whole:])


@lru_cache(maxsize=64)
def _values_insert(dialect: Dialect, table_name: str, columns: tuple[str, ...], rows: int) -> str:
    """``INSERT INTO table_name (columns) VALUES (…), …`` with ``rows`` rows of parameters, compiled by
    SQLAlchemy for ``dialect`` (positional parameters come row by row, in ``columns`` order: a
    table's own insert would name its columns in the table's order)."""
    clause = TableClause(table_name, *(column(name) for name in columns))
    values: list[dict[str, Any]] = [
        {name: bindparam(f"r{row}_{index}") for index, name in enumerate(columns)} for row in range(rows)
    ]
    return insert(clause).values(values).compile(dialect=dialect).string


def reserved_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """``count`` new primary keys of ``table``, for rows a bulk insert then stores with their ids.

    PostgreSQL hands them out from the table's sequence (``nextval``, one round trip per batch),
    so no other writer can take them. SQLite takes the ids after the highest one, holding its write
    lock from here to the commit, so no other writer can insert meanwhile. Reading a batch's ids
    back by external id afterwards cost a million-deal import a probe of the unique index per row:
    8.6 s on PostgreSQL, 3 s on SQLite.
    """
    if count <= 0:
        return []
    if connection.dialect.name == "postgresql":
        sequence = func.nextval(func.pg_get_serial_sequence(table.name, "id"))
        return list(connection.scalars(select(sequence).select_from(func.generate_series(1, count))))
    begin_write(connection)
    last = int(connection.scalar(select(func.max(table.c.id))) or 0)
    return list(range(last + 1, last + 1 + count))


def _copy_rows(connection: Connection, table: Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
    """PostgreSQL's COPY, in the connection's own transaction: the values, already processed by the
    columns' types, travel as data, never as SQL; only our own table and column names are in the
    statement. A multi-row INSERT runs a million deals at about 3,000 rows a second; COPY many times
    that."""
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    raw: Any = connection.connection.dbapi_connection  # a psycopg connection: its cursors copy
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _processed_rows(rows: list[Sequence[Any]], processors: list[tuple[int, Callable[[Any], Any]]]) -> list[Any]:
    """``rows`` with their values through ``processors``: the rows themselves when none applies (a
    large import's stage log and reaches, whose times the reader converted)."""
    if not processors:
        return rows
    return list(zip(*_processed_columns(rows, processors), strict=True))


def stored_time(dialect: Dialect) -> Callable[[dt.datetime], Any] | None:
    """A time as ``dialect`` stores it in a DateTime column, by a function another process can be
    given (it is pickled to a large import's reader); None where the driver takes the datetime
    itself, or no such function gives exactly what the column's bind processor gives."""
    column_type = DateTime()
    processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    if processor is None:
        return None
    fast = _fast(processor, column_type)
    return fast if fast is _ISO_MICROSECONDS else None


def _processed_columns(
    rows: list[Sequence[Any]], processors: list[tuple[int, Callable[[Any], Any]]]
) -> list[Sequence[Any]]:
    """The rows' values column by column, each through its bind processor (``None`` stays ``None``).

    Column by column, a processor is mapped over a whole column at C speed where it holds no
    ``None``, and runs once for a column of one value; row by row, each row was copied and rebuilt
    in Python, which cost as much as SQLite's inserting it.
    """
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for index, process in processors:
        column = columns[index]
        if column.count(column[0]) == len(column):  # one value (an import's time of writing): once
            columns[index] = [None if column[0] is None else process(column[0])] * len(column)
        elif None in column:
            columns[index] = [None if value is None else process(value) for value in column]
        else:
            columns[index] = list(map(process, column))
    return columns


_SAMPLE_TIME = dt.datetime(2024, 3, 1, 9, 5, 7, 120)


def _fast(processor: Callable[[Any], Any], column_type: Any) -> Callable[[Any], Any]:
    """A quicker equivalent of ``processor`` where one is known to give exactly the same text:
    ``datetime.isoformat`` for SQLite's DateTime format, a constant for an empty JSON object."""
    if isinstance(column_type, DateTime) and processor(_SAMPLE_TIME) == _SAMPLE_TIME.isoformat(" ", "microseconds"):
        return _ISO_MICROSECONDS
    if isinstance(column_type, JSON):
        empty = processor({})
        return lambda value: empty if value == {} else processor(value)
    return processor


_ISO_MICROSECONDS = methodcaller("isoformat", " ", "microseconds")
