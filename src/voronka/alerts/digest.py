"""The daily and weekly digests: for each pipeline, the period's figures against the period before,
the month so far against plan (the statistics template's key rows), the top findings with their
money and the funnel as a picture; then the overdue tasks. Built once as data, then written in each
reader's language.

The period's figures and picture are the period view of the funnel (docs/funnel.md): leads that came
in the period, sales made in it, and deals that reached each stage in it — not one cohort followed
through, so sales per lead may pass 100 %. The digest says so beside them."""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voronka.alerts.chart import funnel_png
from voronka.analysis.funnel.query import FunnelQuery, View
from voronka.analysis.funnel.report import run_funnel
from voronka.analysis.stats.grain import Grain
from voronka.analysis.stats.metrics import Metric, Unit
from voronka.analysis.stats.output import metric_label
from voronka.analysis.stats.report import StatsQuery, run_stats
from voronka.analysis.summary import PeriodSummary, period_summary
from voronka.crm.accounts import list_pipelines
from voronka.formats import Formats
from voronka.i18n import Translator
from voronka.models import Account, Deal, DiagnosisCache, Pipeline, Task, User
from voronka.timeutil import zone

KEY_METRICS = ("leads", "reached_share", "speed_median", "sales", "revenue", "average_check")
"""The template's rows a digest shows against plan."""
OVERDUE_SHOWN = 10


@dataclass(frozen=True)
class PlanLine:
    metric: Metric
    fact: float | None
    plan: float | None
    forecast_of_plan: float | None


@dataclass(frozen=True)
class Section:
    """One pipeline's part of a digest."""

    pipeline: str
    summary: PeriodSummary
    stages: tuple[tuple[str, int], ...]
    month: tuple[PlanLine, ...]
    findings: Mapping[str, Sequence[Mapping[str, Any]]]
    """The stored diagnosis's top findings, already in each language."""


@dataclass(frozen=True)
class Digest:
    kind: str
    """daily or weekly"""
    start: dt.date
    end: dt.date
    """exclusive"""
    currency: str
    timezone: str
    sections: tuple[Section, ...]
    """Every pipeline of the account, in the order the account lists them."""
    overdue: tuple[tuple[str, str, dt.datetime], ...]
    """(who, deal, due) of the oldest overdue tasks."""
    overdue_count: int

    @property
    def pipeline(self) -> str:
        return ", ".join(section.pipeline for section in self.sections)


