"""Leverage and what-if: the closed form ΔR/R = Δ/cᵢ on a hand-made funnel, and scenarios."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from tests.builders import account_for
from tests.conftest import DemoFiller
from voronka.analysis.whatif import Baseline, Step, leverage, load_baseline, outcome, scenario
from voronka.demo import DemoOptions

FUNNEL = Baseline(
    leads=1000,
    steps=(Step(2, "Reached", 0.6, 0.7), Step(3, "Estimate", 0.5, 0.5), Step(4, "Won", 0.2, 0.3)),
    average_check=100_000_00,
    spend=300_000_00,
)


def test_revenue_is_leads_times_conversions_times_check() -> None:
    assert FUNNEL.sales == pytest.approx(60)
    assert FUNNEL.revenue == pytest.approx(6_000_000_00)


def test_leverage_follows_the_closed_form() -> None:
    levers = leverage(FUNNEL)
    revenue = FUNNEL.revenue
    assert [lever.step.position for lever in levers] == [4, 3, 2]  # the weakest step pays most per point
    for lever in levers:
        assert lever.plus_points / revenue == pytest.approx(0.05 / lever.step.conversion)  # type: ignore[operator]
    by_step = {lever.step.position: lever for lever in levers}
    assert by_step[4].to_reference == pytest.approx(revenue * 0.1 / 0.2)
    assert by_step[3].to_reference == 0
    assert by_step[2].to_reference == pytest.approx(revenue * 0.1 / 0.6)


def test_a_scenario_moves_revenue_cac_and_romi() -> None:
    base = outcome(FUNNEL)
    assert base.cac == pytest.approx(5_000_00)
    assert base.romi == pytest.approx(19.0)
    better = outcome(scenario(FUNNEL, conversions={4: 0.25}, average_check=120_000_00, leads=1100, spend=330_000_00))
    assert better.sales == pytest.approx(1100 * 0.6 * 0.5 * 0.25)
    assert better.revenue == pytest.approx(better.sales * 120_000_00)
    assert better.cac == pytest.approx(330_000_00 / better.sales)


def test_the_report_and_its_json_are_the_library_s() -> None:
    """Figures worked by hand for FUNNEL (6 000 000.00 a month now) with the estimate step at 60 %."""
    from voronka.analysis.whatif_report import whatif_report, whatif_to_dict

    report = whatif_report(FUNNEL, scenario(FUNNEL, conversions={3: 0.6}), "RUB")
    assert report.changed
    data = whatif_to_dict(report, "en")
    assert [step["position"] for step in data["steps"]] == [4, 3, 2]
    assert data["steps"][0]["revenue_plus_5_points"] == "1500000.00"  # 6 000 000 × 0.05 / 0.2
    assert data["steps"][0]["revenue_back_to_reference"] == "3000000.00"  # 6 000 000 × 0.1 / 0.2
    assert data["now"] == {"revenue": "6000000.00", "sales": pytest.approx(60), "cac": "5000.00", "romi": 19.0}
    assert data["scenario"]["revenue"] == "7200000.00"  # 1000 × 0.6 × 0.6 × 0.2 × 100 000
    assert data["average_check"] == "100000.00"
    assert not whatif_report(FUNNEL, FUNNEL, "RUB").changed


def test_baseline_from_the_demo(sqlite_demo: Callable[..., Session]) -> None:
    today = dt.date(2026, 11, 27)
    sqlite_session = sqlite_demo(DemoOptions(today=today))
    baseline = load_baseline(session=sqlite_session, account=account_for(sqlite_session), pipeline=None, today=today)
    assert 150 < baseline.leads < 350
    assert [s.position for s in baseline.steps] == [2, 3, 4, 5]
    assert all(0 < (s.conversion or 0) <= 1.5 for s in baseline.steps)
    assert baseline.average_check > 0
    assert baseline.spend > 0
    assert leverage(baseline)[0].plus_points > 0


def test_whatif_command(db_url: str, fill_demo: DemoFiller) -> None:
    import json

    from typer.testing import CliRunner

    from voronka.cli import app

    runner = CliRunner()
    fill_demo(db_url, DemoOptions(leads=600))
    result = runner.invoke(app, ["--db", db_url, "--lang", "en", "whatif", "--set", "5=60%", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [s["position"] for s in data["steps"]]
    assert float(data["scenario"]["revenue"]) > float(data["now"]["revenue"])
    wrong = runner.invoke(app, ["--db", db_url, "--lang", "en", "whatif", "--set", "9=150%"])
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("Error: Cannot read --set «9=150%»")
