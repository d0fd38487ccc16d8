"""The diagnosis rules: each a small class with a stable code, in an explicit registry."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import ClassVar, Protocol

from voronka.analysis.diagnose.evidence import Evidence, NumberCalls, Window
from voronka.analysis.diagnose.model import MIN_SAMPLE, SHOWN, Cause, Finding, Subject
from voronka.analysis.experiments import Arm, beta_cdf, probability_b_beats_a
from voronka.analysis.funnel.compute import FunnelFigures
from voronka.formats import Counted, Figure
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


def stalled_within(evidence: Evidence, position: int, window: Window) -> int:
    """Stalled open deals in stage ``position`` last touched within ``window`` (their day, UTC)."""
    touched = evidence.stalling.touched.get(position, ())
    return sum(1 for t in touched if window.start <= t.date() < window.end)


def followed_arm(evidence: Evidence, figures: FunnelFigures, window: Window, position: int) -> Arm:
    """``step_arm`` without the stalled deals that entered the stage before ``position`` in the
    window: nobody worked them, so they say nothing of how the step converts (and the stalled
    finding already counts them — a step finding would count them twice)."""
    arm = step_arm(figures, position)
    stalled = stalled_within(evidence, position - 1, window)
    return Arm(max(arm.trials - stalled, arm.successes), arm.successes)


def followed_chance(evidence: Evidence, position: int) -> float:
    """Chance that a deal in stage ``position`` that is followed up is won: the last twelve months'
    step conversions without the stalled deals."""
    stages = len(evidence.year_total.stages)
    return math.prod(
        followed_arm(evidence, evidence.year_total, evidence.year, p).rate or 0.0
        for p in range(position + 1, stages + 1)
    )


def downstream(figures: FunnelFigures, position: int) -> float:
    """Chance that a deal entering stage ``position`` is won, from the recent step conversions."""
    return math.prod((s.conversion or 0.0) for s in figures.stages[position:])


def monthly_revenue(evidence: Evidence) -> float:
    return evidence.total.revenue_in(evidence.currency) / evidence.recent.months


def _percent(value: float | None) -> Figure:
    return Figure(value, share=True)


def _minutes(seconds: float | None) -> Figure:
    return Figure(None if seconds is None else seconds / 60)


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
            {"now": Figure(attempts, 1), "before": Figure(before, 1)},
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

    def comparisons(self, evidence: Evidence) -> int:
        return len(evidence.total.stages) - 1

    def findings(self, evidence: Evidence) -> Iterable[Finding]:
        names = evidence.total.stages
        for position in range(2, len(names) + 1):
            now = followed_arm(evidence, evidence.total, evidence.recent, position)
            before = followed_arm(evidence, evidence.past, evidence.history, position)
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
    """A manager or source converting worse at a step than the rest of the team (shrunk estimates).

    The reference is the weighted median of the other groups' shrunk rates, not their pooled rate:
    two bad sources must not hide each other by dragging "the rest" down. How sure: the chance that
    the group's rate is below the reference, with the uncertainty of both (a normal approximation
    of the difference of their Beta posteriors).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.code = f"{kind}_below_team"

    def comparisons(self, evidence: Evidence) -> int:
        groups = evidence.by_manager if self.kind == "manager" else evidence.by_source
        return len(groups) * (len(evidence.year_total.stages) - 1)

    def findings(self, evidence: Evidence) -> Iterable[Finding]:
        groups = evidence.by_manager if self.kind == "manager" else evidence.by_source
        for position in range(2, len(evidence.year_total.stages) + 1):
            arms = {value: step_arm(figures, position) for value, figures in groups.items()}
            prior = _prior([a for a in arms.values() if a.trials >= 10])
            shrunk = {value: _posterior(arm, prior) for value, arm in arms.items() if arm.trials >= MIN_SAMPLE}
            for value, arm in arms.items():
                if value not in shrunk:
                    continue
                others = {other: post for other, post in shrunk.items() if other != value}
                finding = self._judge(evidence, position, value, arm, shrunk[value], others)
                if finding is not None:
                    yield finding

    def _judge(
        self,
        evidence: Evidence,
        position: int,
        value: str,
        arm: Arm,
        posterior: tuple[float, float],
        others: dict[str, tuple[float, float]],
    ) -> Finding | None:
        if not others:
            return None
        reference, reference_trials = robust_reference(list(others.values()))
        if reference_trials < MIN_SAMPLE:
            return None
        mean, variance = _beta_moments(*posterior)
        reference_variance = reference * (1 - reference) / (reference_trials + 1)
        worse = normal_cdf((reference - mean) / math.sqrt(variance + reference_variance or 1e-12))
        gap = reference - mean
        if worse < SHOWN or gap < MIN_GAP:
            return None
        monthly_entries = arm.trials / evidence.year.months
        money = monthly_entries * gap * followed_chance(evidence, position) * evidence.average_check
        causes = self._causes(evidence, position, value)
        return Finding(
            self.code,
            (position - 1, position),
            Subject(self.kind, value),
            mean,
            reference,
            "team",
            arm.trials,
            worse,
            money,
            tuple(causes),
            hypotheses(causes),
        )

    def _causes(self, evidence: Evidence, position: int, value: str) -> list[Cause]:
        """Causes with evidence of their own — never "the rest of the team does better", which is
        the finding itself. Without any, the cause is unknown and the finding says what would tell."""
        if self.kind == "manager" and position == 2:
            speed = evidence.speed_by_manager.get(value)
            causes = contact_causes(evidence, speed, evidence.speed_team_year, numbers=False)
        else:
            losses = evidence.losses_by_manager if self.kind == "manager" else evidence.losses_by_source
            mine = losses.get((value, position - 1), {})
            others = [mix for (group, stage), mix in losses.items() if stage == position - 1 and group != value]
            causes = loss_causes(mine, median_mix(others))
            if self.kind == "manager" and any(c.supported for c in causes):
                causes.append(_skill_cause())
        if not any(c.supported for c in causes):
            causes.insert(0, _unknown_cause(self.kind, position))
        return sorted(causes, key=lambda c: not c.supported)


