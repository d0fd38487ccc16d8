"""The statistics template on a hand-made business, on SQLite and PostgreSQL, and its commands."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import Journey, account_for, add_journey, at, pipeline_for
from voronka.analysis.stats.inputs import set_plan, set_spend
from voronka.analysis.stats.metrics import metrics_for
from voronka.analysis.stats.periods import Grain
from voronka.analysis.stats.report import StatsQuery, StatsReport, run_stats
from voronka.cli import app
from voronka.crm.deals import log_call
from voronka.models import CallOutcome

STAGES = ("Lead", "Estimate", "Won")
TODAY = dt.date(2024, 3, 27)


def build(session: Session) -> None:
    pipeline = pipeline_for(session, STAGES)
    account = account_for(session)
    d1 = add_journey(
        session,
        pipeline,
        Journey(
            "2024-03-04 10:00",
            moves=[("Estimate", "2024-03-05 10:00")],
            won="2024-03-12 10:00",
            source="Сайт",
            amount=1000_00,
        ),
    )
    log_call(session=session, deal=d1, outcome=CallOutcome.ANSWERED, at=at("2024-03-04 10:03"))
    d2 = add_journey(
        session, pipeline, Journey("2024-03-05 10:00", lost=("2024-03-06 10:00", "Нецелевой"), source="Сайт")
    )
    log_call(session=session, deal=d2, outcome=CallOutcome.NO_ANSWER, at=at("2024-03-05 10:20"))
    d3 = add_journey(
        session, pipeline, Journey("2024-03-11 10:00", moves=[("Estimate", "2024-03-12 11:00")], source="Авито")
    )
    log_call(session=session, deal=d3, outcome=CallOutcome.ANSWERED, at=at("2024-03-11 10:07"))
    set_spend(session=session, account=account, source="Сайт", start=dt.date(2024, 3, 4), kind="day", amount=600_00)
    set_spend(session=session, account=account, source="Сайт", start=dt.date(2024, 3, 1), kind="month", amount=3100_00)
    set_plan(
        session=session,
        account=account,
        pipeline=pipeline,
        metrics=metrics_for(STAGES),
        month=dt.date(2024, 3, 1),
        metric="leads",
        value="310",
    )
    session.commit()


def report(session: Session, **query: object) -> StatsReport:
    options = {"date_from": dt.date(2024, 3, 4), "date_to": dt.date(2024, 3, 25), "grain": Grain.WEEK, **query}
    return run_stats(session=session, account=account_for(session), query=StatsQuery(**options), today=TODAY)  # type: ignore[arg-type]


def facts(result: StatsReport, key: str, table: int = 0) -> list[object]:
    return [cell.fact for cell in result.tables[table].row(key).cells]


def test_every_row_of_the_template(session: Session) -> None:
    build(session)
    result = report(session)
    assert [p.label for p in result.periods] == ["2024-W10", "2024-W11", "2024-W12"]
    assert facts(result, "spend") == [1300_00, 700_00, 700_00]
    assert facts(result, "leads") == [2, 1, 0]
    assert facts(result, "non_target") == [1, 0, 0]
    assert facts(result, "cpl") == [650_00, 700_00, None]
    assert facts(result, "reached") == [1, 1, 0]
    assert facts(result, "reached_share") == [0.5, 1.0, None]
    assert facts(result, "speed_median") == [11.5 * 60, 7 * 60, None]
    assert facts(result, "within_5min") == [1, 0, 0]
    assert facts(result, "within_5min_share") == [0.5, 0.0, None]
    assert facts(result, "stage_2") == [1, 1, 0]
    assert facts(result, "conv_2") == [0.5, 1.0, None]
    assert facts(result, "sales") == [0, 1, 0]
    assert facts(result, "sales_conv") == [0.0, 1.0, None]
    assert facts(result, "revenue") == [0, 1000_00, 0]
    assert facts(result, "average_check") == [None, 1000_00, None]
    assert facts(result, "cac") == [None, 700_00, None]
    assert facts(result, "drr") == [None, pytest.approx(0.7), None]
    assert facts(result, "romi") == [-1.0, pytest.approx(300 / 700), -1.0]
    leads = result.total.row("leads")
    assert [c.plan for c in leads.cells] == [pytest.approx(70)] * 3
    assert leads.cells[0].of_plan == pytest.approx(2 / 70)
    assert leads.cells[1].change == pytest.approx(-0.5)
    assert leads.forecast is None  # the range is over


def test_cuts_beside_the_total(session: Session) -> None:
    build(session)
    by_source = report(session, by="source")
    assert [t.cut for t in by_source.tables] == [None, "Сайт", "Авито"]
    assert facts(by_source, "leads", 1) == [2, 0, 0]
    assert facts(by_source, "spend", 1) == [1300_00, 700_00, 700_00]
    assert facts(by_source, "leads", 2) == [0, 1, 0]
    assert facts(by_source, "spend", 2) == [0, 0, 0]
    by_manager = report(session, by="manager")
    assert [t.cut for t in by_manager.tables] == [None, None]  # these deals have no manager
    assert facts(by_manager, "spend", 1) == [None, None, None]  # spend belongs to sources


def test_days_and_months(session: Session) -> None:
    build(session)
    days = report(session, grain=Grain.DAY, date_to=dt.date(2024, 3, 6))
    assert facts(days, "leads") == [1, 1]
    assert facts(days, "spend") == [700_00, 100_00]
    months = report(session, grain=Grain.MONTH, date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 4, 1))
    assert facts(months, "leads") == [3]
    # Today is the 27th: the month's budget counts through today (600 + 3100 × 27/31), and the
    # forecast is the whole budget, not a run rate of it.
    assert facts(months, "spend") == [3300_00]
    assert months.total.row("spend").forecast == 3700_00
    assert months.total.row("leads").cells[0].plan == 310


def test_the_running_month_counts_spend_through_today(session: Session) -> None:
    """On the 1st, a 280,000 ₽ month has spent one day's share; its forecast is the budget."""
    pipeline = pipeline_for(session, STAGES)
    account = account_for(session)
    for hour in (10, 12):
        add_journey(session, pipeline, Journey(f"2026-09-01 {hour}:00", source="Сайт"))
    set_spend(
        session=session, account=account, source="Сайт", start=dt.date(2026, 9, 1), kind="month", amount=280_000_00
    )
    session.commit()
    today = dt.date(2026, 9, 1)
    for grain in (Grain.MONTH, Grain.WEEK, Grain.DAY):
        query = StatsQuery(grain=grain, date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 9, 2))
        result = run_stats(session=session, account=account, query=query, today=today)
        spend = result.total.row("spend")
        assert spend.cells[0].fact == 9333_34, grain  # 280,000 ₽ / 30 days, the remainder kopeck on day one
        assert result.total.row("cpl").cells[0].fact == 4666_67, grain
    month = run_stats(session=session, account=account, query=StatsQuery(grain=Grain.MONTH), today=today)
    assert month.total.row("spend").forecast == 280_000_00
    week = run_stats(session=session, account=account, query=StatsQuery(grain=Grain.WEEK), today=today)
    # The ISO week of 1 September 2026 runs Monday 31 August to Sunday 6 September: six of its days
    # are in September's budget.
    assert week.total.row("spend").forecast == 6 * 9333_34  # six days of the budget, as spread


