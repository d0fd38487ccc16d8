"""Hypotheses: a change tried at one step, deals split into arms, and what the data say so far."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import BigInteger, ColumnElement, and_, case, func, literal, select
from sqlalchemy.orm import Session

from voronka.analysis.experiments import (
    Arm,
    TestResult,
    expected_loss,
    fisher_test,
    probability_b_beats_a,
    sample_size_per_arm,
    significance,
    weeks_needed,
    wilson_interval,
    z_test,
)
from voronka.analysis.whatif import load_baseline
from voronka.crm.accounts import owned_row
from voronka.errors import InvalidValue
from voronka.models import Account, AssignmentKind, Deal, DealStatus, Hypothesis, Pipeline
from voronka.timeutil import FIRST_DAY, check_day, clamp_day, local_midnight_utc, to_local, utcnow, zone

WEEKS_PER_MONTH = 30.4 / 7
PPM = 1_000_000


@dataclass(frozen=True)
class Assignment:
    kind: AssignmentKind
    field: str | None = None
    value_a: str | None = None
    value_b: str | None = None


def parse_assignment(text: str) -> Assignment:
    """``alternating``, ``random``, ``before-after`` or ``field:NAME=A/B``."""
    cleaned = text.strip()
    if cleaned.startswith("field:") and "=" in cleaned and "/" in cleaned.split("=", 1)[1]:
        name, values = cleaned[len("field:") :].split("=", 1)
        value_a, value_b = values.split("/", 1)
        return Assignment(AssignmentKind.FIELD, name.strip(), value_a.strip(), value_b.strip())
    kinds = {
        "alternating": AssignmentKind.ALTERNATING,
        "random": AssignmentKind.RANDOM,
        "before-after": AssignmentKind.BEFORE_AFTER,
    }
    if cleaned in kinds:
        return Assignment(kinds[cleaned])
    raise InvalidValue(field="--assign", value=text, hint="alternating, random, before-after or field:NAME=A/B")


def add_hypothesis(
    *,
    session: Session,
    account: Account,
    pipeline: Pipeline,
    position: int,
    change: str,
    starts_on: dt.date,
    ends_on: dt.date | None,
    assignment: Assignment,
    uplift: float = 0.05,
) -> Hypothesis:
    if not 2 <= position <= len(pipeline.stages):
        raise InvalidValue(field="--step", value=position, hint=f"a stage position from 2 to {len(pipeline.stages)}")
    check_day(starts_on, "--start")
    if ends_on is not None:
        check_day(ends_on, "--end")
    if ends_on is not None and ends_on <= starts_on:
        raise InvalidValue(field="--end", value=ends_on, hint="a date after --start")
    if not 0 < uplift < 1:
        raise InvalidValue(field="--uplift", value=uplift, hint="a gain between 0 and 100 %")
    hypothesis = Hypothesis(
        account_id=account.id,
        pipeline_id=pipeline.id,
        position=position,
        change=change,
        starts_on=starts_on,
        ends_on=ends_on,
        assignment=assignment.kind.value,
        field=assignment.field,
        value_a=assignment.value_a,
        value_b=assignment.value_b,
        uplift_ppm=round(uplift * PPM),
        created_at=utcnow(),
    )
    session.add(hypothesis)
    session.flush()
    return hypothesis


def get_hypothesis(*, session: Session, account: Account, hypothesis_id: int) -> Hypothesis:
    return owned_row(session=session, model=Hypothesis, row_id=hypothesis_id, account_id=account.id, what="hypothesis")


def list_hypotheses(*, session: Session, account: Account) -> list[Hypothesis]:
    return list(session.scalars(select(Hypothesis).where(Hypothesis.account_id == account.id).order_by(Hypothesis.id)))


def close_hypothesis(*, session: Session, hypothesis: Hypothesis, verdict: str | None) -> Hypothesis:
    hypothesis.closed_at = utcnow()
    hypothesis.verdict = verdict
    session.flush()
    return hypothesis


@dataclass(frozen=True)
class Evaluation:
    a: Arm
    b: Arm
    interval_a: tuple[float, float] | None
    interval_b: tuple[float, float] | None
    test: TestResult
    z_p_value: float | None
    fisher_p_value: float | None
    probability_b_better: float | None
    expected_loss_b: float | None
    """Conversion given up, on average, by choosing B."""
    expected_loss_a: float | None
    revenue_effect_per_month: float | None
    needed_per_arm: int | None
    weeks_needed: float | None
    decision_allowed: bool
    """Fixed horizon: a decision is due only when both arms have the planned number of deals."""
    observational: bool


def evaluate(*, session: Session, account: Account, hypothesis: Hypothesis, today: dt.date | None = None) -> Evaluation:
    """Each arm's deals decided at the step (passed it, or lost or stopped before it) and the verdict."""
    pipeline = session.get(Pipeline, hypothesis.pipeline_id)
    assert pipeline is not None
    today = today or to_local(utcnow(), zone(account.timezone)).date()
    a, b = count_arms(session, account, hypothesis, today)
    baseline = load_baseline(session=session, account=account, pipeline=pipeline.name, today=today)
    steps = {s.position: s.conversion or 0.0 for s in baseline.steps}
    entries = baseline.leads
    for position in range(2, hypothesis.position):
        entries *= steps.get(position, 0.0)
    after = 1.0
    for position in range(hypothesis.position + 1, len(pipeline.stages) + 1):
        after *= steps.get(position, 0.0)
    effect = None
    if a.rate is not None and b.rate is not None:
        effect = (b.rate - a.rate) * entries * after * baseline.average_check
    base = a.rate if a.rate is not None else steps.get(hypothesis.position)
    # A control arm that has converted nobody yet still has a sample size: from 0 to the uplift.
    needed = sample_size_per_arm(base, min(base + hypothesis.uplift_ppm / PPM, 0.999)) if base is not None else None
    return Evaluation(
        a=a,
        b=b,
        interval_a=wilson_interval(a),
        interval_b=wilson_interval(b),
        test=significance(a, b),
        z_p_value=z_test(a, b),
        fisher_p_value=fisher_test(a, b) if a.trials and b.trials else None,
        probability_b_better=probability_b_beats_a(a, b) if a.trials and b.trials else None,
        expected_loss_b=expected_loss(b, a) if a.trials and b.trials else None,
        expected_loss_a=expected_loss(a, b) if a.trials and b.trials else None,
        revenue_effect_per_month=effect,
        needed_per_arm=needed,
        weeks_needed=weeks_needed(needed, entries / WEEKS_PER_MONTH),
        decision_allowed=needed is not None and min(a.trials, b.trials) >= needed,
        observational=hypothesis.assignment == AssignmentKind.BEFORE_AFTER.value,
    )


