"""Alerts on the team's working time: a lead at night pages as the next working day begins, the
escalation counts working minutes, a lead uncalled at its escalation goes to the next manager
(once, even from two worker passes at once), and a client who called in vain is called back."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests import test_alerts
from tests.builders import Journey, add_journey, at, pipeline_for
from tests.fakes.telegram import FakeTelegram
from tests.test_alerts import HEAD_CHAT, MANAGER_CHAT, OWNER_CHAT, run
from voronka.alerts.config import alert_settings, set_working
from voronka.alerts.handover import hand_over
from voronka.alerts.model import Event
from voronka.alerts.outbox import Letter, enqueue
from voronka.alerts.service import take_lead
from voronka.crm.accounts import default_account
from voronka.crm.auth import add_user
from voronka.crm.deals import log_call, update_deal
from voronka.db import session_factory
from voronka.ingest.importers.call_maps import CANONICAL
from voronka.ingest.importers.calls import import_calls
from voronka.models import CallDirection, CallOutcome, Deal, DealEvent, OutboxMessage, Role, User
from voronka.secretstore import SecretStore

SECOND_CHAT = 504
store, team, telegram = test_alerts.store, test_alerts.team, test_alerts.telegram  # the alerts tests' fixtures


@pytest.fixture
def second(session: Session, team: dict[str, User], telegram: FakeTelegram) -> User:
    """A second manager (after Анна in turn), on Telegram."""
    telegram.chats.add(SECOND_CHAT)
    user = add_user(
        session=session, account=default_account(session=session), name="Борис", email="boris@example.com",
        password="секрет-пароль-2", role=Role.MANAGER,
    )  # fmt: skip
    user.telegram_chat_id, user.lang = str(SECOND_CHAT), "ru"
    assert user.id > team["manager"].id  # next after Анна in turn
    session.commit()
    return user


def _working(session: Session, *, handover: bool = False) -> None:
    set_working(
        session=session, account=default_account(session=session), hours="09:00-18:00", calendar="RU",
        handover=handover,
    )  # fmt: skip
    session.commit()


@pytest.mark.usefixtures("team")
def test_a_lead_at_night_before_a_holiday_pages_its_manager_as_the_next_working_day_begins(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    _working(session)
    alert_settings(session=session, account=default_account(session=session)).started_at = at("2026-03-06 00:00")
    # Friday 6 March 2026, 23:00 in Moscow; Monday the 9th is a holiday (8 March falls on a Sunday).
    lead = add_journey(session, pipeline_for(session), Journey("2026-03-06 20:00", manager="Анна"))
    session.commit()
    for moment in ("2026-03-06 20:05", "2026-03-07 07:00", "2026-03-09 06:00", "2026-03-10 05:59"):
        run(engine, store, moment)
    assert telegram.sent == []  # nobody paged at night, at the weekend, on the holiday
    run(engine, store, "2026-03-10 06:00")  # Tuesday 09:00
    assert len(telegram.texts_to(MANAGER_CHAT)) == 1
    assert f"deals/{lead.id}" in telegram.texts_to(MANAGER_CHAT)[0]
    run(engine, store, "2026-03-10 06:09")
    assert telegram.texts_to(OWNER_CHAT) == []  # nine working minutes: not yet
    run(engine, store, "2026-03-10 06:10")
    assert len(telegram.texts_to(OWNER_CHAT)) == 1
    assert len(telegram.texts_to(HEAD_CHAT)) == 1
    assert len(telegram.texts_to(MANAGER_CHAT)) == 1


@pytest.mark.usefixtures("team")
def test_the_escalation_counts_working_minutes_across_the_evening(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    _working(session)
    lead = add_journey(session, pipeline_for(session), Journey("2026-03-05 14:57", manager="Анна"))  # Thu 17:57
    session.commit()
    run(engine, store, "2026-03-05 15:02")  # five minutes by the wall clock, three of them working
    run(engine, store, "2026-03-05 20:00")
    assert telegram.sent == []
    run(engine, store, "2026-03-06 06:02")  # Friday 09:02: five working minutes
    assert len(telegram.texts_to(MANAGER_CHAT)) == 1
    run(engine, store, "2026-03-06 06:06")
    assert telegram.texts_to(OWNER_CHAT) == []
    run(engine, store, "2026-03-06 06:07")
    assert [f"deals/{lead.id}" in text for text in telegram.texts_to(OWNER_CHAT)] == [True]


def _managers_of(session: Session, deal: Deal) -> list[tuple[str, str]]:
    events = session.scalars(
        select(DealEvent).where(DealEvent.deal_id == deal.id, DealEvent.kind == "changed").order_by(DealEvent.id)
    )
    return [(e.data["old"], e.data["new"]) for e in events if e.data.get("field") == "manager"]


def test_a_lead_uncalled_at_its_escalation_goes_to_the_next_manager_once(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram, second: User
) -> None:
    _working(session, handover=True)
    lead = add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    run(engine, store, "2026-03-02 07:05")
    run(engine, store, "2026-03-02 07:09")
    session.refresh(lead)
    assert lead.manager_id != second.id  # not yet: the manager still has time
    run(engine, store, "2026-03-02 07:10")
    for moment in ("2026-03-02 07:11", "2026-03-02 07:30", "2026-03-02 09:00"):
        run(engine, store, moment)
    session.refresh(lead)
    assert lead.manager_id == second.id
    assert _managers_of(session, lead) == [("Анна", "Борис")]  # the deal's history says who had it
    handed_at = session.scalars(
        select(DealEvent.at).where(DealEvent.deal_id == lead.id, DealEvent.kind == "changed")
    ).one()
    assert handed_at == at("2026-03-02 07:10")  # on the worker's clock, not the machine's
    assert len(telegram.texts_to(MANAGER_CHAT)) == 1  # Анна's alert, once
    to_second = telegram.texts_to(SECOND_CHAT)
    assert len(to_second) == 1
    assert to_second[0].startswith("⏰ Лид теперь ваш: Анна не позвонил(а)")
    escalation = telegram.texts_to(OWNER_CHAT)
    assert len(escalation) == 1
    assert "Анна" in escalation[0]  # the leaders hear whose lead it was
    pressed = next(m for m in telegram.sent if m["chat"]["id"] == SECOND_CHAT)
    assert pressed["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == f"take:{lead.id}"


@pytest.mark.usefixtures("team")
def test_without_the_setting_a_lead_keeps_its_manager(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram, second: User
) -> None:
    lead = add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    run(engine, store, "2026-03-02 07:10")
    session.refresh(lead)
    assert lead.manager_id != second.id
    assert telegram.texts_to(SECOND_CHAT) == []


@pytest.mark.usefixtures("second")
def test_two_passes_at_once_hand_a_lead_over_once(engine: Engine, session: Session) -> None:
    lead = add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    barrier, sessions = threading.Barrier(2, timeout=60), session_factory(engine)

    def pass_() -> bool:
        with sessions() as mine, mine.begin():
            account = default_account(session=mine)
            barrier.wait()
            return hand_over(session=mine, account=account, deal_id=lead.id, now=at("2026-03-02 07:10")) is not None

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(lambda _: pass_(), range(2)))
    assert outcomes == [False, True]
    session.expire_all()
    assert _managers_of(session, lead) == [("Анна", "Борис")]
    markers = session.scalars(select(OutboxMessage.key).where(OutboxMessage.key == f"handover:{lead.id}")).all()
    assert markers == [f"handover:{lead.id}"]


@pytest.mark.usefixtures("second")
def test_two_worker_passes_at_once_tell_the_new_manager_once(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    _working(session, handover=True)
    lead = add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    run(engine, store, "2026-03-02 07:05")
    barrier = threading.Barrier(2, timeout=60)

    def pass_() -> None:
        barrier.wait()
        run(engine, store, "2026-03-02 07:10")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: pass_(), range(2)))
    run(engine, store, "2026-03-02 07:11")
    assert len(telegram.texts_to(SECOND_CHAT)) == 1
    assert len(telegram.texts_to(MANAGER_CHAT)) == 1
    session.expire_all()
    assert _managers_of(session, lead) == [("Анна", "Борис")]


@pytest.mark.usefixtures("team")
def test_a_missed_incoming_call_on_an_open_deal_tells_its_manager_once(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    pipeline = pipeline_for(session)
    contacted = "2026-03-01 10:00"  # called before alerts began: no lead alert about these deals
    open_deal = add_journey(session, pipeline, Journey(contacted, manager="Анна"))
    answered = add_journey(session, pipeline, Journey(contacted, manager="Анна"))
    closed = add_journey(session, pipeline, Journey(contacted, manager="Анна", won="2026-03-01 11:00"))
    for deal, outcome in ((open_deal, CallOutcome.NO_ANSWER), (answered, CallOutcome.ANSWERED)):
        log_call(
            session=session, deal=deal, outcome=outcome, at=at("2026-03-02 07:00"), direction=CallDirection.INCOMING
        )
    log_call(
        session=session, deal=closed, outcome=CallOutcome.BUSY, at=at("2026-03-02 07:00"),
        direction=CallDirection.INCOMING,
    )  # fmt: skip
    log_call(session=session, deal=open_deal, outcome=CallOutcome.NO_ANSWER, at=at("2026-03-02 07:00"))  # ours
    session.commit()
    for moment in ("2026-03-02 07:01", "2026-03-02 07:02", "2026-03-02 08:00"):
        run(engine, store, moment)
    texts = telegram.texts_to(MANAGER_CHAT)
    assert len(texts) == 1
    assert texts[0].startswith("📵 Пропущенный звонок в")
    assert f"deals/{open_deal.id}" in texts[0]
    assert telegram.texts_to(OWNER_CHAT) == []
    assert telegram.texts_to(HEAD_CHAT) == []


@pytest.mark.usefixtures("team")
def test_a_missed_call_at_night_is_told_as_work_begins(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    _working(session)
    deal = add_journey(session, pipeline_for(session), Journey("2026-03-01 10:00", manager="Анна"))
    log_call(
        session=session, deal=deal, outcome=CallOutcome.NO_ANSWER, at=at("2026-03-02 19:30"),
        direction=CallDirection.INCOMING,
    )  # fmt: skip  # Monday 22:30 in Moscow
    session.commit()
    run(engine, store, "2026-03-02 19:31")
    assert telegram.sent == []
    run(engine, store, "2026-03-03 06:00")
    assert len(telegram.texts_to(MANAGER_CHAT)) == 1
    assert "22:30" in telegram.texts_to(MANAGER_CHAT)[0]  # the time as the manager's clock showed it


def test_a_key_already_in_the_outbox_is_not_new_on_either_database(session: Session) -> None:
    """``enqueue`` says whether it stored the row: PostgreSQL's row count through a Session is -1,
    which once read as "new" every time."""
    account = default_account(session=session)
    letter = Letter("once", Event.FINDING, "none", None, "", "", "", {})
    assert enqueue(session=session, account=account, letter=letter, now=at("2026-03-02 07:00")) is True
    assert enqueue(session=session, account=account, letter=letter, now=at("2026-03-02 07:01")) is False


@pytest.mark.usefixtures("second")
def test_a_lead_taken_with_im_calling_meanwhile_is_not_handed_over(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram, team: dict[str, User]
) -> None:
    _working(session, handover=True)
    lead = add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    taken = take_lead(
        session=session, account=default_account(session=session), user=team["manager"], deal_id=lead.id,
        now=at("2026-03-02 07:09"),
    )  # fmt: skip
    assert taken.key == "alerts.take_ok"
    session.commit()
    with session_factory(engine)() as other, other.begin():
        assert (
            hand_over(
                session=other, account=default_account(session=other), deal_id=lead.id, now=at("2026-03-02 07:10")
            )
            is None
        )
    run(engine, store, "2026-03-02 07:10")
    session.refresh(lead)
    assert lead.manager_id == team["manager"].id
    assert telegram.texts_to(SECOND_CHAT) == []


MISSED_CALLS = """started_at,direction,our_number,client_number,outcome,duration,manager,deal_id
2026-03-02 10:03,in,+7 495 111-22-33,8 (912) 345-67-89,no_answer,0,,
2026-03-02 10:20,in,+7 495 111-22-33,8 (912) 345-67-89,answered,95,Анна,
2026-03-02 10:25,in,+7 495 111-22-33,+7 999 000-00-00,no_answer,0,,
"""


@pytest.mark.usefixtures("team")
def test_a_missed_call_imported_from_the_telephony_tells_the_manager_and_a_stranger_tells_nobody(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram, tmp_path: Path
) -> None:
    deal = add_journey(session, pipeline_for(session), Journey("2026-03-01 10:00", manager="Анна"))
    update_deal(session=session, deal=deal, changes={"phone": "+7 912 345-67-89"})
    session.commit()
    path = tmp_path / "calls.csv"
    path.write_text(MISSED_CALLS, encoding="utf-8")
    report = import_calls(session=session, account=default_account(session=session), path=path, call_map=CANONICAL)
    session.commit()
    assert report.created == 2  # the stranger's call waits for a deal of its number
    for moment in ("2026-03-02 07:30", "2026-03-02 07:31"):
        run(engine, store, moment)
    texts = telegram.texts_to(MANAGER_CHAT)
    assert len(texts) == 1
    assert texts[0].startswith("📵 Пропущенный звонок в 2 мар. 2026, 10:03 с номера +7 912 345-67-89")
    assert f"deals/{deal.id}" in texts[0]
    assert [m for m in telegram.sent if m["text"].startswith("📵") and m["chat"]["id"] != MANAGER_CHAT] == []
