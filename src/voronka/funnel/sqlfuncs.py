"""Two SQL expressions SQLite and PostgreSQL spell differently, compiled per dialect.

``hour_bucket(col, shift_minutes)`` gives the UTC hour of ``col + shift`` as text ``YYYY-MM-DD HH``;
Python maps those hours to local days, weeks and months (zone rules stay in Python, where zoneinfo
knows them, and the database returns at most one row per hour).
``seconds_between(later, earlier)`` gives the difference in seconds as a number.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class hour_bucket(FunctionElement[str]):
    type = String()
    inherit_cache = True
    name = "hour_bucket"

    def __init__(self, column: ColumnElement[Any] | QueryableAttribute[Any], shift_minutes: int = 0) -> None:
        self.shift_minutes = int(shift_minutes)
        super().__init__(column)


@compiles(hour_bucket, "sqlite")
def _hour_bucket_sqlite(element: hour_bucket, compiler: Any, **kw: Any) -> str:
    column = compiler.process(next(iter(element.clauses)), **kw)
    if element.shift_minutes:
        column = f"datetime({column}, '{element.shift_minutes:+d} minutes')"
    return f"substr({column}, 1, 13)"


@compiles(hour_bucket, "postgresql")
def _hour_bucket_postgresql(element: hour_bucket, compiler: Any, **kw: Any) -> str:
    column = compiler.process(next(iter(element.clauses)), **kw)
    if element.shift_minutes:
        column = f"({column} + interval '{element.shift_minutes:d} minutes')"
    return f"to_char({column}, 'YYYY-MM-DD HH24')"


class seconds_between(FunctionElement[float]):
    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element: seconds_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"
