"""The SQL side of the statistics template: base values per period and cut.

Period columns are flows (FUNNEL.md, period view): leads that arrived, stage reaches (cumulative
rule), sales and revenue closed, non-target losses — each in the period it happened. Speed to lead
and the share reached belong to the leads of the period.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from voronka.funnel.counts import Expression
from voronka.funnel.dimensions import DimensionContext, fixed_offset_minutes
from voronka.models import (
    Account,
    AdSpend,
    CallAttempt,
    CallOutcome,
    CauseFamily,
    Deal,
    DealStatus,
    LossReason,
    Pipeline,
    StageReach,
)
from voronka.stats.metrics import stage_key
from voronka.stats.periods import TIME_DIMENSIONS, Grain, Period
from voronka.timeutil import local_midnight_utc, zone

Key = tuple[Any, str]  # (cut value id or None, period label)
BaseValues = dict[Key, dict[str, Any]]
WITHIN_MINUTES = 5
SPEED_BINS = "speed_bins"


class Cut:
    """What the table is split by: the deal column, the stage-reach column, the spend column."""

    def __init__(self, name: str, deal: Expression, reach: Expression, spend: Expression | None) -> None:
        self.name, self.deal, self.reach, self.spend = name, deal, reach, spend


CUTS: dict[str, Cut] = {
    "manager": Cut("manager", Deal.manager_id, StageReach.manager_id, None),
    "source": Cut("source", Deal.source_id, StageReach.source_id, AdSpend.source_id),
}


@dataclass(frozen=True)
class Grid:
    """Where and when: the pipeline, the periods (local dates), and how to bucket times in SQL."""

    session: Session
    account: Account
    pipeline: Pipeline
    grain: Grain
    periods: tuple[Period, ...]

    @property
    def start_utc(self) -> dt.datetime:
        return local_midnight_utc(self.periods[0].start, zone(self.account.timezone))

    @property
    def end_utc(self) -> dt.datetime:
        return local_midnight_utc(self.periods[-1].end, zone(self.account.timezone))

    def bucket(self) -> tuple[Callable[[Expression], Expression], Callable[[Iterable[Any]], dict[Any, str | None]]]:
        """The SQL period key of a time column, and how to turn keys into period labels."""
        tz = zone(self.account.timezone)
        context = DimensionContext(
            self.session, self.account.id, tz, fixed_offset_minutes(tz, self.start_utc, self.end_utc)
        )
        dimension = TIME_DIMENSIONS[self.grain]
        return (lambda column: dimension.key(context, column)), (lambda keys: dimension.labels(context, keys))

    def within(self, column: Expression) -> ColumnElement[bool]:
        return and_(column >= self.start_utc, column < self.end_utc)


def base_values(grid: Grid, cut: Cut | None) -> BaseValues:
    """Every counted row of the template, per (cut value, period); speed to lead as a histogram
    under ``SPEED_BINS`` until ``finish`` turns it into the median."""
    values: BaseValues = defaultdict(dict)
    for collect in (_arrivals, _reaches, _closures, _contacts, spend_values):
        for key, metric, value in collect(grid, cut):
            add(values[key], metric, value)
    return values


def add(cell: dict[str, Any], metric: str, value: Any) -> None:
    if metric == SPEED_BINS:
        cell[metric] = [*cell.get(metric, []), *value]
    else:
        cell[metric] = (cell.get(metric) or 0) + value


def merged(values: BaseValues) -> BaseValues:
    """The team total from the values per cut: sums add up, speed histograms join."""
    total: BaseValues = defaultdict(dict)
    for (_, label), cell in values.items():
        for metric, value in cell.items():
            add(total[(None, label)], metric, value)
    return total


def finish(values: BaseValues) -> BaseValues:
    """Speed histograms become the median speed to lead (seconds)."""
    for cell in values.values():
        bins = cell.pop(SPEED_BINS, None)
        if bins:
            cell["speed_median"] = weighted_median(bins) * 60
    return values


def _run(grid: Grid, query: Any, labels_of: Callable[[Iterable[Any]], dict[Any, str | None]]) -> list[tuple[Any, ...]]:
    rows = grid.session.execute(query).all()
    labels = labels_of({row[0] for row in rows})
    return [(row[1], labels[row[0]], *row[2:]) for row in rows]


def _select(
    grid: Grid, time_column: Expression, cut_column: Expression | None, *measures: Any
) -> tuple[Any, Callable[[Iterable[Any]], dict[Any, str | None]], list[Any]]:
    key_of, labels_of = grid.bucket()
    period_key = key_of(time_column)
    group = [period_key] if cut_column is None else [period_key, cut_column]
    columns = [period_key, cut_column if cut_column is not None else func.min(None), *measures]
    return select(*columns), labels_of, group


def _arrivals(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, int]]:
    """Leads of the period, those first contacted within five minutes, and — when the pipeline logs
    no calls at all (imported data) — those reached, taken as the ones that got past the first stage."""
    within = func.sum(case((Deal.contact_minutes <= WITHIN_MINUTES, 1), else_=0))
    past_first = func.sum(case((Deal.furthest_position > 1, 1), else_=0))
    query, labels_of, group = _select(
        grid, Deal.created_at, cut.deal if cut else None, func.count(), within, past_first
    )
    query = query.where(Deal.pipeline_id == grid.pipeline.id, grid.within(Deal.created_at)).group_by(*group)
    calls = _has_calls(grid)
    for cut_value, label, count, within_5, reached in _run(grid, query, labels_of):
        yield (cut_value, label), "leads", int(count)
        yield (cut_value, label), "within_5min", int(within_5 or 0)
        if not calls:
            yield (cut_value, label), "reached", int(reached or 0)


def _has_calls(grid: Grid) -> bool:
    found = grid.session.scalar(
        select(CallAttempt.id)
        .join(Deal, Deal.id == CallAttempt.deal_id)
        .where(Deal.pipeline_id == grid.pipeline.id)
        .limit(1)
    )
    return found is not None


def _reaches(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, int]]:
    last = len(grid.pipeline.stages)
    query, labels_of, group = _select(
        grid, StageReach.reached_at, cut.reach if cut else None, StageReach.position, func.count()
    )
    query = query.where(StageReach.pipeline_id == grid.pipeline.id, grid.within(StageReach.reached_at)).group_by(
        *group, StageReach.position
    )
    for cut_value, label, position, count in _run(grid, query, labels_of):
        yield (cut_value, label), "sales" if position == last else stage_key(int(position)), int(count)


def _closures(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, int]]:
    """Revenue of the deals won in the period (account currency) and the deals lost as non-target."""
    non_target_reasons = list(
        grid.session.scalars(
            select(LossReason.id).where(
                LossReason.account_id == grid.account.id, LossReason.family == CauseFamily.NON_TARGET.value
            )
        )
    )
    won = (Deal.status == DealStatus.WON.value) & (Deal.currency == grid.account.currency)
    revenue = func.coalesce(func.sum(case((won, Deal.amount), else_=0)), 0)
    lost = (Deal.status == DealStatus.LOST.value) & Deal.loss_reason_id.in_(non_target_reasons or [-1])
    non_target = func.sum(case((lost, 1), else_=0))
    query, labels_of, group = _select(grid, Deal.closed_at, cut.deal if cut else None, revenue, non_target)
    query = query.where(
        Deal.pipeline_id == grid.pipeline.id,
        Deal.status != DealStatus.OPEN.value,
        Deal.closed_at.is_not(None),
        grid.within(Deal.closed_at),
    ).group_by(*group)
    for cut_value, label, amount, lost_count in _run(grid, query, labels_of):
        yield (cut_value, label), "revenue", int(amount or 0)
        yield (cut_value, label), "non_target", int(lost_count or 0)


def _contacts(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, Any]]:
    """A histogram of speed to lead per period of arrival, and the leads reached by an answered call.

    The histogram is exact to the minute up to an hour, to five minutes up to six hours, to half an
    hour up to two days and to the hour up to a week (capped there): medians are told to that
    precision; the share within five minutes is exact (counted in ``_arrivals``).
    """
    minutes = Deal.contact_minutes
    bucket = case(
        (minutes <= 60, minutes),
        (minutes <= 360, ((minutes + 4) / 5) * 5),
        (minutes <= 2880, ((minutes + 29) / 30) * 30),
        (minutes <= 10080, ((minutes + 59) / 60) * 60),
        else_=10080,
    )
    query, labels_of, group = _select(grid, Deal.created_at, cut.deal if cut else None, bucket, func.count())
    query = query.where(
        Deal.pipeline_id == grid.pipeline.id, grid.within(Deal.created_at), Deal.contact_minutes.is_not(None)
    ).group_by(*group, bucket)
    histogram: dict[Key, list[tuple[int, int]]] = defaultdict(list)
    for cut_value, label, minute, count in _run(grid, query, labels_of):
        histogram[(cut_value, label)].append((int(minute), int(count)))
    for key, bins in histogram.items():
        yield key, SPEED_BINS, bins
    if _has_calls(grid):
        yield from _answered(grid, cut)


def _answered(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, int]]:
    answered = (
        select(CallAttempt.deal_id).where(CallAttempt.outcome == CallOutcome.ANSWERED.value).distinct().subquery()
    )
    query, labels_of, group = _select(grid, Deal.created_at, cut.deal if cut else None, func.count())
    query = query.join(answered, answered.c.deal_id == Deal.id)
    query = query.where(Deal.pipeline_id == grid.pipeline.id, grid.within(Deal.created_at)).group_by(*group)
    for cut_value, label, count in _run(grid, query, labels_of):
        yield (cut_value, label), "reached", int(count or 0)


def weighted_median(bins: Iterable[tuple[int, int]]) -> float:
    """The median of values given as (value, how many times); the mean of the two middle ones if even."""
    ordered = sorted(bins)
    total = sum(n for _, n in ordered)
    middle = [(total - 1) // 2, total // 2]
    found: list[int] = []
    seen = 0
    for value, count in ordered:
        while len(found) < 2 and middle[len(found)] < seen + count:
            found.append(value)
        seen += count
    return statistics.fmean(found)


def spend_values(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, int]]:
    """Spend in the account's currency, monthly amounts spread evenly over the month's days."""
    if cut is not None and cut.spend is None:
        return
    first, last = grid.periods[0].start, grid.periods[-1].end
    rows = grid.session.execute(
        select(AdSpend.source_id, AdSpend.period_start, AdSpend.period_kind, AdSpend.amount).where(
            AdSpend.account_id == grid.account.id,
            AdSpend.currency == grid.account.currency,
            AdSpend.period_start < last,
            AdSpend.period_start >= dt.date(first.year, first.month, 1),
        )
    )
    for source_id, start, kind, amount in rows:
        for day, share in spread(start, kind, int(amount)):
            period = next((p for p in grid.periods if p.contains(day)), None)
            if period is not None and share:
                yield (source_id if cut is not None else None, period.label), "spend", share


def spread(start: dt.date, kind: str, amount: int) -> list[tuple[dt.date, int]]:
    """A day's or a month's spend as (day, amount) in whole minor units, remainders to the first days."""
    if kind == "day":
        return [(start, amount)]
    following = dt.date(start.year + start.month // 12, start.month % 12 + 1, 1)
    days = (following - start).days
    each, remainder = divmod(amount, days)
    return [(start + dt.timedelta(days=n), each + (1 if n < remainder else 0)) for n in range(days)]
