"""The built-in call maps against the vendors' documented export fields: UIS/CoMagic's
get.calls_report and Zadarma's PBX statistics — hand-made files read through each map, the calls
stored with their direction, the client's number (the external party), our line (what the spam
check compares: never an extension), talk seconds and answered or missed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import at, pipeline_for
from voronka.crm.accounts import default_account, update_account
from voronka.crm.deals import create_deal
from voronka.crm.new_deal import NewDeal
from voronka.ingest.importers.call_maps import builtin_call_map
from voronka.ingest.importers.calls import import_calls
from voronka.models import CallAttempt, Deal, User

Stored = tuple[str, str, str | None, str | None, int, str]


@pytest.fixture
def deal(session: Session) -> Deal:
    account = default_account(session=session)
    update_account(session=session, account=account, timezone="Europe/Moscow")
    made = create_deal(
        session=session,
        pipeline=pipeline_for(session),
        new=NewDeal(currency="RUB", created_at=at("2026-03-02 07:00"), phone="+7 912 345-67-89"),
    )
    session.commit()
    return made


def stored(session: Session) -> list[Stored]:
    rows = session.execute(
        select(
            CallAttempt.external_id,
            CallAttempt.direction,
            CallAttempt.client_phone,
            CallAttempt.outgoing_number,
            CallAttempt.duration_seconds,
            CallAttempt.outcome,
        ).order_by(CallAttempt.external_id)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def read(session: Session, tmp_path: Path, name: str, text: str, map_name: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    report = import_calls(
        session=session, account=default_account(session=session), path=path, call_map=builtin_call_map(map_name)
    )
    session.commit()
    assert report.rejected == []


# get.calls_report's fields (https://www.uiscom.ru/academiya/spravochnyj-centr/dokumentatsiya-api/
# data-api/report/get_calls_report/): clean_talk_duration is the talk alone, talk_duration runs from
# the first talk to post-processing; employees is an array, the flat *_employee_full_name fields name.
UIS_FILE = (
    "id,start_time,direction,is_lost,contact_phone_number,virtual_phone_number,talk_duration,"
    "clean_talk_duration,total_duration,employees,last_talked_employee_full_name\n"
    '501,2026-03-02 10:03:00,in,true,79123456789,74951112233,0,0,25,"[]",\n'
    "502,2026-03-02 10:07:00,out,false,79123456789,74951112233,130,95,150,"
    '"[{""employee_id"": 7, ""employee_full_name"": ""Анна Петрова"", ""is_answered"": true}]",Анна Петрова\n'
)


def test_a_uis_calls_report_reads_talk_time_and_the_line(session: Session, deal: Deal, tmp_path: Path) -> None:
    read(session, tmp_path, "uis.csv", UIS_FILE, "uis")
    assert stored(session) == [
        ("uis:501", "in", "+7 912 345-67-89", "+7 495 111-22-33", 0, "no_answer"),
        ("uis:502", "out", "+7 912 345-67-89", "+7 495 111-22-33", 95, "answered"),  # clean talk, not 130
    ]
    names = {u.name for u in session.scalars(select(User))}
    assert "Анна Петрова" in names and not any(n.startswith("[") for n in names)  # noqa: PT018 (not the array)
    refreshed = session.get(Deal, deal.id)
    assert refreshed is not None and refreshed.contact_minutes == 7  # noqa: PT018


def test_a_uis_export_without_clean_talk_reads_talk_duration(session: Session, deal: Deal, tmp_path: Path) -> None:
    text = (
        "id,start_time,direction,is_lost,contact_phone_number,virtual_phone_number,talk_duration\n"
        "601,2026-03-02 10:07:00,out,false,79123456789,74951112233,80\n"
    )
    read(session, tmp_path, "uis.csv", text, "uis")
    assert [(s[0], s[4], s[5]) for s in stored(session)] == [("uis:601", 80, "answered")]
    assert deal.id


# Zadarma's PBX statistics rows (github.com/zadarma/user-api-v1, lib/Response/PbxStatistics.php):
# call_id, sip, callstart, clid, destination, disposition, seconds, is_recorded, pbx_call_id; asked
# per call_type (in/out, lib/Api.php getPbxStatistics), so the row carries no direction itself.
ZADARMA_OUT = (
    "call_id,sip,callstart,clid,destination,disposition,seconds,is_recorded,pbx_call_id\n"
    "1710000001.1,100,2026-03-02 10:07:00,74951112233,79123456789,answered,95,true,out_aaa\n"
    "1710000002.1,101,2026-03-02 10:09:00,74951112233,79123456789,no answer,0,false,out_bbb\n"
    "1710000003.1,101,2026-03-02 10:11:00,74951112233,79123456789,busy,0,false,out_ccc\n"
)
ZADARMA_IN = (
    "call_id,sip,callstart,clid,destination,disposition,seconds,is_recorded,pbx_call_id\n"
    "1710000000.1,100,2026-03-02 10:03:00,79123456789,74951112233,cancel,0,false,in_aaa\n"
    "1710000004.1,100,2026-03-02 10:20:00,79123456789,74951112233,answered,42,true,in_bbb\n"
)


def test_zadarma_statistics_in_both_directions(session: Session, deal: Deal, tmp_path: Path) -> None:
    read(session, tmp_path, "out.csv", ZADARMA_OUT, "zadarma-out")
    read(session, tmp_path, "in.csv", ZADARMA_IN, "zadarma-in")
    client, line = "+7 912 345-67-89", "+7 495 111-22-33"
    assert stored(session) == [
        ("zadarma:1710000000.1", "in", client, line, 0, "no_answer"),  # the client hung up: missed
        ("zadarma:1710000001.1", "out", client, line, 95, "answered"),  # our line is the CallerID, not sip 100
        ("zadarma:1710000002.1", "out", client, line, 0, "no_answer"),
        ("zadarma:1710000003.1", "out", client, line, 0, "busy"),
        ("zadarma:1710000004.1", "in", client, line, 42, "answered"),
    ]
    refreshed = session.get(Deal, deal.id)
    assert refreshed is not None and refreshed.contact_minutes == 7  # noqa: PT018


def test_a_zadarma_call_type_column_gives_the_direction(session: Session, deal: Deal, tmp_path: Path) -> None:
    text = (
        "call_type,callstart,clid,destination,disposition,seconds,pbx_call_id\n"
        "in,2026-03-02 10:03:00,79123456789,74951112233,answered,30,in_x\n"
        "out,2026-03-02 10:07:00,74951112233,79123456789,answered,60,out_y\n"
    )
    read(session, tmp_path, "mixed.csv", text, "zadarma-out")
    assert [(s[0], s[1], s[2], s[3]) for s in stored(session)] == [
        ("zadarma:in_x", "in", "+7 912 345-67-89", "+7 495 111-22-33"),
        ("zadarma:out_y", "out", "+7 912 345-67-89", "+7 495 111-22-33"),
    ]
    assert deal.id