def digest_period(kind: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """Yesterday, or last week (Monday to Sunday), as seen on ``today`` in the account's zone."""
    if kind == "daily":
        return today - dt.timedelta(days=1), today
    monday = today - dt.timedelta(days=today.weekday())
    return monday - dt.timedelta(days=7), monday


def build_digest(*, session: Session, account: Account, kind: str, today: dt.date, now: dt.datetime) -> Digest:
    """The digest of every pipeline of the account (connecting a CRM adds one: the digest goes on)."""
    start, end = digest_period(kind, today)
    sections = tuple(
        _section(session, account, pipeline, start, end)
        for pipeline in list_pipelines(session=session, account=account)
    )
    overdue_query = (
        select(User.name, func.coalesce(Deal.title, Deal.contact_name, Deal.phone, ""), Task.due_at)
        .join(User, User.id == Task.manager_id)
        .join(Deal, Deal.id == Task.deal_id)
        .where(Task.account_id == account.id, Task.done_at.is_(None), Task.due_at < now)
    )
    overdue = tuple(
        (who, deal, due) for who, deal, due in session.execute(overdue_query.order_by(Task.due_at).limit(OVERDUE_SHOWN))
    )
    count = session.scalar(select(func.count()).select_from(overdue_query.subquery())) or 0
    return Digest(kind, start, end, account.currency, account.timezone, sections, overdue, count)


def _section(session: Session, account: Account, pipeline: Pipeline, start: dt.date, end: dt.date) -> Section:
    summary = period_summary(session=session, account=account, pipeline=pipeline.name, date_from=start, date_to=end)
    funnel = run_funnel(
        session=session,
        account=account,
        query=FunnelQuery(pipeline=pipeline.name, date_from=start, date_to=end, view=View.PERIOD),
    )
    cache = session.get(DiagnosisCache, pipeline.id)
    return Section(
        pipeline.name,
        summary,
        tuple((s.name, s.reached) for s in funnel.figures.stages),
        _month_against_plan(session, account, pipeline.name, end - dt.timedelta(days=1)),
        dict(cache.findings) if cache else {},
    )


def _month_against_plan(session: Session, account: Account, pipeline: str, day: dt.date) -> tuple[PlanLine, ...]:
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    report = run_stats(
        session=session,
        account=account,
        query=StatsQuery(pipeline=pipeline, date_from=first, date_to=following, grain=Grain.MONTH),
        today=day,  # the digest's last day, whole: the pace as of its end, as every report reads today
    )
    lines = []
    for key in KEY_METRICS:
        row = next((r for r in report.total.rows if r.metric.key == key), None)
        if row is None or not row.cells:
            continue
        cell = row.cells[-1]
        lines.append(PlanLine(row.metric, _float(cell.fact), _float(cell.plan), row.forecast_of_plan))
    return tuple(lines)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _show(metric: Metric, value: float | None, currency: str, formats: Formats) -> str:
    if metric.unit is Unit.MONEY:
        return formats.money(value, currency)
    if metric.unit is Unit.SHARE:
        return formats.share(value)
    if metric.unit is Unit.SECONDS:
        return formats.wait(value)
    return formats.number(value)


def _change(formats: Formats, change: float | None) -> str:
    return "" if change is None else (" (+" if change >= 0 else " (") + formats.share(change) + ")"


def digest_subject(digest: Digest, lang: str) -> str:
    t, formats = Translator(lang), Formats(lang, zone(digest.timezone))
    period = (
        formats.day(digest.start)
        if digest.kind == "daily"
        else formats.span(digest.start, digest.end - dt.timedelta(days=1))
    )
    return t(f"alerts.digest_{digest.kind}", period=period, pipeline=digest.pipeline)


def _figure_lines(digest: Digest, section: Section, lang: str) -> list[tuple[str, str]]:
    t, formats, s = Translator(lang), Formats(lang, zone(digest.timezone)), section.summary
    money = digest.currency
    return [
        (t("web.kpi_leads"), formats.number(s.leads.value) + _change(formats, s.leads.change)),
        (t("web.kpi_sales"), formats.number(s.sales.value) + _change(formats, s.sales.change)),
        (t("web.kpi_revenue"), formats.money(s.revenue.value, money) + _change(formats, s.revenue.change)),
        (t("alerts.digest_conversion"), formats.share(s.conversion.value)),
        (t("web.kpi_check"), formats.money(s.average_check.value, money)),
    ]


def _plan_lines(digest: Digest, section: Section, lang: str) -> list[tuple[str, str, str, str]]:
    t, formats = Translator(lang), Formats(lang, zone(digest.timezone))
    rows = []
    for line in section.month:
        plan = _show(line.metric, line.plan, digest.currency, formats) if line.plan is not None else "—"
        pace = formats.share(line.forecast_of_plan, digits=0) if line.forecast_of_plan is not None else "—"
        rows.append((metric_label(line.metric, t), _show(line.metric, line.fact, digest.currency, formats), plan, pace))
    return rows


def _findings(digest: Digest, section: Section, lang: str) -> list[tuple[str, str]]:
    """(sentence, money a month): the stored money is a plain decimal of major units ("1763666.33"),
    written here as the reader's locale writes money («1 763 666 ₽»)."""
    formats = Formats(lang, zone(digest.timezone))
    return [
        (str(f["summary"]), formats.major(f["money_at_stake_per_month"], digest.currency))
        for f in section.findings.get(lang, [])
    ]


def digest_text(digest: Digest, lang: str) -> str:
    """The digest as a Telegram message (plain text)."""
    t, formats = Translator(lang), Formats(lang, zone(digest.timezone))
    parts = [digest_subject(digest, lang)]
    for section in digest.sections:
        parts.append("")
        if len(digest.sections) > 1:
            parts.append(t("alerts.digest_pipeline", pipeline=section.pipeline))
        parts += [f"{label}: {value}" for label, value in _figure_lines(digest, section, lang)]
        parts.append(t("alerts.digest_view"))
        if section.month:
            parts += ["", t("alerts.digest_month")]
            parts += [
                f"{label}: {fact} / {plan} · {pace}" for label, fact, plan, pace in _plan_lines(digest, section, lang)
            ]
        findings = _findings(digest, section, lang)
        if findings:
            parts += ["", t("alerts.digest_findings")]
            parts += [f"• {sentence} — {money}" for sentence, money in findings]
    parts += ["", t("alerts.digest_overdue", count=digest.overdue_count)]
    parts += [f"• {who}: {deal} ({formats.when(due)})" for who, deal, due in digest.overdue]
    return "\n".join(parts)


def digest_html(digest: Digest, lang: str) -> str:
    """The digest as an HTML e-mail; each pipeline's funnel picture is the related part ``cid:chartN``."""
    t, formats, e = Translator(lang), Formats(lang, zone(digest.timezone)), html.escape
    body = [f"<h2>{e(digest_subject(digest, lang))}</h2>"]
    for number, section in enumerate(digest.sections):
        if len(digest.sections) > 1:
            body.append(f"<h2>{e(t('alerts.digest_pipeline', pipeline=section.pipeline))}</h2>")
        cells = "".join(
            f"<tr><td>{e(a)}</td><td align='right'><b>{e(b)}</b></td></tr>"
            for a, b in _figure_lines(digest, section, lang)
        )
        body.append(f"<table cellpadding='4'>{cells}</table><p><small>{e(t('alerts.digest_view'))}</small></p>")
        stages = "".join(
            f"<tr><td>{e(name)}</td><td align='right'>{e(formats.number(n))}</td></tr>" for name, n in section.stages
        )
        body.append(
            f"<p><img src='cid:chart{number}' alt='{e(t('alerts.digest_chart'))}' width='480'><br>"
            f"<small>{e(t('alerts.digest_chart'))}</small></p><table cellpadding='2'>{stages}</table>"
        )
        if section.month:
            head = "".join(f"<th>{e(h)}</th>" for h in ("", t("alerts.fact"), t("alerts.plan"), t("alerts.pace")))
            rows = "".join(
                "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                for row in _plan_lines(digest, section, lang)
            )
            body.append(f"<h3>{e(t('alerts.digest_month'))}</h3><table cellpadding='4'><tr>{head}</tr>{rows}</table>")
        findings = _findings(digest, section, lang)
        if findings:
            items = "".join(f"<li>{e(sentence)} — <b>{e(money)}</b></li>" for sentence, money in findings)
            body.append(f"<h3>{e(t('alerts.digest_findings'))}</h3><ul>{items}</ul>")
    tasks = "".join(f"<li>{e(who)}: {e(deal)} ({e(formats.when(due))})</li>" for who, deal, due in digest.overdue)
    body.append(f"<h3>{e(t('alerts.digest_overdue', count=digest.overdue_count))}</h3><ul>{tasks}</ul>")
    return "<html><body style='font-family:sans-serif'>" + "".join(body) + "</body></html>"


def digest_charts(digest: Digest) -> list[str]:
    """Each pipeline's funnel picture, base64 (kept in the outbox row's data until the e-mail is sent)."""
    return [base64.b64encode(funnel_png([n for _, n in section.stages])).decode() for section in digest.sections]
