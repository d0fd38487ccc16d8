"""Hypotheses: deals split into arms, evaluated as the issue's own example (6/30 against 12/30)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import Journey, account_for, journeys_for
from voronka.analysis.hypotheses import Assignment, add_hypothesis, count_arms, evaluate, parse_assignment
from voronka.analysis.hypothesis_report import HypothesisReport, hypothesis_to_dict
from voronka.cli import app
from voronka.errors import InvalidValue
from voronka.models import AssignmentKind

TODAY = dt.date(2024, 6, 1)


def arm_journeys(arm: str, passed: int, total: int, day: int) -> list[Journey]:
    """Deals of one arm: all qualified, ``passed`` of them get to the estimate, the rest are lost."""
    journeys = []
    for n in range(total):
        created = f"2024-03-{day + n % 20:02d} 10:00"
        moves = [("Qualified", f"2024-03-{day + n % 20:02d} 11:00")]
        if n < passed:
            moves.append(("Estimate", f"2024-03-{day + n % 20:02d} 12:00"))
            journeys.append(Journey(created, moves=moves, custom={"script": arm}, won="2024-04-15", amount=100_000_00))
        else:
            journeys.append(Journey(created, moves=moves, custom={"script": arm}, lost=("2024-03-25", "Дорого")))
    return journeys


def test_field_split_gives_the_published_figures(session: Session) -> None:
    pipeline = journeys_for(session, arm_journeys("old", 6, 30, 1) + arm_journeys("new", 12, 30, 2))
    account = account_for(session)
    hypothesis = add_hypothesis(
        session=session,
        account=account,
        pipeline=pipeline,
        position=3,
        change="New estimate script",
        starts_on=dt.date(2024, 3, 1),
        ends_on=dt.date(2024, 4, 1),
        assignment=Assignment(AssignmentKind.FIELD, "script", "old", "new"),
        uplift=0.10,
    )
    session.commit()
    result = evaluate(session=session, account=account, hypothesis=hypothesis, today=TODAY)
    assert (result.a.trials, result.a.successes, result.b.trials, result.b.successes) == (30, 6, 30, 12)
    assert result.z_p_value == pytest.approx(0.091, abs=0.001)
    assert result.fisher_p_value == pytest.approx(0.158, abs=0.001)
    assert result.probability_b_better == pytest.approx(0.95, abs=0.01)
    assert result.test.name == "boschloo"
    assert result.needed_per_arm == 294  # 20 % → 30 %
    assert result.decision_allowed is False
    # Wilson by hand: centre (0.2 + z²/60) / (1 + z²/30) = 0.2341, half-width 0.1390 (z = 1.96).
    assert result.interval_a == pytest.approx((0.0951, 0.3731), abs=1e-3)
    data = hypothesis_to_dict(HypothesisReport(hypothesis.id, hypothesis.change, "RUB", result))
    assert data["a"] == {"trials": 30, "successes": 6, "rate": 0.2, "wilson": list(result.interval_a or ())}
    assert (data["b"]["successes"], data["test"], data["needed_per_arm"]) == (12, "boschloo", 294)
    assert data["change"] == "New estimate script"
    assert data["stopping_rule"] == "fixed_horizon"


def test_other_assignments(session: Session) -> None:
    pipeline = journeys_for(session, arm_journeys("x", 10, 40, 1))
    account = account_for(session)
    for kind in (AssignmentKind.ALTERNATING, AssignmentKind.RANDOM):
        hypothesis = add_hypothesis(
            session=session,
            account=account,
            pipeline=pipeline,
            position=3,
            change=kind.value,
            starts_on=dt.date(2024, 3, 1),
            ends_on=None,
            assignment=Assignment(kind),
        )
        a, b = count_arms(session, account, hypothesis, TODAY)
        assert a.trials + b.trials == 40
        assert a.successes + b.successes == 10
        assert a.trials > 5
        assert b.trials > 5
    before_after = add_hypothesis(
        session=session,
        account=account,
        pipeline=pipeline,
        position=3,
        change="after",
        starts_on=dt.date(2024, 3, 11),
        ends_on=dt.date(2024, 3, 21),
        assignment=Assignment(AssignmentKind.BEFORE_AFTER),
    )
    a, b = count_arms(session, account, before_after, TODAY)
    assert a.trials == 20
    assert b.trials == 20
    assert evaluate(session=session, account=account, hypothesis=before_after, today=TODAY).observational


def test_bad_hypotheses_are_refused(session: Session) -> None:
    pipeline = journeys_for(session, [])
    with pytest.raises(InvalidValue):
        parse_assignment("coin")
    with pytest.raises(InvalidValue):
        add_hypothesis(
            session=session,
            account=account_for(session),
            pipeline=pipeline,
            position=9,
            change="x",
            starts_on=dt.date(2024, 3, 1),
            ends_on=None,
            assignment=Assignment(AssignmentKind.ALTERNATING),
        )
    assert parse_assignment("field:script=old/new") == Assignment(AssignmentKind.FIELD, "script", "old", "new")


def test_hypothesis_commands(db_url: str) -> None:
    runner = CliRunner()

    def voronka(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, ["--db", db_url, "--lang", "en", *args])
        return result.exit_code, result.stdout, result.stderr

    voronka("demo", "--leads", "600")
    code, out, err = voronka(
        "hypothesis", "add", "--step", "3", "--change", "Script v2", "--start", "2026-09-01", "--assign", "alternating"
    )
    assert code == 0, err
    assert "Hypothesis #1 started" in out
    code, out, _ = voronka("hypothesis", "show", "1", "--format", "json")
    data = json.loads(out)
    assert data["stopping_rule"] == "fixed_horizon"
    assert data["a"]["trials"] > 0
    assert voronka("hypothesis", "list")[1].startswith("#1 · 2→3 · Script v2")
    assert voronka("hypothesis", "close", "1", "--verdict", "kept")[0] == 0
    code, _, err = voronka("hypothesis", "show", "7")
    assert code == 1
    assert err.startswith("Error: Not found: hypothesis 7.")
