"""The diagnosis finds the one problem planted in a business, ranks it first, and stays quiet on a
healthy one."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import account_for
from voronka.cli import app
from voronka.demo import HEALTHY, DemoOptions, Problems, build_demo
from voronka.diagnose import Diagnosis, run_diagnosis

TODAY = dt.date(2026, 11, 27)


def diagnose(session: Session, problems: Problems) -> Diagnosis:
    options = DemoOptions(today=TODAY, leads=3000, problems=problems)
    build_demo(session=session, account=account_for(session), options=options)
    session.commit()
    return run_diagnosis(session=session, account=account_for(session), today=TODAY)


def first(diagnosis: Diagnosis) -> tuple[str, tuple[int, int] | None, str | None, str | None]:
    top = diagnosis.findings[0]
    supported = next((c.code for c in top.causes if c.supported), None)
    return top.code, top.step, top.subject.value if top.subject else None, supported


def test_slow_callbacks_of_one_manager(sqlite_session: Session) -> None:
    result = diagnose(
        sqlite_session,
        Problems(
            slow_manager=True,
            weak_manager=False,
            spam_number=False,
            price_mismatch=False,
            non_target_source=False,
            stall_share=0.0,
        ),
    )
    assert first(result) == ("manager_below_team", (1, 2), "Олег Кузнецов", "slow_callbacks")
    assert result.findings[0].confident


def test_outgoing_number_flagged_as_spam(sqlite_session: Session) -> None:
    result = diagnose(
        sqlite_session,
        Problems(
            slow_manager=False,
            weak_manager=False,
            spam_number=True,
            price_mismatch=False,
            non_target_source=False,
            stall_share=0.0,
        ),
    )
    assert first(result) == ("outgoing_number_answer_rate", (1, 2), "+7 495 120-45-03", "spam_number")


def test_price_mismatch_of_one_source(sqlite_session: Session) -> None:
    result = diagnose(
        sqlite_session,
        Problems(
            slow_manager=False,
            weak_manager=False,
            spam_number=False,
            price_mismatch=True,
            non_target_source=False,
            stall_share=0.0,
        ),
    )
    assert first(result) == ("source_below_team", (3, 4), "Авито", "price")


def test_stalled_backlog(sqlite_session: Session) -> None:
    result = diagnose(
        sqlite_session,
        Problems(
            slow_manager=False,
            weak_manager=False,
            spam_number=False,
            price_mismatch=False,
            non_target_source=False,
            stall_share=0.3,
        ),
    )
    assert first(result)[0] == "stalled_deals"


def test_healthy_funnel_raises_no_confident_finding(sqlite_session: Session) -> None:
    result = diagnose(sqlite_session, HEALTHY)
    assert [f.code for f in result.findings if f.confident] == []


def test_json_shape(db_url: str) -> None:
    runner = CliRunner()
    runner.invoke(app, ["--db", db_url, "demo", "--today", TODAY.isoformat()])
    result = runner.invoke(
        app, ["--db", db_url, "--lang", "en", "diagnose", "--today", TODAY.isoformat(), "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    findings = data["findings"]
    assert findings
    for finding in findings:
        assert {
            "code",
            "step",
            "subject",
            "money_at_stake_per_month",
            "probability_worse",
            "causes",
            "hypotheses",
        } <= set(finding)
        assert isinstance(finding["money_at_stake_per_month"], str) and 0 <= finding["probability_worse"] <= 1
        assert all({"code", "text", "evidence"} <= set(c) for c in finding["causes"])
    money = [float(f["money_at_stake_per_month"]) for f in findings]
    assert money == sorted(money, reverse=True)
    table = runner.invoke(app, ["--db", db_url, "--lang", "ru", "diagnose", "--today", TODAY.isoformat()])
    assert table.exit_code == 0 and "на кону" in table.stdout


@pytest.mark.parametrize("leads", [40])
def test_too_little_data_says_so(sqlite_session: Session, leads: int) -> None:
    build_demo(
        session=sqlite_session, account=account_for(sqlite_session), options=DemoOptions(today=TODAY, leads=leads)
    )
    sqlite_session.commit()
    result = run_diagnosis(session=sqlite_session, account=account_for(sqlite_session), today=TODAY)
    assert result.notes and "not enough data yet" in result.notes[0].render("en")
    assert not any(f.confident and f.code == "step_below_history" for f in result.findings)
