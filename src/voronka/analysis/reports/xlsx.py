"""The statistics workbook: a sheet per cut (total, managers, sources), plan and input sheets.

Counted cells hold values; every derived cell (conversions, CPL, CAC, ДРР, ROMI, % of plan, change)
is a live formula over them, so edits recalculate. Money is in major units with a currency format,
shares are percentages, headers are frozen, a shortfall against plan is highlighted, and native
charts show the funnel and the weekly trend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from voronka.analysis.stats.metrics import Metric, Number, Unit
from voronka.analysis.stats.output import metric_label
from voronka.analysis.stats.report import StatsReport
from voronka.analysis.stats.table import Table
from voronka.i18n import Translator

INPUT_SHEET = "Input"  # the same name voronka.analysis.stats.nocrm reads back
COLUMNS_PER_PERIOD = 4  # fact, plan, % of plan, change
FIRST_DATA_ROW = 3


@dataclass(frozen=True)
class Formats:
    title: Any
    header: Any
    label: Any
    formats: dict[Unit, Any]
    share: Any
    bad: Any
    good: Any

    @classmethod
    def create(cls, book: Workbook, currency: str, t: Translator) -> Formats:
        money = '#,##0 "₽"' if currency == "RUB" else f'#,##0 "{currency}"'
        minutes = t("units.minutes", value="").strip()
        return cls(
            title=book.add_format({"bold": True, "font_size": 13}),
            header=book.add_format(
                {"bold": True, "bg_color": "#E8EEF7", "border": 1, "align": "center", "text_wrap": True}
            ),
            label=book.add_format({"border": 1}),
            formats={
                Unit.COUNT: book.add_format({"num_format": "#,##0", "border": 1}),
                Unit.MONEY: book.add_format({"num_format": money, "border": 1}),
                Unit.SHARE: book.add_format({"num_format": "0.0%", "border": 1}),
                Unit.SECONDS: book.add_format({"num_format": f'0 "{minutes}"', "border": 1}),
            },
            share=book.add_format({"num_format": "0%", "border": 1, "font_color": "#555555"}),
            bad=book.add_format({"bg_color": "#F8D7DA", "font_color": "#9C0006"}),
            good=book.add_format({"bg_color": "#D4EDDA", "font_color": "#155724"}),
        )


def sheet_value(metric: Metric, value: Number | None) -> Number | None:
    """Money in major units, speed in minutes, the rest as it is."""
    if value is None:
        return None
    if metric.unit is Unit.MONEY:
        return value / 100
    if metric.unit is Unit.SECONDS:
        return value / 60
    return value


def write_stats_workbook(report: StatsReport, path: Path, t: Translator, *, cached_values: bool = True) -> None:
    """The statistics workbook for ``report``. With ``cached_values`` each formula also carries
    voronka's own result, for viewers that do not calculate; spreadsheet programs recalculate anyway."""
    book = xlsxwriter.Workbook(str(path))
    formats = Formats.create(book, report.currency, t)
    total = book.add_worksheet(t("workbook.sheet_total"))
    rows_of = _write_block(total, 0, report, report.total, t, formats, cached_values)
    _write_charts(book, total, report, rows_of, len(report.metrics) + FIRST_DATA_ROW + 2, t)
    _freeze(total)
    for cut, name in (("manager", "workbook.sheet_managers"), ("source", "workbook.sheet_sources")):
        sheet = book.add_worksheet(t(name))
        if report.by == cut:
            row = 0
            for table in report.cuts:
                _write_block(sheet, row, report, table, t, formats, cached_values)
                row += len(report.metrics) + FIRST_DATA_ROW + 2
        else:
            sheet.write(0, 0, t("workbook.no_cut", by=cut), formats.title)
        _freeze(sheet)
    _write_plan_sheet(book.add_worksheet(t("workbook.sheet_plan")), report, t, formats)
    write_input_sheet(book, report.stage_names, t, formats)
    book.close()


def _freeze(sheet: Worksheet) -> None:
    """Frozen headers and the first column; printed landscape, as wide as the page."""
    sheet.freeze_panes(FIRST_DATA_ROW, 1)
    sheet.set_column(0, 0, 38)
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.repeat_columns(0)


