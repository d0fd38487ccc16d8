"""The SQL side of the funnel: counts per (group, stage, status), nothing else.

Every function returns small frozen rows; ``compute`` turns them into figures. No Python loop here
touches individual deals: the database aggregates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import ColumnElement, Table, and_, func, null, select, true

from voronka import schema
from voronka.deal_days import cells_read
from voronka.reading import Reader
from voronka.schema import DealStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import QueryableAttribute

Expression: TypeAlias = "ColumnElement[Any] | QueryableAttribute[Any]"
KeyFunction = Callable[[Expression], ColumnElement[Any]]
"""Given the time column that places a deal in time, the SQL grouping key (or ``None``: no groups)."""


@dataclass(frozen=True)
class Scope:
    """Which deals: the pipelines, the UTC range (``end`` exclusive) and each pipeline's won stage."""

    pipeline_ids: tuple[int, ...]
    won_stage_ids: tuple[int, ...]
    start: dt.datetime | None
    end: dt.datetime | None
    manager_id: int | None = None
    """Only this manager's deals: a manager's reports are computed on what they may see."""
    first_day: dt.date | None = None
    end_day: dt.date | None = None
    """The same range as local days (``end_day`` exclusive), for the per-day summary."""

    def of(self, table: Table) -> ColumnElement[bool]:
        """The rows of ``table`` (deals or their stage reaches) in the scope's pipelines and role."""
        condition: ColumnElement[bool] = table.c.pipeline_id.in_(self.pipeline_ids)
        if self.manager_id is not None:
            condition = and_(condition, table.c.manager_id == self.manager_id)
        return condition

    def within(self, column: Expression) -> ColumnElement[bool]:
        return _between(column, self.start, self.end)

    def within_days(self, column: Expression) -> ColumnElement[bool]:
        return _between(column, self.first_day, self.end_day)


def _between(column: Expression, start: Any, end: Any) -> ColumnElement[bool]:
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return and_(*conditions) if conditions else true()


@dataclass(frozen=True)
class OutcomeRow:
    """Deals of one group that got furthest to ``furthest`` and now have ``status``."""

    group: Any
    furthest: int
    status: str
    currency: str
    count: int
    amount: int


@dataclass(frozen=True)
class ReachRow:
    """Deals of one group that reached stage ``position``."""

    group: Any
    position: int
    count: int


def _grouped(columns: Sequence[Expression], key: Expression | None) -> tuple[list[Expression], list[Expression]]:
    """Select and group-by lists with the group key first (a constant when there is no key)."""
    if key is None:
        return [null().label("g"), *columns], list(columns)
    labelled = key.label("g")
    return [labelled, *columns], [labelled, *columns]


def cohort_outcomes(
    session: Reader, scope: Scope, key_of: KeyFunction | None, *, history_known: bool | None = None
) -> list[OutcomeRow]:
    """Deals created in the scope, counted by group × furthest stage × status × currency."""
    key = key_of(schema.deals.c.created_at) if key_of else None
    selected, grouping = _grouped(
        [schema.deals.c.furthest_position, schema.deals.c.status, schema.deals.c.currency], key
    )
    query = (
        select(*selected, func.count(), func.coalesce(func.sum(schema.deals.c.amount), 0))
        .where(scope.of(schema.deals), scope.within(schema.deals.c.created_at))
        .group_by(*grouping)
    )
    if history_known is not None:
        query = query.where(schema.deals.c.history_known.is_(history_known))
    return [OutcomeRow(r[0], int(r[1]), r[2], r[3], int(r[4]), int(r[5])) for r in session.execute(query)]


def day_outcomes(
    session: Reader,
    scope: Scope,
    key: Expression | None,
    *,
    account_id: int,
    by_manager: bool = False,
    by_source: bool = False,
) -> list[OutcomeRow]:
    """``cohort_outcomes`` from the per-day summary: the same rows, read from cells of a day each
    instead of from every deal. ``key`` groups the cells (a local period, source or manager); the
    cells read are the coarsest that still tell apart what the report splits or filters by."""
    cells = cells_read(manager_id=scope.manager_id, by_manager=by_manager, by_source=by_source)
    selected, grouping = _grouped(
        [schema.deal_days.c.furthest_position, schema.deal_days.c.status, schema.deal_days.c.currency], key
    )
    query = (
        select(*selected, func.sum(schema.deal_days.c.deals), func.sum(schema.deal_days.c.amount))
        .where(
            schema.deal_days.c.account_id == account_id,
            schema.deal_days.c.pipeline_id.in_(scope.pipeline_ids),
            cells,
            scope.within_days(schema.deal_days.c.day),
        )
        .group_by(*grouping)
    )
    return [OutcomeRow(r[0], int(r[1]), r[2], r[3], int(r[4]), int(r[5])) for r in session.execute(query)]


