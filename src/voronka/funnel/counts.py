"""The SQL side of the funnel: counts per (group, stage, status), nothing else.

Every function returns small frozen rows; ``compute`` turns them into figures. No Python loop here
touches individual deals: the database aggregates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, null, or_, select, true
from sqlalchemy.orm import QueryableAttribute, Session

from voronka.models import Deal, DealStatus, StageChange

Expression = ColumnElement[Any] | QueryableAttribute[Any]
KeyFunction = Callable[[Expression], ColumnElement[Any]]
"""Given the time column that places a deal in time, the SQL grouping key (or ``None``: no groups)."""


@dataclass(frozen=True)
class Scope:
    """Which deals: the pipelines, the UTC range (``end`` exclusive) and each pipeline's won stage."""

    pipeline_ids: tuple[int, ...]
    won_stage_ids: tuple[int, ...]
    start: dt.datetime | None
    end: dt.datetime | None

    def within(self, column: Expression) -> ColumnElement[bool]:
        conditions = []
        if self.start is not None:
            conditions.append(column >= self.start)
        if self.end is not None:
            conditions.append(column < self.end)
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


def _grouped(
    columns: Sequence[Expression], key: ColumnElement[Any] | None
) -> tuple[list[Expression], list[Expression]]:
    """Select and group-by lists with the group key first (a constant when there is no key)."""
    if key is None:
        return [null().label("g"), *columns], list(columns)
    labelled = key.label("g")
    return [labelled, *columns], [labelled, *columns]


def cohort_outcomes(
    session: Session, scope: Scope, key_of: KeyFunction | None, *, history_known: bool | None = None
) -> list[OutcomeRow]:
    """Deals created in the scope, counted by group × furthest stage × status × currency."""
    key = key_of(Deal.created_at) if key_of else None
    selected, grouping = _grouped([Deal.furthest_position, Deal.status, Deal.currency], key)
    query = (
        select(*selected, func.count(), func.coalesce(func.sum(Deal.amount), 0))
        .where(Deal.pipeline_id.in_(scope.pipeline_ids), scope.within(Deal.created_at))
        .group_by(*grouping)
    )
    if history_known is not None:
        query = query.where(Deal.history_known.is_(history_known))
    return [OutcomeRow(r[0], int(r[1]), r[2], r[3], int(r[4]), int(r[5])) for r in session.execute(query)]


def _valid_entries(scope: Scope) -> ColumnElement[bool]:
    """A logged entry into the won stage counts only while the deal is still won (reopen undoes it)."""
    return or_(Deal.status == DealStatus.WON.value, StageChange.to_stage_id.not_in(scope.won_stage_ids))


def cohort_passages(session: Session, scope: Scope, key_of: KeyFunction | None) -> list[ReachRow]:
    """Deals created in the scope (with known history) that actually entered each stage."""
    key = key_of(Deal.created_at) if key_of else None
    selected, grouping = _grouped([StageChange.to_position], key)
    query = (
        select(*selected, func.count(func.distinct(StageChange.deal_id)))
        .join(Deal, Deal.id == StageChange.deal_id)
        .where(
            Deal.pipeline_id.in_(scope.pipeline_ids),
            scope.within(Deal.created_at),
            Deal.history_known.is_(True),
            _valid_entries(scope),
        )
        .group_by(*grouping)
    )
    return [ReachRow(r[0], int(r[1]), int(r[2])) for r in session.execute(query)]


def _first_entries(scope: Scope) -> Select[int, int, dt.datetime]:
    """Each deal's first entry time into each stage it entered."""
    return (
        select(
            StageChange.deal_id.label("deal_id"),
            StageChange.to_position.label("position"),
            func.min(StageChange.at).label("first_at"),
        )
        .join(Deal, Deal.id == StageChange.deal_id)
        .where(Deal.pipeline_id.in_(scope.pipeline_ids), _valid_entries(scope))
        .group_by(StageChange.deal_id, StageChange.to_position)
    )


def period_passages(session: Session, scope: Scope, key_of: KeyFunction | None) -> list[ReachRow]:
    """Per stage, deals whose first entry into it falls in the scope's range (passage rule)."""
    entries = _first_entries(scope).subquery()
    key = key_of(entries.c.first_at) if key_of else None
    selected, grouping = _grouped([entries.c.position], key)
    query = (
        select(*selected, func.count())
        .select_from(entries.join(Deal, Deal.id == entries.c.deal_id))
        .where(scope.within(entries.c.first_at))
        .group_by(*grouping)
    )
    return [ReachRow(r[0], int(r[1]), int(r[2])) for r in session.execute(query)]


def period_reaches(session: Session, scope: Scope, key_of: KeyFunction | None, positions: int) -> list[ReachRow]:
    """Per stage k, deals whose first entry into k *or any later stage* falls in the range.

    That is when the cumulative rule says a deal reached k: a skipped stage is passed at the moment
    the deal jumps beyond it.
    """
    entries = _first_entries(scope).subquery()
    rows: list[ReachRow] = []
    for position in range(1, positions + 1):
        reached = (
            select(entries.c.deal_id, func.min(entries.c.first_at).label("reached_at"))
            # Every deal arrives in the first stage when it is created, so stage 1 is its own entry.
            .where(entries.c.position >= position if position > 1 else entries.c.position == 1)
            .group_by(entries.c.deal_id)
            .subquery()
        )
        key = key_of(reached.c.reached_at) if key_of else None
        selected, grouping = _grouped([], key)
        query = (
            select(*selected, func.count())
            .select_from(reached.join(Deal, Deal.id == reached.c.deal_id))
            .where(scope.within(reached.c.reached_at))
        )
        if grouping:
            query = query.group_by(*grouping)
        rows.extend(ReachRow(r[0], position, int(r[1])) for r in session.execute(query) if int(r[1]))
    return rows


def period_closures(session: Session, scope: Scope, key_of: KeyFunction | None) -> list[OutcomeRow]:
    """Deals closed (won or lost) within the range, by group × furthest × status × currency."""
    key = key_of(Deal.closed_at) if key_of else None
    selected, grouping = _grouped([Deal.furthest_position, Deal.status, Deal.currency], key)
    query = (
        select(*selected, func.count(), func.coalesce(func.sum(Deal.amount), 0))
        .where(
            Deal.pipeline_id.in_(scope.pipeline_ids),
            Deal.status != DealStatus.OPEN.value,
            Deal.closed_at.is_not(None),
            scope.within(Deal.closed_at),
        )
        .group_by(*grouping)
    )
    return [OutcomeRow(r[0], int(r[1]), r[2], r[3], int(r[4]), int(r[5])) for r in session.execute(query)]