def _write_block(
    sheet: Worksheet,
    top: int,
    report: StatsReport,
    table: Table,
    t: Translator,
    formats: Formats,
    cached: bool,
) -> dict[str, int]:
    """One table at row ``top``; returns the sheet row of each metric."""
    title = t("workbook.total") if table.cut is None else f"{t('stats.title_cut', by=report.by, cut=table.cut)}"
    sheet.write(top, 0, f"{report.pipeline} · {title}", formats.title)
    sheet.write(top + 1, 0, t("stats.metric"), formats.header)
    sheet.write(top + 2, 0, "", formats.header)
    for index, period in enumerate(report.periods):
        column = 1 + index * COLUMNS_PER_PERIOD
        sheet.merge_range(top + 1, column, top + 1, column + COLUMNS_PER_PERIOD - 1, period.label, formats.header)
        for offset, key in enumerate(("fact", "plan", "of_plan", "change")):
            sheet.write(top + 2, column + offset, t(f"workbook.{key}"), formats.header)
    extra = 1 + len(report.periods) * COLUMNS_PER_PERIOD
    sheet.write(top + 1, extra, t("stats.trend"), formats.header)
    sheet.write(top + 1, extra + 1, t("stats.forecast"), formats.header)
    rows_of = {m.key: top + FIRST_DATA_ROW + i for i, m in enumerate(report.metrics)}
    for row in table.rows:
        metric, line = row.metric, rows_of[row.metric.key]
        number = formats.formats[metric.unit]
        sheet.write(line, 0, metric_label(metric, t), formats.label)
        for index, cell in enumerate(row.cells):
            column = 1 + index * COLUMNS_PER_PERIOD
            fact_ref = xl_rowcol_to_cell(line, column)
            shown = sheet_value(metric, cell.fact)
            if metric.formula is None:
                _write_number(sheet, line, column, shown, number)
            else:
                formula = _formula(metric, rows_of, column)
                sheet.write_formula(line, column, formula, number, shown if cached and shown is not None else "")
            _write_number(sheet, line, column + 1, sheet_value(metric, cell.plan), number)
            plan_ref = xl_rowcol_to_cell(line, column + 1)
            of_plan = f'=IF(OR({plan_ref}="",{plan_ref}=0,{fact_ref}=""),"",{fact_ref}/{plan_ref})'
            sheet.write_formula(
                line, column + 2, of_plan, formats.share, cell.of_plan if cached and cell.of_plan is not None else ""
            )
            _highlight(sheet, line, column + 2, metric, formats)
            if index:
                previous = xl_rowcol_to_cell(line, column - COLUMNS_PER_PERIOD)
                change = f'=IF(OR({previous}="",{previous}=0,{fact_ref}=""),"",{fact_ref}/{previous}-1)'
                sheet.write_formula(
                    line, column + 3, change, formats.share, cell.change if cached and cell.change is not None else ""
                )
            else:
                sheet.write_blank(line, column + 3, None, formats.share)
        sheet.write(line, extra, t(f"stats.{row.trend.value}") if row.trend else "", formats.label)
        _write_number(sheet, line, extra + 1, sheet_value(metric, row.forecast), number)
    sheet.set_column(1, extra, 11)
    return rows_of


def _write_number(sheet: Worksheet, row: int, column: int, value: Number | None, number_format: Any) -> None:
    if value is None:
        sheet.write_blank(row, column, None, number_format)
    else:
        sheet.write_number(row, column, value, number_format)


def _formula(metric: Metric, rows_of: dict[str, int], column: int) -> str:
    """``(numerator − subtract) / denominator`` over the same period's fact cells; empty when undefined."""
    assert metric.formula is not None
    numerator = xl_rowcol_to_cell(rows_of[metric.formula.numerator], column)
    denominator = xl_rowcol_to_cell(rows_of[metric.formula.denominator], column)
    top = numerator
    checks = [f'{numerator}=""', f'{denominator}=""', f"{denominator}=0"]
    if metric.formula.subtract:
        subtract = xl_rowcol_to_cell(rows_of[metric.formula.subtract], column)
        top = f"({numerator}-{subtract})"
        checks.append(f'{subtract}=""')
    return f'=IF(OR({",".join(checks)}),"",{top}/{denominator})'


def _highlight(sheet: Worksheet, row: int, column: int, metric: Metric, formats: Formats) -> None:
    """Red where the fact is behind plan (below it, or above it for costs), green where ahead."""
    behind, ahead = ("<", ">=") if metric.higher_is_better else (">", "<=")
    for criteria, fmt in ((behind, formats.bad), (ahead, formats.good)):
        sheet.conditional_format(
            row, column, row, column, {"type": "cell", "criteria": criteria, "value": 1, "format": fmt}
        )


