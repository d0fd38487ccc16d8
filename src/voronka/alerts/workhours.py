"""Working hours and the production calendar: when a lead's clock runs. Pure functions over local
wall-clock times (the account's zone, naive), tested without a database.

A day is a working day by the country's production calendar when one is set (Russia's: public
holidays, the days off moved by government decree, and the Saturdays made working days in their
place — all from the maintained ``holidays`` package, not a list typed here), else Monday to Friday.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

CALENDARS = ("RU",)
"""Production calendars an account may choose (``holidays`` country codes)."""

WorkingDay = Callable[[dt.date], bool]


def weekdays(day: dt.date) -> bool:
    """No calendar: Monday to Friday."""
    return day.weekday() < 5


@functools.lru_cache(maxsize=8)
def _country(code: str) -> Callable[[dt.date], bool]:
    import holidays  # loaded only for an account that set a calendar

    calendar = holidays.country_holidays(code)  # years load as they are asked about
    guard = threading.Lock()

    def is_working_day(day: dt.date) -> bool:
        # A year is filled in on its first question, and the worker's threads may ask at once.
        with guard:
            return bool(calendar.is_working_day(day))

    return is_working_day


def calendar_days(country: str | None) -> WorkingDay:
    """Whether a date is a working day: by ``country``'s production calendar, or Monday to Friday."""
    return _country(country) if country else weekdays


@dataclass(frozen=True)
class WorkingHours:
    """From ``start`` to ``end`` (the same day) on the days ``working_day`` says."""

    start: dt.time
    end: dt.time
    working_day: WorkingDay = weekdays

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError("working hours end after they start, the same day")

    def span(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The day's working time, or None on a day off."""
        if not self.working_day(day):
            return None
        return dt.datetime.combine(day, self.start), dt.datetime.combine(day, self.end)


SEARCH_DAYS = 60
"""No calendar has this many days off in a row (Russia's longest break is the New Year's ten)."""


def next_working_moment(local: dt.datetime, hours: WorkingHours) -> dt.datetime:
    """``local`` itself within working hours, else when they next begin."""
    for offset in range(SEARCH_DAYS):
        span = hours.span(local.date() + dt.timedelta(days=offset))
        if span is None:
            continue
        start, end = span
        if local < end:
            return max(local, start)
    raise ValueError("no working day within 60 days")


def working_minutes_between(start: dt.datetime, end: dt.datetime, hours: WorkingHours) -> float:
    """Working minutes from ``start`` to ``end`` (0 when ``end`` is not later)."""
    if end <= start:
        return 0.0
    total = dt.timedelta()
    day = start.date()
    while day <= end.date():
        span = hours.span(day)
        if span is not None:
            total += max(min(end, span[1]) - max(start, span[0]), dt.timedelta())
        day += dt.timedelta(days=1)
    return total.total_seconds() / 60


def after_working_minutes(start: dt.datetime, minutes: float, hours: WorkingHours) -> dt.datetime:
    """The moment ``minutes`` working minutes have passed since ``start``."""
    left = dt.timedelta(minutes=minutes)
    moment = next_working_moment(start, hours)
    for _ in range(SEARCH_DAYS * 24):
        span = hours.span(moment.date())
        assert span is not None  # next_working_moment lands on a working day
        room = span[1] - moment
        if left <= room:
            return moment + left
        left -= room
        moment = next_working_moment(span[1], hours)
    raise ValueError("too many working minutes")


@dataclass(frozen=True)
class LeadClock:
    """When a new lead's alerts are due (local): its manager's, and the escalation's."""

    page_at: dt.datetime
    escalate_at: dt.datetime


def lead_clock(arrived: dt.datetime, minutes: int, hours: WorkingHours | None) -> LeadClock:
    """Without working hours: ``minutes`` and twice that after arrival. With them, counted in working
    minutes; a lead that came outside them (at night, on a day off) waited long enough already, so
    its manager hears as the next working day begins, and the escalation follows at twice the
    threshold in working minutes."""
    if hours is None:
        return LeadClock(arrived + dt.timedelta(minutes=minutes), arrived + dt.timedelta(minutes=2 * minutes))
    opens = next_working_moment(arrived, hours)
    page = opens if opens > arrived else after_working_minutes(arrived, minutes, hours)
    return LeadClock(page, after_working_minutes(arrived, 2 * minutes, hours))


def lookback_start(local: dt.datetime, hours: WorkingHours | None, lookback: dt.timedelta) -> dt.datetime:
    """How far back a pass looks for news: ``lookback``, stretched over the days off just before (a
    lead from Friday evening is still news on Monday morning, after a holiday too)."""
    since = local - lookback
    if hours is None:
        return since
    day = since.date()
    for _ in range(SEARCH_DAYS):
        if hours.span(day) is not None:
            break
        day -= dt.timedelta(days=1)
    return min(since, dt.datetime.combine(day, hours.start))


def parse_hours(text: str | None, country: str | None) -> WorkingHours | None:
    """``"09:00-18:00"`` with an optional calendar; None when no hours are set."""
    if not text:
        return None
    start, _, end = text.partition("-")
    return WorkingHours(
        dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip()), calendar_days(country)
    )
