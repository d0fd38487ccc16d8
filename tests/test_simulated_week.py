"""A business lives a working week on a server, on a clock the test holds (nothing sleeps).

Three managers, a head of sales (on e-mail) and the owner (on Telegram); working hours 09:00–18:00
by Russia's production calendar, and a lead uncalled at its escalation goes to the next manager.
From Monday 2 March 2026 to the morning of Tuesday the 10th: five working days, a weekend, and
Monday the 9th, a public holiday (8 March fell on a Sunday). Website leads arrive through the lead
form in working hours, at 23:00 every working day, and a few at the weekend and on the holiday; each
manager calls some at once, some late (after their alert, before the escalation) and some never;
clients call back and nobody answers; a task falls due; amoCRM and Yandex Direct (fakes built from
their docs) change under the syncs — deals moved and added, a day's cost revised — and Telegram (a
fake Bot API) and a real SMTP server receive.

The worker passes at every moment something is due — each lead's arrival, call, page and
escalation, the minute before a page or an escalation, each missed call, every hour for the jobs
(each due on the hour: the syncs every two hours, the stalled deals hourly, the diagnosis every six,
the digests at nine) — and skips the minutes in between, in which a pass finds nothing (a pass every
minute of a week would take minutes and test nothing more). When a lead is due to be paged is counted here, minute by
minute over the library's calendar data, apart from ``voronka.alerts.workhours``.

At the end of every day the invariants hold: every lead belongs to someone who can log in; each lead
left uncalled past its page gave its manager exactly one alert, at that minute, and, uncalled at the
escalation, the leaders exactly one escalation each, after the manager's, and the next manager one
alert as the lead became theirs; a lead called in time gave none; each missed call told its deal's
manager once; each pipeline's funnel counts its raw deals (``tests.oracle``); the spend equals the
cabinet's; no job fails or is stuck; nothing went out twice. The digest's figures equal the stats.
"""

from __future__ import annotations

import datetime as dt
import email
import functools
import json
import random
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import holidays
import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests import oracle
from tests.builders import funnel, pipeline_for
from tests.fakes import amocrm
from tests.fakes.telegram import TOKEN, FakeTelegram, still_pacer
from tests.fakes.yandex_direct import TOKEN as DIRECT_TOKEN
from tests.fakes.yandex_direct import FakeDirect
from voronka.alerts.config import alert_settings, set_rules, set_smtp, set_telegram, set_working
from voronka.cli.app import app
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
from voronka.models import (
    AdSpend,
    AssignRule,
    CallDirection,
    CallOutcome,
    Deal,
    Job,
    OutboxMessage,
    Pipeline,
    Role,
    TaskKind,
    User,
)
from voronka.money import micros_to_minor
from voronka.secretstore import SecretStore

DAYS = 8
MOSCOW = dt.timedelta(hours=3)
START = dt.datetime(2026, 3, 2, 5, 0)  # Monday 08:00 in Moscow, UTC as stored
END = START + dt.timedelta(days=DAYS, hours=2, minutes=30)  # Tuesday 10:30: the last morning's digest is out
LEAD_MINUTES = 5
LEADS_A_DAY = 12
OWNER_CHAT, MANAGER_CHATS = 900, (911, 912, 913)
SITE = "https://crm.example.ru"
MINUTE = dt.timedelta(minutes=1)
CALENDAR = holidays.country_holidays("RU", years=2026)


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


@dataclass(frozen=True)
class Planned:
    """A lead the site will take: when, and when its manager calls (None: never), all UTC."""

    arrives: dt.datetime
    called: dt.datetime | None
    page: dt.datetime
    """When its manager must hear, by a count of working minutes made here, apart from the library."""
    escalate: dt.datetime


