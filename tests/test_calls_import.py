"""Calls from telephony exports: the canonical format and the built-in maps, matched to deals by id
or by the client's number around the deal's time, stored once, feeding first contact and speed to
lead; unmatched calls listed, bad rows refused with the reason, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import at, pipeline_for
from voronka.cli import app
from voronka.crm.accounts import default_account, update_account
from voronka.crm.deals import create_deal
from voronka.crm.new_deal import NewDeal
from voronka.ingest.importers.call_maps import CANONICAL, builtin_call_map
from voronka.ingest.importers.calls import import_calls, parse_duration
from voronka.models import CallAttempt, Deal
from voronka.tabular.cells import RowError


@pytest.fixture
def deals(session: Session) -> dict[str, Deal]:
    account = default_account(session=session)
    update_account(session=session, account=account, timezone="Europe/Moscow")
    pipeline = pipeline_for(session)
    made = {
        "march": create_deal(
            session=session,
            pipeline=pipeline,
            new=NewDeal(currency="RUB", created_at=at("2026-03-02 07:00"), phone="+7 912 345-67-89"),
        ),
        "may": create_deal(
            session=session,
            pipeline=pipeline,
            new=NewDeal(currency="RUB", created_at=at("2026-05-01 08:00"), phone="+7 912 345-67-89"),
        ),
        "other": create_deal(
            session=session,
            pipeline=pipeline,
            new=NewDeal(currency="RUB", created_at=at("2026-03-02 07:00"), external_id="C-1"),
        ),
    }
    session.commit()
    return made


CANONICAL_FILE = """started_at,direction,our_number,client_number,outcome,duration,manager,deal_id
2026-03-02 10:03,in,+7 495 111-22-33,8 (912) 345-67-89,no_answer,0,,
2026-03-02 10:07,out,+7 495 111-22-33,8 (912) 345-67-89,answered,1:35,Анна,
2026-05-01 12:00,out,+7 495 111-22-33,+79123456789,busy,0,Анна,
2026-03-02 11:00,out,+7 495 111-22-33,+7 999 000-00-00,answered,60,Анна,
2026-03-02 11:30,out,+7 495 111-22-33,,maybe,10,Анна,
2026-03-02 12:00,out,+7 495 111-22-33,,answered,40,Олег,C-1
"""


def test_calls_land_on_their_deals_and_set_the_first_contact(
    session: Session, deals: dict[str, Deal], tmp_path: Path
) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(CANONICAL_FILE, encoding="utf-8")
    account = default_account(session=session)
    report = import_calls(session=session, account=account, path=path, call_map=CANONICAL)
    session.commit()
    assert (report.created, report.unchanged) == (4, 0)
    assert [(r.line, r.reason.key) for r in report.rejected] == [(6, "import.bad_outcome")]
    assert [(n.key, n.params["count"]) for n in report.notes] == [("import.calls_waiting", 1)]  # +7 999 waits

    march, may, other = (session.get(Deal, deals[k].id) for k in ("march", "may", "other"))
    assert march is not None and may is not None and other is not None  # noqa: PT018
    calls = {c.external_id: c for c in session.scalars(select(CallAttempt))}
    assert sorted((c.deal_id, c.direction, c.outcome, c.duration_seconds) for c in calls.values()) == sorted(
        [(march.id, "in", "no_answer", 0), (march.id, "out", "answered", 95), (may.id, "out", "busy", 0),
         (other.id, "out", "answered", 40)]
    )  # fmt: skip
    # The missed incoming call at 10:03 (Moscow) is the client waiting; the first contact is our call at 10:07.
    assert (march.first_contact_at, march.contact_minutes) == (at("2026-03-02 07:07"), 7)
    assert may.first_contact_at == at("2026-05-01 09:00")  # a busy outgoing call is still an attempt made
    assert {c.client_phone for c in calls.values() if c.deal_id == march.id} == {"+7 912 345-67-89"}

    again = import_calls(session=session, account=account, path=path, call_map=CANONICAL)
    session.commit()
    assert (again.created, again.unchanged) == (0, 4)
    assert session.scalar(select(CallAttempt.id).order_by(CallAttempt.id.desc()).limit(1)) == max(
        c.id for c in calls.values()
    )


SIPUNI_FILE = """Тип;Статус;Время;Схема;Откуда;Куда;Кто ответил;Длительность звонка;Длительность разговора;ID записи
Входящий;Не отвечен;02.03.2026 10:03:00;Основная;89123456789;74951112233;;00:00:12;00:00:00;a1
Исходящий;Отвечен;02.03.2026 10:07:00;;74951112233;89123456789;Анна;00:02:00;00:01:35;a2
"""


def test_a_sipuni_export_reads_through_its_map(session: Session, deals: dict[str, Deal], tmp_path: Path) -> None:
    path = tmp_path / "sipuni.csv"
    path.write_bytes(SIPUNI_FILE.encode("cp1251"))
    report = import_calls(
        session=session, account=default_account(session=session), path=path, call_map=builtin_call_map("sipuni")
    )
    session.commit()
    assert (report.created, report.rejected) == (2, [])
    stored = sorted(
        session.execute(
            select(CallAttempt.direction, CallAttempt.outgoing_number, CallAttempt.client_phone, CallAttempt.outcome)
        )
    )
    assert stored == [
        ("in", "+7 495 111-22-33", "+7 912 345-67-89", "no_answer"),
        ("out", "+7 495 111-22-33", "+7 912 345-67-89", "answered"),
    ]
    march = session.get(Deal, deals["march"].id)
    assert march is not None
    assert march.contact_minutes == 7


@pytest.mark.usefixtures("deals")
@pytest.mark.parametrize("talk", ["Длительность разговора, сек", "Продолжительность разговора"])
def test_sipuni_talk_time_is_read_under_each_version_s_heading(session: Session, tmp_path: Path, talk: str) -> None:
    """Later statistic/export files head talk time otherwise, and put the employee's extension in
    «Откуда» with the external line in «Исходящая линия» (outgoingLine=1): talk time must not read 0."""
    path = tmp_path / "sipuni.csv"
    text = (
        f"Тип;Статус;Время;Схема;Откуда;Куда;Кто ответил;Длительность звонка;{talk};ID записи;Исходящая линия\n"
        "Исходящий;Отвечен;02.03.2026 10:07:00;;997;89123456789;Анна;120;95;a2;74951112233\n"
    )
    path.write_bytes(text.encode("cp1251"))
    report = import_calls(
        session=session, account=default_account(session=session), path=path, call_map=builtin_call_map("sipuni")
    )
    session.commit()
    assert (report.created, report.rejected) == (1, [])
    assert session.execute(select(CallAttempt.duration_seconds, CallAttempt.outcome)).one() == (95, "answered")


def test_the_command_reports_in_one_line_and_a_file_of_another_kind_changes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert runner.invoke(app, ["--db", db_url, "init", "--stages", "Лид,Оплата"], env=env).exit_code == 0
    wrong = tmp_path / "deals.csv"
    wrong.write_text("id,created_at,stage\n1,2026-01-01,Лид\n", encoding="utf-8")
    refused = runner.invoke(app, ["--db", db_url, "--lang", "en", "import", "calls", str(wrong)], env=env)
    assert refused.exit_code == 1
    assert refused.stderr.strip().startswith("Error: Nothing was imported:")
    assert "started_at" in refused.stderr
    path = tmp_path / "calls.csv"
    path.write_text(CANONICAL_FILE, encoding="utf-8")
    done = runner.invoke(
        app, ["--db", db_url, "--lang", "en", "import", "calls", str(path), "--report", "json"], env=env
    )
    assert done.exit_code == 0, done.stderr
    assert '"created": 0' in done.stdout  # no deals yet: every call waits for its deal
    assert "5 calls matched no deal yet: they are kept" in done.stdout


def test_durations_as_exports_write_them() -> None:
    assert [parse_duration(v) for v in ("95", "95.4", "1:35", "0:01:35", "", "1:02:03")] == [95, 95, 95, 95, 0, 3723]


def test_the_call_map_in_the_docs_reads() -> None:
    import re
    import tomllib

    from voronka.ingest.importers.call_maps import parse_call_map

    text = (Path(__file__).parent.parent / "docs" / "import.md").read_text(encoding="utf-8")
    block = re.search(r'```toml\n(name = "my-pbx".*?)```', text, flags=re.S)
    assert block is not None
    parsed = parse_call_map(tomllib.loads(block.group(1)), "my-pbx")
    assert parsed.columns["client_number"] == ("Номер клиента", "Абонент")
    assert parsed.directions["исходящий звонок"].value == "out"


@pytest.mark.usefixtures("deals")
def test_calls_without_their_line_are_named_in_the_diagnosis(session: Session, tmp_path: Path) -> None:
    import datetime as dt

    from voronka.analysis.diagnose import run_diagnosis

    path = tmp_path / "calls.csv"
    path.write_text(
        "started_at,direction,client_number,outcome\n"
        "2026-03-02 10:07,out,+79123456789,answered\n2026-03-02 10:09,out,+79123456789,no_answer\n",
        encoding="utf-8",
    )
    account = default_account(session=session)
    import_calls(session=session, account=account, path=path, call_map=CANONICAL)
    notes = run_diagnosis(session=session, account=account, today=dt.date(2026, 3, 20)).notes
    said = [n.render("en") for n in notes if n.key == "diagnose.lines_unknown"]
    assert said == [
        "100% of the outgoing calls do not say which line they went out on: the spam check (the answer rate of each "
        "number) cannot see them. Log the outgoing number, or import the telephony's own export (voronka import calls)."
    ]
    russian = next(n.render("ru") for n in notes if n.key == "diagnose.lines_unknown")
    assert russian.startswith("100\u00a0%")  # CLDR: a no-break space in Russian


@pytest.mark.parametrize("value", ["1e400", "nan", "inf", "-5", "1e18", "999999999:00"])
def test_durations_out_of_range_are_bad_rows(value: str) -> None:
    with pytest.raises(RowError):
        parse_duration(value)


@pytest.mark.usefixtures("deals")
def test_an_over_long_number_or_duration_rejects_only_its_row(session: Session, tmp_path: Path) -> None:
    """PostgreSQL refused a 60-character number and SQLite kept it; a duration of 1e400 crashed the
    import. Each is now its own row's reason, and the rest of the file lands on both databases."""
    path = tmp_path / "calls.csv"
    path.write_text(
        CANONICAL_FILE
        + "2026-03-02 10:20,out,+7 495 111-22-33," + "8" * 60 + ",answered,10,Анна,\n"
        + "2026-03-02 10:21,out," + "7" * 60 + ",8 (912) 345-67-89,answered,10,Анна,\n"
        + "2026-03-02 10:22,out,+7 495 111-22-33,8 (912) 345-67-89,answered,1e400,Анна,\n",
        encoding="utf-8",
    )  # fmt: skip
    report = import_calls(session=session, account=default_account(session=session), path=path, call_map=CANONICAL)
    session.commit()
    assert report.created == 4
    assert [(r.line, r.reason.key) for r in report.rejected][1:] == [
        (8, "import.cell_too_long"), (9, "import.cell_too_long"), (10, "import.bad_duration")
    ]  # fmt: skip


