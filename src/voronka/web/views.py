"""What the pages show, built from the library: small plain structures the templates render."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from voronka.analysis.diagnose import Diagnosis, run_diagnosis
from voronka.analysis.diagnose.model import Finding
from voronka.analysis.diagnose.output import summary
from voronka.analysis.diagnose.stored import top_findings
from voronka.analysis.forecast_report import ForecastReport, forecast_report
from voronka.analysis.funnel.output import explain, report_to_dict
from voronka.analysis.funnel.query import FunnelQuery, Rule, View
from voronka.analysis.funnel.report import run_funnel
from voronka.analysis.hypotheses import evaluate, list_hypotheses
from voronka.analysis.stats.metrics import Metric
from voronka.analysis.stats.output import explanation, metric_label
from voronka.analysis.stats.periods import Grain
from voronka.analysis.stats.report import StatsQuery, StatsReport, run_stats
from voronka.analysis.summary import PeriodSummary, median_speed_to_lead, period_summary
from voronka.analysis.whatif import load_baseline, scenario, scenario_inputs
from voronka.analysis.whatif_report import WhatIfReport, whatif_report
from voronka.crm import auth
from voronka.crm.accounts import find_pipeline, list_pipelines
from voronka.crm.leads import list_lead_forms
from voronka.errors import InvalidValue
from voronka.i18n import Translator
from voronka.models import Account, LeadForm, Pipeline, User
from voronka.timeutil import PERIOD_PRESETS, check_day, preset_range, to_local, utcnow, zone

"""The dashboard's top findings are recomputed at most this often (they change by the day)."""


def _date(text: str | None, name: str) -> dt.date | None:
    if not text:
        return None
    try:
        return check_day(dt.date.fromisoformat(text), name)
    except ValueError:
        raise InvalidValue(field=name, value=text, hint="a date such as 2026-03-01") from None


@dataclass(frozen=True)
class FunnelBar:
    """One stage of the dashboard's funnel chart (drawn as SVG on the server: no chart library)."""

    position: int
    name: str
    reached: int
    share: float
    """Of the first stage's deals, 0–1: the bar's length."""
    conversion: float | None


@dataclass
class Dashboard:
    pipelines: list[str]
    pipeline: str
    query: dict[str, Any]
    funnel: dict[str, Any]
    explanation: str
    bars: list[FunnelBar]
    groups: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    own: str | None = None
    """For a manager: whose figures these are."""
    speed: tuple[float, int] | None = None
    """Median speed to lead in seconds, and how many leads were contacted."""
    summary: PeriodSummary | None = None
    presets: tuple[str, ...] = PERIOD_PRESETS

    def figure_link(self, kind: str, position: int, *, view: str | None = None) -> str:
        """The deals behind a figure of this dashboard (``voronka.crm.search.deals_behind``): its
        stage, view and dates — the money lost per stage is always the period's closings."""
        params = {
            "pipeline": self.pipeline,
            "lost_at" if kind == "lost" else "reached": str(position),
            "view": view or self.query.get("view") or "cohort",
            "date_from": self.query.get("date_from", ""),
            "date_to": self.query.get("date_to", ""),
        }
        return "/deals?" + urlencode({k: v for k, v in params.items() if v})

    def finding_link(self, finding: dict[str, Any]) -> str:
        """The deals behind a finding: those that reached its step's first stage, of its source or manager."""
        params = {"pipeline": self.pipeline}
        if finding.get("step"):
            params["reached"] = str(finding["step"][0])
        subject = finding.get("subject") or {}
        if subject.get("kind") in ("source", "manager") and subject.get("value"):
            params[subject["kind"]] = str(subject["value"])
        return "/deals?" + urlencode(params)


def _bars(figures: dict[str, Any]) -> list[FunnelBar]:
    stages = figures.get("stages") or []
    first = max((stages[0]["reached"] if stages else 0), 1)
    return [
        FunnelBar(s["position"], s["name"], s["reached"], s["reached"] / first, s.get("conversion_from_start"))
        for s in stages
    ]


def _dates(period: str, date_from: str | None, date_to: str | None, today: dt.date) -> tuple[dt.date | None, ...]:
    """Typed dates win over the preset; a preset gives the dates of its period."""
    if date_from or date_to:
        return _date(date_from, "date_from"), _date(date_to, "date_to")
    return preset_range(period, today)