@dataclass
class Lead:
    plan: Planned
    deal_id: int
    manager_id: int


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
    stamps: list[dt.datetime] = field(default_factory=list)
    """When each of the bot's messages went (the simulated minute of the pass that sent it)."""
    missed: list[tuple[int, dt.datetime]] = field(default_factory=list)
    """Incoming calls nobody answered: (deal, when the manager must hear)."""
    answered: list[int] = field(default_factory=list)
    """Deals whose client called and was answered."""
    tasks: list[tuple[int, int]] = field(default_factory=list)
    """(task, its person)."""
    url: str = ""


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
    set_working(session=session, account=account, hours="09:00-18:00", calendar="RU", handover=True)
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
        settings={"sources": {"101": "Яндекс Поиск", "202": "Яндекс РСЯ"}, "requests_per_second": 0},
    )  # fmt: skip
    ensure_jobs(session=session, account=account, now=START)
    for name in ("amo", "direct"):  # each sync every two hours
        set_every(session=session, account=account, kind="sync", target=name, minutes=120, now=START)
    # The diagnosis (not what this test checks: tests/test_alerts.py does) four times a day.
    set_every(session=session, account=account, kind="diagnosis", target="", minutes=360, now=START)
    session.commit()
    url = engine.url.render_as_string(hide_password=False)
    return Business(session_factory(engine), store, telegram, received, crm, direct, form.id, chats, url=url)


def _working(moment: dt.datetime) -> bool:
    """Whether the minute from ``moment`` (UTC) is working time in Moscow by the production calendar."""
    clock = local(moment)
    return CALENDAR.is_working_day(clock.date()) and dt.time(9) <= clock.time() < dt.time(18)


@functools.cache
def _after_working(start: dt.datetime, minutes: int) -> dt.datetime:
    """The minute by which ``minutes`` working minutes have passed since ``start``, counted one by one;
    for 0, the first working minute from ``start``."""
    moment, left = start, minutes
    while left > 0 or (minutes == 0 and not _working(moment)):
        left -= _working(moment)
        moment += MINUTE
    return moment


