"""The statistics workbook, recalculated by a real spreadsheet engine (LibreOffice headless), gives
voronka's own figures; and the no-CRM workbook round-trips the counts typed into it."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy.orm import Session

from tests.builders import account_for, funnel, pipeline_for
from voronka.analysis.funnel.query import View
from voronka.analysis.reports.template import write_template_workbook
from voronka.analysis.reports.xlsx import (
    COLUMNS_PER_PERIOD,
    FIRST_DATA_ROW,
    INPUT_SHEET,
    sheet_value,
    write_stats_workbook,
)
from voronka.analysis.stats.nocrm import import_counts
from voronka.analysis.stats.periods import Grain
from voronka.analysis.stats.report import Mode, StatsQuery, run_stats
from voronka.demo import DemoOptions
from voronka.errors import ImportFailed
from voronka.i18n import Translator

TODAY = dt.date(2026, 11, 27)
RECALC_ALWAYS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">
<prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop>
</item>
</oor:items>
"""


@pytest.fixture(scope="module")
def soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        if os.environ.get("VORONKA_REQUIRE_LIBREOFFICE") == "1":
            pytest.fail("VORONKA_REQUIRE_LIBREOFFICE=1 but LibreOffice (soffice) is not installed")
        pytest.skip("LibreOffice (soffice) is not installed; .ci/run installs it")
    return found


def recalculate(soffice: str, source: Path, out: Path) -> Path:
    """Open the workbook in LibreOffice with 'always recalculate' and save it again."""
    profile = out / "profile"
    (profile / "user").mkdir(parents=True, exist_ok=True)
    (profile / "user" / "registrymodifications.xcu").write_text(RECALC_ALWAYS, encoding="utf-8")
    converted = out / "converted"
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--calc",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(converted),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return converted / source.name


def test_recalculated_workbook_equals_voronkas_figures(
    soffice: str, sqlite_demo: Callable[..., Session], tmp_path: Path
) -> None:
    sqlite_session = sqlite_demo(DemoOptions(today=TODAY, leads=1500))
    account = account_for(sqlite_session)
    report = run_stats(
        session=sqlite_session, account=account, query=StatsQuery(grain=Grain.WEEK, by="manager"), today=TODAY
    )
    t = Translator("ru")
    written = tmp_path / "stats.xlsx"
    write_stats_workbook(report, written, t, cached_values=False)  # only a spreadsheet engine can fill them
    sheets = load_workbook(recalculate(soffice, written, tmp_path), data_only=True)
    checked = 0
    for sheet_name, tables, step in (
        (t("workbook.sheet_total"), [report.total], 0),
        (t("workbook.sheet_managers"), list(report.cuts), len(report.metrics) + FIRST_DATA_ROW + 2),
    ):
        sheet = sheets[sheet_name]
        for block, table in enumerate(tables):
            for line, row in enumerate(table.rows, start=block * step + FIRST_DATA_ROW + 1):
                for index, cell in enumerate(row.cells):
                    column = 2 + index * COLUMNS_PER_PERIOD
                    expected = sheet_value(row.metric, cell.fact)
                    got = sheet.cell(line, column).value
                    assert (got in (None, "")) == (expected is None), (sheet_name, row.metric.key, index, got, expected)
                    if expected is not None:
                        assert got == pytest.approx(expected, rel=1e-9, abs=1e-6), (row.metric.key, index)
                    if index:
                        change = sheet.cell(line, column + 3).value
                        assert (change in (None, "")) == (cell.change is None)
                        if cell.change is not None:
                            assert change == pytest.approx(cell.change, rel=1e-9, abs=1e-9)
                    checked += 1
    assert checked > 500


