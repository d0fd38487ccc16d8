"""What the pages show, built from the library: small plain structures the templates render."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voronka.analysis.diagnose import run_diagnosis
from voronka.analysis.diagnose.cube import SpeedHistogram
from voronka.analysis.diagnose.output import diagnosis_to_dict
from voronka.analysis.forecast_report import ForecastReport, forecast_report
from voronka.analysis.funnel.output import explain, report_to_dict
from voronka.analysis.funnel.query import FunnelQuery, Rule, View
from voronka.analysis.funnel.report import run_funnel
from voronka.analysis.hypotheses import evaluate, list_hypotheses
from voronka.analysis.stats.output import report_to_dict as stats_to_dict
from voronka.analysis.stats.periods import Grain
from voronka.analysis.stats.report import StatsQuery, StatsReport, run_stats
from voronka.analysis.whatif import Baseline, leverage, load_baseline, outcome, scenario, scenario_inputs
from voronka.crm import auth
from voronka.crm.accounts import find_pipeline, list_pipelines
from voronka.errors import InvalidValue
from voronka.i18n import Translator
from voronka.models import Account, Deal, LeadForm, Pipeline, User
from voronka.timeutil import local_midnight_utc, to_local, utcnow, zone

DIAGNOSIS_SECONDS = 600
"""The dashboard's top findings are recomputed at most this often (they change by the day)."""
_diagnoses: dict[tuple[str, int, str], tuple[float, list[dict[str, Any]]]] = {}