def _plan(rng: random.Random) -> list[Planned]:
    """The week's leads: twelve a working day in working hours and one at 23:00; two a day off."""
    plans = []
    for offset in range(DAYS):
        day = local(START).date() + dt.timedelta(days=offset)
        if CALENDAR.is_working_day(day):
            minutes = [rng.randrange(9 * 60, 18 * 60) for _ in range(LEADS_A_DAY)] + [23 * 60]
        else:
            minutes = [rng.randrange(10 * 60, 20 * 60) for _ in range(2)]
        for minute in sorted(minutes):
            arrives = dt.datetime.combine(day, dt.time(minute // 60, minute % 60)) - MOSCOW
            fate = rng.random()
            called = None
            if fate < 0.4:  # at once
                called = _after_working(arrives, rng.randrange(1, LEAD_MINUTES))
            elif fate < 0.7:  # after the alert, before the escalation
                called = _after_working(arrives, rng.randrange(LEAD_MINUTES + 1, 2 * LEAD_MINUTES))
            page = _after_working(arrives, LEAD_MINUTES if _working(arrives) else 0)
            plans.append(Planned(arrives, called, page, _after_working(arrives, 2 * LEAD_MINUTES)))
    return plans


def _moments(plans: list[Planned]) -> list[dt.datetime]:
    """Every moment something is due, the minute before a page or an escalation, and every hour
    (the jobs, the digests, the day's chores)."""
    hours = int((END - START) / dt.timedelta(hours=1)) + 1
    moments = {START + i * dt.timedelta(hours=1) for i in range(hours)}
    for plan in plans:
        moments |= {plan.arrives, plan.page - MINUTE, plan.page, plan.escalate - MINUTE, plan.escalate}
        if plan.called is not None:
            moments.add(plan.called)  # the minute before a page or an escalation: nothing goes early
    for offset in range(DAYS):
        eleven = dt.datetime.combine(local(START).date() + dt.timedelta(days=offset), dt.time(11)) - MOSCOW
        moments |= {eleven + 9 * MINUTE, eleven + 10 * MINUTE, eleven + 20 * MINUTE}  # clients call back
    return sorted(m for m in moments if START <= m <= END)


def _arrive(business: Business, plan: Planned) -> None:
    from voronka.models import LeadForm

    with business.sessions() as session:
        form = session.get(LeadForm, business.form_id)
        assert form is not None
        number = len(business.leads) + 1
        payload = {"name": f"Клиент {number}", "phone": f"+7 999 {number:03d}-00-00", "tranid": f"t{number}"}
        deal = capture_lead(session=session, form=form, payload=payload, now=plan.arrives).deal
        session.commit()
        business.leads.append(Lead(plan, deal.id, deal.manager_id or 0))


def _call(business: Business, now: dt.datetime) -> None:
    due = [lead for lead in business.leads if lead.plan.called == now]
    with business.sessions() as session:
        for lead in due:
            deal = session.get(Deal, lead.deal_id)
            assert deal is not None
            log_call(
                session=session, deal=deal, outcome=CallOutcome.ANSWERED, at=now, duration_seconds=90,
                manager=session.get(User, lead.manager_id),
            )  # fmt: skip
        session.commit()


def _client_calls(business: Business, now: dt.datetime, *, answered: bool) -> None:
    """A client whose lead was called at once calls back: nobody answers (or someone does)."""
    used = {deal for deal, _ in business.missed} | set(business.answered)
    candidates = [
        lead
        for lead in business.leads
        if lead.plan.called is not None and lead.plan.called < lead.plan.page and lead.plan.called < now
        if lead.deal_id not in used
    ]
    if not candidates:
        return
    lead = candidates[-1]
    with business.sessions() as session:
        deal = session.get(Deal, lead.deal_id)
        assert deal is not None
        outcome = CallOutcome.ANSWERED if answered else CallOutcome.NO_ANSWER
        log_call(session=session, deal=deal, outcome=outcome, at=now, direction=CallDirection.INCOMING)
        session.commit()
    if answered:
        business.answered.append(lead.deal_id)
    else:
        business.missed.append((lead.deal_id, _after_working(now, 0)))


def _change_the_crm(business: Business, now: dt.datetime, day: int) -> None:
    """The team works in amoCRM too: leads move on, a new one comes in and is taken at once."""
    crm, at = business.crm, epoch(now)
    for lead_id in sorted(crm.leads)[day * 4 : day * 4 + 4]:
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
        deal = session.get(Deal, lead.deal_id)
        assert deal is not None
        manager = session.get(User, deal.manager_id)  # the lead's by now (it may have been handed over)
        assert manager is not None
        task = add_task(
            session=session, deal=deal, kind=TaskKind.CALL, due_at=now + dt.timedelta(hours=5), responsible=manager,
            text="Перезвонить после обеда",
        )  # fmt: skip
        session.commit()
        return task.id, manager.id


def _live(business: Business, now: dt.datetime, plans: dict[dt.datetime, list[Planned]], day: int) -> None:
    """What happens at ``now``, before the worker's pass."""
    clock = local(now)
    for plan in plans.get(now, []):
        _arrive(business, plan)
    _call(business, now)
    if clock.time() == dt.time(11, 10):
        _client_calls(business, now, answered=False)
    if clock.time() == dt.time(11, 20):
        _client_calls(business, now, answered=True)
    if CALENDAR.is_working_day(clock.date()) and clock.time() == dt.time(10, 0):
        business.tasks.append(_task(business, now))
    if clock.time() == dt.time(13, 0):
        _change_the_crm(business, now, day)
    if clock.time() == dt.time(12, 0) and day > 0:
        _revise_spend(business, now)


def test_a_simulated_week_keeps_data_and_alerts_flowing(business: Business) -> None:
    planned = _plan(random.Random(38))
    plans: dict[dt.datetime, list[Planned]] = {}
    for plan in planned:
        plans.setdefault(plan.arrives, []).append(plan)
    day = 0
    for now in _moments(planned):
        _live(business, now, plans, day)
        runs = run_due(
            sessions=business.sessions, store=business.store, now=now, owner="server", base_url=SITE,
            pacer=still_pacer(),
        )  # fmt: skip
        assert [r.error.render("en") for r in runs if r.error] == []
        business.stamps += [now] * (len(business.telegram.sent) - len(business.stamps))
        if local(now).time() == dt.time(20, 0):
            _check_the_day(business, now)
            day += 1
    assert day == DAYS
    # The week held what it is about: a lead at 23:00 paged the next working morning, leads of the
    # weekend and the holiday paged on Tuesday, leads handed over, clients who called in vain.
    plans_made = [lead.plan for lead in business.leads]
    assert any(local(p.arrives).hour == 23 and local(p.page).time() == dt.time(9) for p in plans_made)
    tuesday = dt.datetime(2026, 3, 10, 9, 0) - MOSCOW
    assert any(not CALENDAR.is_working_day(local(p.arrives).date()) and p.page == tuesday for p in plans_made)
    assert not CALENDAR.is_working_day(dt.date(2026, 3, 9))  # the holiday, by the library's calendar
    assert sum(p.called is None and p.escalate <= END for p in plans_made) >= 5  # handed over
    assert len(business.missed) >= 5
    _check_the_digest(business, END)


def _next_manager(business: Business, manager_id: int) -> int:
    """Who is after ``manager_id`` in the round robin (by id, wrapping)."""
    ids = sorted(business.chats)
    return ids[(ids.index(manager_id) + 1) % len(ids)]


def _check_the_day(business: Business, now: dt.datetime) -> None:
    with business.sessions() as session:
        _check_the_leads(business, session, now)
        _check_the_calls_and_tasks(business, now)
        _check_the_figures(business, session, now)
        _check_the_jobs_and_outbox(business, session)


def _check_the_leads(business: Business, session: Session, now: dt.datetime) -> None:
    """Each lead: its manager paged once at its minute if it was not called by then, the leaders
    once at the escalation after the manager, and the lead then the next manager's, who hears once."""
    sent = [(m["chat"]["id"], m["text"], business.stamps[i]) for i, m in enumerate(business.telegram.sent)]
    mail_texts = [_text(m) for m in business.inbox.messages]
    for lead in business.leads:
        plan, link = lead.plan, f"/deals/{lead.deal_id}"
        about = [(i, chat, text, at) for i, (chat, text, at) in enumerate(sent) if _lead_alert(text, link)]
        mails = [text for text in mail_texts if _lead_alert(text, link)]
        paged = plan.page <= now and (plan.called is None or plan.called > plan.page)
        escalated = plan.escalate <= now and (plan.called is None or plan.called > plan.escalate)
        heir = _next_manager(business, lead.manager_id)
        to_manager = [(i, at) for i, chat, text, at in about if chat == business.chats[lead.manager_id]]
        assert [at for _, at in to_manager] == ([plan.page] if paged else []), f"lead {lead.deal_id}: {to_manager}"
        to_owner = [(i, at) for i, chat, text, at in about if chat == OWNER_CHAT]
        to_heir = [(text, at) for i, chat, text, at in about if chat == business.chats[heir]]
        deal = session.get(Deal, lead.deal_id)
        assert deal is not None
        if not escalated:
            assert (to_owner, to_heir, mails) == ([], [], []), f"lead {lead.deal_id} escalated"
            assert deal.manager_id == lead.manager_id
            continue
        assert [at for _, at in to_owner] == [plan.escalate], f"lead {lead.deal_id}: escalations {to_owner}"
        assert to_manager[0][0] < to_owner[0][0], f"lead {lead.deal_id}: the owner heard before the manager"
        assert len(mails) == 1, f"lead {lead.deal_id}: {len(mails)} escalations to the head"
        assert [(text.startswith("⏰ Лид теперь ваш"), at) for text, at in to_heir] == [(True, plan.escalate)]
        assert deal.manager_id == heir, f"lead {lead.deal_id} was not handed over"
    # Every lead belongs to someone who can log in.
    for deal in session.scalars(select(Deal).where(Deal.id.in_([lead.deal_id for lead in business.leads]))):
        manager = session.get(User, deal.manager_id)
        assert manager is not None, f"lead {deal.id} has no manager"
        assert manager.active, manager.name
        assert manager.email, manager.name
        assert manager.password_hash, f"{manager.name} cannot log in"


def _check_the_calls_and_tasks(business: Business, now: dt.datetime) -> None:
    """Each missed call told its deal's manager once (as work began), an answered one nobody; each
    task told its person once."""
    sent = [(m["chat"]["id"], m["text"], business.stamps[i]) for i, m in enumerate(business.telegram.sent)]
    managers = {lead.deal_id: lead.manager_id for lead in business.leads}
    for deal_id, due in business.missed:
        told = [(chat, at) for chat, text, at in sent if text.startswith("📵") and f"/deals/{deal_id}" in text]
        assert told == ([(business.chats[managers[deal_id]], due)] if due <= now else []), (deal_id, told)
    for deal_id in business.answered:
        assert not [text for _, text, _ in sent if text.startswith("📵") and f"/deals/{deal_id}" in text]
    for manager_id, chat in business.chats.items():
        due = [text for c, text, _ in sent if c == chat and "Перезвонить после обеда" in text]
        assert len(due) == sum(1 for _, whose in business.tasks if whose == manager_id)


def _check_the_figures(business: Business, session: Session, now: dt.datetime) -> None:
    """Each pipeline's funnel counts its raw deals as a plain count of the log does; the spend is
    the cabinet's through yesterday."""
    plain = oracle.plain_deals(session)
    for pipeline in session.scalars(select(Pipeline)):
        report = funnel(session, pipeline=pipeline.name)
        counted = oracle.cohort([d for d in plain.values() if d.pipeline_id == pipeline.id], len(report.figures.stages))
        figures = report.figures
        assert (figures.deals, figures.won, figures.lost) == (counted["deals"], counted["won"], counted["lost"])
        assert [s.reached for s in figures.stages] == counted["reached"], pipeline.name
    assert funnel(session, pipeline="Воронка").figures.deals == len(business.crm.leads)
    today = local(now).date()
    expected = sum(micros_to_minor(c[3], "RUB") for c in business.direct.costs if c[0] < today)
    assert session.scalar(select(func.sum(AdSpend.amount))) == expected


def _check_the_jobs_and_outbox(business: Business, session: Session) -> None:
    """No job failing, none stuck; nothing went out twice, nothing is left failed."""
    for job in session.scalars(select(Job)):
        assert (job.failures, job.last_error) == (0, None), (job.kind, job.target, job.last_error)
        assert job.lease_owner is None, (job.kind, job.target)
    texts = [(m["chat"]["id"], m["text"]) for m in business.telegram.sent]
    assert len(set(texts)) == len(texts)
    sent_mail = [(m["To"], m["Subject"], _text(m)) for m in business.inbox.messages]
    assert len(set(sent_mail)) == len(sent_mail)
    failed = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed")).all()
    assert [(m.key, m.last_error) for m in failed] == []


def _lead_alert(text: str, link: str) -> bool:
    """A lead's alert (⏰ waiting or handed over) or escalation (🚨) about the deal at ``link``; its
    task's alert is not."""
    return text.startswith(("⏰", "🚨")) and re.search(rf"{link}\b", text) is not None


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def _check_the_digest(business: Business, now: dt.datetime) -> None:
    """The last morning's daily digest counts the previous day's (the holiday's) website leads as
    they are, and each pipeline's leads, sales and revenue as ``voronka stats`` does."""
    yesterday = local(now).date() - dt.timedelta(days=1)
    arrived = sum(1 for lead in business.leads if local(lead.plan.arrives).date() == yesterday)
    assert arrived
    digests = [m["text"] for m in business.telegram.sent if m["chat"]["id"] == OWNER_CHAT and "voronka ·" in m["text"]]
    assert digests, "no digest reached the owner"
    text = digests[-1].replace("\u00a0", " ").replace("\u202f", " ")
    assert f"Заявки: {arrived} " in text.split("Воронка «Sales»", 1)[1]
    for pipeline in ("Sales", "Воронка"):
        section = text.split(f"Воронка «{pipeline}»", 1)[1].split("Месяц к плану", 1)[0]
        shown = {
            "leads": int(re.findall(r"Заявки: (\d+)", section)[0]),
            "sales": int(re.findall(r"Продажи: (\d+)", section)[0]),
            "revenue": int(re.findall(r"Выручка: ([\d ]+) ₽", section)[0].replace(" ", "")),
        }
        assert shown == _stats(business, pipeline, yesterday), pipeline


def _stats(business: Business, pipeline: str, day: dt.date) -> dict[str, int]:
    """The day's leads, sales and revenue (whole roubles) as ``voronka stats`` gives them."""
    answer = CliRunner().invoke(
        app,
        [
            "--db", business.url, "stats", "--pipeline", pipeline, "--from", day.isoformat(),
            "--to", (day + dt.timedelta(days=1)).isoformat(), "--period", "day", "--format", "json",
        ],
    )  # fmt: skip
    assert answer.exit_code == 0, answer.stderr
    rows = {row["metric"]: row["cells"][0]["fact"] for row in json.loads(answer.stdout)["tables"][0]["rows"]}
    return {"leads": int(rows["leads"]), "sales": int(rows["sales"]), "revenue": round(float(rows["revenue"] or 0))}
