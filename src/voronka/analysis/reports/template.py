"""The statistics template on its own: a workbook a business without a CRM types its days into and
reads its funnel from, in Excel, LibreOffice or Google Sheets — no voronka needed.

Sheets: **Input** (a row per day, optionally per source and manager: leads at each stage, revenue,
ad spend; validated; a totals row and an example row on top), **Plan** (monthly plans per row, the
layout ``voronka plan import`` reads), and **reports by week and by month**: every row of the
statistics template per period — fact, plan, % of plan, change — and the run rate of the running
period, all live formulas (SUMIFS over the input and the plan) that give an empty cell where a
divisor is 0. Each report has a source and a manager filter cell; a funnel and a weekly trend are
native charts. Formula cells are protected (no password); what is meant to be typed is not.

``voronka stats import`` reads the filled Input sheet back, and ``voronka stats`` then shows
exactly the figures the workbook computes: the same rules (docs/stats.md), tested cell by cell.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from voronka.analysis.reports.xlsx import Formats
from voronka.analysis.stats.metrics import Metric, Unit, metrics_for, stage_key
from voronka.analysis.stats.output import metric_label
from voronka.i18n import Translator

UNAVAILABLE = frozenset({"reached", "within_5min", "speed_median", "non_target"})
"""Rows daily counts cannot give (calls, speed, loss reasons): the template leaves them out."""
INPUT_ROWS = 3_000
"""Rows ready for typing: a year of days, split by a few sources or managers."""
FIRST_INPUT_ROW = 3  # 0-based: header, totals, example, then the days
WEEKS, MONTHS = 52, 12
PERIOD_COLUMNS = 4  # fact, plan, % of plan, change
FIRST_PERIOD_COLUMN = 3  # label, key, forecast
HEADER_ROW, FROM_ROW, TO_ROW, FIRST_METRIC_ROW = 5, 6, 7, 8
NEVER = "<>\u2063"
"""A SUMIFS criterion every cell meets (nothing equals an invisible separator): an empty filter."""


def template_metrics(stage_names: Sequence[str]) -> tuple[Metric, ...]:
    """The template's rows: the statistics template's, less what daily counts cannot give."""
    kept: list[Metric] = []
    for metric in metrics_for(stage_names):
        needs = {metric.key} if metric.formula is None else {metric.formula.numerator, metric.formula.denominator}
        if not needs & UNAVAILABLE:
            kept.append(metric)
    return tuple(kept)


@dataclass(frozen=True)
class InputLayout:
    """Where each counted row's numbers are typed on the input sheet."""

    sheet: str
    stage_names: tuple[str, ...]

    @property
    def columns(self) -> dict[str, int]:
        """Counted metric key → input column (0-based): date, source, manager, stages, revenue, spend."""
        stages = len(self.stage_names)
        found = {"leads": 3, "sales": 2 + stages, "revenue": 3 + stages, "spend": 4 + stages}
        found.update({stage_key(p): 2 + p for p in range(2, stages)})
        return found

    def column_range(self, column: int) -> str:
        letter = xl_col_to_name(column)
        first, last = FIRST_INPUT_ROW + 1, FIRST_INPUT_ROW + INPUT_ROWS
        return f"'{self.sheet}'!${letter}${first}:${letter}${last}"


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.date
    end: dt.date  # exclusive


def week_periods(start: dt.date, count: int = WEEKS) -> list[Period]:
    """ISO weeks (Monday to Sunday) from the one ``start`` is in."""
    monday = start - dt.timedelta(days=start.weekday())
    weeks = [monday + dt.timedelta(weeks=n) for n in range(count)]
    return [Period(_week_label(day), day, day + dt.timedelta(weeks=1)) for day in weeks]


