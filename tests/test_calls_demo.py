"""The lesson's first diagnosis from calls that arrived the way a business's calls arrive: the demo's
planted spam number and slow manager are found again after its calls are taken away and brought back
from a telephony export (Sipuni's format) and from a Bitrix24 sync, matched to the deals by number."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tests.builders import account_for
from tests.fakes.bitrix24 import CODE, FakeBitrix24
from voronka.analysis.diagnose import Diagnosis, run_diagnosis
from voronka.demo import HEALTHY, SPAM_NUMBER, DemoOptions
from voronka.ingest.connectors import CONNECTORS
from voronka.ingest.connectors.http import RetryPolicy
from voronka.ingest.connectors.store import add_connection
from voronka.ingest.connectors.sync import sync_connection
from voronka.ingest.importers.call_maps import builtin_call_map
from voronka.ingest.importers.calls import import_calls
from voronka.models import CallAttempt, Deal, User
from voronka.secretstore import SecretStore

TODAY = dt.date(2026, 11, 27)
OUTCOME_WORDS = {"answered": "Отвечен", "no_answer": "Не отвечен", "busy": "Занято", "rejected": "Не отвечен"}


@pytest.fixture
def emptied(sqlite_demo: Callable[..., Session]) -> tuple[Session, list[tuple[dt.datetime, str, str, int, str, str]]]:
    """The demo with both problems, its calls taken out (returned as rows) and no first contacts."""
    session = sqlite_demo(
        DemoOptions(today=TODAY, leads=3000, problems=replace(HEALTHY, slow_manager=True, spam_number=True))
    )
    rows = session.execute(
        select(CallAttempt.at, CallAttempt.outgoing_number, CallAttempt.outcome, CallAttempt.duration_seconds,
               User.name, Deal.phone)
        .join(Deal, Deal.id == CallAttempt.deal_id)
        .join(User, User.id == CallAttempt.manager_id)
        .order_by(CallAttempt.id)
    ).all()  # fmt: skip
    session.execute(delete(CallAttempt))
    session.execute(update(Deal).values(first_contact_at=None, contact_minutes=None))
    session.commit()
    return session, [tuple(r) for r in rows]  # type: ignore[misc]


def found(diagnosis: Diagnosis) -> set[tuple[str, str | None]]:
    return {(f.code, f.subject.value if f.subject else None) for f in diagnosis.findings if f.confident}


PLANTED = {("outgoing_number_answer_rate", SPAM_NUMBER), ("manager_below_team", "Олег Кузнецов")}


def test_found_from_a_sipuni_export(
    emptied: tuple[Session, list[tuple[dt.datetime, str, str, int, str, str]]], tmp_path: Path
) -> None:
    session, calls = emptied
    lines = ["Тип;Статус;Время;Схема;Откуда;Куда;Кто ответил;Длительность звонка;Длительность разговора;ID записи"]
    for number, (at, ours, outcome, duration, manager, phone) in enumerate(calls, 1):
        when = at.strftime("%d.%m.%Y %H:%M:%S")
        digits = "".join(c for c in phone if c.isdigit())
        lines.append(f"Исходящий;{OUTCOME_WORDS[outcome]};{when};;{ours};8{digits[1:]};{manager};;{duration};r{number}")
    export = tmp_path / "sipuni.csv"
    export.write_bytes(("\n".join(lines) + "\n").encode("cp1251"))
    account = account_for(session)
    report = import_calls(session=session, account=account, path=export, call_map=builtin_call_map("sipuni"))
    session.commit()
    assert (report.created, len(report.rejected)) == (len(calls), 0)
    assert found(run_diagnosis(session=session, account=account, today=TODAY)) >= PLANTED


def test_found_from_a_bitrix24_sync(
    emptied: tuple[Session, list[tuple[dt.datetime, str, str, int, str, str]]], httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The deals came from elsewhere; the PBX behind Bitrix24 logged the calls with the clients'
    numbers (no CRM contact): the sync matches them by number."""
    session, calls = emptied
    portal = FakeBitrix24(users={1: ("Олег", "Кузнецов")})
    codes = {"answered": "200", "no_answer": "304", "busy": "486", "rejected": "603"}
    managers = {name: i for i, name in enumerate(sorted({c[4] for c in calls}), start=10)}
    portal.users.update({i: tuple(name.split(" ", 1)) for name, i in managers.items()})  # type: ignore[misc]
    for at, ours, outcome, duration, manager, phone in calls:
        when = at.replace(tzinfo=dt.UTC)
        portal.call(None, when, code=codes[outcome], duration=duration, line=ours, phone=phone, user=managers[manager])
    portal.install(httpserver)
    store = SecretStore(tmp_path / "secrets.json")
    account = account_for(session)
    address = httpserver.url_for(f"/rest/1/{CODE}/")
    add_connection(
        session=session, account=account, connector=CONNECTORS["bitrix24"], name="b24", address=address,
        settings={"requests_per_second": 0}, secret_values={"webhook_url": address}, store=store,
    )  # fmt: skip
    session.commit()
    fast = RetryPolicy(attempts=3, first_wait=0.001, max_wait=0.01)
    report = sync_connection(session=session, account=account, store=store, name="b24", retry=fast)
    assert (report.calls, report.calls_unmatched) == (len(calls), 0)
    assert (
        found(run_diagnosis(session=session, account=account, today=TODAY, pipeline=_demo_pipeline(session))) >= PLANTED
    )


def _demo_pipeline(session: Session) -> str:
    from voronka.models import Pipeline

    return str(session.scalars(select(Pipeline.name).order_by(Pipeline.id)).first())