def _skill_cause() -> Cause:
    return Cause("manager_skill", Message("diagnose.cause.manager_skill"), Message("diagnose.evidence.skill"), True)


def _unknown_cause(kind: str, position: int) -> Cause:
    """No data speaks for any cause: say so, and which data would tell."""
    needs = "calls" if position == 2 else "reasons"
    evidence = Message(f"diagnose.evidence.unknown_{needs}", {"kind": Message(f"diagnose.kind_{kind}")})
    return Cause("unknown", Message("diagnose.cause.unknown"), evidence, True)


MIX_SCALE = 10_000
MIN_LOSSES = 10


def median_mix(mixes: Sequence[dict[str, int]]) -> dict[str, int]:
    """The other groups' typical loss-reason mix: each family's median share (as counts out of
    ``MIX_SCALE``) over the groups with enough losses, so that another bad group's reasons do not
    make this one's look usual."""
    shares = [
        {family: count / sum(mix.values()) for family, count in mix.items()}
        for mix in mixes
        if sum(mix.values()) >= MIN_LOSSES
    ]
    if not shares:
        return {}
    families = {family for share in shares for family in share}
    return {family: round(statistics.median(s.get(family, 0.0) for s in shares) * MIX_SCALE) for family in families}


def robust_reference(posteriors: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The trials-weighted median of the groups' posterior means, and their trials in all: one or
    two outlying groups move a median far less than a pooled rate."""
    points = sorted((alpha / (alpha + beta), alpha + beta) for alpha, beta in posteriors)
    total = sum(weight for _, weight in points)
    running = 0.0
    for mean, weight in points:
        running += weight
        if running >= total / 2:
            return mean, total
    return points[-1][0], total


def _posterior(arm: Arm, prior: tuple[float, float]) -> tuple[float, float]:
    return prior[0] + arm.successes, prior[1] + arm.failures


def _beta_moments(alpha: float, beta: float) -> tuple[float, float]:
    total = alpha + beta
    return alpha / total, alpha * beta / (total * total * (total + 1))


def normal_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


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

    def comparisons(self, evidence: Evidence) -> int:
        return len(evidence.numbers)

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
        money = evidence.unreached.rescued(number.number, rate, other_rate) / evidence.recent.months
        money *= followed_chance(evidence, 2) * evidence.average_check
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


STALL_CONFIDENCE = 0.99
"""The stalled backlog is stated only when the normal tail would leave this many so rarely."""
MIN_BUILD_DAYS = 30.0
OLD_BACKLOG = 3
"""Stalled deals older than the window that show stalling predates it (a stray one does not)."""
DAY = 86_400.0


def poisson_at_least(n: int, mean: float) -> float:
    """P(X ≥ n) for X ~ Poisson(mean)."""
    if n <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    below = sum(math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) for k in range(n))
    return max(1.0 - below, 0.0)


class StalledDeals:
    """Open deals nobody has touched for twice the usual time in their stage."""

    code: ClassVar[str] = "stalled_deals"
    minimum: ClassVar[int] = 5

    def findings(self, evidence: Evidence) -> Iterable[Finding]:
        stalling = evidence.stalling
        stalled = stalling.count
        if stalled < self.minimum or stalling.now is None:
            return
        # The normal tail: a stage's slow deals pass its limit in a healthy business too. Open deals
        # past it expected = entries a second × the mean time a deal stays beyond the limit.
        seconds = (evidence.recent.end - evidence.recent.start).days * DAY
        stages = evidence.total.stages
        normal = {
            p: stages[p - 1].reached / seconds * stalling.tails.get(p, 0.0) for p in stalling.limits if p < len(stages)
        }
        expected = sum(normal.values())
        worse = 1.0 - poisson_at_least(stalled, expected)
        if worse < STALL_CONFIDENCE:
            return
        # Money a month: the deals that stalled in the recent 90 days beyond the tail, each with the
        # chance a followed-up deal has from its stage, over the window's months. A deal shows as
        # stalled only once the limit has passed, so when stalling predates the window (older
        # stalled deals exist) the window's last limit of days is still to show: scaled up for them.
        # Deals stalled before the window are a one-off backlog, not a monthly loss: named, unpriced
        # (an old stalled deal no longer has the stage's normal chance).
        window_days = (evidence.recent.end - evidence.recent.start).days
        monthly, older = 0.0, 0
        for position, touched in stalling.touched.items():
            recent = stalled_within(evidence, position, evidence.recent)
            older += len(touched) - recent
            excess = recent - normal.get(position, 0.0)
            if excess <= 0:
                continue
            visible = max(window_days - stalling.limits.get(position, 0.0) / DAY, MIN_BUILD_DAYS)
            if len(touched) - recent >= max(OLD_BACKLOG, 0.1 * excess):
                excess *= window_days / visible
            monthly += excess / evidence.recent.months * followed_chance(evidence, position)
        cause = Cause(
            "stalled",
            Message("diagnose.cause.stalled"),
            Message(
                "diagnose.evidence.stalled",
                {
                    "count": Counted("deals", stalled),
                    "normal": Figure(expected),
                    "older": Figure(older),
                },
            ),
            True,
        )
        yield Finding(
            self.code,
            None,
            None,
            float(stalled),
            expected,
            "tail",
            stalled,
            worse,
            monthly * evidence.average_check,
            (cause,),
            hypotheses([cause]),
        )


class ComparisonRule(Rule, Protocol):
    """A rule that looks for something worse among many candidates (steps, groups, numbers)."""

    def comparisons(self, evidence: Evidence) -> int: ...


COMPARISON_RULES: tuple[ComparisonRule, ...] = (
    StepBelowHistory(),
    GroupBelowTeam("manager"),
    GroupBelowTeam("source"),
    OutgoingNumber(),
)
RULES: tuple[Rule, ...] = (
    COMPARISON_RULES[0],
    StepBelowReference("target"),
    StepBelowReference("benchmark"),
    *COMPARISON_RULES[1:],
    StalledDeals(),
)


def family_wise(findings: Iterable[Finding], evidence: Evidence) -> list[Finding]:
    """Every comparison the diagnosis makes, over all its comparison rules, is one family: a
    healthy business gets a confident finding at most 5 % of the time, not 5 % per rule."""
    size = sum(rule.comparisons(evidence) for rule in COMPARISON_RULES)
    codes = {rule.code for rule in COMPARISON_RULES}
    return [replace(f, comparisons=size) if f.code in codes else f for f in findings]