def test_daily_spend_without_a_budget_is_forecast_by_run_rate(session: Session) -> None:
    pipeline = pipeline_for(session, STAGES)
    account = account_for(session)
    add_journey(session, pipeline, Journey("2026-09-01 09:00", source="Сайт"))
    for day in (1, 2):
        set_spend(
            session=session, account=account, source="Сайт", start=dt.date(2026, 9, day), kind="day", amount=1000_00
        )
    session.commit()
    result = run_stats(session=session, account=account, query=StatsQuery(grain=Grain.MONTH), today=dt.date(2026, 9, 2))
    spend = result.total.row("spend")
    assert spend.cells[-1].fact == 2000_00
    assert spend.forecast == pytest.approx(2000_00 * 22 / 2)  # 22 working days in September 2026, 2 gone


def test_a_ratio_plan_of_a_week_across_two_months_weighs_both(session: Session) -> None:
    pipeline = pipeline_for(session, STAGES)
    account = account_for(session)
    metrics = metrics_for(STAGES)
    for month, value in ((dt.date(2026, 8, 1), "20%"), (dt.date(2026, 9, 1), "41%")):
        set_plan(session=session, account=account, pipeline=pipeline, metrics=metrics, month=month, metric="conv_2",
                 value=value)  # fmt: skip
    session.commit()
    query = StatsQuery(grain=Grain.WEEK, date_from=dt.date(2026, 8, 31), date_to=dt.date(2026, 9, 7))
    result = run_stats(session=session, account=account, query=query, today=dt.date(2026, 10, 1))
    assert result.total.row("conv_2").cells[0].plan == pytest.approx((0.20 * 1 + 0.41 * 6) / 7)


