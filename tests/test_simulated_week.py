"""A business lives its working days on a server, on a clock the test holds (nothing sleeps).

Three managers, a head of sales (on e-mail) and the owner (on Telegram). Website leads arrive through
the lead form in working hours and go round the managers; each manager calls some leads at once,
some late (after their alert, before the escalation) and some never; a task falls due; amoCRM and
Yandex Direct (fakes built from their docs) change under the syncs — deals moved and added, a day's
cost revised; the worker passes every simulated minute from 08:55 to 18:30 (every half hour before
and after, when nothing arrives), and Telegram (a fake Bot API) and a real SMTP server receive.

At the end of every day the invariants hold: every lead belongs to someone who can log in; each lead
left uncalled past the threshold gave its manager exactly one alert and, uncalled at twice the
threshold, the leaders exactly one escalation each, after the manager's; a lead called in time gave
none; each pipeline's funnel counts its raw deals; the spend equals the cabinet's; no job fails or
is stuck; nothing went out twice. The next morning's digest counts the day's leads as they are.
"""

from __future__ import annotations

import datetime as dt
import email
import random
import re
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import funnel, pipeline_for
from tests.fakes import amocrm
from tests.fakes.telegram import TOKEN, FakeTelegram, still_pacer
from tests.fakes.yandex_direct import TOKEN as DIRECT_TOKEN
from tests.fakes.yandex_direct import FakeDirect
from voronka.alerts.config import alert_settings, set_rules, set_smtp, set_telegram
from voronka.crm.accounts import default_account, update_account
from voronka.crm.auth import add_user
from voronka.crm.deals import log_call
from voronka.crm.leads import add_lead_form, capture_lead, set_form_assignment
from voronka.crm.tasks import add_task
from voronka.db import session_factory
from voronka.ingest.connectors import CONNECTORS, SPEND_CONNECTORS
from voronka.ingest.connectors.store import add_connection
from voronka.jobs.store import ensure_jobs, set_every
from voronka.jobs.worker import run_due
from voronka.models import AdSpend, AssignRule, CallOutcome, Deal, Job, OutboxMessage, Pipeline, Role, TaskKind, User
from voronka.money import micros_to_minor
from voronka.secretstore import SecretStore

DAYS = 2
MOSCOW = dt.timedelta(hours=3)
START = dt.datetime(2026, 3, 2, 5, 0)  # Monday 08:00 in Moscow, UTC as stored
LEAD_MINUTES = 5
LEADS_A_DAY = 12
OWNER_CHAT, MANAGER_CHATS = 900, (911, 912, 913)
SITE = "https://crm.example.ru"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@dataclass
class Lead:
    deal_id: int
    manager_id: int
    arrived: dt.datetime
    calls_after: int | None
    """Minutes after arrival the manager calls; None: never."""


@dataclass
class Business:
    sessions: sessionmaker[Session]
    store: SecretStore
    telegram: FakeTelegram
    inbox: Inbox
    crm: amocrm.FakeAmoCrm
    direct: FakeDirect
    form_id: int
    chats: dict[int, int]
    """A manager's user id → their chat."""
    leads: list[Lead] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(38))


def local(moment: dt.datetime) -> dt.datetime:
    return moment + MOSCOW


def epoch(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp())


