"""The data the diagnosis reasons over, counted in SQL for a recent window and the history before it."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from voronka.audit import stalled_deals
from voronka.db import parallel_reads
from voronka.funnel.query import FunnelQuery, View
from voronka.funnel.report import FunnelReport, run_funnel
from voronka.models import Account, CallAttempt, CallOutcome, Deal, DealStatus, LossReason, Pipeline
from voronka.stats import counts
from voronka.stats.periods import Grain, Period
from voronka.timeutil import local_midnight_utc, zone

RECENT_DAYS = 90
HISTORY_DAYS = 365


@dataclass(frozen=True)
class Window:
    start: dt.date
    end: dt.date

    @property
    def months(self) -> float:
        return (self.end - self.start).days / 30.4


@dataclass(frozen=True)
class NumberCalls:
    number: str
    attempts: int
    answered: int


@dataclass(frozen=True)
class Evidence:
    pipeline: Pipeline
    currency: str
    recent: Window
    history: Window
    year: Window
    """Managers and sources are compared over the last twelve months: their differences persist,
    and a longer window gives the shrunk estimates enough data."""
    total: FunnelReport
    year_total: FunnelReport
    past: FunnelReport
    by_manager: FunnelReport
    by_source: FunnelReport
    speed_by_manager: dict[str | None, float]
    speed_team: float | None
    speed_team_year: float | None
    speed_past: float | None
    numbers: dict[str, NumberCalls]
    numbers_past: dict[str, NumberCalls]
    losses: dict[int, dict[str, int]]
    """Lost in the recent window at each stage, by cause family."""
    losses_past: dict[int, dict[str, int]]
    losses_by_source: dict[tuple[str | None, int], dict[str, int]]
    stalled: list[tuple[str, int]]
    """(deal, stage position) of open deals untouched for twice the usual time."""

    @property
    def average_check(self) -> float:
        won = self.total.figures.won
        return self.total.figures.revenue_in(self.currency) / won if won else 0.0


def gather(*, session: Session, account: Account, pipeline: Pipeline, today: dt.date) -> Evidence:
    recent = Window(today - dt.timedelta(days=RECENT_DAYS), today)
    history = Window(recent.start - dt.timedelta(days=HISTORY_DAYS), recent.start)
    year = Window(today - dt.timedelta(days=HISTORY_DAYS), today)

    def funnel(window: Window, by: str | None = None) -> Callable[[Session], FunnelReport]:
        query = FunnelQuery(pipeline=pipeline.name, date_from=window.start, date_to=window.end, view=View.PERIOD, by=by)
        return lambda own: run_funnel(session=own, account=account, query=query)

    tz = zone(account.timezone)
    tasks: dict[str, Callable[[Session], Any]] = {
        "total": funnel(recent),
        "year_total": funnel(year),
        "past": funnel(history),
        "by_manager": funnel(year, "manager"),
        "by_source": funnel(year, "source"),
        "speed_by_manager": lambda own: _speeds(own, account, pipeline, year, by_manager=True),
        "speed_team": lambda own: _speeds(own, account, pipeline, recent, by_manager=False).get(None),
        "speed_team_year": lambda own: _speeds(own, account, pipeline, year, by_manager=False).get(None),
        "speed_past": lambda own: _speeds(own, account, pipeline, history, by_manager=False).get(None),
        "numbers": lambda own: _numbers(own, pipeline, recent, account),
        "numbers_past": lambda own: _numbers(own, pipeline, history, account),
        "losses": lambda own: _losses(own, pipeline, recent, account),
        "losses_past": lambda own: _losses(own, pipeline, history, account),
        "losses_by_source": lambda own: _losses_by_source(own, pipeline, year, account),
        "stalled": lambda own: stalled_deals(own, pipeline, local_midnight_utc(today, tz)),
    }
    results = dict(zip(tasks, parallel_reads(session, list(tasks.values())), strict=True))
    return Evidence(pipeline=pipeline, currency=account.currency, recent=recent, history=history, year=year, **results)


def _speeds(
    session: Session, account: Account, pipeline: Pipeline, window: Window, *, by_manager: bool
) -> dict[str | None, float]:
    """Median speed to lead (seconds) of the window's leads, per manager name or for the team."""
    grid = counts.Grid(session, account, pipeline, Grain.DAY, (Period("window", window.start, window.end),))
    cut = counts.CUTS["manager"] if by_manager else None
    medians = {cut_id: value for (cut_id, _), _, value in counts.speed_medians(grid, cut)}
    if not by_manager:
        return medians
    from voronka.models import User

    ids = [i for i in medians if i is not None]
    names = {row[0]: row[1] for row in session.execute(select(User.id, User.name).where(User.id.in_(ids)))}
    return {names.get(i): v for i, v in medians.items()}


def _bounds(window: Window, account: Account) -> tuple[dt.datetime, dt.datetime]:
    tz = zone(account.timezone)
    return local_midnight_utc(window.start, tz), local_midnight_utc(window.end, tz)


def _numbers(session: Session, pipeline: Pipeline, window: Window, account: Account) -> dict[str, NumberCalls]:
    start, end = _bounds(window, account)
    answered = func.sum(case((CallAttempt.outcome == CallOutcome.ANSWERED.value, 1), else_=0))
    rows = session.execute(
        select(CallAttempt.outgoing_number, func.count(), answered)
        .join(Deal, Deal.id == CallAttempt.deal_id)
        .where(
            Deal.pipeline_id == pipeline.id,
            CallAttempt.at >= start,
            CallAttempt.at < end,
            CallAttempt.outgoing_number.is_not(None),
        )
        .group_by(CallAttempt.outgoing_number)
    )
    return {str(n): NumberCalls(str(n), int(a), int(ok or 0)) for n, a, ok in rows}


def _losses(session: Session, pipeline: Pipeline, window: Window, account: Account) -> dict[int, dict[str, int]]:
    start, end = _bounds(window, account)
    rows = session.execute(
        select(Deal.furthest_position, LossReason.family, func.count())
        .join(LossReason, LossReason.id == Deal.loss_reason_id)
        .where(
            Deal.pipeline_id == pipeline.id,
            Deal.status == DealStatus.LOST.value,
            Deal.closed_at >= start,
            Deal.closed_at < end,
        )
        .group_by(Deal.furthest_position, LossReason.family)
    )
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for position, family, count in rows:
        found[int(position)][str(family)] = int(count)
    return dict(found)


def _losses_by_source(
    session: Session, pipeline: Pipeline, window: Window, account: Account
) -> dict[tuple[str | None, int], dict[str, int]]:
    from voronka.models import Source

    start, end = _bounds(window, account)
    rows = session.execute(
        select(Source.name, Deal.furthest_position, LossReason.family, func.count())
        .join(LossReason, LossReason.id == Deal.loss_reason_id)
        .outerjoin(Source, Source.id == Deal.source_id)
        .where(
            Deal.pipeline_id == pipeline.id,
            Deal.status == DealStatus.LOST.value,
            Deal.closed_at >= start,
            Deal.closed_at < end,
        )
        .group_by(Source.name, Deal.furthest_position, LossReason.family)
    )
    found: dict[tuple[str | None, int], dict[str, int]] = defaultdict(dict)
    for source, position, family, count in rows:
        found[(source, int(position))][str(family)] = int(count)
    return dict(found)
