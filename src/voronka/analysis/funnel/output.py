"""The funnel report as the JSON of docs/json.md, CSV rows, and a sentence stating view and rule."""

from __future__ import annotations

from typing import Any

from voronka.analysis.funnel.compute import FunnelFigures, StageFigures
from voronka.analysis.funnel.dimensions import CUSTOM_FIELD_PREFIX, DIMENSIONS
from voronka.analysis.funnel.query import View
from voronka.analysis.funnel.report import FunnelReport
from voronka.analysis.funnel.timing import DurationSummary, Timing
from voronka.i18n import Translator
from voronka.money import format_minor


def dimension_label(by: str, t: Translator) -> str:
    """What a breakdown (``month``, ``manager``, ``field:NAME`` …) is called in the reader's language."""
    if by in DIMENSIONS:
        return t(f"dimension.{by}")
    if by.startswith(CUSTOM_FIELD_PREFIX):
        return t("dimension.field", name=by[len(CUSTOM_FIELD_PREFIX) :])
    return by


def _stage_dict(stage: StageFigures) -> dict[str, Any]:
    return {
        "position": stage.position,
        "name": stage.name,
        "reached": stage.reached,
        "conversion": stage.conversion,
        "conversion_from_start": stage.conversion_from_start,
        "lost": stage.lost,
        "open": stage.open,
        "dropped": stage.dropped,
    }


def _figures_dict(figures: FunnelFigures, currency: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "deals": figures.deals,
        "won": figures.won,
        "lost": figures.lost,
        "open": figures.open,
        "revenue": format_minor(figures.revenue_in(currency), currency),
        "currency": currency,
        "revenue_by_currency": {c: format_minor(a, c) for c, a in sorted(figures.revenue.items())},
        "average_check": _average_check(figures, currency),
        "open_share": figures.open_share,
        "immature": figures.immature,
        "stages": [_stage_dict(s) for s in figures.stages],
    }
    return data


def _average_check(figures: FunnelFigures, currency: str) -> str | None:
    """Revenue / won, when every won deal is in the account currency (never mix currencies)."""
    other = any(c != currency and a for c, a in figures.revenue.items())
    if not figures.won or other:
        return None
    return format_minor(round(figures.revenue_in(currency) / figures.won), currency)


def _duration_dict(summary: DurationSummary) -> dict[str, Any]:
    return {
        "count": summary.count,
        "median_seconds": summary.median_seconds,
        "p90_seconds": summary.p90_seconds,
    }


def _timing_dict(timing: Timing) -> dict[str, Any]:
    speed = timing.speed_to_lead
    return {
        "speed_to_lead": {**_duration_dict(speed), "buckets": dict(speed.buckets)},
        "time_to_stage": [{"position": s.position, **_duration_dict(s)} for s in timing.time_to_stage],
    }


def report_to_dict(report: FunnelReport, t: Translator | None = None) -> dict[str, Any]:
    """The JSON object of ``voronka funnel --format json``."""
    data: dict[str, Any] = {
        "pipeline": report.pipeline,
        "view": report.view.value,
        "rule": report.rule.value,
        "from": report.date_from.isoformat() if report.date_from else None,
        "to": report.date_to.isoformat() if report.date_to else None,
        "timezone": report.timezone,
        "aggregated": report.aggregated,
        **_figures_dict(report.figures, report.currency),
    }
    if report.groups is not None:
        data["groups"] = [
            {"by": g.by, "value": g.value, **_figures_dict(g.figures, report.currency)} for g in report.groups
        ]
    if report.timing is not None:
        data["timing"] = _timing_dict(report.timing)
    if t is not None:
        data["explanation"] = explain(report, t)
    return data


CSV_COLUMNS = (
    "group",
    "position",
    "stage",
    "reached",
    "conversion",
    "conversion_from_start",
    "lost",
    "open",
    "dropped",
)


def report_to_rows(report: FunnelReport) -> list[dict[str, Any]]:
    """One row per stage (and per group with ``--by``): the CSV output."""
    rows = [_csv_row(None, s) for s in report.figures.stages]
    for group in report.groups or ():
        rows.extend(_csv_row(group.value or "", s) for s in group.figures.stages)
    return rows


def _csv_row(group: str | None, stage: StageFigures) -> dict[str, Any]:
    return {
        "group": "(total)" if group is None else group,
        "position": stage.position,
        "stage": stage.name,
        "reached": stage.reached,
        "conversion": "" if stage.conversion is None else round(stage.conversion, 6),
        "conversion_from_start": "" if stage.conversion_from_start is None else round(stage.conversion_from_start, 6),
        "lost": "" if stage.lost is None else stage.lost,
        "open": "" if stage.open is None else stage.open,
        "dropped": "" if stage.dropped is None else stage.dropped,
    }


def explain(report: FunnelReport, t: Translator) -> str:
    """The view and the rule in words, printed under every funnel."""
    parts = [t(f"funnel.view_{report.view.value}"), t(f"funnel.rule_{report.rule.value}")]
    if report.aggregated:
        parts = [t("funnel.aggregated"), *parts[:1]]
    if report.view is View.COHORT:
        parts.append(t("funnel.immature_note", share=round(report.immature_share * 100)))
    return " ".join(parts)
