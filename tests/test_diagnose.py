"""The diagnosis finds the one problem planted in a business, ranks it first, and stays quiet on a
healthy one."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

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


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ({"slow_manager": True}, ("manager_below_team", (1, 2), "Олег Кузнецов", "slow_callbacks")),
        ({"spam_number": True}, ("outgoing_number_answer_rate", (1, 2), "+7 495 120-45-03", "spam_number")),
        ({"price_mismatch": True}, ("source_below_team", (3, 4), "Авито", "price")),
        ({"stall_share": 0.3}, ("stalled_deals", None, None, "stalled")),
    ],
    ids=["slow callbacks of one manager", "number flagged as spam", "price mismatch of one source", "stalled backlog"],
)
def test_the_planted_cause_ranks_first(
    sqlite_session: Session, problem: dict[str, object], expected: tuple[object, ...]
) -> None:
    result = diagnose(sqlite_session, replace(HEALTHY, **problem))  # type: ignore[arg-type]
    assert first(result) == expected
    assert result.findings[0].confident


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