def _date(text: str | None, name: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidValue(field=name, value=text, hint="a date such as 2026-03-01") from None


@dataclass
class Dashboard:
    pipelines: list[str]
    pipeline: str
    query: dict[str, Any]
    funnel: dict[str, Any]
    explanation: str
    chart: dict[str, Any]
    groups: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    own: str | None = None
    """For a manager: whose figures these are."""
    speed_minutes: tuple[float, int] | None = None
    """Median speed to lead in minutes, and how many leads were called."""


def dashboard(
    *,
    session: Session,
    account: Account,
    user: User,
    t: Translator,
    pipeline: str | None,
    date_from: str | None,
    date_to: str | None,
    view: str,
    rule: str,
    by: str | None,
) -> Dashboard:
    chosen = find_pipeline(session=session, account=account, name=pipeline)
    try:
        chosen_view, chosen_rule = View(view), Rule(rule)
    except ValueError:
        raise InvalidValue(
            field="view/rule", value=f"{view}/{rule}", hint="cohort|period and cumulative|passage"
        ) from None
    scope = auth.report_scope(user)
    query = FunnelQuery(
        pipeline=chosen.name,
        date_from=_date(date_from, "date_from"),
        date_to=_date(date_to, "date_to"),
        view=chosen_view,
        rule=chosen_rule,
        by=by,
        manager_id=scope,
    )
    report = run_funnel(session=session, account=account, query=query)
    figures = report_to_dict(report, t)
    groups = figures.get("groups") or []
    speed = speed_to_lead_minutes(session, chosen, query, account, scope)
    board = Dashboard(
        pipelines=[p.name for p in list_pipelines(session=session, account=account)],
        pipeline=chosen.name,
        query={"date_from": date_from or "", "date_to": date_to or "", "view": view, "rule": rule, "by": by or ""},
        funnel=figures,
        explanation=explain(report, t),
        chart=_chart(figures),
        groups=groups,
        own=user.name if scope is not None else None,
        speed_minutes=speed,
    )
    if auth.can(user, auth.Action.SEE_ALL_DEALS):
        board.findings = _top_findings(session, account, chosen, t)
    return board


def speed_to_lead_minutes(
    session: Session, pipeline: Pipeline, query: FunnelQuery, account: Account, manager_id: int | None
) -> tuple[float, int] | None:
    """The exact median speed to lead of the query's leads, from a histogram of whole minutes
    counted in SQL (the funnel's full timing reads every lead, too slow for a page)."""
    tz = zone(account.timezone)
    conditions = [Deal.pipeline_id == pipeline.id, Deal.contact_minutes.is_not(None)]
    if query.date_from:
        conditions.append(Deal.created_at >= local_midnight_utc(query.date_from, tz))
    if query.date_to:
        conditions.append(Deal.created_at < local_midnight_utc(query.date_to, tz))
    if manager_id is not None:
        conditions.append(Deal.manager_id == manager_id)
    rows = session.execute(
        select(Deal.contact_minutes, func.count()).where(*conditions).group_by(Deal.contact_minutes)
    ).all()
    histogram = SpeedHistogram({(0, None): {int(m or 0): int(n) for m, n in rows}})
    median = histogram.median_seconds(frozenset({0}))  # type: ignore[arg-type]
    return (median / 60, sum(int(n) for _, n in rows)) if median is not None else None


def _chart(figures: dict[str, Any]) -> dict[str, Any]:
    stages = figures.get("stages") or []
    return {
        "data": [
            {
                "type": "funnel",
                "y": [s["name"] for s in stages],
                "x": [s["reached"] for s in stages],
                "textinfo": "value+percent initial",
                "marker": {"color": "#2f6fde"},
            }
        ],
        "layout": {"margin": {"l": 160, "r": 20, "t": 10, "b": 10}, "height": 60 + 48 * len(stages)},
    }


def _top_findings(session: Session, account: Account, pipeline: Pipeline, t: Translator) -> list[dict[str, Any]]:
    key = (str(session.get_bind().engine.url), pipeline.id, t.lang)
    cached = _diagnoses.get(key)
    if cached is not None and time.monotonic() - cached[0] < DIAGNOSIS_SECONDS:
        return cached[1]
    found = diagnosis_to_dict(run_diagnosis(session=session, account=account, pipeline=pipeline.name), t)
    top: list[dict[str, Any]] = list(found["findings"][:3])
    _diagnoses[key] = (time.monotonic(), top)
    return top


def _stats_report(
    session: Session, account: Account, user: User, grain: str, by: str | None, pipeline: str | None
) -> StatsReport:
    try:
        chosen = Grain(grain)
    except ValueError:
        raise InvalidValue(field="grain", value=grain, hint="day, week or month") from None
    query = StatsQuery(pipeline=pipeline, grain=chosen, by=by, manager_id=auth.report_scope(user))
    return run_stats(session=session, account=account, query=query)


def stats(
    *, session: Session, account: Account, user: User, t: Translator, grain: str, by: str | None, pipeline: str | None
) -> dict[str, Any]:
    return stats_to_dict(_stats_report(session, account, user, grain, by, pipeline), t)


def stats_workbook(
    *,
    session: Session,
    account: Account,
    user: User,
    t: Translator,
    grain: str,
    by: str | None,
    pipeline: str | None,
    path: Path,
) -> None:
    from voronka.analysis.reports.xlsx import write_stats_workbook

    auth.require(user, auth.Action.SEE_ALL_DEALS)
    write_stats_workbook(_stats_report(session, account, user, grain, by, pipeline), path, t)


def diagnosis(*, session: Session, account: Account, t: Translator, pipeline: str | None) -> dict[str, Any]:
    return diagnosis_to_dict(run_diagnosis(session=session, account=account, pipeline=pipeline), t)


@dataclass
class WhatIf:
    baseline: Baseline
    changed: Baseline
    now: Any
    then: Any
    levers: list[Any]
    currency: str


def whatif(*, session: Session, account: Account, pipeline: str | None, settings: dict[str, str]) -> WhatIf:
    today = to_local(utcnow(), zone(account.timezone)).date()
    baseline = load_baseline(session=session, account=account, pipeline=pipeline, today=today)
    conversions, check, leads = scenario_inputs(settings)
    changed = scenario(baseline, conversions, check, leads)
    return WhatIf(baseline, changed, outcome(baseline), outcome(changed), leverage(baseline), account.currency)


def hypotheses(*, session: Session, account: Account) -> list[tuple[Any, Any]]:
    return [
        (h, evaluate(session=session, account=account, hypothesis=h))
        for h in list_hypotheses(session=session, account=account)
    ]


def forecast(*, session: Session, account: Account, pipeline: str | None) -> ForecastReport:
    chosen = find_pipeline(session=session, account=account, name=pipeline)
    return forecast_report(session=session, account=account, pipeline=chosen)


def lead_forms(*, session: Session, account: Account) -> list[LeadForm]:
    return list(session.scalars(select(LeadForm).where(LeadForm.account_id == account.id).order_by(LeadForm.id)))
