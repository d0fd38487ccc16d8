"""What an owner asks first, for a period against the one before it: leads, sales, revenue,
conversion to sale and average check — and the money the period's losses cost at each stage.

Counted by the period view of the funnel (docs/funnel.md): leads are deals created in the period,
sales are deals won in it, revenue is their money in the account's currency. Money lost at a stage
is the deals lost there in the period times the period's average check: what those clients would
have brought had they bought like the others.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voronka.analysis.diagnose.cube import SpeedHistogram
from voronka.analysis.funnel.query import FunnelQuery, View
from voronka.analysis.funnel.report import FunnelReport, run_funnel
from voronka.models import Account, Deal, DealDay, Pipeline
from voronka.timeutil import comparable_ranges, local_midnight_utc, previous_range, to_local, utcnow, zone


@dataclass(frozen=True)
class Compared:
    """A figure this period and the period before (``None`` where it cannot be computed)."""

    value: float | None
    previous: float | None

    @property
    def change(self) -> float | None:
        """Relative change (``0.25`` is +25 %); ``None`` without a previous value to compare."""
        if self.value is None or not self.previous:
            return None
        return self.value / self.previous - 1


@dataclass(frozen=True)
class StageLoss:
    position: int
    name: str
    lost: int
    money: float
    """Minor units of the account's currency."""


@dataclass(frozen=True)
class PeriodSummary:
    date_from: dt.date
    date_to: dt.date
    previous_from: dt.date
    previous_to: dt.date
    currency: str
    leads: Compared
    sales: Compared
    revenue: Compared
    conversion: Compared
    average_check: Compared
    losses: tuple[StageLoss, ...]
    partial: bool = False
    """The period still runs: both it and the one before are cut after today (like for like)."""


@dataclass(frozen=True)
class PeriodFigures:
    leads: int
    sales: int
    revenue: int
    """Minor units of the account's currency."""
    average_check: float | None


def _figures(report: FunnelReport) -> PeriodFigures:
    money = report.figures.revenue.get(report.currency, 0)
    sales = report.figures.won
    return PeriodFigures(report.figures.deals, sales, money, money / sales if money and sales else None)


def compare_periods(current: PeriodFigures, previous: PeriodFigures) -> dict[str, Compared]:
    """The five figures of ``current`` beside those of ``previous``."""

    def conversion(figures: PeriodFigures) -> float | None:
        return figures.sales / figures.leads if figures.leads else None

    return {
        "leads": Compared(current.leads, previous.leads),
        "sales": Compared(current.sales, previous.sales),
        "revenue": Compared(current.revenue, previous.revenue),
        "conversion": Compared(conversion(current), conversion(previous)),
        "average_check": Compared(current.average_check, previous.average_check),
    }


def _losses(report: FunnelReport, figures: PeriodFigures) -> tuple[StageLoss, ...]:
    """Deals lost at each stage, priced at the period's average check."""
    check = figures.average_check or 0.0
    return tuple(
        StageLoss(s.position, s.name, s.lost or 0, (s.lost or 0) * check) for s in report.figures.stages if s.lost
    )


def period_summary(
    *,
    session: Session,
    account: Account,
    pipeline: str | None,
    date_from: dt.date,
    date_to: dt.date,
    manager_id: int | None = None,
    today: dt.date | None = None,
) -> PeriodSummary:
    """The owner's figures for [``date_from``, ``date_to``) and the period just before it; given
    ``today`` inside the period, both are cut after it (``comparable_ranges``)."""
    partial = False
    if today is not None:
        cut_from, cut_to, previous_from, previous_to = comparable_ranges(date_from, date_to, today)
        partial = cut_to < date_to
        date_from, date_to = cut_from, cut_to
    else:
        previous_from, previous_to = previous_range(date_from, date_to)

    def report(start: dt.date, end: dt.date) -> FunnelReport:
        query = FunnelQuery(pipeline=pipeline, date_from=start, date_to=end, view=View.PERIOD, manager_id=manager_id)
        return run_funnel(session=session, account=account, query=query)

    now, before = report(date_from, date_to), report(previous_from, previous_to)
    current = _figures(now)
    losses = _losses(now, current)
    return PeriodSummary(
        date_from,
        date_to,
        previous_from,
        previous_to,
        now.currency,
        losses=losses,
        partial=partial,
        **compare_periods(current, _figures(before)),
    )


def median_speed_to_lead(
    *,
    session: Session,
    account: Account,
    pipeline: Pipeline,
    date_from: dt.date | None,
    date_to: dt.date | None,
    manager_id: int | None = None,
) -> tuple[float, int] | None:
    """The exact median speed to lead (seconds) of the leads created in the range, and how many
    were contacted: a histogram of whole minutes counted in SQL, so a page need not read every lead."""
    tz = zone(account.timezone)
    conditions = [Deal.pipeline_id == pipeline.id, Deal.contact_minutes.is_not(None)]
    if date_from:
        conditions.append(Deal.created_at >= local_midnight_utc(date_from, tz))
    if date_to:
        conditions.append(Deal.created_at < local_midnight_utc(date_to, tz))
    if manager_id is not None:
        conditions.append(Deal.manager_id == manager_id)
    rows = session.execute(
        select(Deal.contact_minutes, func.count()).where(*conditions).group_by(Deal.contact_minutes)
    ).all()
    histogram = SpeedHistogram({(0, None): {int(m or 0): int(n) for m, n in rows}})
    median = histogram.median_seconds(frozenset({0}))  # type: ignore[arg-type]
    return (median, sum(int(n) for _, n in rows)) if median is not None else None


def local_today(account: Account) -> dt.date:
    """Today in the account's time zone."""
    return to_local(utcnow(), zone(account.timezone)).date()


def first_arrival_day(*, session: Session, account: Account) -> dt.date | None:
    """The local day the account's first deal arrived (``None`` without deals), from the per-day
    summary: a few thousand cells instead of every deal."""
    first: dt.date | None = session.scalar(select(func.min(DealDay.day)).where(DealDay.account_id == account.id))
    return first


def whole_history(report: FunnelReport, date_from: dt.date, date_to: dt.date) -> PeriodSummary:
    """The period figures of a range that holds every deal there is (all time): they are the
    report's own totals — every arrival, every sale, every loss — whichever view it was counted in,
    so no second count over the whole history is needed. Nothing came before it to compare with."""
    current = _figures(report)
    losses = _losses(report, current)
    previous_from, previous_to = previous_range(date_from, date_to)
    return PeriodSummary(
        date_from,
        date_to,
        previous_from,
        previous_to,
        report.currency,
        losses=losses,
        partial=False,
        **compare_periods(current, PeriodFigures(0, 0, 0, None)),
    )