@pytest.fixture
def business(
    session: Session, engine: Engine, httpserver: HTTPServer, inbox: tuple[Inbox, int], tmp_path: Path
) -> Business:
    received, port = inbox
    telegram = FakeTelegram(chats={OWNER_CHAT, *MANAGER_CHATS})
    telegram.install(httpserver)
    crm = amocrm.world(40)
    crm.clock = epoch(START)
    crm.install(httpserver)
    direct = FakeDirect(offline_polls=1)  # every report is built offline first: collected a pass later
    for back in range(1, 80):
        day = local(START).date() + dt.timedelta(days=DAYS) - dt.timedelta(days=back)
        direct.spend(day, 101, "Поиск", 1000 + back * 3.33)
        direct.spend(day, 202, "РСЯ", 250.5)
    direct.install(httpserver)

    store = SecretStore(tmp_path / "secrets.json")
    account = default_account(session=session)
    update_account(session=session, account=account, timezone="Europe/Moscow")
    pipeline = pipeline_for(session, name="Sales")
    owner = add_user(
        session=session, account=account, name="Олег", email="owner@example.ru", password="пароль-владельца-1",
        role=Role.OWNER,
    )  # fmt: skip
    owner.telegram_chat_id = str(OWNER_CHAT)
    add_user(
        session=session, account=account, name="Ирина", email="head@example.ru", password="пароль-руководителя-1",
        role=Role.HEAD,
    )  # fmt: skip
    chats = {}
    for number, chat in enumerate(MANAGER_CHATS, start=1):
        manager = add_user(
            session=session, account=account, name=f"Менеджер {number}", email=f"m{number}@example.ru",
            password=f"пароль-менеджера-{number}", role=Role.MANAGER,
        )  # fmt: skip
        manager.telegram_chat_id = str(chat)
        chats[manager.id] = chat
    set_telegram(
        session=session, account=account, store=store, token=TOKEN, api_url=httpserver.url_for("/").rstrip("/")
    )
    set_smtp(
        session=session, account=account, store=store, host="127.0.0.1", port=port, security="none",
        sender="crm@example.ru",
    )  # fmt: skip
    set_rules(session=session, account=account, lead_minutes=LEAD_MINUTES)
    alert_settings(session=session, account=account).started_at = START  # set up as the week begins
    form, _ = add_lead_form(session=session, account=account, pipeline=pipeline, name="Сайт", source="Сайт")
    set_form_assignment(session=session, form=form, rule=AssignRule.ROUND_ROBIN)
    # The site took leads before this week (so amoCRM's first sync brings its own pipeline rather than
    # taking over an unused one): one from the day before, long answered.
    first = {"name": "Первый клиент", "phone": "+7 999 000-00-01", "tranid": "t0"}
    capture_lead(session=session, form=form, payload=first, now=START - dt.timedelta(days=1))
    add_connection(
        session=session, account=account, connector=CONNECTORS["amocrm"], name="amo",
        address=httpserver.url_for("").rstrip("/"), settings={"requests_per_second": 0},
        secret_values={"token": amocrm.TOKEN}, store=store,
    )  # fmt: skip
    add_connection(
        session=session, account=account, connector=SPEND_CONNECTORS["yandex_direct"], name="direct",
        address=httpserver.url_for("/").rstrip("/"), secret_values={"token": DIRECT_TOKEN}, store=store,
        settings={"sources": {"101": "Яндекс Поиск", "202": "Яндекс РСЯ"}},
    )  # fmt: skip
    ensure_jobs(session=session, account=account, now=START)
    for name in ("amo", "direct"):  # each sync hourly
        set_every(session=session, account=account, kind="sync", target=name, minutes=60, now=START)
    session.commit()
    return Business(session_factory(engine), store, telegram, received, crm, direct, form.id, chats)


