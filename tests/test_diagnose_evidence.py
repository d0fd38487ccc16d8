"""The diagnosis' one-pass counts equal the funnel's own, and the references a user sets are used."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session
from typer.testing import CliRunner

from tests.builders import Journey, account_for, journeys_for
from tests.conftest import DemoFiller
from voronka.analysis.diagnose import run_diagnosis
from voronka.analysis.diagnose.cube import NOW, PAST, YEAR, SpeedHistogram
from voronka.analysis.diagnose.evidence import Evidence, gather
from voronka.analysis.funnel.query import FunnelQuery, View
from voronka.analysis.funnel.report import run_funnel
from voronka.analysis.stalled import stalled_counts, stalled_deals
from voronka.analysis.stats.inputs import set_plan
from voronka.analysis.stats.metrics import metrics_for
from voronka.cli import app
from voronka.crm.accounts import find_pipeline
from voronka.crm.deals import log_call
from voronka.demo import HEALTHY, DemoOptions, Problems
from voronka.models import CallOutcome, Deal
from voronka.timeutil import local_midnight_utc, zone

TODAY = dt.date(2026, 11, 27)


def demo_evidence(make: Callable[..., Session], leads: int = 900, problems: Problems = HEALTHY) -> Evidence:
    """The evidence of a demo business in Moscow; ``make`` is the demo_session or sqlite_demo fixture."""
    session = make(DemoOptions(today=TODAY, leads=leads, problems=problems), "Europe/Moscow")
    account = account_for(session, timezone="Europe/Moscow")
    pipeline = find_pipeline(session=session, account=account)
    return gather(session=session, account=account, pipeline=pipeline, today=TODAY)


def period_funnel(session: Session, start: dt.date, end: dt.date, by: str | None = None):  # type: ignore[no-untyped-def]
    query = FunnelQuery(date_from=start, date_to=end, view=View.PERIOD, by=by)
    return run_funnel(session=session, account=account_for(session), query=query)


def test_every_window_and_group_equals_the_period_funnel(demo_session: Callable[..., Session]) -> None:
    evidence = demo_evidence(demo_session)
    session = object_session(evidence.pipeline)
    windows = {"total": evidence.recent, "past": evidence.history, "year_total": evidence.year}
    for name, window in windows.items():
        assert getattr(evidence, name) == period_funnel(session, window.start, window.end).figures, name
    for by, found in (("manager", evidence.by_manager), ("source", evidence.by_source)):
        report = period_funnel(session, evidence.year.start, evidence.year.end, by)
        expected = {g.value: g.figures for g in report.groups or () if g.value is not None}
        assert found == expected, by
        assert len(found) > 1


def test_speed_medians_are_exact(demo_session: Callable[..., Session]) -> None:
    evidence = demo_evidence(demo_session)
    session = object_session(evidence.pipeline)
    tz = zone("Europe/Moscow")
    start, end = (local_midnight_utc(d, tz) for d in (evidence.recent.start, evidence.recent.end))
    minutes = session.scalars(
        select(Deal.contact_minutes).where(
            Deal.created_at >= start, Deal.created_at < end, Deal.contact_minutes.is_not(None)
        )
    ).all()
    assert evidence.speed_team == statistics.median(minutes) * 60


def test_speed_histogram_median_of_odd_and_even_counts() -> None:
    histogram = SpeedHistogram({(2, 1): {3: 2, 10: 1}, (2, 2): {4: 1}, (1, 1): {100: 5}})
    assert histogram.median_seconds(NOW) == 3.5 * 60  # 3 3 4 10
    assert histogram.median_seconds(NOW, 1) == 3 * 60  # 3 3 10
    assert histogram.median_seconds(YEAR, 1) == 100 * 60  # 3 3 10 100×5
    assert histogram.median_seconds(PAST) == 100 * 60
    assert histogram.median_seconds(PAST, 2) is None


def test_stalled_counts_agree_with_the_list(sqlite_demo: Callable[..., Session]) -> None:
    evidence = demo_evidence(sqlite_demo, problems=replace(HEALTHY, stall_share=0.3))
    sqlite_session = object_session(evidence.pipeline)
    pipeline = evidence.pipeline
    now = local_midnight_utc(evidence.recent.end, zone("Europe/Moscow"))  # the end of TODAY, a whole day
    listed = stalled_deals(sqlite_session, pipeline, now)
    assert sum(stalled_counts(sqlite_session, pipeline, now).values()) == len(listed) > 0
    assert evidence.stalled == stalled_counts(sqlite_session, pipeline, now)


def test_a_plan_below_reach_is_a_target_finding(sqlite_demo: Callable[..., Session]) -> None:
    evidence = demo_evidence(sqlite_demo, leads=1500)
    sqlite_session = object_session(evidence.pipeline)
    account, pipeline = account_for(sqlite_session), evidence.pipeline
    metrics = metrics_for([s.name for s in pipeline.stages])
    for month in (dt.date(2026, 8, 1), dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)):
        set_plan(session=sqlite_session, account=account, pipeline=pipeline, metrics=metrics, month=month,
                 metric="conv_3", value="99%")  # fmt: skip
    sqlite_session.commit()
    diagnosis = run_diagnosis(session=sqlite_session, account=account, today=TODAY)
    target = next(f for f in diagnosis.findings if f.code == "step_below_target")
    assert target.step == (2, 3)
    assert target.reference == pytest.approx(0.99)
    assert target.reference_kind == "target"
    assert target.figure == evidence.total.stages[2].conversion
    assert target.money_at_stake_per_month > 0
    assert target.causes


def test_a_benchmark_from_the_command_line(db_url: str, fill_demo: DemoFiller) -> None:
    runner = CliRunner()
    fill_demo(db_url, DemoOptions(today=TODAY))
    result = runner.invoke(
        app,
        [
            *("--db", db_url, "--lang", "en", "diagnose", "--today", TODAY.isoformat(), "--format", "json"),
            *("--benchmark", "2=99%", "--benchmark", "Точный расчёт=0.5"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    benchmarks = [f for f in json.loads(result.stdout)["findings"] if f["code"] == "step_below_benchmark"]
    assert [f["step"] for f in benchmarks] == [[1, 2]]
    assert benchmarks[0]["reference"] == 0.99
    assert "your benchmark of 99.0%" in benchmarks[0]["summary"]  # English writes no space (CLDR)


@pytest.mark.parametrize("setting", ["9=50%", "2=150%", "Nowhere=0.3", "2=fast"])
def test_a_bad_benchmark_is_a_one_line_error(db_url: str, fill_demo: DemoFiller, setting: str) -> None:
    runner = CliRunner()
    fill_demo(db_url, DemoOptions(today=TODAY))
    result = runner.invoke(app, ["--db", db_url, "--lang", "en", "diagnose", "--benchmark", setting])
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: ")
    assert "--benchmark" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def calls(session: Session, deal: Deal, outcome: CallOutcome, count: int) -> None:
    for n in range(count):
        when = deal.created_at + dt.timedelta(minutes=30 + 60 * n)
        log_call(session=session, deal=deal, outcome=outcome, at=when, outgoing_number="+7 495 000-00-01")


def test_attempts_per_unreached_lead_then_and_now(session: Session) -> None:
    """Leads closed unreached got four calls a year ago and one call recently: "giving up too early"."""
    old = [
        Journey(created=f"2026-03-{d:02d} 10:00", lost=(f"2026-03-{d:02d} 18:00", "Не дозвонились"))
        for d in range(1, 11)
    ]
    new = [
        Journey(created=f"2026-11-{d:02d} 10:00", lost=(f"2026-11-{d:02d} 18:00", "Не дозвонились"))
        for d in range(1, 11)
    ]
    reached = [Journey(created="2026-11-02 10:00", moves=[("Qualified", "2026-11-02 11:00")])]
    pipeline = journeys_for(session, old + new + reached)
    deals = session.scalars(select(Deal).order_by(Deal.id)).all()
    for deal in deals[:10]:
        calls(session, deal, CallOutcome.NO_ANSWER, 4)
    for deal in deals[10:20]:
        calls(session, deal, CallOutcome.NO_ANSWER, 1)
    calls(session, deals[20], CallOutcome.ANSWERED, 1)
    session.commit()
    evidence = gather(session=session, account=account_for(session), pipeline=pipeline, today=TODAY)
    assert (evidence.attempts, evidence.attempts_past) == (1.0, 4.0)
    from voronka.analysis.diagnose.rules import contact_causes

    causes = {c.code: c for c in contact_causes(evidence, evidence.speed_team, evidence.speed_past)}
    assert causes["few_attempts"].supported
    assert "1.0" in causes["few_attempts"].evidence.render("en")
    assert "4.0" in causes["few_attempts"].evidence.render("en")


def test_no_logged_calls_say_nothing_about_attempts(session: Session) -> None:
    journeys = [Journey(created=f"2026-11-{d:02d} 10:00", lost=(f"2026-11-{d:02d} 18:00", "x")) for d in range(1, 5)]
    pipeline = journeys_for(session, journeys)
    evidence = gather(session=session, account=account_for(session), pipeline=pipeline, today=TODAY)
    assert evidence.attempts is None
    assert evidence.attempts_past is None


def test_the_stalled_check_reads_postgresql_indexes_alone(demo_session: Callable[..., Session], db_url: str) -> None:
    """The check needs every open deal's id and each recent move's deal id: PostgreSQL's index
    entries hold no ids unless INCLUDEd, and without them it read each open deal from the table
    (most of a million-deal diagnosis). Once the pages are vacuumed, its plan is index-only."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's index entries carry the rowid: nothing to include")
    from sqlalchemy import event, text

    evidence = demo_evidence(demo_session, problems=replace(HEALTHY, stall_share=0.3))
    session = object_session(evidence.pipeline)
    bind = session.get_bind()
    with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in ("deals", "stage_reaches", "call_attempts"):
            connection.exec_driver_sql(f"VACUUM ANALYZE {table}")
    statements: list[tuple[str, object]] = []

    def keep(_conn: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        if "NOT (EXISTS" in statement:
            statements.append((statement, parameters))

    now = local_midnight_utc(TODAY, zone("Europe/Moscow"))
    event.listen(bind, "before_cursor_execute", keep)
    try:
        assert sum(stalled_counts(session, evidence.pipeline, now).values()) > 0
    finally:
        event.remove(bind, "before_cursor_execute", keep)
    (statement, parameters), *_ = statements
    connection = session.connection()
    for setting in ("enable_seqscan", "enable_bitmapscan"):  # a demo is small: make the planner pick an index
        connection.execute(text(f"SET LOCAL {setting} = off"))
    plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
    assert "Index Only Scan using ix_deals_board" in plan, plan
    assert "Index Only Scan using ix_stage_reaches_period" in plan, plan
    session.rollback()


SPAM, CLEAN = "+7 495 000-00-01", "+7 495 000-00-02"


def test_unreached_leads_per_number_by_hand(session: Session) -> None:
    """Leads closed in November, called from two numbers. The flagged one called four leads: two
    ended unreached (one after two attempts), one was reached by a call-back from the clean line,
    one was reached on it. The clean line alone called four leads, one ended unreached."""
    lost = [
        Journey(created=f"2026-11-{d:02d} 10:00", lost=(f"2026-11-{d:02d} 18:00", "Не дозвонились")) for d in (1, 2, 3)
    ]
    won = [Journey(created=f"2026-11-{d:02d} 10:00", won=f"2026-11-{d:02d} 18:00") for d in range(4, 9)]
    pipeline = journeys_for(session, lost + won)
    deals = session.scalars(select(Deal).order_by(Deal.id)).all()
    plan = {0: [SPAM, SPAM], 1: [SPAM], 2: [CLEAN], 3: [SPAM, CLEAN], 4: [SPAM], 5: [CLEAN], 6: [CLEAN], 7: [CLEAN]}
    for index, numbers in plan.items():
        for n, number in enumerate(numbers):
            when = deals[index].created_at + dt.timedelta(minutes=30 + n)
            log_call(session=session, deal=deals[index], outcome=CallOutcome.NO_ANSWER, at=when, outgoing_number=number)
    session.commit()
    unreached = gather(session=session, account=account_for(session), pipeline=pipeline, today=TODAY).unreached
    spam, clean = SPAM, CLEAN
    assert unreached.attempts == {spam: {2: 1, 1: 1}, clean: {1: 1}}
    assert (unreached.ended[spam].leads, unreached.ended[spam].unreached) == (4, 2)
    assert (unreached.ended[clean].leads, unreached.ended[clean].unreached) == (5, 1)
    assert (unreached.ended_called.leads, unreached.ended_called.unreached) == (8, 3)
    # Leads only the clean line called: 4, one unreached; the flagged line's 4 would have lost 1.
    assert unreached.reach_gap(spam) == 1.0
