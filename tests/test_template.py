"""The statistics template on its own: filled with generated days, recalculated by LibreOffice, it has
no error cell, and every report cell equals what voronka stats computes from the same file."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from tests.builders import account_for, pipeline_for
from tests.test_workbook import recalculate, soffice  # noqa: F401 - the fixture
from voronka.analysis.reports.template import (
    FIRST_METRIC_ROW,
    FIRST_PERIOD_COLUMN,
    FROM_ROW,
    PERIOD_COLUMNS,
    template_metrics,
    write_template_workbook,
)
from voronka.analysis.reports.xlsx import sheet_value
from voronka.analysis.stats.nocrm import import_workbook
from voronka.analysis.stats.periods import Grain
from voronka.analysis.stats.report import Mode, StatsQuery, StatsReport, run_stats
from voronka.analysis.stats.table import Table
from voronka.i18n import Translator

STAGES = ("Заявка", "Квалификация", "Замер", "Договор")
START = dt.date(2026, 1, 1)
SOURCES = ("Авито", "Сайт", None)  # a missing source too


def _fill(path: Path) -> None:
    """About five months of days: some split by source and manager, a day of zeros, days missing."""
    book = load_workbook(path)
    sheet = book["Ввод"]
    rng = random.Random(7)
    row = 4
    for offset in range(150):
        day = START + dt.timedelta(days=offset)
        if offset % 9 == 4:
            continue  # nothing typed that day
        for source in SOURCES:
            leads = 0 if offset == 10 else rng.randint(0, 14)
            counts = [leads]
            for _ in STAGES[1:]:
                counts.append(rng.randint(0, counts[-1]))
            values: list[Any] = [day, source, rng.choice(["Анна", "Олег", None]), *counts]
            values.append(counts[-1] * rng.randint(40_000, 160_000) + rng.choice([0, 50]) if counts[-1] else None)
            values.append(rng.randint(0, 9_000) if source else rng.choice([None, 700]))
            for column, value in enumerate(values, start=1):
                sheet.cell(row, column, value)
            row += 1
    plan = book["План"]
    typed = {
        "leads": (300, 420, None, 500),
        "conv_2": (0.5, 0.55, 0.6, None),
        "revenue": (2_000_000, None, 2_500_000, 3e6),
    }
    for line in range(2, plan.max_row + 1):
        for month, value in enumerate(typed.get(plan.cell(line, 2).value, ())):
            if value is not None:
                plan.cell(line, 3 + month, value)
    book.save(path)


@pytest.fixture(scope="module")
def recalculated(soffice: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # noqa: F811
    folder = tmp_path_factory.mktemp("template")
    blank = folder / "blank.xlsx"
    write_template_workbook(pipeline="Продажи", stage_names=STAGES, currency="RUB", start=START, path=blank,
                            t=Translator("ru"))  # fmt: skip
    filled = folder / "filled.xlsx"
    shutil.copy(blank, filled)
    _fill(filled)
    avito = folder / "avito.xlsx"
    book = load_workbook(filled)
    for name in ("По неделям", "По месяцам"):
        book[name]["B2"] = "Авито"
    book.save(avito)
    return {
        "blank": blank,
        "filled": filled,
        "total": recalculate(soffice, filled, folder / "total"),
        "avito": recalculate(soffice, avito, folder / "avito"),
    }


def _voronka(session: Session, path: Path, grain: Grain, by: str | None = None) -> StatsReport:
    pipeline_for(session, STAGES)
    account = account_for(session)
    session.commit()
    if not session.info.get("imported"):
        import_workbook(session=session, account=account, pipeline=pipeline_for(session, STAGES), path=path)
        session.commit()
        session.info["imported"] = True
    start = START - dt.timedelta(days=START.weekday()) if grain is Grain.WEEK else START
    end = start + (dt.timedelta(weeks=52) if grain is Grain.WEEK else dt.timedelta(days=365))
    if grain is Grain.MONTH:
        end = dt.date(2027, 1, 1)
    query = StatsQuery(grain=grain, date_from=start, date_to=end, by=by)
    return run_stats(session=session, account=account, query=query, today=dt.date.today())


def _compare(sheet: Any, report: StatsReport, table: Table) -> int:
    metrics = template_metrics(STAGES)
    rows = {row.metric.key: row for row in table.rows}
    checked = 0
    for offset, metric in enumerate(metrics):
        line = FIRST_METRIC_ROW + offset + 1  # openpyxl counts from 1
        assert sheet.cell(line, 2).value == metric.key
        row = rows[metric.key]
        _same(sheet.cell(line, 3).value, sheet_value(metric, row.forecast), (metric.key, "forecast"))
        for index, (period, cell) in enumerate(zip(report.periods, row.cells, strict=True)):
            column = FIRST_PERIOD_COLUMN + index * PERIOD_COLUMNS + 1
            assert sheet.cell(FROM_ROW + 1, column).value.date() == period.start
            where = (metric.key, period.label)
            _same(sheet.cell(line, column).value, sheet_value(metric, cell.fact), (*where, "fact"))
            _same(sheet.cell(line, column + 1).value, sheet_value(metric, cell.plan), (*where, "plan"))
            _same(sheet.cell(line, column + 2).value, cell.of_plan, (*where, "% of plan"))
            _same(sheet.cell(line, column + 3).value, cell.change, (*where, "change"))
            checked += 4
    return checked


def _same(shown: Any, expected: Any, where: tuple[Any, ...]) -> None:
    if expected is None:
        assert shown in (None, ""), where
    else:
        assert shown not in (None, ""), where
        assert shown == pytest.approx(expected, rel=1e-9, abs=1e-6), where


def test_the_blank_template_is_ready_to_type_into(recalculated: dict[str, Path]) -> None:
    book = load_workbook(recalculated["blank"])
    assert book.sheetnames[:2] == ["Ввод", "По неделям"]
    assert {"По месяцам", "План", "Как пользоваться"} <= set(book.sheetnames)
    sheet = book["Ввод"]
    assert [c.value for c in sheet[1]] == ["дата", "источник", "менеджер", *STAGES, "выручка", "расход на рекламу"]
    assert sheet.freeze_panes == "B4"
    assert {v.type for v in sheet.data_validations.dataValidation} == {"date", "whole", "decimal"}
    report = book["По неделям"]
    assert report.protection.sheet
    assert not report["B2"].protection.locked  # the filter is for typing
    assert "SUMIFS(" in report.cell(FIRST_METRIC_ROW + 1, FIRST_PERIOD_COLUMN + 1).value


@pytest.mark.parametrize(("sheet", "grain"), [("По неделям", Grain.WEEK), ("По месяцам", Grain.MONTH)])
def test_every_report_cell_equals_voronka_stats(
    recalculated: dict[str, Path], sqlite_session: Session, sheet: str, grain: Grain
) -> None:
    book = load_workbook(recalculated["total"], data_only=True)
    errors = [
        (name, c.coordinate, c.value)
        for name in book.sheetnames
        for row in book[name].iter_rows()
        for c in row
        if isinstance(c.value, str) and c.value.startswith(("#", "Err:"))
    ]
    assert errors == []
    report = _voronka(sqlite_session, recalculated["filled"], grain)
    assert report.mode is Mode.COUNTS
    assert _compare(book[sheet], report, report.total) >= 12 * 16 * 4


def test_the_source_filter_equals_voronka_stats_by_source(
    recalculated: dict[str, Path], sqlite_session: Session
) -> None:
    book = load_workbook(recalculated["avito"], data_only=True)
    report = _voronka(sqlite_session, recalculated["filled"], Grain.WEEK, by="source")
    avito = next(table for table in report.cuts if table.cut == "Авито")
    assert _compare(book["По неделям"], report, avito) > 1_000