def count_arms(session: Session, account: Account, hypothesis: Hypothesis, today: dt.date) -> tuple[Arm, Arm]:
    tz = zone(account.timezone)
    # Clamped: a hypothesis saved before the dates were checked (say, from year 1) still shows.
    starts_on = clamp_day(hypothesis.starts_on)
    end = clamp_day(hypothesis.ends_on or today + dt.timedelta(days=1))
    start, stop = local_midnight_utc(starts_on, tz), local_midnight_utc(end, tz)
    window = and_(Deal.created_at >= start, Deal.created_at < stop)
    arm = _arm_of(hypothesis)
    if hypothesis.assignment == AssignmentKind.BEFORE_AFTER.value:
        before = local_midnight_utc(max(starts_on - (end - starts_on), FIRST_DAY), tz)
        window = and_(Deal.created_at >= before, Deal.created_at < stop)
        arm = case((Deal.created_at >= start, literal("B")), else_=literal("A"))
    k = hypothesis.position
    undecided = (Deal.status == DealStatus.OPEN.value) & (Deal.furthest_position == k - 1)
    rows = session.execute(
        select(arm.label("arm"), func.count(), func.sum(case((Deal.furthest_position >= k, 1), else_=0)))
        .where(Deal.pipeline_id == hypothesis.pipeline_id, window, Deal.furthest_position >= k - 1, ~undecided)
        .group_by(arm)
    )
    found = {name: Arm(int(total), int(passed or 0)) for name, total, passed in rows if name in ("A", "B")}
    return found.get("A", Arm(0, 0)), found.get("B", Arm(0, 0))


def _arm_of(hypothesis: Hypothesis) -> ColumnElement[str]:
    if hypothesis.assignment == AssignmentKind.FIELD.value:
        value = Deal.custom[hypothesis.field or ""].as_string()
        return case(
            (value == hypothesis.value_a, literal("A")), (value == hypothesis.value_b, literal("B")), else_=literal("-")
        )
    if hypothesis.assignment == AssignmentKind.RANDOM.value:
        # A multiplicative hash of the id: deterministic, and unrelated to the order deals arrive in.
        bit = (func.cast(Deal.id, BigInteger) * 2654435761 % 4294967296) // 2147483648
        return case((bit == 0, literal("A")), else_=literal("B"))
    return case((Deal.id % 2 == 0, literal("A")), else_=literal("B"))
