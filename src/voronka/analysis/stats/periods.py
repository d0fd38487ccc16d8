"""The columns of the statistics table: days, ISO weeks or months over a range."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from voronka.analysis.funnel.dimensions import DayDimension, MonthDimension, WeekDimension
from voronka.analysis.stats.grain import Grain as Grain

TIME_DIMENSIONS = {Grain.DAY: DayDimension(), Grain.WEEK: WeekDimension(), Grain.MONTH: MonthDimension()}
DEFAULT_SPAN = {Grain.DAY: 14, Grain.WEEK: 8, Grain.MONTH: 6}


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.date
    end: dt.date  # exclusive

    def contains(self, day: dt.date) -> bool:
        return self.start <= day < self.end

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def periods_between(grain: Grain, start: dt.date, end: dt.date) -> list[Period]:
    """The periods that cover [start, end), the first and last ones whole."""
    dimension = TIME_DIMENSIONS[grain]
    day = dimension.start_of(dimension.label_of(start))
    periods = []
    while day < end:
        following = dimension.next_start(day)
        periods.append(Period(dimension.label_of(day), day, following))
        day = following
    return periods


def default_range(grain: Grain, today: dt.date) -> tuple[dt.date, dt.date]:
    """The last few periods up to and including the current one."""
    dimension = TIME_DIMENSIONS[grain]
    current = dimension.start_of(dimension.label_of(today))
    start = current
    for _ in range(DEFAULT_SPAN[grain] - 1):
        start = dimension.start_of(dimension.label_of(start - dt.timedelta(days=1)))
    return start, dimension.next_start(current)


def run_rate(fact: float | None, start: dt.date, end: dt.date, today: dt.date) -> float | None:
    """The one run rate of every report (stats, the forecast, the web pages, the digest): what came
    in [start, end) so far × its working days / the working days elapsed, today included (``today``
    is a whole day: see docs/stats.md). None outside the period or before its first working day."""
    if fact is None or not start <= today < end:
        return None
    elapsed = working_days(start, today + dt.timedelta(days=1))
    return fact * working_days(start, end) / elapsed if elapsed else None


def working_days(start: dt.date, end: dt.date) -> int:
    """Monday to Friday in [start, end); public holidays are not known and count as working days."""
    return sum(1 for n in range((end - start).days) if (start + dt.timedelta(days=n)).weekday() < 5)