@pytest.mark.usefixtures("deals")
def test_a_call_before_its_deal_waits_and_lands_when_the_deal_is_imported(session: Session, tmp_path: Path) -> None:
    """The calls file came first (the telephony's export is daily, the deals weekly): the call of
    +7 999 000-00-00 is kept, and lands — speed to lead and all — when its deal is imported."""
    from voronka.crm.accounts import find_pipeline
    from voronka.ingest.importers import ImportTarget, import_file
    from voronka.models import WaitingCall

    path = tmp_path / "calls.csv"
    path.write_text(CANONICAL_FILE, encoding="utf-8")
    account = default_account(session=session)
    import_calls(session=session, account=account, path=path, call_map=CANONICAL)
    session.commit()
    assert session.scalar(select(func.count()).select_from(WaitingCall)) == 1
    again = import_calls(session=session, account=account, path=path, call_map=CANONICAL)
    session.commit()
    assert session.scalar(select(func.count()).select_from(WaitingCall)) == 1  # kept once, however often it comes
    assert again.created == 0
    deals_file = tmp_path / "deals.csv"
    deals_file.write_text("id,created_at,stage,phone\nnew-1,2026-03-02 10:58,Lead,+79990000000\n", encoding="utf-8")
    target = ImportTarget(session, account, find_pipeline(session=session, account=account))
    report = import_file(target=target, path=deals_file)
    session.commit()
    assert [(n.key, n.params["count"]) for n in report.notes] == [("import.calls_matched", 1)]
    assert session.scalar(select(func.count()).select_from(WaitingCall)) == 0
    deal = session.scalars(select(Deal).where(Deal.external_id == "new-1")).one()
    assert (deal.first_contact_at, deal.contact_minutes) == (at("2026-03-02 08:00"), 2)  # 11:00 Moscow


