"""The statistics template's arithmetic, without a database."""

from __future__ import annotations

import datetime as dt

import pytest

from voronka.analysis.stats.metrics import Formula, derive, metrics_for
from voronka.analysis.stats.periods import Grain, Period, default_range, periods_between, working_days
from voronka.analysis.stats.table import Trend, build_table, plan_for_period, run_rate, trend_of

METRICS = metrics_for(("Lead", "Estimate", "Won"))
WEEK = Period("2024-W10", dt.date(2024, 3, 4), dt.date(2024, 3, 11))


def test_formulas_give_no_value_instead_of_dividing_by_zero() -> None:
    assert Formula("a", "b").evaluate({"a": 3, "b": 4}) == 0.75
    assert Formula("a", "b").evaluate({"a": 3, "b": 0}) is None
    assert Formula("a", "b").evaluate({"a": None, "b": 4}) is None
    assert Formula("r", "s", subtract="s").evaluate({"r": 150, "s": 100}) == 0.5


def test_every_derived_row() -> None:
    base = {
        "spend": 100_000_00,
        "leads": 200,
        "reached": 150,
        "within_5min": 50,
        "stage_2": 60,
        "sales": 12,
        "revenue": 600_000_00,
    }
    values = derive(METRICS, base)
    assert values["cpl"] == 500_00
    assert values["reached_share"] == 0.75
    assert values["within_5min_share"] == 0.25
    assert values["conv_2"] == 0.3
    assert values["from_lead_2"] == 0.3
    assert values["sales_conv"] == 0.2
    assert values["average_check"] == 50_000_00
    assert values["cac"] == pytest.approx(8_333_33.33, abs=1)
    assert values["drr"] == pytest.approx(1 / 6)
    assert values["romi"] == 5.0


def test_a_period_without_leads_has_empty_ratios_not_zero_percent() -> None:
    table = build_table(None, METRICS, [WEEK], {}, {}, dt.date(2024, 1, 1))
    assert table.row("leads").cells[0].fact == 0
    for key in ("cpl", "reached_share", "conv_2", "from_lead_2", "sales_conv", "average_check", "cac", "drr", "romi"):
        assert table.row(key).cells[0].fact is None, key
    assert table.row("speed_median").cells[0].fact is None


def test_spend_without_sales() -> None:
    table = build_table(None, METRICS, [WEEK], {WEEK.label: {"spend": 5000_00, "leads": 10}}, {}, dt.date(2024, 1, 1))
    assert table.row("cac").cells[0].fact is None
    assert table.row("drr").cells[0].fact is None
    assert table.row("romi").cells[0].fact == -1.0
    assert table.row("cpl").cells[0].fact == 500_00


def test_plans_are_shared_out_by_days_and_ratios_carried_over() -> None:
    leads = next(m for m in METRICS if m.key == "leads")
    cpl = next(m for m in METRICS if m.key == "cpl")
    # ISO week 2024-W09 runs Feb 26 - Mar 3: 4 days of February (29 days), 3 of March (31 days).
    week = Period("2024-W09", dt.date(2024, 2, 26), dt.date(2024, 3, 4))
    monthly = {dt.date(2024, 2, 1): 290, dt.date(2024, 3, 1): 310}
    assert plan_for_period(leads, week, monthly) == pytest.approx(290 * 4 / 29 + 310 * 3 / 31)
    assert plan_for_period(cpl, week, {dt.date(2024, 2, 1): 500_00}) == 500_00
    assert plan_for_period(leads, week, {}) is None


def test_plan_fact_change_and_forecast() -> None:
    weeks = periods_between(Grain.WEEK, dt.date(2024, 3, 4), dt.date(2024, 3, 18))
    base = {weeks[0].label: {"leads": 80}, weeks[1].label: {"leads": 30}}
    plans = {"leads": {dt.date(2024, 3, 1): 310}}
    today = dt.date(2024, 3, 13)  # Wednesday of the second week: 3 of its 5 working days
    row = build_table(None, METRICS, weeks, base, plans, today).row("leads")
    assert row.cells[0].plan == pytest.approx(70)
    assert row.cells[0].of_plan == pytest.approx(80 / 70)
    assert row.cells[1].change == pytest.approx(30 / 80 - 1)
    assert row.forecast == pytest.approx(50)
    assert row.forecast_of_plan == pytest.approx(50 / 70)
    assert build_table(None, METRICS, weeks, base, plans, today).row("cpl").forecast is None


def test_run_rate_counts_working_days() -> None:
    assert working_days(dt.date(2024, 3, 4), dt.date(2024, 3, 11)) == 5
    assert run_rate(10, WEEK, dt.date(2024, 3, 5)) == 25
    assert run_rate(10, WEEK, dt.date(2024, 3, 20)) is None
    saturday_start = Period("x", dt.date(2024, 3, 9), dt.date(2024, 3, 16))
    assert run_rate(4, saturday_start, dt.date(2024, 3, 10)) is None  # no working day elapsed yet


def test_trend_marks() -> None:
    assert trend_of([10, 12, 14, 16]) is Trend.RISING
    assert trend_of([16, 14, 12, 10]) is Trend.FALLING
    assert trend_of([10, 11, 10, 10]) is Trend.FLAT
    assert trend_of([10, None, 12]) is None
    assert trend_of([0, 0, 0]) is Trend.FLAT


def test_periods_and_default_range() -> None:
    months = periods_between(Grain.MONTH, dt.date(2024, 1, 15), dt.date(2024, 3, 2))
    assert [(p.label, p.start, p.end) for p in months] == [
        ("2024-01", dt.date(2024, 1, 1), dt.date(2024, 2, 1)),
        ("2024-02", dt.date(2024, 2, 1), dt.date(2024, 3, 1)),
        ("2024-03", dt.date(2024, 3, 1), dt.date(2024, 4, 1)),
    ]
    assert default_range(Grain.WEEK, dt.date(2024, 3, 13)) == (dt.date(2024, 1, 22), dt.date(2024, 3, 18))
