"""Figures the way a reader of each language expects them, by the CLDR data Babel carries.

Money in reports is whole units with the currency's sign (``1 825 816 ₽``, ``RUB 1,825,816``);
shares carry one decimal (``66,2 %``); times are the account's local time; a week is the range of
its days (``12–18 окт.``); a wait is minutes or hours, never raw seconds. Pages and messages take one
``Formats`` for the reader (language) and the account (time zone) instead of formatting by hand.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_interval, format_timedelta
from babel.numbers import NumberPattern, format_decimal

from voronka.money import exponent
from voronka.timeutil import to_local

NO_FIGURE = "—"


@cache
def _locale(lang: str) -> Locale:
    return Locale.parse(lang if lang in ("ru", "en") else "en")


@cache
def _money_pattern(lang: str, fraction: int) -> NumberPattern:
    pattern: NumberPattern = copy.copy(_locale(lang).currency_formats["standard"])
    pattern.frac_prec = (fraction, fraction)
    return pattern


@cache
def _share_pattern(lang: str, digits: int) -> NumberPattern:
    pattern: NumberPattern = copy.copy(_locale(lang).percent_formats[None])
    pattern.frac_prec = (digits, digits)
    return pattern


def _spaced(text: str) -> str:
    """CLDR's currency spacing, which Babel leaves out: a sign made of letters (``RUB``, ``KZT``)
    is kept apart from the digits by a no-break space (``RUB 1,825``, not ``RUB1,825``)."""
    out = []
    for i, char in enumerate(text):
        out.append(char)
        following = text[i + 1] if i + 1 < len(text) else ""
        if (char.isalpha() and following.isdigit()) or (char.isdigit() and following.isalpha()):
            out.append("\u00a0")
    return "".join(out)


@dataclass(frozen=True)
class Formats:
    """Formatting for one reader: ``lang`` (``ru``/``en``) and the account's time zone."""

    lang: str
    tz: ZoneInfo

    def money(self, minor: float | Decimal | None, currency: str, *, exact: bool = False) -> str:
        """An amount in minor units with its currency sign; whole units unless ``exact`` and the
        amount has kopecks (a deal's own price on its card)."""
        if minor is None:
            return NO_FIGURE
        places = exponent(currency)
        value = Decimal(round(minor)).scaleb(-places) if places else Decimal(round(minor))
        fraction = places if exact and value != value.to_integral_value() else 0
        return _spaced(
            _money_pattern(self.lang, fraction).apply(
                value, _locale(self.lang), currency=currency, currency_digits=False
            )
        )

    def tel(self, phone: str | None) -> str:
        """A ``tel:`` address for a phone as kept (``+7 912 345-67-89`` → ``tel:+79123456789``): a tap calls."""
        if not phone:
            return ""
        digits = "".join(c for c in phone if c.isdigit())
        return f"tel:{'+' if phone.strip().startswith('+') else ''}{digits}"

    def major(self, value: Decimal | str | None, currency: str) -> str:
        """An amount already in major units, as the JSON reports carry it (``"12500.00"``)."""
        if value is None or value == "":
            return NO_FIGURE
        return self.money(Decimal(value).scaleb(exponent(currency)), currency)

    def number(self, value: float | None, *, digits: int = 0) -> str:
        if value is None:
            return NO_FIGURE
        shown = round(value, digits) if digits else round(value)
        pattern = f"#,##0.{'0' * digits}" if digits else "#,##0"
        return str(format_decimal(shown, format=pattern, locale=_locale(self.lang)))

    def share(self, value: float | None, *, digits: int = 1) -> str:
        """``0.662`` → ``66,2 %`` (ru) / ``66.2%`` (en)."""
        if value is None:
            return NO_FIGURE
        return str(_share_pattern(self.lang, digits).apply(value, _locale(self.lang)))

    def local(self, at: dt.datetime) -> dt.datetime:
        """A stored UTC time as the account's wall-clock time."""
        return to_local(at, self.tz)

    def when(self, at: dt.datetime | str | None) -> str:
        """A stored UTC time (or its ISO text) in the account's zone: ``12 окт. 2026, 14:05``."""
        if at is None or at == "":
            return NO_FIGURE
        if isinstance(at, str):
            at = dt.datetime.fromisoformat(at)
        return format_datetime(self.local(at), "d MMM y, HH:mm", locale=_locale(self.lang))

    def day(self, day: dt.date | None) -> str:
        if day is None:
            return NO_FIGURE
        return format_date(day, "d MMM y", locale=_locale(self.lang))

    def week(self, monday: dt.date) -> str:
        """The week that starts on ``monday`` as its days: ``12–18 окт.``, ``26 окт. – 1 нояб.``."""
        return format_interval(monday, monday + dt.timedelta(days=6), "MMMd", locale=_locale(self.lang))

    def span(self, start: dt.date | str, end: dt.date | str) -> str:
        """A report's period (``end`` exclusive) as a reader names it: a day, a week's days, a month."""
        first = dt.date.fromisoformat(start) if isinstance(start, str) else start
        after = dt.date.fromisoformat(end) if isinstance(end, str) else end
        days = (after - first).days
        if days == 1:
            return self.day(first)
        if first.day == 1 and after == (first + dt.timedelta(days=32)).replace(day=1):
            return self.month(first)
        return format_interval(first, after - dt.timedelta(days=1), "MMMd", locale=_locale(self.lang))

    def period(self, label: str | None) -> str:
        """A report's period label (``2026-10``, ``2026-W42``, ``2026-10-12``) as a reader names it;
        anything else (a source, a manager) as it is."""
        if not label:
            return NO_FIGURE
        try:
            if len(label) == 7 and label[4] == "-":
                return self.month(dt.date.fromisoformat(label + "-01"))
            if len(label) == 8 and label[4:6] == "-W":
                return self.week(dt.date.fromisocalendar(int(label[:4]), int(label[6:]), 1))
            if len(label) == 10:
                return self.day(dt.date.fromisoformat(label))
        except ValueError:
            pass
        return label

    def month(self, first: dt.date) -> str:
        return format_date(first, "LLLL y", locale=_locale(self.lang))

    def wait(self, seconds: float | None) -> str:
        """A wait such as speed to lead: ``4 мин``, ``2 ч 5 мин``, ``3 дн.`` — never raw seconds."""
        if seconds is None:
            return NO_FIGURE
        minutes = max(0, round(seconds / 60))
        locale = _locale(self.lang)
        if minutes < 60:
            return format_timedelta(
                dt.timedelta(minutes=minutes), granularity="minute", threshold=1, locale=locale, format="short"
            )
        if minutes < 48 * 60:
            hours, rest = divmod(minutes, 60)
            text = format_timedelta(dt.timedelta(hours=hours), locale=locale, format="short", threshold=1)
            if rest:
                text += " " + format_timedelta(dt.timedelta(minutes=rest), threshold=1, locale=locale, format="short")
            return text
        return format_timedelta(
            dt.timedelta(minutes=minutes), granularity="day", threshold=1, locale=locale, format="short"
        )


