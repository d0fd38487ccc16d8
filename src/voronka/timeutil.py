"""Time: storage is naive UTC; reports bucket by the account's time zone."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voronka.errors import InvalidValue

UTC = dt.UTC


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
    return value.astimezone(UTC).replace(tzinfo=None)


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
    """A stored naive UTC datetime as naive local time in ``tz``."""
    return value.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
