"""Figures as each language writes them: money, shares, local times, weeks, waits (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from voronka.formats import Formats
from voronka.timeutil import zone

NBSP = "\u00a0"
RU = Formats("ru", zone("Europe/Moscow"))
EN = Formats("en", zone("Europe/Moscow"))


@pytest.mark.parametrize(
    ("fmt", "minor", "currency", "expected"),
    [
        (RU, 182_581_602, "RUB", f"1{NBSP}825{NBSP}816{NBSP}₽"),
        (EN, 182_581_602, "RUB", f"RUB{NBSP}1,825,816"),
        (EN, 150_000, "USD", "$1,500"),
        (RU, 150_000, "EUR", f"1{NBSP}500{NBSP}€"),
        (EN, 5_000, "JPY", "¥5,000"),  # no minor units: 5000 yen, not 50
        (RU, 99, "RUB", f"1{NBSP}₽"),  # 0.99 rounds to a whole rouble in reports
        (RU, None, "RUB", "—"),
    ],
)
def test_money_is_whole_units_with_the_currency_sign(fmt: Formats, minor: int, currency: str, expected: str) -> None:
    assert fmt.money(minor, currency) == expected


def test_a_deals_own_price_keeps_its_kopecks_only_when_it_has_some() -> None:
    assert RU.money(182_581_602, "RUB", exact=True) == f"1{NBSP}825{NBSP}816,02{NBSP}₽"
    assert RU.money(182_581_600, "RUB", exact=True) == f"1{NBSP}825{NBSP}816{NBSP}₽"


def test_major_units_from_the_json_reports() -> None:
    assert RU.major("12500.00", "RUB") == f"12{NBSP}500{NBSP}₽"
    assert EN.major("12500.40", "USD") == "$12,500"


def test_shares_and_numbers() -> None:
    assert RU.share(0.6623) == f"66,2{NBSP}%"
    assert EN.share(0.6623) == "66.2%"
    assert RU.share(0.7, digits=0) == f"70{NBSP}%"
    assert RU.number(1_234_567) == f"1{NBSP}234{NBSP}567"
    assert EN.number(2.25, digits=1) == "2.2"  # banker's rounding, as Python rounds
    assert RU.share(None) == "—"


def test_times_are_the_accounts_wall_clock() -> None:
    stored = dt.datetime(2026, 10, 12, 11, 5)  # UTC: 14:05 in Moscow
    assert RU.when(stored) == "12 окт. 2026, 14:05"
    assert EN.when(stored) == "12 Oct 2026, 14:05"
    berlin = Formats("en", zone("Europe/Berlin"))
    assert berlin.when(dt.datetime(2026, 3, 29, 0, 30)) == "29 Mar 2026, 01:30"  # before the clocks change
    assert berlin.when(dt.datetime(2026, 3, 29, 1, 30)) == "29 Mar 2026, 03:30"  # after


def test_periods_are_named_by_their_days() -> None:
    assert RU.week(dt.date(2026, 10, 12)) == "12—18 окт."
    assert RU.span("2026-10-26", "2026-11-02") == "26 окт. — 1 нояб."
    assert EN.span(dt.date(2026, 10, 12), dt.date(2026, 10, 19)) == "Oct 12\u2009–\u200918"
    assert RU.span("2026-10-01", "2026-11-01") == "октябрь 2026"
    assert EN.span("2026-02-01", "2026-03-01") == "February 2026"
    assert EN.span("2026-10-12", "2026-10-13") == "12 Oct 2026"


@pytest.mark.parametrize(
    ("seconds", "ru", "en"),
    [
        (0, "0 мин", "0 min"),
        (59 * 60 + 10, "59 мин", "59 min"),
        (125 * 60, "2 ч 5 мин", "2 hr 5 min"),
        (120 * 60, "2 ч", "2 hr"),
        (3 * 86_400 + 100, "3 дн.", "3 days"),
    ],
)
def test_a_wait_is_minutes_hours_or_days_never_seconds(seconds: int, ru: str, en: str) -> None:
    assert RU.wait(seconds) == ru
    assert EN.wait(seconds) == en


def test_report_period_labels_read_as_dates() -> None:
    assert RU.period("2026-10") == "октябрь 2026"
    assert RU.period("2026-W42") == "12—18 окт."
    assert EN.period("2026-10-12") == "12 Oct 2026"
    assert RU.period("Авито") == "Авито"  # not a period: as it is
    assert RU.period(None) == "—"
