"""Reading cell values: dates in ISO or Russian form, statuses; each failure is a row error."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from voronka.i18n import Message
from voronka.schema import DealStatus

_RU_DATE = re.compile(r"^\s*(\d{1,2})[./](\d{1,2})[./](\d{4})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$")
_EMPTY_MARKERS = frozenset({"", "-", "—", "не закрыта", "не закрыто", "нет", "null", "none", "n/a", "nan"})
_EMPTY_EXACT = _EMPTY_MARKERS | {m.capitalize() for m in _EMPTY_MARKERS} | {m.upper() for m in _EMPTY_MARKERS}
_LONGEST_MARKER = max(map(len, _EMPTY_MARKERS))
_MARKER_STARTS = frozenset(c for m in _EMPTY_MARKERS if m for c in (m[0], m[0].upper()))

_STATUS_WORDS: dict[str, DealStatus] = {
    "open": DealStatus.OPEN,
    "won": DealStatus.WON,
    "lost": DealStatus.LOST,
    "открыта": DealStatus.OPEN,
    "в работе": DealStatus.OPEN,
    "выиграна": DealStatus.WON,
    "успешно реализовано": DealStatus.WON,
    "проиграна": DealStatus.LOST,
    "закрыто и не реализовано": DealStatus.LOST,
}


class RowError(Exception):
    """One row cannot be imported; ``message`` says why."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.key)
        self.message = message


def is_empty(text: str | None) -> bool:
    return text is None or text.strip().casefold() in _EMPTY_MARKERS


def clean(text: str) -> str | None:
    """The cell's text without surrounding spaces, or ``None`` for an empty cell or a marker of one.

    The exact-match test comes first because this runs for every cell of large files.
    """
    value = text.strip()
    if not value or value in _EMPTY_EXACT:
        return None
    if value[0] in _MARKER_STARTS and len(value) <= _LONGEST_MARKER and value.casefold() in _EMPTY_MARKERS:
        return None
    return value


def parse_datetime(text: str, column: str, tz: ZoneInfo) -> dt.datetime:
    """A naive UTC datetime from ``2024-03-01``, ``2024-03-01T10:00+03:00``, ``01.03.2024 14:30[:05]``.

    Times without an offset are read in the account's zone ``tz``.
    """
    value = _parse_local(text.strip())
    if value is None:
        raise RowError(Message("import.bad_date", {"column": column, "value": text}))
    if value.tzinfo is None:
        offset = tz.utcoffset(value)  # read as local time in tz (zoneinfo resolves DST)
        return value - offset if offset else value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _parse_local(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    match = _RU_DATE.match(text)
    if match is None:
        return None
    day, month, year, hour, minute, second = match.groups()
    try:
        return dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None


def parse_optional_datetime(text: str | None, column: str, tz: ZoneInfo) -> dt.datetime | None:
    """For cells already cleaned: ``None`` stays ``None``."""
    return None if text is None else parse_datetime(text, column, tz)


def parse_status(text: str | None) -> DealStatus | None:
    """``None`` when the cell is empty (the caller decides the default)."""
    if text is None:
        return None
    status = _STATUS_WORDS.get(text.casefold())
    if status is None:
        raise RowError(Message("import.bad_status", {"value": text}))
    return status
