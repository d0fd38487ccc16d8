# ruff: noqa: E501 - an export row reads best on one line
"""amoCRM and Bitrix24 export files, and ``--map`` for any other table.

The export files here reproduce the documented columns (the columns of real amoCRM and Bitrix24 exports; neither vendor publishes a list): the
trailing-space «Бюджет » header, repeated column names, «не закрыта», DD.MM.YYYY HH:MM:SS dates,
cp1251 with semicolons, XLSX, and Bitrix24's HTML table saved as .xls.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import account_for, funnel, pipeline_for
from voronka.cli import app
from voronka.crm.accounts import find_pipeline
from voronka.errors import ImportFailed
from voronka.ingest.importers import ImportReport, ImportTarget, import_file
from voronka.ingest.importers.maps import load_map
from voronka.ingest.importers.run import detect_format, pipeline_for_file
from voronka.models import Deal, LossReason, Pipeline, Source
from voronka.tabular.files import open_table

AMO_HEADER = [
    "ID",
    "Название сделки",
    "Бюджет ",
    "Ответственный",
    "Дата создания сделки",
    "Кем создана сделка",
    "Дата закрытия",
    "Теги",
    "Этап сделки",
    "Воронка",
    "Полное имя контакта",
    "Мобильный телефон",
    "Рабочий email",
    "Источник",
    "Причина отказа",
    "Источник",
    "utm_source",
]
AMO_ROWS = [
    # id, title, budget, manager, created, by, closed, tags, stage, pipeline, contact, phone, email, src, reason, src2, utm
    ["101", "Шкаф", "120 000", "Анна", "01.03.2026 10:15:00", "Анна", "не закрыта", "", "Первичный контакт",
     "Воронка", "Иван", "+79990000001", "", "Сайт", "", "", "yandex"],
    ["102", "Кухня", "350000", "Олег", "02.03.2026 11:00:00", "Олег", "20.03.2026 18:30:00", "vip", "Успешно реализовано",
     "Воронка", "Мария", "", "m@example.ru", "", "", "Авито", ""],
    ["103", "Стол", "", "Анна", "03.03.2026 09:00:00", "Анна", "05.03.2026 12:00:00", "", "Закрыто и не реализовано",
     "Воронка", "", "", "", "Сайт", "Дорого", "", ""],
    ["104", "Комод", "40 000", "Олег", "04.03.2026 16:45:10", "Олег", "не закрыта", "", "Принимают решение",
     "Воронка", "", "", "", "", "", "", "google"],
    ["105", "Полка", "5000", "Анна", "05.03.2026 08:00:00", "Анна", "не закрыта", "", "Первичный контакт",
     "Вторая", "", "", "", "", "", "", ""],
]  # fmt: skip


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str, delimiter: str) -> Path:
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def import_export(session: Session, path: Path, pipeline: str | None = None) -> tuple[Pipeline, ImportReport]:
    account = account_for(session)
    chosen = pipeline_for_file(session=session, account=account, path=path, name=pipeline)
    report = import_file(target=ImportTarget(session, account, chosen), path=path)
    session.commit()
    return chosen, report


@pytest.mark.parametrize("kind", ["cp1251;", "utf-8,", "xlsx"])
def test_amocrm_export_is_detected_and_read(session: Session, tmp_path: Path, kind: str) -> None:
    if kind == "xlsx":
        path = write_xlsx(tmp_path / "amocrm_export.xlsx", AMO_HEADER, AMO_ROWS)
    else:
        path = write_csv(tmp_path / "amocrm_export.csv", AMO_HEADER, AMO_ROWS, kind[:-1], kind[-1])
    assert detect_format(open_table(path).header) == "amocrm"
    pipeline, report = import_export(session, path)
    assert pipeline.name == "Воронка"
    # The stages in the order the file first shows them, the won stage (as amoCRM names it) last.
    assert [s.name for s in pipeline.stages] == ["Первичный контакт", "Принимают решение", "Успешно реализовано"]
    assert report.created == 4
    assert [(r.line, r.reason.render("en")) for r in report.rejected] == [
        (6, 'the deal is in pipeline «Вторая», not «Воронка»: import it with --pipeline "Вторая"')
    ]
    deals = {d.external_id: d for d in session.scalars(select(Deal))}
    assert deals["101"].amount == 12_000_000
    assert deals["101"].closed_at is None
    assert deals["101"].status == "open"
    assert deals["101"].created_at.isoformat() == "2026-03-01T10:15:00"
    assert deals["102"].status == "won"
    assert deals["102"].amount == 35_000_000
    assert deals["103"].status == "lost"
    assert deals["103"].furthest_position == 1
    assert session.scalar(select(LossReason.name).where(LossReason.id == deals["103"].loss_reason_id)) == "Дорого"
    sources = {
        d.external_id: session.scalar(select(Source.name).where(Source.id == d.source_id)) for d in deals.values()
    }
    assert sources == {"101": "Сайт", "102": "Авито", "103": "Сайт", "104": "google"}  # first non-empty «Источник»
    assert deals["101"].custom["utm_source"] == "yandex"
    assert deals["102"].custom["Теги"] == "vip"
    figures = funnel(session).figures
    assert (figures.deals, figures.won, figures.lost, figures.open) == (4, 1, 1, 2)
    assert [s.reached for s in figures.stages] == [4, 2, 1]


def test_the_other_pipeline_of_an_export_imports_with_its_name(session: Session, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "amo.csv", AMO_HEADER, AMO_ROWS, "utf-8", ",")
    import_export(session, path)
    _, report = import_export(session, path, pipeline="Вторая")
    assert report.created == 1
    assert len(report.rejected) == 4


BITRIX_HEADER = ["ID", "Название сделки", "Стадия сделки", "Сумма", "Валюта", "Ответственный", "Компания",
                 "Дата создания", "Дата изменения", "Воронка", "Источник"]  # fmt: skip
BITRIX_ROWS = [
    ["7", "Ремонт кухни", "Новая", "150000.00", "RUB", "Сергей", "", "10.04.2026 09:30:00", "10.04.2026 09:30:00",
     "Общая", "Веб-сайт"],
    ["8", "Ремонт ванной", "Подготовка документов", "90000", "RUB", "Сергей", "ООО Ромашка", "11.04.2026 10:00:00",
     "12.04.2026 15:00:00", "Общая", "Звонок"],
    ["9", "Дача", "Сделка успешна", "1 200 000,50", "RUB", "Ирина", "", "12.04.2026 12:00:00", "30.04.2026 17:20:00",
     "Общая", "Веб-сайт"],
    ["10", "Балкон", "Сделка провалена", "30000", "RUB", "Ирина", "", "13.04.2026 12:00:00", "14.04.2026 11:00:00",
     "Общая", "Звонок"],
]  # fmt: skip


def bitrix_html(path: Path) -> Path:
    cells = "".join(f"<th>{h}</th>" for h in BITRIX_HEADER)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in BITRIX_ROWS)
    page = (
        '<html><head><meta http-equiv="Content-type" content="text/html;charset=UTF-8"></head><body>'
        f"<table border=1><tr>{cells}</tr>\n{body}</table></body></html>"
    )
    path.write_text(page, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["html-xls", "csv"])
def test_bitrix24_export_is_detected_and_read(session: Session, tmp_path: Path, kind: str) -> None:
    if kind == "html-xls":
        path = bitrix_html(tmp_path / "DEAL_20260501_1a2b3c.xls")
    else:
        path = write_csv(tmp_path / "deals.csv", BITRIX_HEADER, BITRIX_ROWS, "cp1251", ";")
    assert detect_format(open_table(path).header) == "bitrix24"
    pipeline, report = import_export(session, path)
    assert (report.created, report.rejected) == (4, [])
    assert [s.name for s in pipeline.stages] == ["Новая", "Подготовка документов", "Сделка успешна"]
    deals = {d.external_id: d for d in session.scalars(select(Deal))}
    assert deals["9"].status == "won"
    assert deals["9"].amount == 120_000_050
    assert deals["9"].closed_at is not None
    assert deals["9"].closed_at.isoformat() == "2026-04-30T17:20:00"
    assert deals["10"].status == "lost"
    assert deals["8"].custom["Компания"] == "ООО Ромашка"
    figures = funnel(session).figures
    assert (figures.deals, figures.won, figures.lost, figures.open) == (4, 1, 1, 2)


def test_an_existing_pipeline_takes_the_export_when_stage_names_match(session: Session, tmp_path: Path) -> None:
    pipeline_for(session, ["Новая", "Подготовка документов", "Сделка успешна"], name="Общая")
    path = bitrix_html(tmp_path / "deals.xls")
    account = account_for(session)
    report = import_file(
        target=ImportTarget(session, account, find_pipeline(session=session, account=account)), path=path
    )
    assert (report.created, report.rejected) == (4, [])


def test_an_unknown_stage_is_a_rejected_row_not_a_failed_file(session: Session, tmp_path: Path) -> None:
    pipeline_for(session, ["Первичный контакт", "Успешно реализовано"], name="Воронка")
    path = write_csv(tmp_path / "amo.csv", AMO_HEADER, AMO_ROWS[:4], "utf-8", ",")
    account = account_for(session)
    report = import_file(
        target=ImportTarget(session, account, find_pipeline(session=session, account=account)), path=path
    )
    assert report.created == 3
    assert [r.reason.render("en") for r in report.rejected] == [
        "stage «Принимают решение» is not in pipeline «Воронка»"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name = 'x'\n[columns\nid = 'a'", "not valid TOML"),
        ("[colums]\nid = 'a'", "unknown section(s) colums"),
        ("[columns]\nid = 'a'\ncreated_at = 'b'\nbudget = 'c'", "[columns] budget: the fields are"),
        ("[columns]\ncreated_at = 'b'", "[columns] id is required"),
        ("[columns]\nid = 'a'\ncreated_at = 'b'\n[status.values]\nyes = 'maybe'", "a status is open, won or lost"),
        ("[columns]\nid = 3\ncreated_at = 'b'", "[columns] id must be a column name"),
    ],
)
def test_a_bad_map_is_a_one_line_error(db_url: str, tmp_path: Path, text: str, problem: str) -> None:
    runner = CliRunner()
    runner.invoke(app, ["--db", db_url, "init", "--stages", "A,B"])
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    data = write_csv(tmp_path / "data.csv", ["a", "b"], [["1", "2026-01-01"]], "utf-8", ",")
    result = runner.invoke(app, ["--db", db_url, "--lang", "en", "import", "deals", str(data), "--map", str(bad)])
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: ")
    assert problem in result.stderr
    assert "bad.toml" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_bad_map_in_russian(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[columns]\ncreated_at = 'b'", encoding="utf-8")
    with pytest.raises(ImportFailed) as caught:
        load_map(bad)
    assert "карта bad.toml: в [columns] обязателен id" in caught.value.message("ru")