def test_no_crm_workbook_round_trips_the_typed_counts(sqlite_session: Session, tmp_path: Path) -> None:
    pipeline = pipeline_for(sqlite_session, ["Заявка", "Замер", "Договор"])
    sqlite_session.commit()
    blank = tmp_path / "blank.xlsx"
    write_template_workbook(pipeline=pipeline.name, stage_names=("Заявка", "Замер", "Договор"), currency="RUB",
                            start=dt.date(2024, 1, 1), path=blank, t=Translator("ru"))  # fmt: skip
    book = load_workbook(blank)
    sheet = book["Ввод"]
    assert [c.value for c in sheet[1]] == [
        "дата", "источник", "менеджер", "Заявка", "Замер", "Договор", "выручка", "расход на рекламу"
    ]  # fmt: skip
    assert [sheet.cell(2, 1).value, sheet.cell(3, 1).value] == ["Итого", "Пример"]
    typed = [
        (dt.date(2024, 3, 4), "Авито", None, 10, 4, 1, 50000),
        (dt.date(2024, 3, 4), "Сайт", None, 5, 3, 0, None),
        (dt.date(2024, 3, 5), "Авито", None, 7, 2, 2, 120000),
        (dt.date(2024, 3, 12), "Авито", None, 3, 1, 0, None),
    ]
    for row in typed:
        sheet.append(list(row))
    book.save(blank)
    result = import_counts(session=sqlite_session, account=account_for(sqlite_session), pipeline=pipeline, path=blank)
    sqlite_session.commit()
    assert (result.days, result.rows) == (3, 4)
    query = StatsQuery(date_from=dt.date(2024, 3, 4), date_to=dt.date(2024, 3, 18), grain=Grain.WEEK, by="source")
    stats = run_stats(session=sqlite_session, account=account_for(sqlite_session), query=query, today=TODAY)
    assert stats.mode is Mode.COUNTS
    total = stats.total
    assert [c.fact for c in total.row("leads").cells] == [22, 3]
    assert [c.fact for c in total.row("stage_2").cells] == [9, 1]
    assert [c.fact for c in total.row("sales").cells] == [3, 0]
    assert [c.fact for c in total.row("revenue").cells] == [170000_00, 0]
    assert [c.fact for c in total.row("reached").cells] == [None, None]  # calls are not typed in
    assert [c.fact for c in stats.cuts[0].row("leads").cells] == [17, 3]
    period = funnel(sqlite_session, view=View.PERIOD, date_from=dt.date(2024, 3, 4), date_to=dt.date(2024, 3, 11))
    assert [s.reached for s in period.figures.stages] == [22, 9, 3]
    assert period.figures.revenue == {"RUB": 170000_00}


def _input_book(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = INPUT_SHEET
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (["date", "Заявка", "Замер", "Договор"], [["2024-03-04", 5, "много", 1]], "cell C2: «много» is not a count"),
        (["date", "Заявка", "Договор"], [["2024-03-04", 5, 1]], "lacks the column(s) Замер"),
        (
            ["date", "Заявка", "Замер", "Договор"],
            [["2024-03-04", 5, 2, 1], ["2024-03-05", 1, 1, 0], ["2024-03-04", 3, 1, 0]],
            "cell A4: this date (with the same source and manager) is already on row 2",
        ),
        (["date", "Заявка", "Замер", "Договор"], [["4 марта", 5, 2, 1]], "cell A2: «4 марта» is not a date"),
        (["date", "Заявка", "Замер", "Договор"], [["2024-03-04", -2, 2, 1]], "cell B2: «-2» is not a count"),
    ],
)
def test_malformed_counts_are_rejected_with_the_cell(
    sqlite_session: Session, tmp_path: Path, header: list[str], rows: list[list[object]], message: str
) -> None:
    pipeline = pipeline_for(sqlite_session, ["Заявка", "Замер", "Договор"])
    path = _input_book(tmp_path / "counts.xlsx", header, rows)
    with pytest.raises(ImportFailed) as error:
        import_counts(session=sqlite_session, account=account_for(sqlite_session), pipeline=pipeline, path=path)
    assert message in error.value.message("en")
    from voronka.models import DailyCount

    assert sqlite_session.query(DailyCount).count() == 0


def test_plans_typed_into_the_workbook_are_read_back(sqlite_session: Session, tmp_path: Path) -> None:
    from voronka.analysis.stats.inputs import import_plans
    from voronka.analysis.stats.metrics import metrics_for

    pipeline = pipeline_for(sqlite_session, ["Заявка", "Замер", "Договор"])
    sqlite_session.commit()
    account = account_for(sqlite_session)
    query = StatsQuery(date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 5, 1), grain=Grain.MONTH)
    written = tmp_path / "plans.xlsx"
    write_stats_workbook(
        run_stats(session=sqlite_session, account=account, query=query, today=TODAY), written, Translator("ru")
    )
    book = load_workbook(written)
    sheet = book["План"]
    header = [c.value for c in sheet[1]]
    keys = [c.value for c in sheet["B"]]
    march, april = header.index("2024-03") + 1, header.index("2024-04") + 1
    sheet.cell(keys.index("leads") + 1, march).value = 300
    sheet.cell(keys.index("revenue") + 1, april).value = 1_500_000  # roubles
    sheet.cell(keys.index("reached_share") + 1, march).value = 0.6
    sheet.cell(keys.index("cpl") + 1, april).value = "дёшево"
    book.save(written)
    metrics = metrics_for(("Заявка", "Замер", "Договор"))
    report = import_plans(session=sqlite_session, account=account, pipeline=pipeline, metrics=metrics, path=written)
    sqlite_session.commit()
    assert report.created == 3
    assert len(report.rejected) == 1
    stats = run_stats(session=sqlite_session, account=account, query=query, today=TODAY)
    assert [c.plan for c in stats.total.row("leads").cells] == [300, None]
    assert [c.plan for c in stats.total.row("revenue").cells] == [None, 1_500_000_00]
    assert stats.total.row("reached_share").cells[0].plan == pytest.approx(0.6)
