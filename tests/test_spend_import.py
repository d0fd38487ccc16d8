"""Ad spend from files: the canonical columns, and ad cabinets' exports through maps — Yandex
Direct's Report Wizard and API report (micro-units), VK Ads' statistics — each campaign's cost on
its source, unmapped cost kept and named, rows of one source and day added up."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from voronka.analysis.stats.inputs import import_spend
from voronka.analysis.stats.spend_maps import builtin_spend_map
from voronka.cli import app
from voronka.crm.accounts import default_account
from voronka.models import AdSpend, Source


def kept(session: Session) -> dict[tuple[str | None, dt.date], int]:
    names = {s.id: s.name for s in session.scalars(select(Source))}
    return {(names.get(a.source_id or 0), a.period_start): a.amount for a in session.scalars(select(AdSpend))}


def test_a_report_wizard_export_gives_each_campaign_to_its_source(session: Session, tmp_path: Path) -> None:
    export = tmp_path / "direct.csv"
    export.write_bytes(
        "Дата;Кампания;Показы;Клики;Расход (руб.)\n"
        "01.03.2026;Поиск — кухни;1000;40;1 234,56\n"
        "01.03.2026;Поиск — шкафы;800;30;765,44\n"
        "01.03.2026;Тест баннеров;300;2;99,99\n"
        "02.03.2026;Поиск — кухни;900;35;1 000,00\n".encode("cp1251")
    )
    chosen = builtin_spend_map("yandex-direct").with_sources(
        {"Поиск — кухни": "Яндекс Поиск", "Поиск — шкафы": "Яндекс Поиск"}
    )
    report = import_spend(session=session, account=default_account(session=session), path=export, spend_map=chosen)
    assert (report.created, report.rejected) == (4, [])
    assert kept(session) == {
        ("Яндекс Поиск", dt.date(2026, 3, 1)): 200_000,  # two campaigns of one source add up
        (None, dt.date(2026, 3, 1)): 9_999,  # unmapped: kept without a source
        ("Яндекс Поиск", dt.date(2026, 3, 2)): 100_000,
    }
    assert "Тест баннеров" in report.notes[0].render("en")


def test_the_reports_api_tsv_is_in_micro_units(session: Session, tmp_path: Path) -> None:
    export = tmp_path / "report.tsv"
    export.write_text("Date\tCampaignName\tCost\n2026-03-01\tПоиск — кухни\t1234560000\n", encoding="utf-8")
    chosen = builtin_spend_map("yandex-direct").with_sources({"Поиск — кухни": "Яндекс Поиск"})
    import_spend(session=session, account=default_account(session=session), path=export, spend_map=chosen)
    assert kept(session) == {("Яндекс Поиск", dt.date(2026, 3, 1)): 123_456}


def test_vk_ads_statistics_through_their_map(session: Session, tmp_path: Path) -> None:
    export = tmp_path / "vk.csv"
    export.write_text(
        'Дата,Кампания,Показы,Потрачено\n2026-03-01,Осенняя распродажа,5000,"2 500,00"\n', encoding="utf-8"
    )
    chosen = builtin_spend_map("vk-ads").with_sources({"Осенняя распродажа": "VK Реклама"})
    import_spend(session=session, account=default_account(session=session), path=export, spend_map=chosen)
    assert kept(session) == {("VK Реклама", dt.date(2026, 3, 1)): 250_000}


def test_the_command_takes_a_map_and_sources_and_refuses_a_file_of_another_kind(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert runner.invoke(app, ["--db", db_url, "init", "--stages", "Лид,Оплата"], env=env).exit_code == 0
    export = tmp_path / "vk.csv"
    export.write_text("Дата,Кампания,Потрачено\n2026-03-01,Осень,100\n2026-03-01,Весна,50\n", encoding="utf-8")
    done = runner.invoke(
        app,
        ["--db", db_url, "--lang", "en", "spend", "import", str(export), "--map", "vk-ads", "--source", "Осень=VK"],
        env=env,
    )
    assert done.exit_code == 0, done.stderr
    assert "Весна" in done.stdout  # unmapped, named
    calls = tmp_path / "calls.csv"
    calls.write_text("started_at,client_number\n2026-03-01 10:00,+79990000000\n", encoding="utf-8")
    wrong = runner.invoke(app, ["--db", db_url, "--lang", "en", "spend", "import", str(calls)], env=env)
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("Error: Nothing was imported:")


# The Reports API's TSV as it comes (yandex.ru/dev/direct/doc/ru/report-format): a first line with
# the report's name and dates (unless skipReportHeader), the field names, the rows, and a last line
# with the count of rows (unless skipReportSummary). Cost: integers, the currency times 1,000,000
# rounded to 10,000; with returnMoneyInMicros: false, the currency to two decimals (…/ru/money).
def test_a_reports_api_tsv_with_its_title_and_count_lines(session: Session, tmp_path: Path) -> None:
    export = tmp_path / "report.tsv"
    export.write_text(
        "Расходы voronka (2026-03-01 - 2026-03-02)\n"
        "Date\tCampaignName\tCost\n"
        "2026-03-01\tПоиск — кухни\t1234560000\n"
        "2026-03-02\tПоиск — кухни\t20000\n"
        "Total rows: 2\n",
        encoding="utf-8",
    )
    chosen = builtin_spend_map("yandex-direct").with_sources({"Поиск — кухни": "Яндекс Поиск"})
    report = import_spend(session=session, account=default_account(session=session), path=export, spend_map=chosen)
    assert (report.created, report.rejected) == (2, [])
    assert kept(session) == {("Яндекс Поиск", dt.date(2026, 3, 1)): 123_456, ("Яндекс Поиск", dt.date(2026, 3, 2)): 2}


def test_a_reports_api_tsv_without_micros_is_read_in_the_currency(session: Session, tmp_path: Path) -> None:
    export = tmp_path / "report.tsv"
    export.write_text(
        "Date\tCampaignName\tCost\n2026-03-01\tПоиск — кухни\t1234.56\n2026-03-02\tПоиск — кухни\t20000\n",
        encoding="utf-8",
    )
    chosen = builtin_spend_map("yandex-direct").with_sources({"Поиск — кухни": "Яндекс Поиск"})
    report = import_spend(session=session, account=default_account(session=session), path=export, spend_map=chosen)
    assert (report.created, report.rejected) == (2, [])
    # One amount with decimals says the report is in the currency: 20000 is 20,000 roubles, not 0.02.
    assert kept(session) == {
        ("Яндекс Поиск", dt.date(2026, 3, 1)): 123_456,
        ("Яндекс Поиск", dt.date(2026, 3, 2)): 2_000_000,
    }
