"""The diagnosis rules: each a small class with a stable code, in an explicit registry."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import ClassVar, Protocol

from voronka.analysis.diagnose.evidence import Evidence, NumberCalls
from voronka.analysis.diagnose.model import MIN_SAMPLE, SHOWN, Cause, Finding, Subject
from voronka.analysis.experiments import Arm, beta_cdf, probability_b_beats_a
from voronka.analysis.funnel.compute import FunnelFigures
from voronka.i18n import Message

MIN_GAP = 0.04
NUMBER_GAP = 0.15
FAMILY_RISE = 0.10
FEW_ATTEMPTS = 3.0
"""Calls on a lead before giving up: fewer ignores the lesson's advice of several attempts on day one."""
ATTEMPTS_DROP = 0.75


class Rule(Protocol):
    @property
    def code(self) -> str: ...

    def findings(self, evidence: Evidence) -> Iterable[Finding]: ...


def step_arm(figures: FunnelFigures, position: int) -> Arm:
    """Entries into the stage before ``position`` and how many of them went on (flows, so capped)."""
    before = figures.stages[position - 2].reached
    return Arm(before, min(figures.stages[position - 1].reached, before))


def downstream(figures: FunnelFigures, position: int) -> float:
    """Chance that a deal entering stage ``position`` is won, from the recent step conversions."""
    return math.prod((s.conversion or 0.0) for s in figures.stages[position:])


def monthly_revenue(evidence: Evidence) -> float:
    return evidence.total.revenue_in(evidence.currency) / evidence.recent.months


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.0f}"


def contact_causes(
    evidence: Evidence, speed: float | None, speed_reference: float | None, *, numbers: bool = True
) -> list[Cause]:
    """Why leads are not reached: slow callbacks, an outgoing number treated as spam (a team-wide
    cause, so not offered for one manager)."""
    slow = (
        speed is not None and speed_reference is not None and speed > max(1.5 * speed_reference, speed_reference + 600)
    )
    causes = [
        Cause(
            "slow_callbacks",
            Message("diagnose.cause.slow_callbacks"),
            Message("diagnose.evidence.speed", {"now": _minutes(speed), "reference": _minutes(speed_reference)}),
            slow,
        )
    ]
    worst = _worst_number(evidence)
    if not numbers:
        return causes
    if evidence.attempts is not None:
        causes.append(_attempts_cause(evidence.attempts, evidence.attempts_past))
    causes.append(
        Cause(
            "spam_number",
            Message("diagnose.cause.spam_number"),
            Message(
                "diagnose.evidence.number",
                {"number": worst[0].number, "rate": _percent(worst[1]), "others": _percent(worst[2])},
            )
            if worst
            else Message("diagnose.evidence.numbers_even"),
            worst is not None,
        )
    )
    return sorted(causes, key=lambda c: not c.supported)


def _attempts_cause(attempts: float, before: float | None) -> Cause:
    """Giving up too early: few calls on the leads that were never reached, or fewer than before."""
    few = attempts < FEW_ATTEMPTS or (before is not None and attempts <= ATTEMPTS_DROP * before)
    return Cause(
        "few_attempts",
        Message("diagnose.cause.few_attempts"),
        Message(
            "diagnose.evidence.attempts",
            {"now": f"{attempts:.1f}", "before": "—" if before is None else f"{before:.1f}"},
        ),
        few,
    )


def _worst_number(evidence: Evidence) -> tuple[NumberCalls, float, float] | None:
    """The outgoing number whose answer rate is far below the others', if there is one."""
    found = None
    for number in evidence.numbers.values():
        others = [n for n in evidence.numbers.values() if n.number != number.number]
        attempts = sum(n.attempts for n in others)
        if number.attempts < MIN_SAMPLE or not attempts:
            continue
        rate, other_rate = number.answered / number.attempts, sum(n.answered for n in others) / attempts
        if other_rate - rate >= NUMBER_GAP and (found is None or rate < found[1]):
            found = (number, rate, other_rate)
    return found


def loss_causes(mix: dict[str, int], reference: dict[str, int]) -> list[Cause]:
    """Causes from the loss reasons at a step: the families whose share grew against the reference."""
    total, reference_total = sum(mix.values()), sum(reference.values())
    causes = []
    for family in ("price", "timing", "competitor", "need_gone", "non_target", "unreachable"):
        share = mix.get(family, 0) / total if total else 0.0
        before = reference.get(family, 0) / reference_total if reference_total else 0.0
        if not share:
            continue
        causes.append(
            Cause(
                family,
                Message(f"diagnose.cause.{family}"),
                Message("diagnose.evidence.reasons", {"share": _percent(share), "reference": _percent(before)}),
                share - before >= FAMILY_RISE,
            )
        )
    return sorted(causes, key=lambda c: (not c.supported, c.code))


