"""``voronka whatif`` as people and programs read it: one typed report — what each step is worth
now, and the outcome of the funnel as it is and as changed — and its JSON, so the command's table
and its ``--format json`` show the same figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from voronka.analysis.whatif import Baseline, Lever, Outcome, leverage, outcome
from voronka.money import format_minor


@dataclass(frozen=True)
class WhatIfReport:
    """The command's table and JSON and the web page's sliders all read this."""

    baseline: Baseline
    scenario: Baseline
    """The funnel as changed (the baseline itself when nothing was)."""
    levers: tuple[Lever, ...]
    """Each step's worth, the most valuable first."""
    now: Outcome
    then: Outcome
    """The changed funnel's outcome."""
    currency: str

    @property
    def changed(self) -> bool:
        return self.scenario != self.baseline


def whatif_report(baseline: Baseline, changed: Baseline, currency: str) -> WhatIfReport:
    return WhatIfReport(
        baseline=baseline,
        scenario=changed,
        levers=tuple(leverage(baseline)),
        now=outcome(baseline),
        then=outcome(changed),
        currency=currency,
    )


class StepWorthJson(TypedDict):
    position: int
    name: str
    conversion: float | None
    reference: float | None
    revenue_plus_5_points: str | None
    revenue_back_to_reference: str | None


class OutcomeJson(TypedDict):
    revenue: str | None
    sales: float
    cac: str | None
    romi: float | None


class WhatIfJson(TypedDict):
    """``voronka whatif --format json`` (money as decimal strings of the account's currency)."""

    leads_per_month: float
    average_check: str | None
    steps: list[StepWorthJson]
    now: OutcomeJson
    scenario: OutcomeJson
    notes: list[str]


def whatif_to_dict(report: WhatIfReport, lang: str) -> WhatIfJson:
    base = report.baseline

    def cash(value: float | None) -> str | None:
        return None if value is None else format_minor(round(value), report.currency)

    def result(o: Outcome) -> OutcomeJson:
        return {"revenue": cash(o.revenue), "sales": o.sales, "cac": cash(o.cac), "romi": o.romi}

    steps: list[StepWorthJson] = [
        {
            "position": lever.step.position,
            "name": lever.step.name,
            "conversion": lever.step.conversion,
            "reference": lever.step.reference,
            "revenue_plus_5_points": cash(lever.plus_points),
            "revenue_back_to_reference": cash(lever.to_reference),
        }
        for lever in report.levers
    ]
    return {
        "leads_per_month": base.leads,
        "average_check": cash(base.average_check),
        "steps": steps,
        "now": result(report.now),
        "scenario": result(report.then),
        "notes": [note.render(lang) for note in base.notes],
    }