def figures(lang: str) -> Formats:
    """Numbers and money for a reader of ``lang`` where no time of day is shown (terminal tables,
    the statistics' cells): the zone is never read."""
    return Formats(lang, ZoneInfo("UTC"))


@dataclass(frozen=True)
class Shown:
    """A figure inside a message, formatted for each reader's language when the message is rendered:
    money (minor units), a share, a wait (seconds) or a local time."""

    kind: str
    value: Any
    currency: str = ""
    timezone: str = "UTC"

    def render(self, lang: str) -> str:
        from voronka.timeutil import zone

        formats = Formats(lang, zone(self.timezone))
        if self.kind == "money":
            return formats.money(self.value, self.currency)
        if self.kind == "share":
            return formats.share(self.value, digits=0)
        if self.kind == "wait":
            return formats.wait(self.value)
        return formats.when(self.value)


@dataclass(frozen=True)
class Figure:
    """A number inside a message, written when the message is put into the reader's language
    (``11,2 %`` in Russian, ``11.2%`` in English): a rule decides the figure, not how it reads."""

    value: float | None
    digits: int = 0
    share: bool = False
    """A fraction shown as a percentage."""

    def render(self, lang: str) -> str:
        shown = figures(lang)
        return (
            shown.share(self.value, digits=self.digits) if self.share else shown.number(self.value, digits=self.digits)
        )

    def __str__(self) -> str:
        return self.render("en")


@dataclass(frozen=True)
class Counted:
    """A count and what it counts, in the plural form the reader's language asks for by CLDR's rules
    (``1 сделка``, ``2 сделки``, ``5 сделок``, ``21 сделка``; ``1 deal``, ``2 deals``), the count
    written by the locale. The catalogue holds the forms under ``count.NOUN``: ``one`` and ``other``
    in English; ``one``, ``few``, ``many`` and ``other`` (fractions) in Russian."""

    noun: str
    count: float
    digits: int = 0
    """Decimals shown: the form follows the number as written (``12,3 продажи``, ``1.0 sales``)."""

    def render(self, lang: str) -> str:
        from voronka.i18n import translate

        written = Decimal(str(self.count)).quantize(Decimal(1).scaleb(-self.digits))
        form = _locale(lang).plural_form(written)
        return translate(f"count.{self.noun}.{form}", lang, n=figures(lang).number(self.count, digits=self.digits))

    def __str__(self) -> str:
        return self.render("en")
