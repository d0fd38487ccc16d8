"""The dashboard's figures: for one pipeline, and for all of an account's pipelines at once.

Pipelines have different stages (the business's own and a synced CRM's, say), so their funnels are
never merged: each pipeline keeps its own funnel, period figures and speed to lead, exactly as its
own dashboard shows them. Only the period figures that mean the same in every pipeline — leads,
sales, revenue — add up to a total across pipelines; conversion and average check of the total are
worked out from the sums (a sum of sales over a sum of leads), never averaged across pipelines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from voronka.analysis.funnel.query import FunnelQuery, Rule, View
from voronka.analysis.funnel.report import FunnelReport, run_funnel
from voronka.analysis.summary import (
    Compared,
    PeriodFigures,
    PeriodSummary,
    compare_periods,
    first_arrival_day,
    local_today,
    median_speed_to_lead,
    period_summary,
    whole_history,
)
from voronka.crm.accounts import list_pipelines
from voronka.models import Account, Pipeline

ALL_PIPELINES = "*"
"""The dashboard's choice of every pipeline at once (a pipeline of that very name still wins)."""


@dataclass(frozen=True)
class DashboardRange:
    """What a dashboard is asked for, the same for every pipeline it shows."""

    date_from: dt.date | None
    date_to: dt.date | None
    view: View = View.COHORT
    rule: Rule = Rule.CUMULATIVE
    by: str | None = None
    manager_id: int | None = None
    """A manager's own deals only (``voronka.crm.auth.report_scope``), in every figure."""
    today: dt.date | None = None
    """Inside the period, the period figures compare like with like (``period_summary``)."""


@dataclass(frozen=True)
class PipelineFigures:
    pipeline_id: int
    name: str
    funnel: FunnelReport
    summary: PeriodSummary | None
    """``None`` only for an account without deals asked for all time."""
    speed: tuple[float, int] | None
    """Median speed to lead in seconds, and how many leads were contacted."""


@dataclass(frozen=True)
class Totals:
    """The period figures of all pipelines together, and of the period before."""

    currency: str
    leads: Compared
    sales: Compared
    revenue: Compared
    conversion: Compared
    average_check: Compared


@dataclass(frozen=True)
class PipelinesOverview:
    pipelines: tuple[PipelineFigures, ...]
    totals: Totals | None


def pipeline_figures(
    *, session: Session, account: Account, pipeline: Pipeline, asked: DashboardRange
) -> PipelineFigures:
    """One pipeline's dashboard figures: its funnel, its period against the one before, its speed."""
    bounds = closed_range(session=session, account=account, asked=asked)
    return _figures(session, account, pipeline, asked, bounds)


def _figures(
    session: Session,
    account: Account,
    pipeline: Pipeline,
    asked: DashboardRange,
    bounds: tuple[dt.date, dt.date] | None,
) -> PipelineFigures:
    query = FunnelQuery(
        pipeline=pipeline.name,
        date_from=asked.date_from,
        date_to=asked.date_to,
        view=asked.view,
        rule=asked.rule,
        by=asked.by,
        manager_id=asked.manager_id,
    )
    funnel = run_funnel(session=session, account=account, query=query)
    summary = None
    if bounds is not None and asked.date_from is None and asked.date_to is None:
        summary = whole_history(funnel, *bounds)
    elif bounds is not None:
        summary = period_summary(
            session=session,
            account=account,
            pipeline=pipeline.name,
            date_from=bounds[0],
            date_to=bounds[1],
            manager_id=asked.manager_id,
            today=asked.today,
        )
    speed = median_speed_to_lead(
        session=session,
        account=account,
        pipeline=pipeline,
        date_from=asked.date_from,
        date_to=asked.date_to,
        manager_id=asked.manager_id,
    )
    return PipelineFigures(pipeline.id, pipeline.name, funnel, summary, speed)


def closed_range(*, session: Session, account: Account, asked: DashboardRange) -> tuple[dt.date, dt.date] | None:
    """The range the period figures cover. "All time" or a range open at one end is closed at the
    account's first arrival and after today, so the figures still show (the period before it has no
    deals: nothing to compare). ``None`` only for an account without deals and no start."""
    start = asked.date_from or first_arrival_day(session=session, account=account)
    end = asked.date_to or (asked.today or local_today(account)) + dt.timedelta(days=1)
    if start is None or start >= end:
        return None
    return start, end


def pipelines_overview(*, session: Session, account: Account, asked: DashboardRange) -> PipelinesOverview:
    """Every pipeline's figures, in the account's order, and their total for the period."""
    bounds = closed_range(session=session, account=account, asked=asked)  # the same for every pipeline
    figures = tuple(
        _figures(session, account, p, asked, bounds) for p in list_pipelines(session=session, account=account)
    )
    summaries = [f.summary for f in figures if f.summary is not None]
    return PipelinesOverview(figures, total_of(summaries) if summaries else None)


def total_of(summaries: Sequence[PeriodSummary]) -> Totals:
    """Leads, sales and revenue summed over pipelines (this period and the one before); conversion
    and average check from the sums."""

    def added(pick: str, previous: bool) -> int:
        compared = (getattr(s, pick) for s in summaries)
        return round(sum((c.previous if previous else c.value) or 0 for c in compared))

    def figures(previous: bool) -> PeriodFigures:
        leads, sales, revenue = (added(name, previous) for name in ("leads", "sales", "revenue"))
        return PeriodFigures(leads, sales, revenue, revenue / sales if revenue and sales else None)

    return Totals(summaries[0].currency, **compare_periods(figures(previous=False), figures(previous=True)))
