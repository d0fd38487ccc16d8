"""Time: storage is naive UTC; reports bucket by the account's time zone."""

from __future__ import annotations

import calendar
import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voronka.errors import InvalidValue
from voronka.i18n import Message

UTC = dt.UTC
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2999, 12, 31)
"""The calendar voronka reads and keeps. Python's dates end at years 1 and 9999, so a day at either
end cannot be moved across a time zone or be the start of a period whose end is the next day."""
DAY_HINT = Message("hint.day_in_calendar", {"first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()})
ISO_DAY_HINT = Message("hint.iso_day")


def parse_day(text: str | None, field: str) -> dt.date | None:
    """A day written ``2026-03-01`` (as a date input sends it), ``None`` for nothing written."""
    if not text:
        return None
    try:
        return check_day(dt.date.fromisoformat(text), field)
    except ValueError:
        raise InvalidValue(field=field, value=text, hint=ISO_DAY_HINT) from None


def check_day(day: dt.date, field: str = "date") -> dt.date:
    """``day`` if it lies within the calendar voronka keeps, else ``InvalidValue``."""
    if not FIRST_DAY <= (day.date() if isinstance(day, dt.datetime) else day) <= LAST_DAY:
        raise InvalidValue(field=field, value=day.isoformat(), hint=DAY_HINT)
    return day


def clamp_day(day: dt.date) -> dt.date:
    """``day`` moved into the calendar voronka keeps: for rows stored before the bounds were checked."""
    return min(max(day, FIRST_DAY), LAST_DAY)


def utcnow() -> dt.datetime:
    """Now, as the naive UTC datetime the database stores."""
    return dt.datetime.now(UTC).replace(tzinfo=None)


def local_zone_name() -> str:
    """The machine's IANA time zone name, or ``UTC`` when it cannot be told."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    timezone_file = Path("/etc/timezone")
    if timezone_file.is_file():
        candidates.append(timezone_file.read_text(encoding="utf-8").strip())
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if name and _is_zone(name):
            return name
    return "UTC"


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(field="timezone", value=name, hint="an IANA name such as Europe/Moscow") from None


def to_utc(value: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """A naive UTC datetime: aware values are converted, naive ones are read in ``tz``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # a moment in year 1 or 9999 that a time zone moves off the calendar
        raise InvalidValue(field="date", value=value.isoformat(), hint=DAY_HINT) from None


def local_midnight_utc(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant at which ``day`` starts in ``tz``."""
    return to_utc(dt.datetime.combine(day, dt.time()), tz)


def minutes_begun(start: dt.datetime, end: dt.datetime | None) -> int | None:
    """Whole minutes begun between two times (ceiling; 300 s → 5, 301 s → 6); never negative."""
    if end is None:
        return None
    seconds = max(round((end - start).total_seconds()), 0)
    return -(-seconds // 60)


def to_local(value: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """A stored naive UTC datetime as naive local time in ``tz``; one at the very end of the calendar
    (stored before the bounds were checked) is shown as stored rather than failing the page."""
    try:
        return value.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
    except OverflowError:
        return value


PERIOD_PRESETS = ("this_month", "last_month", "quarter", "year", "all")
"""The periods people pick: this month, last month, this quarter, this year, all time."""


def preset_range(preset: str, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """The local dates [from, to) of a preset period around ``today``; ``all`` is unbounded."""
    if preset not in PERIOD_PRESETS:
        raise InvalidValue(field="period", value=preset, hint=", ".join(PERIOD_PRESETS))
    month = today.replace(day=1)
    if preset == "this_month":
        return month, _next_month(month)
    if preset == "last_month":
        previous = (month - dt.timedelta(days=1)).replace(day=1)
        return previous, month
    if preset == "quarter":
        first = month.replace(month=3 * ((today.month - 1) // 3) + 1)
        return first, _next_month(_next_month(_next_month(first)))
    if preset == "year":
        return today.replace(month=1, day=1), today.replace(year=today.year + 1, month=1, day=1)
    return None, None


def previous_range(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period just before [start, end): the previous month(s) for whole months, else as many days."""
    if start.day == 1 and end.day == 1:
        months = (end.year - start.year) * 12 + end.month - start.month
        first = start
        for _ in range(months):
            first = (first - dt.timedelta(days=1)).replace(day=1)
        return first, start
    return start - (end - start), start


def shift_months(day: dt.date, months: int) -> dt.date:
    """``day`` so many months later (earlier if negative), on the month's last day if it is shorter."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def comparable_ranges(start: dt.date, end: dt.date, today: dt.date) -> tuple[dt.date, dt.date, dt.date, dt.date]:
    """The period [start, end) so far and the same stretch of the period before it: while the period
    runs (today inside it) both stop after today — 1–6 December against 1–6 November, never against
    all of November (every figure would read −80 % on the 6th). Whole months shift by months."""
    cut = min(end, today + dt.timedelta(days=1)) if start <= today else end
    if start.day == 1 and end.day == 1:
        months = (end.year - start.year) * 12 + end.month - start.month
        return start, cut, shift_months(start, -months), shift_months(cut, -months)
    before, _ = previous_range(start, end)
    return start, cut, before, before + (cut - start)


def _next_month(first: dt.date) -> dt.date:
    return (first + dt.timedelta(days=32)).replace(day=1)


def fixed_offset_minutes(tz: ZoneInfo, start: dt.datetime, end: dt.datetime) -> int | None:
    """The zone's offset (minutes) if it does not change between the UTC instants ``start`` and ``end``."""
    offsets = set()
    moment = start.replace(tzinfo=dt.UTC)
    last = end.replace(tzinfo=dt.UTC)
    while True:
        offset = moment.astimezone(tz).utcoffset() or dt.timedelta()
        offsets.add(int(offset.total_seconds() // 60))
        if len(offsets) > 1:
            return None
        if moment >= last:
            return offsets.pop()
        moment = min(moment + dt.timedelta(hours=12), last)