def hypotheses(causes: Sequence[Cause]) -> tuple[Message, ...]:
    return tuple(Message(f"diagnose.hypothesis.{c.code}") for c in causes if c.supported)


class StepBelowHistory:
    """A step converting worse now than over the year before."""

    code: ClassVar[str] = "step_below_history"

    def findings(self, evidence: Evidence) -> Iterable[Finding]:
        names = evidence.total.stages
        for position in range(2, len(names) + 1):
            now, before = step_arm(evidence.total, position), step_arm(evidence.past, position)
            if now.trials < MIN_SAMPLE or before.trials < MIN_SAMPLE or not now.rate or before.rate is None:
                continue
            gap = before.rate - now.rate
            worse = probability_b_beats_a(now, before)
            if worse < SHOWN or gap < MIN_GAP:
                continue
            causes = step_causes(evidence, position)
            yield Finding(
                self.code,
                (position - 1, position),
                None,
                now.rate,
                before.rate,
                "history",
                now.trials,
                worse,
                monthly_revenue(evidence) * gap / now.rate,
                tuple(causes),
                hypotheses(causes),
                len(names) - 1,
            )


def step_causes(evidence: Evidence, position: int) -> list[Cause]:
    """The team-wide causes of a weak step, each with what the data say about it."""
    if position == 2:
        return contact_causes(evidence, evidence.speed_team, evidence.speed_past)
    return loss_causes(evidence.losses.get(position - 1, {}), evidence.losses_past.get(position - 1, {}))


class StepBelowReference:
    """A step converting worse now than a set figure: the account's own plan or a benchmark the
    user entered (never a made-up industry norm)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.code = f"step_below_{kind}"

    def findings(self, evidence: Evidence) -> Iterable[Finding]:
        references = evidence.targets if self.kind == "target" else evidence.benchmarks
        stages = len(evidence.total.stages)
        for position, reference in sorted(references.items()):
            if not 2 <= position <= stages:
                continue
            now = step_arm(evidence.total, position)
            if now.trials < MIN_SAMPLE or not now.rate:
                continue
            worse = beta_cdf(reference, 1 + now.successes, 1 + now.failures)
            gap = reference - now.rate
            if worse < SHOWN or gap < MIN_GAP:
                continue
            causes = step_causes(evidence, position)
            yield Finding(
                self.code,
                (position - 1, position),
                None,
                now.rate,
                reference,
                self.kind,
                now.trials,
                worse,
                monthly_revenue(evidence) * gap / now.rate,
                tuple(causes),
                hypotheses(causes),
                len(references),
            )


class GroupBelowTeam:
    """A manager or source converting worse at a step than the rest of the team (shrunk estimates)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.code = f"{kind}_below_team"

    def findings(self, evidence: Evidence) -> Iterable[Finding]:
        groups = evidence.by_manager if self.kind == "manager" else evidence.by_source
        team = evidence.year_total
        comparisons = len(groups) * (len(team.stages) - 1)
        for position in range(2, len(team.stages) + 1):
            arms = {value: step_arm(figures, position) for value, figures in groups.items()}
            prior = _prior([a for a in arms.values() if a.trials >= 10])
            for value, arm in arms.items():
                finding = self._judge(evidence, position, value, arm, step_arm(team, position), prior)
                if finding is not None:
                    yield replace(finding, comparisons=comparisons)

    def _judge(
        self, evidence: Evidence, position: int, value: str, arm: Arm, team: Arm, prior: tuple[float, float]
    ) -> Finding | None:
        others = Arm(team.trials - arm.trials, max(team.successes - arm.successes, 0))
        if arm.trials < MIN_SAMPLE or others.trials < MIN_SAMPLE or others.rate is None:
            return None
        alpha, beta = prior[0] + arm.successes, prior[1] + arm.failures
        shrunk = alpha / (alpha + beta)
        worse = beta_cdf(others.rate, alpha, beta)
        gap = others.rate - shrunk
        if worse < SHOWN or gap < MIN_GAP:
            return None
        monthly_entries = arm.trials / evidence.year.months
        money = monthly_entries * gap * downstream(evidence.total, position) * evidence.average_check
        causes = self._causes(evidence, position, value)
        return Finding(
            self.code,
            (position - 1, position),
            Subject(self.kind, value),
            shrunk,
            others.rate,
            "team",
            arm.trials,
            worse,
            money,
            tuple(causes),
            hypotheses(causes),
        )

    def _causes(self, evidence: Evidence, position: int, value: str) -> list[Cause]:
        if self.kind == "manager":
            if position == 2:
                speed = evidence.speed_by_manager.get(value)
                return contact_causes(evidence, speed, evidence.speed_team_year, numbers=False)
            return [
                Cause("manager_skill", Message("diagnose.cause.manager_skill"), Message("diagnose.evidence.team"), True)
            ]
        mine = evidence.losses_by_source.get((value, position - 1), {})
        rest: dict[str, int] = {}
        for (source, stage), mix in evidence.losses_by_source.items():
            if stage == position - 1 and source != value:
                for family, count in mix.items():
                    rest[family] = rest.get(family, 0) + count
        return loss_causes(mine, rest)