@pytest.mark.usefixtures("deals")
def test_a_sipuni_outgoing_call_is_counted_on_its_line_not_the_extension(session: Session, tmp_path: Path) -> None:
    """Sipuni's export with outgoingLine=1: «Откуда» is the employee's extension (997), «Исходящая
    линия» the line the client saw — our number, so the spam check compares lines, not people."""
    header = "Тип;Статус;Время;Схема;Откуда;Куда;Кто ответил;Исходящая линия;Длительность разговора, сек;ID записи"
    rows = [
        "Исходящий;Отвечен;02.03.2026 10:07:00;;997;89123456789;Анна;74951112233;95;b1",
        "Исходящий;Не отвечен;02.03.2026 10:09:00;;998;89123456789;Олег;;0;b2",  # no line given: the extension
        "Входящий;Отвечен;02.03.2026 10:12:00;Основная;89123456789;74951112233;Анна;;30;b3",
    ]
    path = tmp_path / "sipuni.csv"
    path.write_bytes("\n".join([header, *rows]).encode("cp1251"))
    report = import_calls(
        session=session, account=default_account(session=session), path=path, call_map=builtin_call_map("sipuni")
    )
    session.commit()
    assert report.created == 3
    numbers = {c.external_id: c.outgoing_number for c in session.scalars(select(CallAttempt))}
    assert numbers == {"sipuni:b1": "+7 495 111-22-33", "sipuni:b2": "998", "sipuni:b3": "+7 495 111-22-33"}
