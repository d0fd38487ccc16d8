"""The Python side of the statistics template: plan, fact, % of plan, change, forecast and trend.

Pure functions over counted values; tested without a database.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from voronka.analysis.stats.metrics import SPEND_AHEAD, Metric, Number, derive
from voronka.analysis.stats.periods import Period
from voronka.analysis.stats.periods import run_rate as periods_run_rate

TREND_PERIODS = 4
TREND_THRESHOLD = 0.10


class Trend(enum.StrEnum):
    RISING = "rising"
    FLAT = "flat"
    FALLING = "falling"


@dataclass(frozen=True)
class Cell:
    fact: Number | None
    plan: Number | None = None
    of_plan: float | None = None
    change: float | None = None
    """fact / previous period's fact − 1."""


@dataclass(frozen=True)
class Row:
    metric: Metric
    cells: tuple[Cell, ...]
    forecast: Number | None = None
    """Run-rate forecast of the unfinished period (counted sums only)."""
    forecast_of_plan: float | None = None
    trend: Trend | None = None


@dataclass(frozen=True)
class Table:
    cut: str | None
    """The manager or source this table is about; None for the team total."""
    rows: tuple[Row, ...]

    def row(self, key: str) -> Row:
        return next(r for r in self.rows if r.metric.key == key)


def ratio(numerator: Number | None, denominator: Number | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def plan_for_period(metric: Metric, period: Period, monthly: Mapping[dt.date, Number]) -> Number | None:
    """A monthly plan brought to a period: sums are shared out by calendar days; ratios are the
    plans of the months the period touches, weighted by its days in each."""
    if not monthly:
        return None  # most rows have no plan: a year by week asks this 27,000 times
    total, weight, found = 0.0, 0, False
    day = period.start
    while day < period.end:
        month = day.replace(day=1)
        following = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
        overlap_end = min(following, period.end)
        if month in monthly:
            found = True
            days = (overlap_end - day).days
            if metric.additive:
                total += monthly[month] * days / (following - month).days
            else:  # a ratio: the months' plans weighted by the days the period has in each
                total += monthly[month] * days
                weight += days
        day = overlap_end
    if not found:
        return None
    return total if metric.additive else total / weight


def run_rate(fact: Number | None, period: Period, today: dt.date) -> float | None:
    """The running period's run rate by the one rule of ``periods.run_rate``."""
    if not period.contains(today):
        return None
    return periods_run_rate(None if fact is None else float(fact), period.start, period.end, today)


def spend_forecast(fact: Number | None, counted: Mapping[str, Number | None], run: float | None) -> float | None:
    """The running period's spend: its budget (spent so far + entered for the days ahead) where one is
    entered; otherwise the run rate of what has been spent. Never an extrapolation of a budget
    already counted in full."""
    ahead = counted.get(SPEND_AHEAD)
    if ahead:
        return float((fact or 0) + ahead)
    return run


def trend_of(values: Sequence[Number | None]) -> Trend | None:
    """Rising, flat or falling over the last few finished periods (least-squares slope vs the mean)."""
    recent = [float(v) for v in values[-TREND_PERIODS:] if v is not None]
    if len(recent) < 3:
        return None
    n = len(recent)
    mean_x, mean_y = (n - 1) / 2, sum(recent) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(recent)) / sum((x - mean_x) ** 2 for x in range(n))
    scale = sum(abs(y) for y in recent) / n
    if not scale:
        return Trend.FLAT
    change = slope * (n - 1) / scale
    if change > TREND_THRESHOLD:
        return Trend.RISING
    if change < -TREND_THRESHOLD:
        return Trend.FALLING
    return Trend.FLAT


def build_table(
    cut: str | None,
    metrics: Sequence[Metric],
    periods: Sequence[Period],
    base: Mapping[str, Mapping[str, Number | None]],
    plans: Mapping[str, Mapping[dt.date, Number]],
    today: dt.date,
    available: frozenset[str] | None = None,
) -> Table:
    """One table: ``base`` is the counted values per period label, ``plans`` monthly plans per metric.

    ``available`` names the counted rows the data can give at all (daily counts give no calls);
    the others stay empty rather than showing zeros.
    """
    values = [derive(metrics, _with_zero_counts(metrics, base.get(p.label, {}), available)) for p in periods]
    current = next((i for i, p in enumerate(periods) if p.contains(today)), None)
    rows = []
    for metric in metrics:
        facts = [v[metric.key] for v in values]
        cells = []
        for index, (period, fact) in enumerate(zip(periods, facts, strict=True)):
            plan = plan_for_period(metric, period, plans.get(metric.key, {}))
            previous = facts[index - 1] if index else None
            change = None if previous is None or fact is None else ratio(fact - previous, previous)
            cells.append(Cell(fact, plan, ratio(fact, plan), change))
        forecast = (
            run_rate(facts[current], periods[current], today) if current is not None and metric.additive else None
        )
        if metric.key == "spend" and current is not None:
            forecast = spend_forecast(facts[current], base.get(periods[current].label, {}), forecast)
        forecast_plan = cells[current].plan if current is not None else None
        finished = facts[:current] if current is not None else facts
        rows.append(Row(metric, tuple(cells), forecast, ratio(forecast, forecast_plan), trend_of(finished)))
    return Table(cut, tuple(rows))


def _with_zero_counts(
    metrics: Sequence[Metric], counted: Mapping[str, Number | None], available: frozenset[str] | None
) -> dict[str, Number | None]:
    """A period without events has zero of every counted sum (but no median and no ratio)."""
    return {
        m.key: counted.get(m.key, 0 if m.additive else None) if available is None or m.key in available else None
        for m in metrics
        if m.formula is None
    }
