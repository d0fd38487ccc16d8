"""What fixing each step is worth: the funnel's revenue as leads × Π step conversions × check.

A gain of Δ points at step i adds revenue × Δ / cᵢ (docs/diagnose.md, "What it is worth"),
so the weakest step pays most per point. Pure functions over a baseline; ``load_baseline`` reads it
from the funnel's period view.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voronka.analysis.currencies import money_notes
from voronka.analysis.funnel.query import FunnelQuery, View
from voronka.analysis.funnel.report import FunnelReport, run_funnel
from voronka.errors import InvalidValue
from voronka.i18n import Message
from voronka.models import Account, AdSpend

PLUS_POINTS = 0.05


@dataclass(frozen=True)
class Step:
    """The step into ``position`` (from the stage before it)."""

    position: int
    name: str
    conversion: float | None
    reference: float | None = None


@dataclass(frozen=True)
class Baseline:
    """A month of the funnel: leads, step conversions, average check and spend (minor units)."""

    leads: float
    steps: tuple[Step, ...]
    average_check: float
    spend: float = 0.0
    notes: tuple[Message, ...] = ()
    """What the money leaves out: won deals in other currencies, or no money at all."""

    @property
    def sales(self) -> float:
        return self.leads * math.prod(s.conversion or 0.0 for s in self.steps)

    @property
    def revenue(self) -> float:
        return self.sales * self.average_check


@dataclass(frozen=True)
class Outcome:
    revenue: float
    sales: float
    cac: float | None
    romi: float | None


def outcome(baseline: Baseline) -> Outcome:
    spend = baseline.spend
    return Outcome(
        revenue=baseline.revenue,
        sales=baseline.sales,
        cac=spend / baseline.sales if baseline.sales else None,
        romi=(baseline.revenue - spend) / spend if spend else None,
    )


@dataclass(frozen=True)
class Lever:
    step: Step
    plus_points: float
    """Monthly revenue gained by +5 points at this step (capped at 100 %)."""
    to_reference: float | None
    """Monthly revenue gained by returning the step to its reference (None without one, 0 if at or above it)."""


def leverage(baseline: Baseline, points: float = PLUS_POINTS) -> list[Lever]:
    """Each step's worth, the most valuable first."""
    levers = []
    for step in baseline.steps:
        if not step.conversion:
            continue
        raised = min(step.conversion + points, 1.0)
        plus = baseline.revenue * (raised - step.conversion) / step.conversion
        back = None
        if step.reference is not None:
            back = baseline.revenue * max(step.reference - step.conversion, 0.0) / step.conversion
        levers.append(Lever(step, plus, back))
    return sorted(levers, key=lambda lever: -lever.plus_points)


MAX_LEADS = 10_000_000.0
MAX_CHECK = 10**13


def scenario_inputs(settings: Mapping[str, str]) -> tuple[dict[int, float], float | None, float | None]:
    """A changed funnel as a form states it: ``step_K`` percentages, the average ``check`` (major
    units) and ``leads`` a month. Anything but a finite number in range is an ``InvalidValue``."""
    conversions = {}
    for key, value in settings.items():
        if key.startswith("step_") and value:
            position = key[5:]
            if not position.isdigit():
                raise InvalidValue(field=key[:40], value=value[:40], hint="step_2, step_3 …")
            conversions[int(position)] = _finite(key, value, 0.0, 100.0, "a percentage such as 35") / 100
    check = (
        _finite("check", settings["check"], 0.0, MAX_CHECK, "a sum such as 150000") * 100
        if settings.get("check")
        else None
    )
    leads = _finite("leads", settings["leads"], 0.0, MAX_LEADS, "a number of leads") if settings.get("leads") else None
    return conversions, check, leads


def _finite(field: str, text: str, low: float, high: float, hint: str) -> float:
    try:
        value = float(text.replace(",", ".").strip())
    except ValueError:
        raise InvalidValue(field=field, value=text[:40], hint=hint) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidValue(field=field, value=text[:40], hint=f"{hint}, from {low:g} to {high:g}")
    return value


def scenario(
    baseline: Baseline,
    conversions: Mapping[int, float] | None = None,
    average_check: float | None = None,
    leads: float | None = None,
    spend: float | None = None,
) -> Baseline:
    """The baseline with some steps, the check, lead volume or spend set to other values."""
    steps = tuple(
        replace(s, conversion=conversions[s.position]) if conversions and s.position in conversions else s
        for s in baseline.steps
    )
    return Baseline(
        leads=baseline.leads if leads is None else leads,
        steps=steps,
        average_check=baseline.average_check if average_check is None else average_check,
        spend=baseline.spend if spend is None else spend,
    )


def _month_start(day: dt.date, back: int) -> dt.date:
    month = day.year * 12 + day.month - 1 - back
    return dt.date(month // 12, month % 12 + 1, 1)


def load_baseline(
    *,
    session: Session,
    account: Account,
    pipeline: str | None,
    today: dt.date,
    months: int = 3,
    history: int = 12,
    manager_id: int | None = None,
) -> Baseline:
    """The last ``months`` full months as a monthly baseline (period view), each step's reference
    being its conversion over the ``history`` months before them. With ``manager_id``, that manager's
    deals, and no spend (spend belongs to sources)."""
    end = _month_start(today, 0)
    start = _month_start(today, months)
    current = _period(session, account, pipeline, start, end, manager_id)
    past = _period(session, account, pipeline, _month_start(today, months + history), start, manager_id)
    spend = session.scalar(
        select(func.coalesce(func.sum(AdSpend.amount), 0)).where(
            AdSpend.account_id == account.id,
            AdSpend.currency == account.currency,
            AdSpend.period_start >= start,
            AdSpend.period_start < end,
        )
    )
    figures = current.figures
    won = figures.won
    steps = tuple(
        Step(stage.position, stage.name, stage.conversion, past_stage.conversion)
        for stage, past_stage in zip(current.figures.stages[1:], past.figures.stages[1:], strict=True)
    )
    average_check = figures.revenue_in(account.currency) / won if won else 0.0
    return Baseline(
        leads=figures.deals / months,
        steps=steps,
        average_check=average_check,
        spend=float(spend or 0) / months if manager_id is None else 0.0,
        notes=money_notes(session=session, account=account, has_money=bool(average_check)),
    )


def _period(
    session: Session, account: Account, pipeline: str | None, start: dt.date, end: dt.date, manager_id: int | None
) -> FunnelReport:
    query = FunnelQuery(pipeline=pipeline, date_from=start, date_to=end, view=View.PERIOD, manager_id=manager_id)
    return run_funnel(session=session, account=account, query=query)