def dashboard(
    *,
    session: Session,
    account: Account,
    user: User,
    t: Translator,
    pipeline: str | None,
    period: str,
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
    today = to_local(utcnow(), zone(account.timezone)).date()
    start, end = _dates(period, date_from, date_to, today)
    query = FunnelQuery(
        pipeline=chosen.name,
        date_from=start,
        date_to=end,
        view=chosen_view,
        rule=chosen_rule,
        by=by,
        manager_id=scope,
    )
    report = run_funnel(session=session, account=account, query=query)
    figures = report_to_dict(report, t)
    board = Dashboard(
        pipelines=[p.name for p in list_pipelines(session=session, account=account)],
        pipeline=chosen.name,
        query={
            "period": "" if date_from or date_to else period,
            "date_from": start.isoformat() if start else "",
            "date_to": end.isoformat() if end else "",
            "view": view,
            "rule": rule,
            "by": by or "",
        },
        funnel=figures,
        explanation=explain(report, t),
        bars=_bars(figures),
        groups=figures.get("groups") or [],
        own=user.name if scope is not None else None,
        speed=median_speed_to_lead(
            session=session, account=account, pipeline=chosen, date_from=start, date_to=end, manager_id=scope
        ),
    )
    if start is not None and end is not None:
        board.summary = period_summary(
            session=session,
            account=account,
            pipeline=chosen.name,
            date_from=start,
            date_to=end,
            manager_id=scope,
            today=today,
        )
    if auth.can(user, auth.Action.SEE_ALL_DEALS):
        board.findings = _top_findings(session, account, chosen, t)
    return board


def _top_findings(session: Session, account: Account, pipeline: Pipeline, t: Translator) -> list[dict[str, Any]]:
    return top_findings(session=session, account=account, pipeline=pipeline, lang=t.lang)


def _stats_report(
    session: Session, account: Account, user: User, grain: str, by: str | None, pipeline: str | None
) -> StatsReport:
    try:
        chosen = Grain(grain)
    except ValueError:
        raise InvalidValue(field="grain", value=grain, hint="day, week or month") from None
    query = StatsQuery(pipeline=pipeline, grain=chosen, by=by, manager_id=auth.report_scope(user))
    return run_stats(session=session, account=account, query=query)


@dataclass(frozen=True)
class StatsPage:
    """The statistics template as the page shows it: the library's report, its rows labelled in the
    reader's language (figures stay numbers in their units; the template formats them)."""

    report: StatsReport
    t: Translator

    def label(self, metric: Metric) -> str:
        return metric_label(metric, self.t)

    @property
    def explanation(self) -> str:
        return explanation(self.report, self.t)


def stats(
    *, session: Session, account: Account, user: User, t: Translator, grain: str, by: str | None, pipeline: str | None
) -> StatsPage:
    return StatsPage(_stats_report(session, account, user, grain, by, pipeline), t)


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


@dataclass(frozen=True)
class DiagnosisPage:
    """The diagnosis as the page shows it: the library's findings, each summed up in the reader's language."""

    report: Diagnosis
    t: Translator

    def summary(self, finding: Finding) -> str:
        return summary(finding, self.t)


def diagnosis(*, session: Session, account: Account, t: Translator, pipeline: str | None) -> DiagnosisPage:
    return DiagnosisPage(run_diagnosis(session=session, account=account, pipeline=pipeline), t)


def whatif(*, session: Session, account: Account, pipeline: str | None, settings: dict[str, str]) -> WhatIfReport:
    today = to_local(utcnow(), zone(account.timezone)).date()
    baseline = load_baseline(session=session, account=account, pipeline=pipeline, today=today)
    conversions, check, leads = scenario_inputs(settings)
    return whatif_report(baseline, scenario(baseline, conversions, check, leads), account.currency)


def hypotheses(*, session: Session, account: Account) -> list[tuple[Any, Any]]:
    return [
        (h, evaluate(session=session, account=account, hypothesis=h))
        for h in list_hypotheses(session=session, account=account)
    ]


def forecast(*, session: Session, account: Account, pipeline: str | None) -> ForecastReport:
    chosen = find_pipeline(session=session, account=account, name=pipeline)
    return forecast_report(session=session, account=account, pipeline=chosen)


def lead_forms(*, session: Session, account: Account) -> list[LeadForm]:
    return list_lead_forms(session=session, account=account)


def planning(*, session: Session, account: Account, t: Translator) -> dict[str, Any]:
    """What the settings page shows to whoever keeps the plans and the spend: both lists, the
    metrics to choose from in the reader's language, and the people and sources a plan may be for."""
    from voronka.analysis.stats.inputs import list_plans, list_spend
    from voronka.analysis.stats.metrics import metrics_for
    from voronka.analysis.stats.output import metric_label
    from voronka.crm.accounts import list_sources, list_users

    pipelines = list_pipelines(session=session, account=account)
    metrics = {p.id: [(m.key, metric_label(m, t)) for m in metrics_for([s.name for s in p.stages])] for p in pipelines}
    return {
        "planner": True,
        "plans": list_plans(session=session, account=account),
        "spend": list_spend(session=session, account=account),
        "metric_choices": metrics,
        "metric_label": lambda metric: metric_label(metric, t),
        "plan_pipelines": pipelines,
        "plan_people": [u.name for u in list_users(session=session, account=account) if u.role in ("manager", "head")],
        "plan_sources": [s.name for s in list_sources(session=session, account=account, active_only=True)],
        "account_currency": account.currency,
    }
