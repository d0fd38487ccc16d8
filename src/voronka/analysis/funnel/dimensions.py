"""Breakdown dimensions: each a small object in an explicit registry.

A dimension gives the SQL grouping key and turns the keys the database returns into group labels.
Time dimensions group by UTC hour in SQL and map hours to local days, ISO weeks or months here, so
zone rules (and DST) come from zoneinfo, not from each database's date functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select

from voronka import schema
from voronka.analysis.funnel.counts import Expression
from voronka.deal_days import named_id
from voronka.errors import InvalidQuery
from voronka.reading import Reader
from voronka.sqlfuncs import WEEK, time_prefix

MAX_PERIODS = 5_000
"""More rows than this is not a report anyone reads (and would take the server's memory)."""


@dataclass(frozen=True)
class DimensionContext:
    session: Reader
    account_id: int
    tz: ZoneInfo
    fixed_offset_minutes: int | None = None
    """The zone's UTC offset when it is the same all through the range: then SQL can cut times to
    the local day or month itself. ``None`` (DST within the range): SQL gives hours instead."""

    @property
    def shift_minutes(self) -> int:
        """The sub-hour part of the zone's UTC offset (30 for +05:30), so SQL hours align with local hours."""
        offset = dt.datetime.now(self.tz).utcoffset() or dt.timedelta()
        return int(offset.total_seconds() // 60) % 60


class Dimension(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def is_time(self) -> bool: ...

    def key(self, ctx: DimensionContext, time_column: Expression) -> Expression: ...

    def labels(self, ctx: DimensionContext, keys: Iterable[Any]) -> dict[Any, str | None]: ...

    def fill(self, first: str, last: str) -> list[str]: ...


class TimeDimension:
    """Days, ISO weeks or months in the account's time zone."""

    is_time = True
    name = ""
    days_each = 1

    sql_length = 10  # how much of a local time SQL keeps when the offset is fixed: the day

    def key(self, ctx: DimensionContext, time_column: Expression) -> Expression:
        if ctx.fixed_offset_minutes is not None:
            return time_prefix(time_column, ctx.fixed_offset_minutes, self.sql_length)
        return time_prefix(time_column, ctx.shift_minutes, 13)

    def labels(self, ctx: DimensionContext, keys: Iterable[Any]) -> dict[Any, str | None]:
        result: dict[Any, str | None] = {}
        if ctx.fixed_offset_minutes is not None:
            for key in keys:
                text = str(key)
                result[key] = self.label_of(dt.date(int(text[:4]), int(text[5:7]), int(text[8:10] or 1)))
            return result
        shift = dt.timedelta(minutes=ctx.shift_minutes)
        for key in keys:
            utc_start = dt.datetime.strptime(str(key), "%Y-%m-%d %H").replace(tzinfo=dt.UTC) - shift
            result[key] = self.label_of(utc_start.astimezone(ctx.tz).date())
        return result

    def label_of(self, day: dt.date) -> str:
        raise NotImplementedError

    def start_of(self, label: str) -> dt.date:
        raise NotImplementedError

    def next_start(self, day: dt.date) -> dt.date:
        raise NotImplementedError

    def fill(self, first: str, last: str) -> list[str]:
        """Every period label from ``first`` to ``last``, so empty periods show as zero rows."""
        span = (self.start_of(last) - self.start_of(first)).days
        if span / self.days_each > MAX_PERIODS:
            raise InvalidQuery(
                code="too_many_periods",
                reason=f"{first} to {last} by {self.name} is more than {MAX_PERIODS} rows; choose a shorter range",
            )
        labels = []
        day, end = self.start_of(first), self.start_of(last)
        while day <= end:
            labels.append(self.label_of(day))
            day = self.next_start(day)
        return labels


class DayDimension(TimeDimension):
    days_each = 1
    name = "day"

    def label_of(self, day: dt.date) -> str:
        return day.isoformat()

    def start_of(self, label: str) -> dt.date:
        return dt.date.fromisoformat(label)

    def next_start(self, day: dt.date) -> dt.date:
        return day + dt.timedelta(days=1)


class WeekDimension(TimeDimension):
    days_each = 7
    """ISO weeks (Monday start), labelled ``2024-W09``."""

    name = "week"
    sql_length = WEEK

    def label_of(self, day: dt.date) -> str:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"

    def start_of(self, label: str) -> dt.date:
        return dt.date.fromisocalendar(int(label[:4]), int(label[6:]), 1)

    def next_start(self, day: dt.date) -> dt.date:
        return day + dt.timedelta(days=7)


class MonthDimension(TimeDimension):
    days_each = 28
    name = "month"
    sql_length = 7

    def label_of(self, day: dt.date) -> str:
        return f"{day.year}-{day.month:02d}"

    def start_of(self, label: str) -> dt.date:
        return dt.date(int(label[:4]), int(label[5:7]), 1)

    def next_start(self, day: dt.date) -> dt.date:
        return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


class _NamedDimension:
    """A dimension whose SQL key is an id resolved to a name afterwards."""

    is_time = False
    name = ""
    model: ClassVar[Table]

    def column(self) -> Expression:
        raise NotImplementedError

    def key(self, ctx: DimensionContext, time_column: Expression) -> Expression:
        return self.column()

    def labels(self, ctx: DimensionContext, keys: Iterable[Any]) -> dict[Any, str | None]:
        ids = [k for k in keys if k is not None]
        names: dict[Any, str | None] = {None: None}
        if ids:
            rows = ctx.session.execute(select(self.model.c.id, self.model.c.name).where(self.model.c.id.in_(ids)))
            names.update({row[0]: row[1] for row in rows})
        return names

    def fill(self, first: str, last: str) -> list[str]:
        return []


class SourceDimension(_NamedDimension):
    name = "source"
    model = schema.sources

    def column(self) -> Expression:
        return schema.deals.c.source_id

    def reach_column(self) -> Expression:
        """The same key on stage reaches, which carry it: period views need no join to deals."""
        return schema.stage_reaches.c.source_id

    def day_column(self) -> Expression:
        """The same key in the per-day summary, where 0 stands for none."""
        return named_id(schema.deal_days.c.source_id)


class ManagerDimension(_NamedDimension):
    name = "manager"
    model = schema.users

    def column(self) -> Expression:
        return schema.deals.c.manager_id

    def reach_column(self) -> Expression:
        return schema.stage_reaches.c.manager_id

    def day_column(self) -> Expression:
        return named_id(schema.deal_days.c.manager_id)


class PipelineDimension(_NamedDimension):
    name = "pipeline"
    model = schema.pipelines

    def column(self) -> Expression:
        return schema.deals.c.pipeline_id


@dataclass(frozen=True)
class CustomFieldDimension:
    """``field:NAME``: the value of a custom field (imported from an unknown column)."""

    field: str
    is_time: bool = False

    @property
    def name(self) -> str:
        return f"field:{self.field}"

    def key(self, ctx: DimensionContext, time_column: Expression) -> Expression:
        expression: Expression = schema.deals.c.custom[self.field].as_string()
        return expression

    def labels(self, ctx: DimensionContext, keys: Iterable[Any]) -> dict[Any, str | None]:
        return {k: (None if k in (None, "") else str(k)) for k in keys}

    def fill(self, first: str, last: str) -> list[str]:
        return []


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        SourceDimension(),
        ManagerDimension(),
        PipelineDimension(),
        DayDimension(),
        WeekDimension(),
        MonthDimension(),
    )
}
CUSTOM_FIELD_PREFIX = "field:"


def resolve_dimension(by: str) -> Dimension:
    """The dimension named ``by`` (``source``, ``month``, ``field:NAME`` …)."""
    if by.startswith(CUSTOM_FIELD_PREFIX) and by[len(CUSTOM_FIELD_PREFIX) :].strip():
        name = by[len(CUSTOM_FIELD_PREFIX) :].strip()
        if any(ord(c) < 32 or c in '"\\' for c in name):
            raise InvalidQuery(code="unknown_dimension", reason="a field name has no control characters, quotes or \\")
        return CustomFieldDimension(name)
    try:
        return DIMENSIONS[by]
    except KeyError:
        known = ", ".join([*DIMENSIONS, "field:NAME"])
        raise InvalidQuery(code="unknown_dimension", reason=f"unknown --by value {by!r}; use one of {known}") from None
