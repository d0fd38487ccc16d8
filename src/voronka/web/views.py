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
from voronka.analysis.funnel.query import Rule, View
from voronka.analysis.hypotheses import evaluate, list_hypotheses
from voronka.analysis.overview import (
    ALL_PIPELINES,
    DashboardRange,
    PipelineFigures,
    Totals,
    pipeline_figures,
    pipelines_overview,
)
from voronka.analysis.stats.metrics import Metric
from voronka.analysis.stats.output import explanation, metric_label
from voronka.analysis.stats.periods import Grain
from voronka.analysis.stats.report import StatsQuery, StatsReport, run_stats
from voronka.analysis.summary import PeriodSummary
from voronka.analysis.whatif import load_baseline, scenario, scenario_inputs
from voronka.analysis.whatif_report import WhatIfReport, whatif_report
from voronka.crm import auth
from voronka.crm.accounts import find_pipeline, list_pipelines
from voronka.crm.leads import list_lead_forms
from voronka.errors import InvalidValue
from voronka.i18n import Message, Translator
from voronka.models import Account, LeadForm, Pipeline, User
from voronka.timeutil import PERIOD_PRESETS, parse_day, preset_range, to_local, utcnow, zone
from voronka.web.queries import DashboardQuery

"""The dashboard's top findings are recomputed at most this often (they change by the day)."""


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
    sections: list[Dashboard] = field(default_factory=list)
    """All pipelines: each one's own dashboard, in the account's order."""
    totals: Totals | None = None
    """All pipelines: their period figures together."""

    @property
    def every_pipeline(self) -> bool:
        return self.pipeline == ALL_PIPELINES and self.pipeline not in self.pipelines

    def pipeline_link(self, name: str) -> str:
        """One pipeline's own dashboard for the same period, view, rule and split, so its figures
        can be set beside this page's."""
        kept = ("period",) if self.query.get("period") else ("date_from", "date_to")
        params = {"pipeline": name, **{k: self.query.get(k, "") for k in (*kept, "view", "rule", "by")}}
        return "/?" + urlencode({k: v for k, v in params.items() if v})

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
        return parse_day(date_from, "date_from"), parse_day(date_to, "date_to")
    return preset_range(period, today)


def dashboard(
    *,
    session: Session,
    account: Account,
    user: User,
    t: Translator,
    pipeline: str | None,
    params: DashboardQuery,
) -> Dashboard:
    """One pipeline's dashboard, or — for ``ALL_PIPELINES`` — every pipeline's one after another
    under their totals; a manager's figures are their own deals in every section."""
    asked, query = _dashboard_asked(account, user, params)
    pipelines = list_pipelines(session=session, account=account)
    names = [p.name for p in pipelines]
    own = user.name if asked.manager_id is not None else None
    findings = auth.can(user, auth.Action.SEE_ALL_DEALS)
    if pipeline == ALL_PIPELINES and ALL_PIPELINES not in names:
        overview = pipelines_overview(session=session, account=account, asked=asked)
        by_id = {p.id: p for p in pipelines}
        sections = [
            _board(session, account, f, by_id[f.pipeline_id] if findings else None, names, query, t, own)
            for f in overview.pipelines
        ]
        return Dashboard(names, ALL_PIPELINES, query, {}, "", [], own=own, sections=sections, totals=overview.totals)
    chosen = find_pipeline(session=session, account=account, name=pipeline)
    figures = pipeline_figures(session=session, account=account, pipeline=chosen, asked=asked)
    return _board(session, account, figures, chosen if findings else None, names, query, t, own)


def _dashboard_asked(account: Account, user: User, params: DashboardQuery) -> tuple[DashboardRange, dict[str, Any]]:
    """The dashboard's request read: its range for the library, and the form's values to show."""
    period, view, rule = params.period, params.view, params.rule
    date_from, date_to, by = params.date_from or None, params.date_to or None, params.by or None
    try:
        chosen_view, chosen_rule = View(view), Rule(rule)
    except ValueError:
        raise InvalidValue(field="view/rule", value=f"{view}/{rule}", hint=Message("hint.view_and_rule")) from None
    today = to_local(utcnow(), zone(account.timezone)).date()
    start, end = _dates(period, date_from, date_to, today)
    query = {
        "period": "" if date_from or date_to else period,
        "date_from": start.isoformat() if start else "",
        "date_to": end.isoformat() if end else "",
        "view": view,
        "rule": rule,
        "by": by or "",
    }
    return DashboardRange(start, end, chosen_view, chosen_rule, by, auth.report_scope(user), today), query


def _board(
    session: Session,
    account: Account,
    figures: PipelineFigures,
    findings_of: Pipeline | None,
    names: list[str],
    query: dict[str, Any],
    t: Translator,
    own: str | None,
) -> Dashboard:
    funnel = report_to_dict(figures.funnel, t)
    return Dashboard(
        pipelines=names,
        pipeline=figures.name,
        query=query,
        funnel=funnel,
        explanation=explain(figures.funnel, t),
        bars=_bars(funnel),
        groups=funnel.get("groups") or [],
        own=own,
        speed=figures.speed,
        summary=figures.summary,
        findings=_top_findings(session, account, findings_of, t) if findings_of is not None else [],
    )


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
