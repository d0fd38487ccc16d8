"""The forecast: stage chances from decided history, and calibration on the demo's past months."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import Journey, account_for, journeys_for
from tests.conftest import DemoFiller
from tests.web_helpers import log_in, make_client, make_user
from voronka.analysis.forecast import DealPath, fit, fit_leads, month_forecast, new_leads_forecast, run_forecast
from voronka.analysis.forecast_report import forecast_report
from voronka.cli import app
from voronka.crm.accounts import find_pipeline
from voronka.db import make_engine, session_factory
from voronka.demo import DemoOptions
from voronka.formats import Formats
from voronka.models import Deal, Role
from voronka.timeutil import zone

TODAY = dt.date(2026, 11, 27)
T0 = dt.datetime(2024, 1, 1)


def path(stages: int, won: bool, *, days: int = 10, amount: int = 1000_00, open_: bool = False) -> DealPath:
    reached = {p: T0 + dt.timedelta(days=p) for p in range(2, stages + 1)}
    closed = None if open_ else T0 + dt.timedelta(days=days)
    return DealPath(T0, reached, "open" if open_ else ("won" if won else "lost"), closed, amount)


def test_stage_chances_form_an_absorbing_chain() -> None:
    # 10 deals: 4 lost at stage 1, 3 lost at stage 2, 3 won (stage 3 is the won stage).
    paths = [path(1, False)] * 4 + [path(2, False)] * 3 + [path(3, True)] * 3
    model = fit(paths, last=3, as_of=T0 + dt.timedelta(days=100))
    assert model.win[3] == 1.0
    assert model.win[2] == pytest.approx((3 + 1) / (6 + 2))
    assert model.win[1] == pytest.approx(model.win[2] * (6 + 1) / (10 + 2))
    assert model.win[1] < model.win[2] < model.win[3]


def test_month_forecast_sums_chances_and_amounts() -> None:
    history = [path(2, False)] * 5 + [path(3, True, days=5)] * 5
    model = fit(history, last=3, as_of=T0 + dt.timedelta(days=100))
    as_of = T0 + dt.timedelta(days=3)
    opened = [path(2, False, open_=True, amount=2000_00)]
    result = month_forecast(opened, model, as_of, as_of, as_of + dt.timedelta(days=400), dt.date(2024, 1, 1), 0.0)
    assert result.expected == pytest.approx(model.chance(2, 86400) * 2000_00, rel=0.05)
    assert result.low <= result.expected <= result.high
    nothing = month_forecast([], model, as_of, as_of, as_of + dt.timedelta(days=30), dt.date(2024, 1, 1), 0.0)
    assert (nothing.expected, nothing.low, nothing.high) == (0.0, 0.0, 0.0)


def test_calibrated_on_the_demos_history(sqlite_demo: Callable[..., Session]) -> None:
    sqlite_session = sqlite_demo(DemoOptions(today=TODAY))
    account = account_for(sqlite_session)
    pipeline = find_pipeline(session=sqlite_session, account=account)
    result = run_forecast(session=sqlite_session, account=account, pipeline=pipeline, today=TODAY, calibration_months=9)
    assert len(result.calibration) == 9
    assert result.calibrated_share is not None
    assert result.calibrated_share >= 0.7
    assert result.open_deals > 0
    assert result.next_month.expected > 0
    assert result.this_month.low <= result.this_month.expected <= result.this_month.high


def test_forecast_command(db_url: str, fill_demo: DemoFiller) -> None:
    runner = CliRunner()
    fill_demo(db_url, DemoOptions(today=TODAY, leads=800))
    result = runner.invoke(
        app, ["--db", db_url, "--lang", "en", "forecast", "--today", TODAY.isoformat(), "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"this_month", "next_month", "run_rate", "calibration", "calibrated_share"} <= set(data)
    assert float(data["this_month"]["expected"]) >= float(data["this_month"]["won_so_far"])


def test_leads_not_created_yet_bring_the_wins_their_history_predicts() -> None:
    """A lead a day for a year, each won ten days after it arrived: a 30-day month starting now gets
    the wins of the leads of its first twenty days."""
    as_of = T0 + dt.timedelta(days=365)
    history = [
        DealPath(T0 + dt.timedelta(days=n, hours=12), {}, "won", T0 + dt.timedelta(days=n + 10, hours=12), 1000_00)
        for n in range(365)
    ]
    leads = fit_leads(history, as_of)
    assert leads.per_second * 86400 == pytest.approx(1.0, rel=0.02)
    end = as_of + dt.timedelta(days=30)
    part = new_leads_forecast(leads, as_of, as_of, end, dt.date(2025, 1, 1), 1000_00)
    assert part.expected == pytest.approx(20 * 1000_00, rel=0.02)
    assert part.low < part.expected < part.high
    later = new_leads_forecast(leads, as_of, end, end + dt.timedelta(days=30), dt.date(2025, 2, 1), 1000_00)
    assert later.expected == pytest.approx(30 * 1000_00, rel=0.02)  # ten days of this month's leads, twenty of its own


def test_a_lost_deal_without_a_close_date_is_lost_not_open(session: Session) -> None:
    pipeline = journeys_for(session, [Journey("2026-01-05 10:00", lost=("2026-01-09 10:00", "дорого"))] * 3)
    session.execute(update(Deal).values(closed_at=None))
    session.commit()
    result = run_forecast(session=session, account=account_for(session), pipeline=pipeline, today=dt.date(2026, 3, 2))
    assert result.open_deals == 0


def test_without_money_the_calibration_does_not_pass_and_says_why(session: Session) -> None:
    journeys = [Journey(f"2026-0{m}-0{d} 10:00", won=f"2026-0{m}-0{d + 2} 10:00") for m in (3, 4, 5) for d in (1, 3, 5)]
    pipeline = journeys_for(session, journeys)  # won, but with no amounts
    account = account_for(session)
    report = forecast_report(session=session, account=account, pipeline=pipeline, today=dt.date(2026, 6, 10))
    assert report.forecast.calibration
    assert report.forecast.calibrated_share is None
    assert [n.key for n in report.notes] == ["report.no_money"]


def test_the_web_page_shows_the_commands_figures(db_url: str, fill_demo: DemoFiller, tmp_path: Path) -> None:
    fill_demo(db_url, DemoOptions(today=TODAY, leads=800))
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        account = account_for(session)
        report = forecast_report(
            session=session, account=account, pipeline=find_pipeline(session=session, account=account)
        )
        email = make_user(session, "Owner", Role.OWNER)
    client = make_client(engine, tmp_path)
    log_in(client, email)
    page = client.get("/reports/forecast").text
    lang = re.search(r'<html lang="(\w+)"', page)
    assert lang is not None
    shown = Formats(lang[1], zone(account.timezone))
    for line in report.lines():
        assert shown.money(line.expected, report.currency) in page, line
    assert report.forecast.new_next_month.expected > 0
    engine.dispose()


def test_one_run_rate_and_one_today_in_the_forecast_and_the_stats(session: Session) -> None:
    """December 2026: 23 working days; on Thursday the 10th, 8 of them have gone (today included).
    The forecast's run rate and the statistics' are the same figure, and ``today`` is a whole day:
    a deal created on it is open and a deal won on it is revenue so far."""
    from voronka.analysis.stats.grain import Grain
    from voronka.analysis.stats.report import StatsQuery, run_stats

    today = dt.date(2026, 12, 10)
    journeys = [
        Journey("2026-12-01 10:00", won="2026-12-02 10:00", amount=1000_00),
        Journey("2026-12-09 10:00", won="2026-12-10 15:00", amount=1000_00),
        Journey("2026-12-10 16:00"),
    ]
    pipeline = journeys_for(session, journeys)
    account = account_for(session)
    result = run_forecast(session=session, account=account, pipeline=pipeline, today=today)
    assert result.won_so_far == 2000_00
    assert result.open_deals == 1
    assert result.run_rate == pytest.approx(2000_00 * 23 / 8)
    query = StatsQuery(date_from=dt.date(2026, 12, 1), date_to=dt.date(2027, 1, 1), grain=Grain.MONTH)
    stats = run_stats(session=session, account=account, query=query, today=today)
    assert float(stats.total.row("revenue").forecast or 0) == pytest.approx(result.run_rate)