def cohort_passages(session: Reader, scope: Scope, key_of: KeyFunction | None) -> list[ReachRow]:
    """Deals created in the scope (with known history) that actually entered each stage."""
    key = key_of(schema.deals.c.created_at) if key_of else None
    selected, grouping = _grouped([schema.stage_reaches.c.position], key)
    query = (
        select(*selected, func.count())
        .join(schema.deals, schema.deals.c.id == schema.stage_reaches.c.deal_id)
        .where(
            scope.of(schema.stage_reaches),
            scope.within(schema.deals.c.created_at),
            schema.deals.c.history_known.is_(True),
            schema.stage_reaches.c.entered_at.is_not(None),
        )
        .group_by(*grouping)
    )
    rows = [ReachRow(r[0], int(r[1]), int(r[2])) for r in session.execute(query)]
    return rows + _arrivals(session, scope, key_of, known_history_only=True)


def _arrivals(
    session: Reader, scope: Scope, key_of: KeyFunction | None, *, known_history_only: bool = False
) -> list[ReachRow]:
    """Stage 1: every deal arrives in it when it is created."""
    key = key_of(schema.deals.c.created_at) if key_of else None
    selected, grouping = _grouped([], key)
    query = select(*selected, func.count()).where(scope.of(schema.deals), scope.within(schema.deals.c.created_at))
    if known_history_only:
        query = query.where(schema.deals.c.history_known.is_(True))
    if grouping:
        query = query.group_by(*grouping)
    return [ReachRow(r[0], 1, int(r[1])) for r in session.execute(query) if int(r[1])]


def period_entries(
    session: Reader,
    scope: Scope,
    key_of: KeyFunction | None,
    *,
    passage: bool,
    needs_deal: bool = True,
    reach_key: Expression | None = None,
) -> list[ReachRow]:
    """Per stage, deals that reached it within the range: by first actual entry under the passage
    rule, by the cumulative reach time otherwise (a skipped stage is passed when the deal jumps
    beyond it). Stage 1 is the arrival itself."""
    time_column = schema.stage_reaches.c.entered_at if passage else schema.stage_reaches.c.reached_at
    key = reach_key if reach_key is not None else key_of(time_column) if key_of else None
    selected, grouping = _grouped([schema.stage_reaches.c.position], key)
    query = (
        select(*selected, func.count())
        .where(scope.of(schema.stage_reaches), time_column.is_not(None), scope.within(time_column))
        .group_by(*grouping)
    )
    if needs_deal:  # the breakdown groups by a deal's column; periods alone need only the reaches
        query = query.join(schema.deals, schema.deals.c.id == schema.stage_reaches.c.deal_id)
    entries = [ReachRow(r[0], int(r[1]), int(r[2])) for r in session.execute(query)]
    return entries + _arrivals(session, scope, key_of)


def period_closures(session: Reader, scope: Scope, key_of: KeyFunction | None) -> list[OutcomeRow]:
    """Deals closed (won or lost) within the range, by group × furthest × status × currency."""
    key = key_of(schema.deals.c.closed_at) if key_of else None
    selected, grouping = _grouped(
        [schema.deals.c.furthest_position, schema.deals.c.status, schema.deals.c.currency], key
    )
    query = (
        select(*selected, func.count(), func.coalesce(func.sum(schema.deals.c.amount), 0))
        .where(
            scope.of(schema.deals),
            schema.deals.c.status != DealStatus.OPEN.value,
            schema.deals.c.closed_at.is_not(None),
            scope.within(schema.deals.c.closed_at),
        )
        .group_by(*grouping)
    )
    return [OutcomeRow(r[0], int(r[1]), r[2], r[3], int(r[4]), int(r[5])) for r in session.execute(query)]
