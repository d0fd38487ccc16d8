"""The forecast: stage chances from decided history, and calibration on the demo's past months."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import account_for
from tests.conftest import DemoFiller
from voronka.analysis.forecast import DealPath, fit, month_forecast, run_forecast
from voronka.cli import app
from voronka.crm.accounts import find_pipeline
from voronka.demo import DemoOptions

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
