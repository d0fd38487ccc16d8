"""Working hours and the production calendar: pure functions, no database. The Russian calendar's
days are read from the ``holidays`` package (which follows the government's decrees), not typed here."""

from __future__ import annotations

import datetime as dt

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voronka.alerts.workhours import (
    WorkingHours,
    after_working_minutes,
    calendar_days,
    lead_clock,
    lookback_start,
    next_working_moment,
    parse_hours,
    working_minutes_between,
)

NINE_TO_SIX = WorkingHours(dt.time(9), dt.time(18))
RU = parse_hours("09:00-18:00", "RU")
assert RU is not None


def _working_saturday(year: int) -> dt.date:
    """A Saturday Russia works, as the library knows it (a day off moved by decree)."""
    days = sorted(holidays.country_holidays("RU", years=year).weekend_workdays)
    assert days, f"no working Saturday in {year}"
    return days[0]


def _holiday_on_a_weekday(year: int) -> dt.date:
    return next(day for day in sorted(holidays.country_holidays("RU", years=year)) if day.weekday() < 5)


def test_the_russian_calendar_comes_from_the_library_with_its_working_saturdays() -> None:
    saturday = _working_saturday(2025)
    assert saturday.weekday() == 5
    assert calendar_days("RU")(saturday)  # worked, although a Saturday
    assert not calendar_days(None)(saturday)  # Monday to Friday without a calendar
    holiday = _holiday_on_a_weekday(2026)
    assert not calendar_days("RU")(holiday)
    assert calendar_days(None)(holiday)


def test_a_lead_at_23_00_pages_as_the_next_working_day_begins() -> None:
    friday = dt.datetime(2026, 3, 6, 23, 0)  # Monday 9 March 2026 is a day off in Russia (8 March moved)
    assert not calendar_days("RU")(dt.date(2026, 3, 9))
    clock = lead_clock(friday, 5, RU)
    assert clock.page_at == dt.datetime(2026, 3, 10, 9, 0)  # Tuesday: the weekend and the holiday pass
    assert clock.escalate_at == dt.datetime(2026, 3, 10, 9, 10)
    plain = lead_clock(friday, 5, NINE_TO_SIX)  # no calendar: Monday is a working day
    assert plain.page_at == dt.datetime(2026, 3, 9, 9, 0)


def test_a_lead_before_closing_escalates_the_next_working_morning() -> None:
    arrived = dt.datetime(2026, 3, 5, 17, 57)  # Thursday, three working minutes to go
    clock = lead_clock(arrived, 5, RU)
    assert clock.page_at == dt.datetime(2026, 3, 6, 9, 2)
    assert clock.escalate_at == dt.datetime(2026, 3, 6, 9, 7)
    assert lead_clock(arrived, 5, None).page_at == dt.datetime(2026, 3, 5, 18, 2)  # around the clock


def test_a_lead_before_a_working_saturday_pages_on_the_saturday() -> None:
    saturday = _working_saturday(2025)
    friday_night = dt.datetime.combine(saturday - dt.timedelta(days=1), dt.time(23))
    assert lead_clock(friday_night, 5, RU).page_at == dt.datetime.combine(saturday, dt.time(9))


def test_working_minutes_count_only_working_time() -> None:
    assert working_minutes_between(dt.datetime(2026, 3, 6, 17, 0), dt.datetime(2026, 3, 10, 9, 30), RU) == 90
    assert working_minutes_between(dt.datetime(2026, 3, 7, 10), dt.datetime(2026, 3, 8, 10), RU) == 0
    assert working_minutes_between(dt.datetime(2026, 3, 6, 10), dt.datetime(2026, 3, 6, 9), RU) == 0


def test_lookback_stretches_over_the_days_off_before() -> None:
    tuesday = dt.datetime(2026, 3, 10, 9, 5)  # after Saturday, Sunday and the Monday holiday
    assert lookback_start(tuesday, RU, dt.timedelta(days=1)) == dt.datetime(2026, 3, 6, 9, 0)
    assert lookback_start(tuesday, None, dt.timedelta(days=1)) == dt.datetime(2026, 3, 9, 9, 5)


def test_working_hours_end_after_they_start() -> None:
    with pytest.raises(ValueError):
        WorkingHours(dt.time(18), dt.time(9))


moments = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2026, 12, 20)).map(
    lambda moment: moment.replace(second=0, microsecond=0)
)
calendars = st.sampled_from([RU, NINE_TO_SIX, WorkingHours(dt.time(8, 30), dt.time(20, 15), calendar_days("RU"))])


@settings(max_examples=200, deadline=None)
@given(calendars, moments, moments, moments)
def test_working_minutes_add_up_and_never_go_back(
    hours: WorkingHours, first: dt.datetime, second: dt.datetime, third: dt.datetime
) -> None:
    a, b, c = sorted((first, second, third))
    ab, bc, ac = (working_minutes_between(x, y, hours) for x, y in ((a, b), (b, c), (a, c)))
    assert ab + bc == pytest.approx(ac)
    assert 0 <= ab <= ac
    assert ac <= (c - a).total_seconds() / 60


@settings(max_examples=200, deadline=None)
@given(calendars, moments, st.integers(min_value=0, max_value=3000))
def test_after_working_minutes_is_where_that_many_have_passed(
    hours: WorkingHours, start: dt.datetime, minutes: int
) -> None:
    end = after_working_minutes(start, minutes, hours)
    assert working_minutes_between(start, end, hours) == pytest.approx(minutes)
    opens = next_working_moment(start, hours)
    assert opens >= start
    assert hours.working_day(opens.date())
    assert hours.start <= opens.time() < hours.end
    assert next_working_moment(opens, hours) == opens
    assert working_minutes_between(start, opens, hours) == 0
