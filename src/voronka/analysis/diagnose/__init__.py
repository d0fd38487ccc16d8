"""The diagnosis: where the funnel leaks, why, and what fixing it is worth (docs/diagnose.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace

from voronka.analysis.currencies import money_notes
from voronka.analysis.diagnose.cube import count_lines_known
from voronka.analysis.diagnose.evidence import gather
from voronka.analysis.diagnose.model import MIN_SAMPLE, Finding
from voronka.analysis.diagnose.rules import RULES, StepBelowHistory, family_wise, step_arm
from voronka.formats import Shown
from voronka.i18n import Message
from voronka.reading import AccountLike, Reader, choose_pipeline, pipelines_of
from voronka.timeutil import to_local, to_utc, utcnow, zone


@dataclass(frozen=True)
class Diagnosis:
    pipeline: str
    currency: str
    recent: tuple[dt.date, dt.date]
    history: tuple[dt.date, dt.date]
    findings: tuple[Finding, ...]
    notes: tuple[Message, ...]


def run_diagnosis(
    *,
    session: Reader,
    account: AccountLike,
    pipeline: str | None = None,
    today: dt.date | None = None,
    benchmarks: Mapping[int, float] | None = None,
    manager_id: int | None = None,
) -> Diagnosis:
    """Every rule of the registry over the last 90 days against the year before, ranked by money.

    ``benchmarks`` maps a stage position to a conversion into it that the user wants to compare with.
    ``manager_id`` diagnoses that manager's own deals only (their role's scope).
    """
    chosen = choose_pipeline(pipelines_of(session, account.id), pipeline)
    today = today or to_local(utcnow(), zone(account.timezone)).date()
    evidence = gather(
        session=session, account=account, pipeline=chosen, today=today, benchmarks=benchmarks, manager_id=manager_id
    )
    findings = family_wise((f for rule in RULES for f in rule.findings(evidence)), evidence)
    notes = tuple(
        Message("diagnose.not_enough", {"step": f"{p - 1}→{p}", "n": step_arm(evidence.total, p).trials})
        for p in range(2, len(chosen.stages) + 1)
        if step_arm(evidence.total, p).trials < MIN_SAMPLE
    ) + money_notes(session=session, account=account, pipeline_id=chosen.id, has_money=bool(evidence.average_check))
    notes += line_notes(
        session, chosen.id, to_utc(dt.datetime.combine(evidence.recent.start, dt.time()), zone(account.timezone))
    )
    return Diagnosis(
        chosen.name,
        account.currency,
        (evidence.recent.start, evidence.recent.end),
        (evidence.history.start, evidence.history.end),
        tuple(ranked(explained(findings))),
        notes,
    )


def line_notes(session: Reader, pipeline_id: int, since: dt.datetime) -> tuple[Message, ...]:
    """Say so when calls do not name the line they went out on: the spam check cannot see it then
    (amoCRM's call notes never do), rather than finding nothing and saying nothing."""
    outgoing, known = count_lines_known(session, pipeline_id, since)
    if not outgoing or known * 2 >= outgoing:
        return ()
    return (Message("diagnose.lines_unknown", {"share": Shown("share", (outgoing - known) / outgoing)}),)


EXPLAINS = 0.5
"""A manager, source or number explains a step's drop when its own shortfall is at least this share of it."""


def explained(findings: list[Finding]) -> list[Finding]:
    """A step that is worse than its history, when a manager, source or number explains it, is
    reported through that one finding (with the step's money, if larger) rather than twice. It
    explains the step only when its own money is most of the step's and it is at least as sure
    (confident if the step is): a doubtful manager must not take a step's money. A shortfall against
    a plan or benchmark stays on its own: it says something else."""
    result = [f for f in findings if f.code != StepBelowHistory.code]
    for step in (f for f in findings if f.code == StepBelowHistory.code):
        candidates = [
            f
            for f in result
            if f.subject is not None
            and f.step == step.step
            and f.money_at_stake_per_month >= EXPLAINS * step.money_at_stake_per_month
            and (f.confident or not step.confident)
        ]
        if not candidates:
            result.append(step)
            continue
        best = max(candidates, key=lambda f: f.money_at_stake_per_month)
        money = max(best.money_at_stake_per_month, step.money_at_stake_per_month)
        result[result.index(best)] = replace(best, money_at_stake_per_month=money)
    return result


def ranked(findings: list[Finding]) -> list[Finding]:
    """Confident findings first, then those to watch; by money within each tier — a doubtful
    finding never outranks a confident one however much money it names."""
    return sorted(findings, key=lambda f: (not f.confident, -f.money_at_stake_per_month))
