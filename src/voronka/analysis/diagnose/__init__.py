"""The diagnosis: where the funnel leaks, why, and what fixing it is worth (docs/diagnose.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from voronka.analysis.currencies import money_notes
from voronka.analysis.diagnose.cube import count_lines_known
from voronka.analysis.diagnose.evidence import gather
from voronka.analysis.diagnose.model import MIN_SAMPLE, Finding
from voronka.analysis.diagnose.rules import RULES, StepBelowHistory, family_wise, step_arm
from voronka.crm.accounts import find_pipeline
from voronka.formats import Shown
from voronka.i18n import Message
from voronka.models import Account
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
    session: Session,
    account: Account,
    pipeline: str | None = None,
    today: dt.date | None = None,
    benchmarks: Mapping[int, float] | None = None,
    manager_id: int | None = None,
) -> Diagnosis:
    """Every rule of the registry over the last 90 days against the year before, ranked by money.

    ``benchmarks`` maps a stage position to a conversion into it that the user wants to compare with.
    ``manager_id`` diagnoses that manager's own deals only (their role's scope).
    """
    chosen = find_pipeline(session=session, account=account, name=pipeline)
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
        tuple(sorted(explained(findings), key=lambda f: -f.money_at_stake_per_month)),
        notes,
    )


def line_notes(session: Session, pipeline_id: int, since: dt.datetime) -> tuple[Message, ...]:
    """Say so when calls do not name the line they went out on: the spam check cannot see it then
    (amoCRM's call notes never do), rather than finding nothing and saying nothing."""
    outgoing, known = count_lines_known(session, pipeline_id, since)
    if not outgoing or known * 2 >= outgoing:
        return ()
    return (Message("diagnose.lines_unknown", {"share": Shown("share", (outgoing - known) / outgoing)}),)


def explained(findings: list[Finding]) -> list[Finding]:
    """A step that is worse than its history, when a manager, source or number explains it, is
    reported through that one finding (with the step's money, if larger) rather than twice. A
    shortfall against a plan or benchmark stays on its own: it says something else."""
    specific = {f.step: f for f in sorted(findings, key=lambda f: f.money_at_stake_per_month) if f.subject is not None}
    result = []
    for finding in findings:
        if finding.code == StepBelowHistory.code and finding.step in specific:
            best = specific[finding.step]
            if finding.money_at_stake_per_month > best.money_at_stake_per_month:
                specific[finding.step] = replace(best, money_at_stake_per_month=finding.money_at_stake_per_month)
            continue
        result.append(finding)
    return [
        specific.get(f.step, f)
        if f.subject is not None and specific.get(f.step) and specific[f.step].subject == f.subject
        else f
        for f in result
    ]