def _write_charts(
    book: Workbook, sheet: Worksheet, report: StatsReport, rows_of: dict[str, int], top: int, t: Translator
) -> None:
    """A funnel over the whole range and the trend of leads and sales, as native charts."""
    fact_columns = [1 + i * COLUMNS_PER_PERIOD for i in range(len(report.periods))]
    stage_keys = ["leads", *[m.key for m in report.metrics if m.key.startswith("stage_")], "sales"]
    sheet.write(top, 0, t("workbook.funnel"), book.add_format({"bold": True}))
    for offset, key in enumerate(stage_keys, start=1):
        cells = ",".join(xl_rowcol_to_cell(rows_of[key], c) for c in fact_columns)
        metric = next(m for m in report.metrics if m.key == key)
        sheet.write(top + offset, 0, metric.stage or key)
        sheet.write_formula(top + offset, 1, f"=SUM({cells})")
    funnel = book.add_chart({"type": "bar"})
    funnel.add_series(
        {
            "name": t("workbook.funnel"),
            "categories": [sheet.name, top + 1, 0, top + len(stage_keys), 0],
            "values": [sheet.name, top + 1, 1, top + len(stage_keys), 1],
            "data_labels": {"value": True},
        }
    )
    funnel.set_y_axis({"reverse": True})
    funnel.set_legend({"none": True})
    funnel.set_title({"name": t("workbook.funnel")})
    sheet.insert_chart(top, 3, funnel, {"x_scale": 1.3, "y_scale": 1.1})
    trend_top = top + len(stage_keys) + 2
    sheet.write(trend_top, 0, t("workbook.trend"), book.add_format({"bold": True}))
    for index, (period, column) in enumerate(zip(report.periods, fact_columns, strict=True), start=1):
        sheet.write(trend_top + index, 0, period.label)
        sheet.write_formula(trend_top + index, 1, f"={xl_rowcol_to_cell(rows_of['leads'], column)}")
        sheet.write_formula(trend_top + index, 2, f"={xl_rowcol_to_cell(rows_of['sales'], column)}")
    trend = book.add_chart({"type": "line"})
    last = trend_top + len(report.periods)
    for column, key in ((1, "leads"), (2, "sales")):
        metric = next(m for m in report.metrics if m.key == key)
        trend.add_series(
            {
                "name": metric_label(metric, t),
                "categories": [sheet.name, trend_top + 1, 0, last, 0],
                "values": [sheet.name, trend_top + 1, column, last, column],
                "marker": {"type": "circle"},
            }
        )
    trend.set_title({"name": t("workbook.trend")})
    sheet.insert_chart(trend_top, 11, trend, {"x_scale": 1.3})


def _write_plan_sheet(sheet: Worksheet, report: StatsReport, t: Translator, formats: Formats) -> None:
    """The team's plans, month by month, for the periods shown (set them with voronka plan set)."""
    months = sorted({p.start.replace(day=1) for p in report.periods})
    sheet.write(0, 0, t("stats.metric"), formats.header)
    sheet.write(0, 1, "key", formats.header)
    for index, month in enumerate(months):
        sheet.write(0, 2 + index, month.strftime("%Y-%m"), formats.header)
    for line, metric in enumerate(report.metrics, start=1):
        sheet.write(line, 0, metric_label(metric, t), formats.label)
        sheet.write(line, 1, metric.key, formats.label)
        for index, month in enumerate(months):
            value = report.plans.get(metric.key, {}).get(month)
            _write_number(sheet, line, 2 + index, sheet_value(metric, value), formats.formats[metric.unit])
    sheet.write(len(report.metrics) + 2, 0, t("workbook.plan_title"))
    sheet.set_column(0, 0, 38)
    sheet.freeze_panes(1, 2)


def input_headers(stage_names: Sequence[str], t: Translator) -> list[str]:
    return [
        t("workbook.input_date"),
        t("workbook.input_source"),
        t("workbook.input_manager"),
        *stage_names,
        t("workbook.input_revenue"),
    ]


def write_input_sheet(book: Workbook, stage_names: Sequence[str], t: Translator, formats: Formats) -> Worksheet:
    """The sheet a business without a CRM types daily counts into (read back by voronka stats import)."""
    sheet = book.add_worksheet(INPUT_SHEET)
    for column, header in enumerate(input_headers(stage_names, t)):
        sheet.write(0, column, header, formats.header)
    sheet.freeze_panes(1, 1)
    sheet.set_column(0, len(stage_names) + 3, 16)
    sheet.data_validation(1, 3, 10_000, 2 + len(stage_names), {"validate": "integer", "criteria": ">=", "value": 0})
    return sheet