def _week_label(monday: dt.date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def month_periods(start: dt.date, count: int = MONTHS) -> list[Period]:
    periods = []
    month = start.replace(day=1)
    for _ in range(count):
        following = _next_month(month)
        periods.append(Period(month.strftime("%Y-%m"), month, following))
        month = following
    return periods


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def write_template_workbook(
    *, pipeline: str, stage_names: Sequence[str], currency: str, start: dt.date, path: Path, t: Translator
) -> None:
    """The blank statistics template for a pipeline, its periods from ``start``."""
    book = xlsxwriter.Workbook(str(path))
    formats = Formats.create(book, currency, t)
    extra = _extra_formats(book, currency)
    metrics = template_metrics(stage_names)
    layout = InputLayout(t("book.sheet_input"), tuple(stage_names))
    months = month_periods(start)
    plan_name = t("book.sheet_plan")
    reports = [
        (t("book.sheet_weeks"), week_periods(start)),
        (t("book.sheet_months"), months),
    ]
    _write_input(book.add_worksheet(layout.sheet), layout, t, formats, extra)
    for name, periods in reports:
        sheet = book.add_worksheet(name)
        _write_report(book, sheet, pipeline, metrics, layout, periods, plan_name, months, t, formats, extra)
    _write_plan(book.add_worksheet(plan_name), metrics, months, t, formats, extra)
    _write_guide(book.add_worksheet(t("book.sheet_guide")), pipeline, layout.sheet, t, formats)
    book.close()


def _extra_formats(book: Workbook, currency: str) -> dict[str, Any]:
    money = '#,##0 "₽"' if currency == "RUB" else f'#,##0 "{currency}"'
    plan = {
        f"plan_{unit}": book.add_format({"num_format": number, "locked": False, "bg_color": "#FFF8DC", "border": 1})
        for unit, number in ((Unit.COUNT, "#,##0"), (Unit.MONEY, money), (Unit.SHARE, "0.0%"), (Unit.SECONDS, "0"))
    }
    return plan | {
        "unlocked": book.add_format({"locked": False}),
        "date": book.add_format({"num_format": "yyyy-mm-dd", "locked": False}),
        "example": book.add_format({"italic": True, "font_color": "#888888"}),
        "total": book.add_format({"bold": True, "num_format": "#,##0", "bg_color": "#F3F3F3"}),
        "filter": book.add_format({"locked": False, "bg_color": "#FFF8DC", "border": 1}),
        "hidden_date": book.add_format({"num_format": "yyyy-mm-dd", "font_color": "#999999"}),
        "note": book.add_format({"italic": True, "font_color": "#555555"}),
    }


# --- input ---------------------------------------------------------------------------------------
def _write_input(sheet: Worksheet, layout: InputLayout, t: Translator, formats: Formats, extra: dict[str, Any]) -> None:
    headers = [
        t("workbook.input_date"),
        t("workbook.input_source"),
        t("workbook.input_manager"),
        *layout.stage_names,
        t("workbook.input_revenue"),
        t("book.input_spend"),
    ]
    for column, header in enumerate(headers):
        sheet.write(0, column, header, formats.header)
    last = FIRST_INPUT_ROW + INPUT_ROWS
    counted = range(3, 3 + len(layout.stage_names))
    money = (3 + len(layout.stage_names), 4 + len(layout.stage_names))
    sheet.write(1, 0, t("book.totals"), extra["total"])
    for column in (*counted, *money):
        letter = xl_col_to_name(column)
        sheet.write_formula(1, column, f"=SUM({letter}{FIRST_INPUT_ROW + 1}:{letter}{last})", extra["total"])
    example = [t("book.example"), t("book.example_source"), t("book.example_manager")]
    example += [str(max(40 // (2**n), 1)) for n in range(len(layout.stage_names))] + ["150000", "20000"]
    for column, value in enumerate(example):
        sheet.write_string(2, column, value, extra["example"])
    sheet.set_column(0, 0, 12, extra["date"])
    sheet.set_column(1, 2, 16, extra["unlocked"])
    sheet.set_column(3, len(headers) - 1, 14, extra["unlocked"])
    sheet.set_row(0, None, formats.header)
    first = FIRST_INPUT_ROW
    sheet.data_validation(first, 0, last - 1, 0, {"validate": "date", "criteria": "between",
                          "minimum": dt.date(2000, 1, 1), "maximum": dt.date(2100, 12, 31),
                          "error_message": t("book.bad_date")})  # fmt: skip
    sheet.data_validation(first, counted.start, last - 1, counted.stop - 1, {"validate": "integer", "criteria": ">=",
                          "value": 0, "error_message": t("book.bad_count")})  # fmt: skip
    sheet.data_validation(first, money[0], last - 1, money[1], {"validate": "decimal", "criteria": ">=", "value": 0,
                          "error_message": t("book.bad_money")})  # fmt: skip
    sheet.freeze_panes(FIRST_INPUT_ROW, 1)
    sheet.protect("", {"format_columns": True, "format_rows": True, "sort": True, "autofilter": True})


# --- plan ----------------------------------------------------------------------------------------
def _write_plan(
    sheet: Worksheet,
    metrics: Sequence[Metric],
    months: Sequence[Period],
    t: Translator,
    formats: Formats,
    extra: dict[str, Any],
) -> None:
    """Monthly plans per row, as ``voronka plan import`` reads them (a ``key`` column, month columns)."""
    sheet.write(0, 0, t("stats.metric"), formats.header)
    sheet.write(0, 1, "key", formats.header)
    for index, month in enumerate(months):
        sheet.write(0, 2 + index, month.label, formats.header)
    for line, metric in enumerate(metrics, start=1):
        sheet.write(line, 0, metric_label(metric, t), formats.label)
        sheet.write(line, 1, metric.key, formats.label)
        for index in range(len(months)):
            sheet.write_blank(line, 2 + index, None, _unlocked(metric, extra))
    sheet.write(len(metrics) + 2, 0, t("book.plan_note"), extra["note"])
    sheet.set_column(0, 0, 38)
    sheet.set_column(1, 1, 14)
    sheet.set_column(2, 1 + len(months), 12)
    sheet.freeze_panes(1, 2)
    sheet.protect("", {"format_columns": True})


def _unlocked(metric: Metric, extra: dict[str, Any]) -> Any:
    return extra[f"plan_{metric.unit}"]


def plan_cell(metrics: Sequence[Metric], months: Sequence[Period], key: str, month: dt.date, sheet: str) -> str | None:
    """The Plan sheet's cell for ``key`` in ``month`` (None past the months it has)."""
    index = next((i for i, m in enumerate(months) if m.start == month), None)
    line = next(i for i, m in enumerate(metrics, start=1) if m.key == key)
    if index is None:
        return None
    return f"'{sheet}'!{xl_rowcol_to_cell(line, 2 + index, row_abs=True, col_abs=True)}"


# --- reports -------------------------------------------------------------------------------------
def _write_report(
    book: Workbook,
    sheet: Worksheet,
    pipeline: str,
    metrics: Sequence[Metric],
    layout: InputLayout,
    periods: Sequence[Period],
    plan_sheet: str,
    months: Sequence[Period],
    t: Translator,
    formats: Formats,
    extra: dict[str, Any],
) -> None:
    sheet.write(0, 0, f"{pipeline} · {sheet.name}", formats.title)
    sheet.write(1, 0, t("book.filter_source"), formats.label)
    sheet.write_blank(1, 1, None, extra["filter"])
    sheet.write(2, 0, t("book.filter_manager"), formats.label)
    sheet.write_blank(2, 1, None, extra["filter"])
    sheet.write(3, 0, t("book.filter_note"), extra["note"])
    _write_period_headers(sheet, periods, t, formats, extra)
    rows_of = {m.key: FIRST_METRIC_ROW + i for i, m in enumerate(metrics)}
    context = _ReportContext(sheet, layout, rows_of, metrics, plan_sheet, months, formats)
    for metric in metrics:
        line = rows_of[metric.key]
        sheet.write(line, 0, metric_label(metric, t), formats.label)
        sheet.write(line, 1, metric.key, formats.label)
        sheet.write_formula(line, 2, context.forecast(metric, len(periods)), formats.formats[metric.unit])
        for index, period in enumerate(periods):
            context.write_period(metric, index, period)
    _write_template_charts(book, sheet, layout, rows_of, periods, metrics, t)
    sheet.freeze_panes(FIRST_METRIC_ROW, 3)
    sheet.set_column(0, 0, 36)
    sheet.set_column(1, 1, 14)
    sheet.set_column(2, 2, 13)
    sheet.set_column(FIRST_PERIOD_COLUMN, FIRST_PERIOD_COLUMN + len(periods) * PERIOD_COLUMNS, 11)
    sheet.set_row(FROM_ROW, None, None, {"hidden": True})
    sheet.set_row(TO_ROW, None, None, {"hidden": True})
    sheet.protect("", {"format_columns": True, "format_rows": True})


def _write_period_headers(
    sheet: Worksheet, periods: Sequence[Period], t: Translator, formats: Formats, extra: dict[str, Any]
) -> None:
    sheet.write(HEADER_ROW - 1, 0, t("stats.metric"), formats.header)
    sheet.write(HEADER_ROW - 1, 1, "key", formats.header)
    sheet.write(HEADER_ROW - 1, 2, t("book.forecast"), formats.header)
    for offset, key in enumerate(("fact", "plan", "of_plan", "change")):
        for index in range(len(periods)):
            sheet.write(HEADER_ROW, FIRST_PERIOD_COLUMN + index * PERIOD_COLUMNS + offset, t(f"workbook.{key}"),
                        formats.header)  # fmt: skip
    for index, period in enumerate(periods):
        column = FIRST_PERIOD_COLUMN + index * PERIOD_COLUMNS
        title = f"{period.label} ({period.start:%d.%m}–{period.end - dt.timedelta(days=1):%d.%m})"
        sheet.merge_range(HEADER_ROW - 1, column, HEADER_ROW - 1, column + PERIOD_COLUMNS - 1, title, formats.header)
        sheet.write_datetime(FROM_ROW, column, dt.datetime.combine(period.start, dt.time()), extra["hidden_date"])
        sheet.write_datetime(TO_ROW, column, dt.datetime.combine(period.end, dt.time()), extra["hidden_date"])


@dataclass(frozen=True)
class _ReportContext:
    sheet: Worksheet
    layout: InputLayout
    rows_of: dict[str, int]
    metrics: Sequence[Metric]
    plan_sheet: str
    months: Sequence[Period]
    formats: Formats

    def fact_cell(self, key: str, index: int) -> str:
        return str(xl_rowcol_to_cell(self.rows_of[key], FIRST_PERIOD_COLUMN + index * PERIOD_COLUMNS))

    def write_period(self, metric: Metric, index: int, period: Period) -> None:
        line, column = self.rows_of[metric.key], FIRST_PERIOD_COLUMN + index * PERIOD_COLUMNS
        number, share = self.formats.formats[metric.unit], self.formats.share
        fact, plan = self.fact_cell(metric.key, index), xl_rowcol_to_cell(line, column + 1)
        self.sheet.write_formula(line, column, self._fact(metric, index, column), number)
        self.sheet.write_formula(line, column + 1, self._plan(metric, period), number)
        self.sheet.write_formula(line, column + 2, f'=IF(OR({plan}="",{plan}=0,{fact}=""),"",{fact}/{plan})', share)
        self._shortfall(metric, line, column)
        if index:
            previous = self.fact_cell(metric.key, index - 1)
            change = f'=IF(OR({previous}="",{previous}=0,{fact}=""),"",({fact}-{previous})/{previous})'
            self.sheet.write_formula(line, column + 3, change, share)
        else:
            self.sheet.write_formula(line, column + 3, '=""', share)

    def _fact(self, metric: Metric, index: int, column: int) -> str:
        if metric.formula is None:
            values = self.layout.column_range(self.layout.columns[metric.key])
            dates = self.layout.column_range(0)
            sources, managers = self.layout.column_range(1), self.layout.column_range(2)
            start, end = (
                xl_rowcol_to_cell(FROM_ROW, column, row_abs=True),
                xl_rowcol_to_cell(TO_ROW, column, row_abs=True),
            )
            source = f'IF($B$2="","{NEVER}",$B$2)'
            manager = f'IF($B$3="","{NEVER}",$B$3)'
            total = f'SUMIFS({values},{dates},">="&{start},{dates},"<"&{end},{sources},{source},{managers},{manager})'
            # Spend belongs to sources: a manager has none of their own (as in voronka stats --by manager).
            return f'=IF($B$3<>"","",{total})' if metric.key == "spend" else f"={total}"
        formula = metric.formula
        numerator, denominator = self.fact_cell(formula.numerator, index), self.fact_cell(formula.denominator, index)
        checks = [f'{numerator}=""', f'{denominator}=""', f"{denominator}=0"]
        top = numerator
        if formula.subtract:
            subtract = self.fact_cell(formula.subtract, index)
            top = f"({numerator}-{subtract})"
            checks.append(f'{subtract}=""')
        return f'=IF(OR({",".join(checks)}),"",{top}/{denominator})'

    def _plan(self, metric: Metric, period: Period) -> str:
        """Monthly plans brought to the period: sums by the days it has of each month, ratios as the
        months' plans weighted by those days (docs/stats.md)."""
        parts: list[tuple[str, int, int]] = []
        day = period.start
        while day < period.end:
            month = day.replace(day=1)
            following = _next_month(month)
            overlap = (min(following, period.end) - day).days
            cell = plan_cell(self.metrics, self.months, metric.key, month, self.plan_sheet)
            if cell is not None:
                parts.append((cell, overlap, (following - month).days))
            day = min(following, period.end)
        if not parts:
            return '=""'
        cells = ",".join(cell for cell, _, _ in parts)
        if metric.additive:
            total = "+".join(f"N({cell})*{days}/{length}" for cell, days, length in parts)
        else:
            weights = "+".join(f"{days}*ISNUMBER({cell})" for cell, days, _ in parts)
            total = "(" + "+".join(f"N({cell})*{days}" for cell, days, _ in parts) + f")/({weights})"
        # The plans are the team's: a filtered report (one source or manager) has none, as in voronka.
        return f'=IF(OR($B$2<>"",$B$3<>"",COUNT({cells})=0),"",{total})'

    def _shortfall(self, metric: Metric, line: int, column: int) -> None:
        """The fact red when behind its plan (below it, or above it for costs), green when ahead."""
        fact, plan = xl_rowcol_to_cell(line, column), xl_rowcol_to_cell(line, column + 1)
        behind = f"AND(ISNUMBER({plan}),ISNUMBER({fact}),{fact}{'<' if metric.higher_is_better else '>'}{plan})"
        ahead = f"AND(ISNUMBER({plan}),ISNUMBER({fact}),{fact}{'>=' if metric.higher_is_better else '<='}{plan})"
        for criteria, fmt in ((behind, self.formats.bad), (ahead, self.formats.good)):
            self.sheet.conditional_format(line, column, line, column, {"type": "formula", "criteria": "=" + criteria,
                                                                         "format": fmt})  # fmt: skip

    def forecast(self, metric: Metric, periods: int) -> str:
        """The running period's run rate (sums only): fact × its working days / those gone, today
        included — the period is the one whose dates hold TODAY(). SUMPRODUCT's separate arrays
        read the text of empty cells as 0, so the columns between facts weigh nothing."""
        if not metric.additive:
            return '=""'
        first, last = FIRST_PERIOD_COLUMN, FIRST_PERIOD_COLUMN + (periods - 1) * PERIOD_COLUMNS
        line = self.rows_of[metric.key]

        def span(row: int, absolute: bool = True) -> str:
            return f"{xl_rowcol_to_cell(row, first, row_abs=absolute)}:{xl_rowcol_to_cell(row, last, row_abs=absolute)}"

        starts, ends, facts = span(FROM_ROW), span(TO_ROW), span(line, absolute=False)
        now = f"({starts}<=TODAY())*({ends}>TODAY())"
        start, end, fact = (f"SUMPRODUCT({now},{cells})" for cells in (starts, ends, facts))
        gone = f"NETWORKDAYS({start},TODAY())"
        return f'=IF(OR(SUMPRODUCT({now})=0,{gone}=0),"",{fact}*NETWORKDAYS({start},{end}-1)/{gone})'


def _write_template_charts(
    book: Workbook,
    sheet: Worksheet,
    layout: InputLayout,
    rows_of: dict[str, int],
    periods: Sequence[Period],
    metrics: Sequence[Metric],
    t: Translator,
) -> None:
    """The funnel of everything typed so far, and leads and sales by period, as native charts."""
    top = FIRST_METRIC_ROW + len(metrics) + 2
    input_name = layout.sheet
    funnel = book.add_chart({"type": "bar"})
    stages = len(layout.stage_names)
    funnel.add_series({
        "name": t("workbook.funnel"),
        "categories": [input_name, 0, 3, 0, 2 + stages],
        "values": [input_name, 1, 3, 1, 2 + stages],
        "data_labels": {"value": True},
    })  # fmt: skip
    funnel.set_y_axis({"reverse": True})
    funnel.set_legend({"none": True})
    funnel.set_title({"name": t("book.funnel_all")})
    sheet.insert_chart(top, 0, funnel, {"x_scale": 1.2, "y_scale": 1.0})
    sheet.write(top, 8, t("book.chart_data"), book.add_format({"italic": True, "font_color": "#888888"}))
    for offset, key in enumerate(("leads", "sales"), start=1):
        metric = next(m for m in metrics if m.key == key)
        sheet.write(top + offset, 8, metric_label(metric, t))
        for index in range(len(periods)):
            fact = xl_rowcol_to_cell(rows_of[key], FIRST_PERIOD_COLUMN + index * PERIOD_COLUMNS)
            sheet.write_formula(top + offset, 9 + index, f"={fact}")
    for index, period in enumerate(periods):
        sheet.write(top, 9 + index, period.label)
    trend = book.add_chart({"type": "line"})
    for offset in (1, 2):
        trend.add_series({
            "name": [sheet.name, top + offset, 8],
            "categories": [sheet.name, top, 9, top, 8 + len(periods)],
            "values": [sheet.name, top + offset, 9, top + offset, 8 + len(periods)],
            "marker": {"type": "circle"},
        })  # fmt: skip
    trend.set_title({"name": t("workbook.trend")})
    sheet.insert_chart(top + 4, 8, trend, {"x_scale": 1.6})


def _write_guide(sheet: Worksheet, pipeline: str, input_sheet: str, t: Translator, formats: Formats) -> None:
    sheet.write(0, 0, t("workbook.guide_title", pipeline=pipeline), formats.title)
    for line, key in enumerate(("guide_1", "guide_2", "guide_3", "guide_4", "guide_5"), start=2):
        sheet.write(line, 0, t(f"book.{key}", sheet=input_sheet))
    sheet.set_column(0, 0, 120)
