"""The account's currency: settable, adopted from a first import, and never a silent zero in a report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import Journey, account_for, journeys_for, pipeline_for
from tests.test_import import run_import, write
from voronka.analysis.diagnose import run_diagnosis
from voronka.analysis.stats.periods import Grain
from voronka.analysis.stats.report import StatsQuery, run_stats
from voronka.cli import app
from voronka.crm.accounts import update_account
from voronka.errors import InvalidValue

USD_FILE = (
    "id,created_at,stage,status,closed_at,amount,currency\n"
    "u1,2026-03-02 10:00,Lead,,,,USD\n"
    "u2,2026-03-03 10:00,Won,won,2026-03-10 10:00,1500.50,USD\n"
    "u3,2026-03-04 10:00,Won,won,2026-03-12 10:00,500,USD\n"
)


def test_a_first_import_in_one_currency_makes_it_the_accounts(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    report = run_import(session, write(tmp_path, USD_FILE))
    assert [n.key for n in report.notes] == ["import.currency_adopted"]
    assert "USD" in report.notes[0].render("en")
    assert account_for(session).currency == "USD"
    stats = run_stats(
        session=session,
        account=account_for(session),
        query=StatsQuery(grain=Grain.MONTH, date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 4, 1)),
        today=dt.date(2026, 4, 15),
    )
    assert stats.currency == "USD"
    assert stats.total.row("revenue").cells[0].fact == 2000_50


def test_another_currency_into_an_account_with_deals_is_a_one_line_warning(session: Session, tmp_path: Path) -> None:
    journeys_for(session, [Journey("2026-02-01 10:00", won="2026-02-03 10:00", amount=100_00)])
    report = run_import(session, write(tmp_path, USD_FILE))
    assert account_for(session).currency == "RUB"
    assert [n.render("en") for n in report.notes] == [
        "Deals in USD (3) differ from the account currency RUB: money reports show them apart, never added in."
    ]
    diagnosis = run_diagnosis(session=session, account=account_for(session), today=dt.date(2026, 4, 15))
    assert "report.other_currencies" in [n.key for n in diagnosis.notes]
    stats = run_stats(session=session, account=account_for(session), query=StatsQuery(grain=Grain.MONTH))
    assert [n.key for n in stats.notes] == ["report.other_currencies"]


def test_the_funnel_json_states_the_currency_its_revenue_is_in(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--db", db_url, "init", "--stages", "Lead,Won"]).exit_code == 0
    text = USD_FILE.replace(",Won,", ",Won,")
    imported = runner.invoke(app, ["--db", db_url, "--lang", "en", "import", "deals", str(write(tmp_path, text))])
    assert imported.exit_code == 0, imported.stderr
    assert "reports are now in USD" in imported.stdout
    data = json.loads(runner.invoke(app, ["--db", db_url, "funnel", "--format", "json"]).stdout)
    assert (data["revenue"], data["currency"]) == ("2000.50", "USD")
    table = runner.invoke(app, ["--db", db_url, "--lang", "en", "funnel"]).stdout
    assert "$2,000" in table  # whole units, the way an English reader writes dollars


def test_init_sets_the_currency_and_refuses_a_made_up_one(db_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--db", db_url, "init", "--stages", "Lead,Won"]).exit_code == 0
    changed = runner.invoke(app, ["--db", db_url, "--lang", "en", "init", "--currency", "eur"])
    assert changed.exit_code == 0, changed.stderr
    assert "EUR" in changed.stdout
    wrong = runner.invoke(app, ["--db", db_url, "--lang", "en", "init", "--currency", "XYZ"])
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("Error: ")


def test_update_account_validates(session: Session) -> None:
    account = account_for(session)
    update_account(session=session, account=account, currency="usd", timezone="Asia/Almaty")
    assert (account.currency, account.timezone) == ("USD", "Asia/Almaty")
    with pytest.raises(InvalidValue):
        update_account(session=session, account=account, currency="dollars")
    with pytest.raises(InvalidValue):
        update_account(session=session, account=account, timezone="Mars/Olympus")


def test_whatif_says_when_there_is_no_money_and_what_it_leaves_out(session: Session) -> None:
    from voronka.analysis.whatif import load_baseline

    journeys_for(session, [Journey("2026-02-01 10:00", won="2026-02-03 10:00", amount=100_00, currency="USD")])
    baseline = load_baseline(session=session, account=account_for(session), pipeline=None, today=dt.date(2026, 4, 15))
    assert baseline.average_check == 0
    assert [n.key for n in baseline.notes] == ["report.other_currencies", "report.no_money"]