def _day_plan(business: Business, day: dt.date) -> dict[dt.datetime, int]:
    """When the day's leads arrive (UTC minute → how many), in working hours 09:00–18:00."""
    plan: Counter[dt.datetime] = Counter()
    for _ in range(LEADS_A_DAY):
        minute = business.rng.randrange(9 * 60, 18 * 60)
        plan[dt.datetime.combine(day, dt.time(minute // 60, minute % 60)) - MOSCOW] += 1
    return dict(plan)


def _arrive(business: Business, now: dt.datetime, count: int) -> None:
    from voronka.models import LeadForm

    with business.sessions() as session:
        form = session.get(LeadForm, business.form_id)
        assert form is not None
        for _ in range(count):
            number = len(business.leads) + 1
            payload = {"name": f"Клиент {number}", "phone": f"+7 999 {number:03d}-00-00", "tranid": f"t{number}"}
            deal = capture_lead(session=session, form=form, payload=payload, now=now).deal
            session.commit()
            fate = business.rng.random()
            calls_after = business.rng.randrange(1, LEAD_MINUTES) if fate < 0.4 else None
            if 0.4 <= fate < 0.7:
                calls_after = business.rng.randrange(LEAD_MINUTES + 1, 2 * LEAD_MINUTES)  # after the alert
            business.leads.append(Lead(deal.id, deal.manager_id or 0, now, calls_after))


def _call(business: Business, now: dt.datetime) -> None:
    due = [
        lead
        for lead in business.leads
        if lead.calls_after is not None and lead.arrived + dt.timedelta(minutes=lead.calls_after) == now
    ]
    with business.sessions() as session:
        for lead in due:
            deal = session.get(Deal, lead.deal_id)
            assert deal is not None
            log_call(
                session=session, deal=deal, outcome=CallOutcome.ANSWERED, at=now, duration_seconds=90,
                manager=session.get(User, lead.manager_id),
            )  # fmt: skip
        session.commit()


def _change_the_crm(business: Business, now: dt.datetime, day: int) -> None:
    """The team works in amoCRM too: leads move on, a new one comes in and is taken at once."""
    crm, at = business.crm, epoch(now)
    for lead_id in sorted(crm.leads)[day * 5 : day * 5 + 5]:
        lead = crm.leads[lead_id]
        if lead.status_id not in (amocrm.WON, amocrm.LOST):
            crm.move(lead_id, amocrm.WON if day % 2 else amocrm.STATUSES[3][0], at)
    number = max(crm.leads) + 1
    fresh = amocrm.Lead(number, amocrm.PIPELINE_ID, amocrm.STATUSES[0][0], at - 120, at - 120, 30_000, 504141)
    crm.add_lead(fresh, [(at - 60, amocrm.STATUSES[1][0])])


def _revise_spend(business: Business, now: dt.datetime) -> None:
    """Direct corrects yesterday's cost of the search campaign (invalid clicks refunded)."""
    yesterday = local(now).date() - dt.timedelta(days=1)
    direct = business.direct
    direct.costs = [c for c in direct.costs if not (c[0] == yesterday and c[1] == 101)]
    direct.spend(yesterday, 101, "Поиск", 777.77)


def _task(business: Business, now: dt.datetime) -> tuple[int, int]:
    lead = business.leads[-1]
    with business.sessions() as session:
        deal, manager = session.get(Deal, lead.deal_id), session.get(User, lead.manager_id)
        assert deal is not None
        assert manager is not None
        task = add_task(
            session=session, deal=deal, kind=TaskKind.CALL, due_at=now + dt.timedelta(hours=5), responsible=manager,
            text="Перезвонить после обеда",
        )  # fmt: skip
        session.commit()
        return task.id, lead.manager_id


def test_a_simulated_week_keeps_data_and_alerts_flowing(business: Business) -> None:
    now, tasks, day = START, [], 0
    plans: dict[dt.datetime, int] = {}
    while now <= START + dt.timedelta(days=DAYS, hours=1, minutes=5):  # to the last morning's digest
        clock = local(now)
        if clock.time() == dt.time(8, 0):
            plans |= _day_plan(business, clock.date())
        if now in plans:
            _arrive(business, now, plans[now])
        _call(business, now)
        if clock.time() == dt.time(10, 0):
            tasks.append(_task(business, now))
        if clock.time() == dt.time(13, 0):
            _change_the_crm(business, now, day)
        if clock.time() == dt.time(12, 0) and day > 0:
            _revise_spend(business, now)
        runs = run_due(
            sessions=business.sessions, store=business.store, now=now, owner="server", base_url=SITE,
            pacer=still_pacer(),
        )  # fmt: skip
        assert [r.error.render("en") for r in runs if r.error] == []
        if clock.time() == dt.time(20, 0):
            _check_the_day(business, now, tasks)
            day += 1
        busy = dt.time(8, 55) <= clock.time() < dt.time(18, 30)  # leads, calls, alerts, tasks, digests
        now += dt.timedelta(minutes=1 if busy else 30)
    _check_the_digest(business, now)


def _check_the_day(business: Business, now: dt.datetime, tasks: list[tuple[int, int]]) -> None:
    telegram, sessions = business.telegram, business.sessions
    with sessions() as session:
        # Every lead belongs to someone who can log in.
        for lead in business.leads:
            manager = session.get(User, lead.manager_id)
            assert manager is not None, f"lead {lead.deal_id} has no manager"
            assert manager.active, manager.name
            assert manager.email, manager.name
            assert manager.password_hash, f"{manager.name} cannot log in"

        # One alert to the manager for a lead left uncalled, one escalation to each leader, in order.
        texts = [(m["chat"]["id"], m["text"]) for m in telegram.sent]
        for lead in business.leads:
            link = f"/deals/{lead.deal_id}"
            about = [(i, chat) for i, (chat, text) in enumerate(texts) if _lead_alert(text, link)]
            mails = [m for m in business.inbox.messages if _lead_alert(_text(m), link)]
            waited = (now - lead.arrived).total_seconds() / 60
            called = lead.calls_after if lead.calls_after is not None else waited + 1
            if called < LEAD_MINUTES:
                assert about == [], f"lead {lead.deal_id} was called in time, yet paged"
                assert mails == []
                continue
            to_manager = [i for i, chat in about if chat == business.chats[lead.manager_id]]
            assert len(to_manager) == 1, f"lead {lead.deal_id}: {len(to_manager)} alerts to its manager"
            to_owner = [i for i, chat in about if chat == OWNER_CHAT]
            if called < 2 * LEAD_MINUTES:
                assert to_owner == []
                assert mails == []
                continue
            assert len(to_owner) == 1, f"lead {lead.deal_id}: {len(to_owner)} escalations to the owner"
            assert to_manager[0] < to_owner[0], f"lead {lead.deal_id}: the owner heard before the manager"
            assert len(mails) == 1, f"lead {lead.deal_id}: {len(mails)} escalations to the head"

        # Each task fell due at 15:00: its person heard once.
        for manager_id, chat in business.chats.items():
            due = [t for c, t in texts if c == chat and "Перезвонить после обеда" in t]
            assert len(due) == sum(1 for _, whose in tasks if whose == manager_id)

        # Each pipeline's funnel counts its raw deals.
        for pipeline in session.scalars(select(Pipeline)):
            raw = session.scalar(select(func.count()).select_from(Deal).where(Deal.pipeline_id == pipeline.id))
            assert funnel(session, pipeline=pipeline.name).figures.deals == raw, pipeline.name
        assert funnel(session, pipeline="Воронка").figures.deals == len(business.crm.leads)

        # The spend is the cabinet's, through yesterday.
        today = local(now).date()
        expected = sum(micros_to_minor(c[3], "RUB") for c in business.direct.costs if c[0] < today)
        assert session.scalar(select(func.sum(AdSpend.amount))) == expected

        # No job failing, none stuck.
        for job in session.scalars(select(Job)):
            assert (job.failures, job.last_error) == (0, None), (job.kind, job.target, job.last_error)
            assert job.lease_owner is None, (job.kind, job.target)

        # Nothing went out twice, nothing is left failed.
        assert len(set(texts)) == len(texts)
        sent_mail = [(m["To"], m["Subject"], _text(m)) for m in business.inbox.messages]
        assert len(set(sent_mail)) == len(sent_mail)
        failed = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed")).all()
        assert [(m.key, m.last_error) for m in failed] == []


def _lead_alert(text: str, link: str) -> bool:
    """A lead's alert (⏰ waiting) or escalation (🚨) about the deal at ``link``; its task's alert is not."""
    return text.startswith(("⏰", "🚨")) and re.search(rf"{link}\b", text) is not None


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def _check_the_digest(business: Business, now: dt.datetime) -> None:
    """The last morning's daily digest counts the previous day's website leads as they are."""
    yesterday = local(now).date() - dt.timedelta(days=1)
    arrived = sum(1 for lead in business.leads if local(lead.arrived).date() == yesterday)
    digests = [m["text"] for m in business.telegram.sent if m["chat"]["id"] == OWNER_CHAT and "voronka ·" in m["text"]]
    assert digests, "no digest reached the owner"
    section = digests[-1].split("Воронка «Sales»", 1)[1]
    assert f"Заявки: {arrived}" in section.replace("\u00a0", " ")