def test_stats_commands(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()

    def voronka(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, ["--db", db_url, "--lang", "en", *args])
        return result.exit_code, result.stdout, result.stderr

    voronka("init", "--stages", "Lead,Estimate,Won")
    spend = tmp_path / "spend.csv"
    spend.write_text("source;month;amount\nАвито;2024-03;90 000\nСайт;03.2024;abc\n", encoding="utf-8")
    code, out, _ = voronka("spend", "import", str(spend))
    assert code == 0
    assert "1 spend row, 1 rejected" in out  # one row, in the singular
    assert "line 3" in out
    assert voronka("spend", "set", "--source", "Сайт", "--day", "2024-03-04", "--amount", "500")[0] == 0
    assert voronka("plan", "set", "--month", "2024-03", "--metric", "reached_share", "--value", "60 %")[0] == 0
    code, _, err = voronka("plan", "set", "--month", "2024-03", "--metric", "happiness", "--value", "1")
    assert code == 1
    assert "Error: Cannot read --metric «happiness»" in err
    code, out, _ = voronka(
        "stats", "--from", "2024-03-01", "--to", "2024-04-01", "--period", "month", "--format", "json"
    )
    data = json.loads(out)
    rows = {r["metric"]: r for r in data["tables"][0]["rows"]}
    assert rows["spend"]["cells"][0]["fact"] == "90500.00"
    assert rows["reached_share"]["cells"][0]["plan"] == 0.6
    assert data["mode"] == "crm"
    assert data["explanation"].startswith("Counted from deals")
    code, out, _ = voronka("stats", "--from", "2024-03-01", "--to", "2024-04-01", "--format", "json", "--by", "source")
    # The team's table and the table of deals without a source both have no cut: `kind` tells them apart.
    kinds = [(table["kind"], table["cut"]) for table in json.loads(out)["tables"]]
    assert kinds[0] == ("team", None)
    assert all(kind == "source" for kind, _ in kinds[1:])
    code, out, _ = voronka("stats", "--from", "2024-03-01", "--to", "2024-04-01", "--format", "csv", "--by", "source")
    assert code == 0
    assert out.splitlines()[0] == "cut,metric,period,fact,plan,of_plan,change"
    code, _, err = voronka("stats", "--by", "colour")
    assert code == 1
    assert "unknown --by value" in err

    # A plan names someone who exists: a typo is an error with the closest names, and creates no one.
    code, _, err = voronka(
        "plan", "set", "--month", "2024-03", "--metric", "leads", "--value", "5", "--source", "Авита"
    )
    assert code == 1
    assert err.strip() == "Error: No source called «Авита». Did you mean: Авито?"
    code, _, err = voronka(
        "plan", "set", "--month", "2024-03", "--metric", "leads", "--value", "5", "--manager", "Ivan"
    )
    assert (code, err.strip()) == (1, "Error: No manager called «Ivan». There are none yet.")
    code, out, _ = voronka("stats", "--from", "2024-03-01", "--to", "2024-04-01", "--by", "source", "--format", "json")
    assert {t["cut"] for t in json.loads(out)["tables"]} == {None, "Авито", "Сайт"}
    assert (
        voronka("plan", "set", "--month", "2024-03", "--metric", "leads", "--value", "5", "--source", " авито")[0] == 0
    )

    # A year by week is wider than the terminal: the latest weeks that fit, and a word on the rest
    # (spend and a plan make the widest cells: money, and a plan's two extra lines).
    code, out, _ = voronka("stats", "--from", "2023-04-03", "--to", "2024-04-01", "--period", "week")
    assert code == 0
    shown = re.search(r"Only the latest (\d+) of 52 periods fit", out)
    assert shown is not None
    assert 1 <= int(shown.group(1)) < 52
    assert "2024-W13" in out
    assert "2023-W14" not in out
    assert max(len(line) for line in out.splitlines() if line.startswith(("┃", "│", "┏"))) <= 160
    code, out, _ = voronka("stats", "--from", "2024-03-04", "--to", "2024-04-01", "--period", "week")
    assert "fit the terminal" not in out  # four weeks fit
    assert "2024-W10" in out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_speed_medians_are_the_middle_of_every_speed(session: Session, seed: int) -> None:
    """The median speed to lead of the team and of each manager, against Python's median of the
    same speeds (odd and even counts; SQLite numbers the rows by window, PostgreSQL aggregates)."""
    import random
    import statistics

    rng = random.Random(seed)
    pipeline = pipeline_for(session)
    speeds = {name: [rng.randint(0, 300) for _ in range(rng.randint(1, 25))] for name in ("Анна", "Олег", "Ира")}
    for name, minutes in speeds.items():
        for value in minutes:
            deal = add_journey(session, pipeline, Journey("2024-03-05 10:00", manager=name))
            deal.first_contact_at = deal.created_at + dt.timedelta(minutes=value)
            deal.contact_minutes = value
    add_journey(session, pipeline, Journey("2024-03-06 10:00", manager="Анна"))  # not contacted: no speed
    session.commit()
    result = report(session, by="manager")
    everyone = [value for minutes in speeds.values() for value in minutes]
    assert facts(result, "speed_median") == [statistics.median(everyone) * 60, None, None]
    for table in result.cuts:
        assert table.cut is not None
        expected = statistics.median(speeds[table.cut]) * 60
        assert [cell.fact for cell in table.row("speed_median").cells] == [expected, None, None]
    assert sorted(table.cut or "" for table in result.cuts) == sorted(speeds)


@pytest.mark.parametrize(
    "command",
    [
        ("stats",),
        ("funnel",),
        ("forecast",),
        ("diagnose",),
        ("audit",),
        ("whatif",),
        ("hypothesis", "show", "1"),
        ("sync",),
    ],
)
def test_format_choices_are_checked(db_url: str, command: tuple[str, ...]) -> None:
    """Every command that takes --format refuses a value it does not offer in one line, exit 1."""
    result = CliRunner().invoke(app, ["--db", db_url, "--lang", "en", *command, "--format", "nonsense"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: --format «nonsense» is not one of: table, json")
