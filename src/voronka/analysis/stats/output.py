"""The statistics report for people and programs: labels, JSON, CSV rows, formatted cells."""

from __future__ import annotations

from typing import Any

from voronka.analysis.stats.metrics import Metric, Number, Unit
from voronka.analysis.stats.report import Mode, StatsReport
from voronka.analysis.stats.table import Row
from voronka.formats import figures
from voronka.i18n import Translator
from voronka.money import format_minor


def metric_label(metric: Metric, t: Translator) -> str:
    key = metric.key.split("_")[0] if metric.key.startswith(("stage_", "conv_", "from_")) else metric.key
    key = "from_lead" if metric.key.startswith("from_lead_") else key
    return t(f"stats.{key}", stage=metric.stage or "")


def json_value(metric: Metric, value: Number | None, currency: str) -> Any:
    """Money as a decimal string of major units (never a float); other values as numbers."""
    if value is None:
        return None
    if metric.unit is Unit.MONEY:
        return format_minor(round(value), currency)
    if metric.unit is Unit.COUNT and float(value).is_integer():
        return int(value)
    return value


def explanation(report: StatsReport, t: Translator) -> str:
    mode = t("stats.mode_counts") if report.mode is Mode.COUNTS else t("stats.mode_crm")
    return f"{mode} {t('stats.forecast_note')}"


def report_to_dict(report: StatsReport, t: Translator) -> dict[str, Any]:
    return {
        "pipeline": report.pipeline,
        "grain": report.grain.value,
        "mode": report.mode.value,
        "currency": report.currency,
        "today": report.today.isoformat(),
        "by": report.by,
        "periods": [{"label": p.label, "from": p.start.isoformat(), "to": p.end.isoformat()} for p in report.periods],
        "tables": [
            # The team's table first; a cut's own is told by ``kind`` (its ``cut`` is null for the
            # deals without a source or manager, like the team's).
            {
                "kind": "team" if i == 0 else report.by,
                "cut": table.cut,
                "rows": [_row_dict(r, report, t) for r in table.rows],
            }
            for i, table in enumerate(report.tables)
        ],
        "explanation": explanation(report, t),
        "notes": [note.render(t.lang) for note in report.notes],
    }


def _row_dict(row: Row, report: StatsReport, t: Translator) -> dict[str, Any]:
    metric, currency = row.metric, report.currency
    return {
        "metric": metric.key,
        "label": metric_label(metric, t),
        "unit": metric.unit.value,
        "trend": row.trend.value if row.trend else None,
        "forecast": json_value(metric, row.forecast, currency),
        "forecast_of_plan": row.forecast_of_plan,
        "cells": [
            {
                "period": period.label,
                "fact": json_value(metric, cell.fact, currency),
                "plan": json_value(metric, cell.plan, currency),
                "of_plan": cell.of_plan,
                "change": cell.change,
            }
            for period, cell in zip(report.periods, row.cells, strict=True)
        ],
    }


CSV_COLUMNS = ("cut", "metric", "period", "fact", "plan", "of_plan", "change")


def report_to_rows(report: StatsReport) -> list[dict[str, Any]]:
    rows = []
    for table in report.tables:
        for row in table.rows:
            for period, cell in zip(report.periods, row.cells, strict=True):
                rows.append(
                    {
                        "cut": "(total)" if table.cut is None else table.cut,
                        "metric": row.metric.key,
                        "period": period.label,
                        "fact": _csv(json_value(row.metric, cell.fact, report.currency)),
                        "plan": _csv(json_value(row.metric, cell.plan, report.currency)),
                        "of_plan": _csv(cell.of_plan),
                        "change": _csv(cell.change),
                    }
                )
    return rows


def _csv(value: Any) -> Any:
    if value is None:
        return ""
    return round(value, 6) if isinstance(value, float) else value


def display(metric: Metric, value: Number | None, currency: str, t: Translator) -> str:
    """A value as the reader's locale writes it: 12 500 ₽, 34,5 %, 7 мин, 1 234 (Russian);
    RUB 12,500, 34.5%, 7 min, 1,234 (English)."""
    if value is None:
        return ""
    shown = figures(t.lang)
    if metric.unit is Unit.MONEY:
        return shown.money(value, currency)
    if metric.unit is Unit.SHARE:
        return shown.share(value)
    if metric.unit is Unit.SECONDS:
        if value < 3600:
            return t("units.minutes", value=shown.number(value / 60))
        return t("units.hours", value=shown.number(value / 3600, digits=1))
    return shown.number(value)