def _prior(arms: Sequence[Arm]) -> tuple[float, float]:
    """Empirical-Bayes Beta prior from the groups' rates (method of moments); weak when they agree."""
    trials = sum(a.trials for a in arms)
    if len(arms) < 2 or not trials:
        return 1.0, 1.0
    mean = sum(a.successes for a in arms) / trials
    spread = sum(a.trials * ((a.successes / a.trials) - mean) ** 2 for a in arms) / trials
    noise = mean * (1 - mean) / (trials / len(arms))
    between = max(spread - noise, 1e-6)
    strength = min(max(mean * (1 - mean) / between - 1, 2.0), 1000.0)
    return mean * strength, (1 - mean) * strength


class OutgoingNumber:
    """An outgoing number whose calls are answered far less often than the others'."""

    code: ClassVar[str] = "outgoing_number_answer_rate"

    def findings(self, evidence: Evidence) -> Iterable[Finding]:
        worst = _worst_number(evidence)
        if worst is None:
            return
        number, rate, other_rate = worst
        others = [n for n in evidence.numbers.values() if n.number != number.number]
        other_arm = Arm(sum(n.attempts for n in others), sum(n.answered for n in others))
        worse = probability_b_beats_a(Arm(number.attempts, number.answered), other_arm)
        if worse < SHOWN:
            return
        past = evidence.numbers_past.get(number.number)
        past_rate = past.answered / past.attempts if past and past.attempts else None
        money = (number.attempts / evidence.recent.months) * (other_rate - rate)
        money *= downstream(evidence.total, 2) * evidence.average_check
        evidence_text = Message(
            "diagnose.evidence.number_history",
            {
                "number": number.number,
                "rate": _percent(rate),
                "others": _percent(other_rate),
                "before": _percent(past_rate),
            },
        )
        cause = Cause("spam_number", Message("diagnose.cause.spam_number"), evidence_text, True)
        yield Finding(
            self.code,
            (1, 2),
            Subject("outgoing_number", number.number),
            rate,
            other_rate,
            "others",
            number.attempts,
            worse,
            money,
            (cause,),
            hypotheses([cause]),
            len(evidence.numbers),
        )


class StalledDeals:
    """Open deals nobody has touched for twice the usual time in their stage."""

    code: ClassVar[str] = "stalled_deals"
    minimum: ClassVar[int] = 5

    def findings(self, evidence: Evidence) -> Iterable[Finding]:
        stalled = sum(evidence.stalled.values())
        if stalled < self.minimum:
            return
        figures = evidence.total
        # The backlog is a stock: spread over the recent window it was built up in, as money a month.
        backlog = sum(downstream(figures, p) * n for p, n in evidence.stalled.items()) * evidence.average_check
        money = backlog / evidence.recent.months
        cause = Cause(
            "stalled",
            Message("diagnose.cause.stalled"),
            Message("diagnose.evidence.stalled", {"count": stalled}),
            True,
        )
        yield Finding(
            self.code,
            None,
            None,
            float(stalled),
            0.0,
            "history",
            stalled,
            1.0,
            money,
            (cause,),
            hypotheses([cause]),
        )


RULES: tuple[Rule, ...] = (
    StepBelowHistory(),
    StepBelowReference("target"),
    StepBelowReference("benchmark"),
    GroupBelowTeam("manager"),
    GroupBelowTeam("source"),
    OutgoingNumber(),
    StalledDeals(),
)
