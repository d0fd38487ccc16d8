"""A hypothesis as people and programs read it: its evaluation, typed, and the JSON of
``voronka hypothesis show --format json``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

from sqlalchemy.orm import Session

from voronka.analysis.experiments import Arm
from voronka.analysis.hypotheses import Evaluation, evaluate, get_hypothesis
from voronka.models import Account
from voronka.money import format_minor


@dataclass(frozen=True)
class HypothesisReport:
    id: int
    change: str
    currency: str
    evaluation: Evaluation


def hypothesis_report(*, session: Session, account: Account, hypothesis_id: int) -> HypothesisReport:
    hypothesis = get_hypothesis(session=session, account=account, hypothesis_id=hypothesis_id)
    result = evaluate(session=session, account=account, hypothesis=hypothesis)
    return HypothesisReport(hypothesis.id, hypothesis.change, account.currency, result)


class ArmJson(TypedDict):
    trials: int
    successes: int
    rate: float | None
    wilson: list[float] | None


class HypothesisJson(TypedDict):
    id: int
    change: str
    a: ArmJson
    b: ArmJson
    test: str
    p_value: float | None
    z_p_value: float | None
    fisher_p_value: float | None
    probability_b_better: float | None
    expected_loss_b: float | None
    expected_loss_a: float | None
    revenue_effect_per_month: str | None
    needed_per_arm: int | None
    weeks_needed: float | None
    decision_allowed: bool
    stopping_rule: Literal["fixed_horizon"]
    observational: bool


def _arm(value: Arm, interval: tuple[float, float] | None) -> ArmJson:
    wilson = list(interval) if interval else None
    return {"trials": value.trials, "successes": value.successes, "rate": value.rate, "wilson": wilson}


def hypothesis_to_dict(report: HypothesisReport) -> HypothesisJson:
    result = report.evaluation
    effect = result.revenue_effect_per_month
    return {
        "id": report.id,
        "change": report.change,
        "a": _arm(result.a, result.interval_a),
        "b": _arm(result.b, result.interval_b),
        "test": result.test.name,
        "p_value": result.test.p_value,
        "z_p_value": result.z_p_value,
        "fisher_p_value": result.fisher_p_value,
        "probability_b_better": result.probability_b_better,
        "expected_loss_b": result.expected_loss_b,
        "expected_loss_a": result.expected_loss_a,
        "revenue_effect_per_month": None if effect is None else format_minor(round(effect), report.currency),
        "needed_per_arm": result.needed_per_arm,
        "weeks_needed": result.weeks_needed,
        "decision_allowed": result.decision_allowed,
        "stopping_rule": "fixed_horizon",
        "observational": result.observational,
    }
