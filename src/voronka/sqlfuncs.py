"""SQL expressions SQLite and PostgreSQL spell differently, compiled per dialect.

``time_prefix(col, shift_minutes, length)`` gives ``col + shift`` as text cut to ``length``
characters: 13 is the hour (``YYYY-MM-DD HH``), 10 the day, 7 the month. With the zone's offset as
the shift, that is the local day or month; when the offset changes within a range (DST), the
funnel asks for hours and maps them to local periods in Python, where zoneinfo knows the rules.
``shifted_date(col, shift_minutes)`` gives the date of ``col + shift`` as a date (the local day,
with the zone's offset as the shift). ``seconds_between(later, earlier)`` gives the difference in seconds as a number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Date, Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

if TYPE_CHECKING:
    from sqlalchemy.orm import QueryableAttribute


class time_prefix(FunctionElement[str]):
    type = String()
    name = "time_prefix"
    # The shift and the length change the SQL text, so they belong in the statement's cache key:
    # without them a process that asked for months once would be served the month SQL for days.
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy reads this class attribute as is
        *FunctionElement._traverse_internals,
        ("shift_minutes", InternalTraversal.dp_plain_obj),
        ("length", InternalTraversal.dp_plain_obj),
    ]

    def __init__(
        self, column: ColumnElement[Any] | QueryableAttribute[Any], shift_minutes: int = 0, length: int = 13
    ) -> None:
        if length not in _PG_FORMATS and length != WEEK:
            raise ValueError(f"time_prefix length must be one of {sorted(_PG_FORMATS)}")
        self.shift_minutes = int(shift_minutes)
        self.length = length
        super().__init__(column)


_PG_FORMATS = {13: "YYYY-MM-DD HH24", 10: "YYYY-MM-DD", 7: "YYYY-MM"}
WEEK = 0
"""A ``length`` that asks for the Monday of the (local) ISO week instead of a prefix."""


@compiles(time_prefix, "sqlite")
def _time_prefix_sqlite(element: time_prefix, compiler: Any, **kw: Any) -> str:
    column = compiler.process(next(iter(element.clauses)), **kw)
    if element.shift_minutes:
        column = f"datetime({column}, '{element.shift_minutes:+d} minutes')"
    if element.length == WEEK:
        return f"date({column}, '-6 days', 'weekday 1')"
    return f"substr({column}, 1, {element.length})"


@compiles(time_prefix, "postgresql")
def _time_prefix_postgresql(element: time_prefix, compiler: Any, **kw: Any) -> str:
    column = compiler.process(next(iter(element.clauses)), **kw)
    if element.shift_minutes:
        column = f"({column} + interval '{element.shift_minutes:d} minutes')"
    if element.length == WEEK:
        return f"to_char(date_trunc('week', {column}), 'YYYY-MM-DD')"
    return f"to_char({column}, '{_PG_FORMATS[element.length]}')"


class shifted_date(FunctionElement[Any]):
    type = Date()
    name = "shifted_date"
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 - the shift changes the SQL text: part of the cache key
        *FunctionElement._traverse_internals,
        ("shift_minutes", InternalTraversal.dp_plain_obj),
    ]

    def __init__(self, column: ColumnElement[Any] | QueryableAttribute[Any], shift_minutes: int = 0) -> None:
        self.shift_minutes = int(shift_minutes)
        super().__init__(column)


@compiles(shifted_date, "sqlite")
def _shifted_date_sqlite(element: shifted_date, compiler: Any, **kw: Any) -> str:
    # date() gives the ISO text SQLAlchemy's Date keeps in SQLite.
    column = compiler.process(next(iter(element.clauses)), **kw)
    return f"date({column}, '{element.shift_minutes:+d} minutes')"


@compiles(shifted_date, "postgresql")
def _shifted_date_postgresql(element: shifted_date, compiler: Any, **kw: Any) -> str:
    column = compiler.process(next(iter(element.clauses)), **kw)
    return f"CAST(({column} + interval '{element.shift_minutes:d} minutes') AS DATE)"


class seconds_between(FunctionElement[float]):
    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    # Whole seconds and microseconds apart, as Python subtracts them: julianday's floating days lose
    # a few microseconds (a minute came out as 59.9999964 s). Times are stored as text with six
    # fractional digits after the 19 of the seconds, or none.
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    whole = (
        f"(CAST(strftime('%s', substr({later}, 1, 19)) AS INTEGER)"
        f" - CAST(strftime('%s', substr({earlier}, 1, 19)) AS INTEGER))"
    )
    micro = f"(CAST(substr({later}, 21) AS INTEGER) - CAST(substr({earlier}, 21) AS INTEGER))"
    return f"({whole} + {micro} / 1000000.0)"


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element: seconds_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"
