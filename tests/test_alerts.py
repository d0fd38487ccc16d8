"""Alerts driven by a clock the tests hold: a lead nobody calls, quiet hours, Telegram's flood control
and blocked users, chat linking, e-mail through a real SMTP server, the signed webhook, digests."""

from __future__ import annotations

import datetime as dt
import email
import email.header
import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from tests.builders import Journey, add_journey, at, pipeline_for
from tests.fakes.telegram import TOKEN, FakeTelegram, StillClock, still_pacer
from voronka.alerts import service
from voronka.alerts.config import (
    alert_settings,
    new_link_code,
    set_role_pref,
    set_rules,
    set_smtp,
    set_telegram,
    set_webhook,
)
from voronka.alerts.model import DEFAULT_LEAD_MINUTES, DEFAULT_STALL_FACTOR, Event
from voronka.alerts.outbox import Letter, enqueue
from voronka.crm.accounts import default_account, update_account
from voronka.crm.auth import add_user
from voronka.crm.deals import log_call
from voronka.db import session_factory
from voronka.models import CallOutcome, DiagnosisCache, OutboxMessage, Role, User
from voronka.secretstore import SecretStore

MANAGER_CHAT, HEAD_CHAT, OWNER_CHAT = 501, 502, 503


class Inbox:
    """What a real SMTP server on loopback received."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(envelope.content)
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def telegram(httpserver: HTTPServer) -> FakeTelegram:
    fake = FakeTelegram(chats={MANAGER_CHAT, HEAD_CHAT, OWNER_CHAT})
    fake.install(httpserver)
    return fake


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    return SecretStore(tmp_path / "secrets.json")


def _person(session: Session, name: str, role: Role, chat: int | None, lang: str = "ru") -> User:
    account = default_account(session=session)
    user = add_user(
        session=session,
        account=account,
        name=name,
        email=f"{role.value}{'' if chat else '.new'}@example.com",
        password="секрет-пароль-1",
        role=role,
    )
    user.telegram_chat_id = str(chat) if chat else None
    user.lang = lang
    return user


@pytest.fixture
def team(
    session: Session, store: SecretStore, httpserver: HTTPServer, request: pytest.FixtureRequest
) -> dict[str, User]:
    request.getfixturevalue("telegram")  # the bot's server answers before the account points at it
    account = default_account(session=session)
    update_account(session=session, account=account, timezone="Europe/Moscow")
    pipeline_for(session)
    people = {
        "manager": _person(session, "Анна", Role.MANAGER, MANAGER_CHAT),
        "head": _person(session, "Ирина", Role.HEAD, HEAD_CHAT, lang="en"),
        "owner": _person(session, "Олег", Role.OWNER, OWNER_CHAT),
    }
    set_telegram(
        session=session, account=account, store=store, token=TOKEN, api_url=httpserver.url_for("/").rstrip("/")
    )
    rules = alert_settings(session=session, account=account)
    rules.started_at = at("2026-03-02 00:00")
    # The times below (a lead at 07:00 alerts at 07:05, escalates at 07:10) are these rules', not
    # whatever a new account's defaults become.
    rules.lead_minutes, rules.stall_factor = 5, 2
    session.commit()
    return people


def run(engine: Engine, store: SecretStore, now: str) -> str:
    return service.run_alerts(
        sessions=session_factory(engine), account_id=1, store=store, now=at(now), base_url="https://crm.example.ru",
        pacer=still_pacer(),
    )  # fmt: skip


@pytest.mark.usefixtures("team")
def test_a_lead_nobody_calls_alerts_its_manager_at_5_minutes_and_the_head_at_10(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    pipeline = pipeline_for(session)
    waiting = add_journey(session, pipeline, Journey("2026-03-02 07:00", manager="Анна"))  # 10:00 in Moscow
    called = add_journey(session, pipeline, Journey("2026-03-02 07:00", manager="Анна"))
    log_call(session=session, deal=called, outcome=CallOutcome.ANSWERED, at=at("2026-03-02 07:03"))
    session.commit()

    run(engine, store, "2026-03-02 07:04")
    assert telegram.sent == []
    run(engine, store, "2026-03-02 07:05")
    to_manager = telegram.texts_to(MANAGER_CHAT)
    assert len(to_manager) == 1
    assert "5 мин" in to_manager[0]
    assert f"https://crm.example.ru/deals/{waiting.id}" in to_manager[0]
    run(engine, store, "2026-03-02 07:06")
    run(engine, store, "2026-03-02 07:09")
    assert len(telegram.sent) == 1  # found again on every pass, sent once
    run(engine, store, "2026-03-02 07:10")
    to_head = telegram.texts_to(HEAD_CHAT)
    assert len(to_head) == 1
    assert "Nobody has called a new lead for 10 min" in to_head[0]  # the head reads English
    assert "Анна" in to_head[0]
    assert len(telegram.texts_to(OWNER_CHAT)) == 1  # the owner too, by default
    assert len(telegram.texts_to(MANAGER_CHAT)) == 1
    assert str(called.id) not in " ".join(m["text"] for m in telegram.sent).replace(f"deals/{waiting.id}", "")


@pytest.mark.usefixtures("team")
def test_quiet_hours_hold_an_alert_until_the_morning(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    set_rules(session=session, account=default_account(session=session), quiet="21:00-09:00")
    add_journey(session, pipeline_for(session), Journey("2026-03-02 19:00", manager="Анна"))  # 22:00 in Moscow
    session.commit()
    run(engine, store, "2026-03-02 19:05")
    assert telegram.sent == []
    held = session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "telegram")).one()
    session.refresh(held)
    assert (held.status, held.next_attempt_at) == ("pending", at("2026-03-03 06:00"))  # 09:00 in Moscow
    run(engine, store, "2026-03-03 05:59")
    assert telegram.sent == []
    run(engine, store, "2026-03-03 06:00")
    assert len(telegram.texts_to(MANAGER_CHAT)) == 1


def test_flood_control_waits_as_telegram_asks_and_a_blocked_bot_is_a_failure_shown(
    session: Session, engine: Engine, store: SecretStore, team: dict[str, User], telegram: FakeTelegram
) -> None:
    telegram.flood_next, telegram.retry_after = 1, 90  # longer than a pass waits: left for a later pass
    telegram.blocked.add(HEAD_CHAT)
    add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    run(engine, store, "2026-03-02 07:10")  # both alerts due: the manager's hits 429, the head blocked the bot
    rows = {r.recipient_id: r for r in session.scalars(select(OutboxMessage))}
    manager, head = rows[team["manager"].id], rows[team["head"].id]
    assert (manager.status, manager.next_attempt_at) == ("pending", at("2026-03-02 07:11:30"))  # retry_after, exactly
    assert "429" in (manager.last_error or "")
    assert (head.status, head.next_attempt_at) == ("pending", at("2026-03-02 07:11:30"))  # after the manager's
    run(engine, store, "2026-03-02 07:11")
    assert telegram.texts_to(MANAGER_CHAT) == []
    run(engine, store, "2026-03-02 07:11:30")
    assert len(telegram.texts_to(MANAGER_CHAT)) == 1
    session.refresh(head)
    assert head.status == "failed"
    assert "blocked" in (head.last_error or "")
    assert TOKEN not in json.dumps([r.last_error for r in session.scalars(select(OutboxMessage))])


@pytest.mark.usefixtures("team")
def test_a_short_slow_down_costs_its_seconds_and_one_chat_gets_a_message_a_second(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    """Telegram's 429 with retry_after 7 is waited out in the same pass (7 s, not a minute), and a
    burst to one chat goes a message a second (the Bot API FAQ), other chats not held by it."""
    telegram.flood_next, telegram.retry_after = 1, 7
    pipeline = pipeline_for(session)
    for _ in range(4):
        add_journey(session, pipeline, Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    clock = StillClock()
    service.run_alerts(
        sessions=session_factory(engine), account_id=1, store=store, now=at("2026-03-02 07:10"),
        pacer=still_pacer(clock),
    )  # fmt: skip
    assert len(telegram.texts_to(MANAGER_CHAT)) == 4
    assert len(telegram.texts_to(HEAD_CHAT)) == len(telegram.texts_to(OWNER_CHAT)) == 4
    assert 7 in clock.waits  # the slow-down, waited out at once
    assert all(s.status == "sent" for s in session.scalars(select(OutboxMessage)))
    # After the 7 s pause: the manager's four a second apart (3 s), then the head's and the owner's
    # four each, side by side (3 s more) — not twelve seconds in a row.
    assert 7 + 3 + 3 <= clock.now < 7 + 3 + 3 + 1


@pytest.mark.usefixtures("team")
def test_a_user_links_a_chat_with_a_one_time_code(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    newcomer = _person(session, "Пётр", Role.MANAGER, None)
    code = new_link_code(session=session, user=newcomer, now=at("2026-03-02 07:00"))
    session.commit()
    telegram.user_writes(900, "/start 12345678" if code != "12345678" else "/start 87654321")
    telegram.user_writes(777, f"/start {code}")
    run(engine, store, "2026-03-02 07:01")
    session.refresh(newcomer)
    assert newcomer.telegram_chat_id == "777"
    assert newcomer.telegram_code_hash is None  # spent
    assert "Пётр" in telegram.texts_to(777)[0]
    assert "Код не найден" in telegram.texts_to(900)[0]
    telegram.user_writes(778, f"/start {code}")
    run(engine, store, "2026-03-02 07:02")  # the same code again links nothing
    session.refresh(newcomer)
    assert newcomer.telegram_chat_id == "777"


def test_email_alerts_reach_a_real_smtp_server(
    session: Session, engine: Engine, store: SecretStore, team: dict[str, User], inbox: tuple[Inbox, int]
) -> None:
    received, port = inbox
    account = default_account(session=session)
    set_smtp(
        session=session,
        account=account,
        store=store,
        host="127.0.0.1",
        port=port,
        security="none",
        sender="crm@example.ru",
    )
    team["manager"].telegram_chat_id = None  # no chat: e-mail instead
    add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    run(engine, store, "2026-03-02 07:06")
    assert len(received.messages) == 1
    letter = received.messages[0]
    assert letter["To"] == "manager@example.com"
    assert letter["From"] == "crm@example.ru"
    assert "Новый лид ждёт звонка уже 6 мин" in letter.get_content()
    stored = session.scalars(select(OutboxMessage)).one()
    assert letter["Subject"] == stored.subject  # decoded by the mail reader's rules, every space kept
    assert " " in stored.subject
    head = received.raw[0].split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert head.count("=?utf-8?") >= 2  # long enough to be folded into several encoded words


def _smtp_team(session: Session, store: SecretStore, team: dict[str, User], port: int) -> None:
    set_smtp(
        session=session, account=default_account(session=session), store=store, host="127.0.0.1", port=port,
        security="none", sender="crm@example.ru",
    )  # fmt: skip
    team["manager"].telegram_chat_id = None


def test_a_subject_keeps_its_spaces_in_every_mail_reader(
    session: Session, engine: Engine, store: SecretStore, team: dict[str, User], inbox: tuple[Inbox, int]
) -> None:
    """Folded into several encoded words, «никто не звонит» must not read «никто незвонит»: names of
    eight lengths put the folds at different places."""
    received, port = inbox
    _smtp_team(session, store, team, port)
    pipeline = pipeline_for(session)
    for n in range(8):
        deal = add_journey(session, pipeline, Journey("2026-03-02 07:00", manager="Анна"))
        deal.title = f"Кухня для семьи {'к' * n} никто не звонит уже давно"
    session.commit()
    run(engine, store, "2026-03-02 07:06")
    stored = {r.address + r.body: r.subject for r in session.scalars(select(OutboxMessage))}
    assert len(received.messages) == len(stored) == 8
    for letter, raw in zip(received.messages, received.raw, strict=True):
        subject = letter["Subject"]
        assert "никто не звонит уже давно" in subject
        assert subject == stored[letter["To"] + letter.get_content().rstrip("\n")]
        old_reader = email.message_from_bytes(raw)["Subject"]  # compat32 and decode_header read it the same
        assert str(email.header.make_header(email.header.decode_header(old_reader))) == subject


def test_a_message_that_cannot_be_built_fails_with_its_reason_and_the_rest_go_on(
    session: Session, engine: Engine, store: SecretStore, team: dict[str, User], inbox: tuple[Inbox, int]
) -> None:
    received, port = inbox
    _smtp_team(session, store, team, port)
    pipeline = pipeline_for(session)
    for title in ("Иван\u2028Петров", "Ольга\rСидорова", "Пётр Смирнов"):  # names from a website form
        add_journey(session, pipeline, Journey("2026-03-02 07:00", manager="Анна")).title = title
    account = default_account(session=session)
    broken = Letter("broken/email", "lead_waiting", "email", None, "bad\r\nBcc: x@example.com", "s", "b", {})
    enqueue(session=session, account=account, letter=broken, now=at("2026-03-02 07:00"))
    session.commit()
    run(engine, store, "2026-03-02 07:06")
    subjects = sorted(m["Subject"] for m in received.messages)
    assert len(subjects) == 3
    assert any("Иван Петров" in s for s in subjects)
    assert any("Ольга Сидорова" in s for s in subjects)
    rows = {r.key: r for r in session.scalars(select(OutboxMessage))}
    assert rows["broken/email"].status == "failed"
    assert "cannot be built" in (rows["broken/email"].last_error or "")
    assert {r.status for k, r in rows.items() if k != "broken/email"} == {"sent"}
    run(engine, store, "2026-03-02 07:07")  # the failed one is not tried again, nothing is sent twice
    assert len(received.messages) == 3


@pytest.mark.usefixtures("team")
def test_the_webhook_gets_every_alert_signed(
    session: Session, engine: Engine, store: SecretStore, httpserver: HTTPServer
) -> None:
    hits: list[tuple[dict[str, str], bytes]] = []

    def receive(request: Any) -> Any:
        from werkzeug import Response

        hits.append((dict(request.headers), request.get_data()))
        return Response("", status=204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(receive)
    key = set_webhook(
        session=session, account=default_account(session=session), store=store, url=httpserver.url_for("/hook")
    )
    deal = add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    run(engine, store, "2026-03-02 07:05")
    run(engine, store, "2026-03-02 07:06")
    assert len(hits) == 1
    headers, body = hits[0]
    expected = hmac.new(key.encode(), headers["X-Voronka-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Voronka-Signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert (payload["event"], payload["deal_id"], payload["key"]) == ("lead_waiting", deal.id, f"lead:{deal.id}:1")


def test_an_owner_can_keep_escalations_to_the_head_of_sales(
    session: Session, engine: Engine, store: SecretStore, team: dict[str, User], telegram: FakeTelegram
) -> None:
    set_role_pref(session=session, owner=team["owner"], role=Role.OWNER, event=Event.LEAD_ESCALATED, enabled=False)
    add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    run(engine, store, "2026-03-02 07:10")
    assert telegram.texts_to(OWNER_CHAT) == []
    assert len(telegram.texts_to(HEAD_CHAT)) == 1


@pytest.mark.usefixtures("team")
def test_the_daily_digest_is_an_html_email_with_the_funnel_picture_and_a_telegram_text(
    session: Session,
    engine: Engine,
    store: SecretStore,
    telegram: FakeTelegram,
    inbox: tuple[Inbox, int],
) -> None:
    received, port = inbox
    set_smtp(
        session=session,
        account=default_account(session=session),
        store=store,
        host="127.0.0.1",
        port=port,
        security="none",
        sender="crm@example.ru",
    )
    pipeline = pipeline_for(session)
    for hour in range(5):
        add_journey(
            session,
            pipeline,
            Journey(
                f"2026-03-01 {8 + hour:02d}:00", manager="Анна", moves=[("Qualified", f"2026-03-01 {9 + hour:02d}:00")]
            ),
        )
    session.commit()
    sessions = session_factory(engine)
    service.send_digest(sessions=sessions, account_id=1, store=store, kind="daily", now=at("2026-03-02 06:00"))
    service.send_digest(sessions=sessions, account_id=1, store=store, kind="daily", now=at("2026-03-02 06:05"))  # once
    service.deliver(sessions=sessions, account_id=1, store=store, now=at("2026-03-02 06:05"), pacer=still_pacer())
    assert sorted(m["To"] for m in received.messages) == ["head@example.com", "owner@example.com"]
    head_mail = next(m for m in received.messages if m["To"] == "head@example.com")
    html_part = head_mail.get_body(preferencelist=("html",))
    assert html_part is not None
    page = html_part.get_content()
    assert "Leads" in page
    assert "<b>5</b>" in page
    picture = next(p for p in head_mail.walk() if p.get_content_type() == "image/png")
    assert picture.get_content().startswith(b"\x89PNG")
    assert f"cid:{picture['Content-ID'][1:-1]}" in page
    owner_text = telegram.texts_to(OWNER_CHAT)
    assert len(owner_text) == 1
    assert "Заявки: 5" in owner_text[0]
    assert telegram.texts_to(MANAGER_CHAT) == []  # team figures go to those who see every deal


@pytest.fixture
def tls_inbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Inbox, int, list[str]]]:
    """An SMTP server that demands STARTTLS and a login before it takes mail; its self-signed
    certificate is the only one the client trusts (SSL_CERT_FILE)."""
    import shutil
    import ssl
    import subprocess

    from aiosmtpd.smtp import AuthResult, LoginPassword

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the STARTTLS server")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[str] = []

    def authenticate(*args: Any) -> AuthResult:  # (server, session, envelope, mechanism, auth_data)
        auth_data = args[-1]
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"smtp-secret"
        if ok:
            logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself

    handler, port = Inbox(), free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        authenticator=authenticate, auth_required=True, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    yield handler, port, logins
    controller.stop()


@pytest.mark.usefixtures("team")
def test_email_goes_over_starttls_with_a_login_and_a_wrong_password_is_retried_not_lost(
    session: Session, engine: Engine, store: SecretStore, tls_inbox: tuple[Inbox, int, list[str]]
) -> None:
    received, port, logins = tls_inbox
    account = default_account(session=session)
    set_smtp(
        session=session, account=account, store=store, host="127.0.0.1", port=port, security="starttls",
        sender="crm@example.ru", user="crm@example.ru", password="wrong",
    )  # fmt: skip
    for person in session.scalars(select(User)):
        person.telegram_chat_id = None
    add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    run(engine, store, "2026-03-02 07:05")
    waiting = session.scalars(select(OutboxMessage)).one()
    session.refresh(waiting)
    assert waiting.status == "pending"
    assert "535" in (waiting.last_error or "")
    assert "wrong" not in (waiting.last_error or "")
    set_smtp(
        session=session, account=account, store=store, host="127.0.0.1", port=port, security="starttls",
        sender="crm@example.ru", user="crm@example.ru", password="smtp-secret",
    )  # fmt: skip
    session.commit()
    run(engine, store, "2026-03-02 07:06")
    assert logins == ["crm@example.ru"]
    assert [m["To"] for m in received.messages] == ["manager@example.com"]


def test_a_new_confident_finding_is_told_once_with_its_money(
    sqlite_demo: Any, httpserver: HTTPServer, telegram: FakeTelegram, tmp_path: Path
) -> None:
    from voronka.demo import DemoOptions

    demo = sqlite_demo(DemoOptions(today=dt.date(2026, 11, 27)))
    account = default_account(session=demo)
    store = SecretStore(tmp_path / "bot.json")
    set_telegram(session=demo, account=account, store=store, token=TOKEN, api_url=httpserver.url_for("/").rstrip("/"))
    owner = _person(demo, "Олег", Role.OWNER, OWNER_CHAT)
    demo.commit()
    sessions = session_factory(demo.get_bind())  # type: ignore[arg-type]
    now = at("2026-11-27 09:00")
    baseline = service.refresh_diagnosis(sessions=sessions, account_id=account.id, store=store, now=now)
    service.deliver(sessions=sessions, account_id=account.id, store=store, now=now, pacer=still_pacer())
    assert baseline.params["findings"] > 0
    assert telegram.sent == []  # what the first diagnosis after set-up finds is the baseline: no page
    with sessions() as session, session.begin():  # as if these leaks had opened after the set-up
        session.execute(delete(OutboxMessage).where(OutboxMessage.key.like("finding:%:%/baseline")))
    said = service.refresh_diagnosis(sessions=sessions, account_id=account.id, store=store, now=now)
    service.refresh_diagnosis(sessions=sessions, account_id=account.id, store=store, now=now)  # again: nothing new
    service.deliver(sessions=sessions, account_id=account.id, store=store, now=now, pacer=still_pacer())
    told = telegram.texts_to(OWNER_CHAT)
    assert said.params["findings"] == len(told) > 0
    assert all(text.startswith("🔎 Новая находка") and "в месяц" in text and "₽" in text for text in told)
    assert owner.lang == "ru"


def _usual_day_per_stage(session: Session) -> Any:
    """Ten decided deals that spent a day in each stage: the usual time the stalled rule measures by."""
    pipeline = pipeline_for(session)
    for day in range(1, 11):
        moves = (("Qualified", f"2026-02-{day + 1:02d} 07:00"),)
        add_journey(session, pipeline, Journey(f"2026-02-{day:02d} 07:00", moves, won=f"2026-02-{day + 2:02d} 07:00"))
    return pipeline


@pytest.mark.usefixtures("team")
def test_deals_stalled_before_alerts_were_set_up_are_a_baseline_not_a_flood(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    pipeline = _usual_day_per_stage(session)
    for _ in range(60):  # stalled long before the set-up (2026-03-02 00:00)
        add_journey(
            session, pipeline, Journey("2026-02-20 07:00", (("Qualified", "2026-02-20 08:00"),), manager="Анна")
        )
    later = add_journey(
        session, pipeline, Journey("2026-03-01 09:00", (("Qualified", "2026-03-01 10:00"),), manager="Анна")
    )
    session.commit()
    run(engine, store, "2026-03-02 07:06")  # the first pass after the set-up
    assert telegram.sent == []
    run(engine, store, "2026-03-03 10:01")  # two usual days in Qualified: the later deal stalls now
    stalled = [m["text"] for m in telegram.sent]
    assert len(telegram.texts_to(MANAGER_CHAT)) == 1
    assert all(f"deals/{later.id}" in text for text in stalled)
    assert len(stalled) == 2  # its manager and the head of sales, no one about the sixty


@pytest.mark.usefixtures("team")
def test_a_waiting_lead_goes_before_a_backlog_of_older_less_urgent_messages(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram, team: dict[str, User]
) -> None:
    account = default_account(session=session)
    for n in range(150):  # more than a pass delivers, older than the lead
        letter = Letter(
            f"old:{n}", "deal_stalled", "telegram", team["manager"].id, str(MANAGER_CHAT), "s", f"old {n}", {}
        )
        enqueue(session=session, account=account, letter=letter, now=at("2026-03-02 06:00"))
    lead = add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    run(engine, store, "2026-03-02 07:05")
    assert f"deals/{lead.id}" in telegram.sent[0]["text"]  # first of this pass, despite 150 older rows
    run(engine, store, "2026-03-02 07:10")
    escalation = next(i for i, m in enumerate(telegram.sent) if m["chat"]["id"] == HEAD_CHAT)
    assert escalation == 100  # the escalation leads the next pass, before the rest of the backlog


@pytest.mark.usefixtures("team")
def test_quiet_hours_taken_off_let_go_of_what_they_held_in_the_order_it_happened(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    account = default_account(session=session)
    set_rules(session=session, account=account, quiet="21:00-09:00")
    add_journey(session, pipeline_for(session), Journey("2026-03-02 19:00", manager="Анна"))  # 22:00 in Moscow
    session.commit()
    run(engine, store, "2026-03-02 19:05")
    assert telegram.sent == []  # held for the morning
    set_rules(session=session, account=account, quiet="", now=at("2026-03-02 19:07"))
    session.commit()
    run(engine, store, "2026-03-02 19:08")
    assert len(telegram.texts_to(MANAGER_CHAT)) == 1  # let go at once, not at 09:00
    run(engine, store, "2026-03-02 19:10")
    chats = [m["chat"]["id"] for m in telegram.sent]
    assert chats[0] == MANAGER_CHAT
    assert set(chats[1:]) == {HEAD_CHAT, OWNER_CHAT}


@pytest.mark.usefixtures("team")
def test_an_escalation_waits_for_the_managers_alert_of_the_same_lead(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    telegram.flood_next, telegram.retry_after = 1, 600  # the manager's alert must wait ten minutes
    add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    run(engine, store, "2026-03-02 07:05")
    run(engine, store, "2026-03-02 07:10")  # the escalation is due, the manager has not heard yet
    assert telegram.sent == []
    run(engine, store, "2026-03-02 07:15")
    chats = [m["chat"]["id"] for m in telegram.sent]
    assert chats[0] == MANAGER_CHAT
    assert set(chats[1:]) == {HEAD_CHAT, OWNER_CHAT}


@pytest.mark.usefixtures("team")
def test_a_digest_covers_every_pipeline_and_writes_money_as_the_reader_does(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram, inbox: tuple[Inbox, int]
) -> None:
    """Connecting a CRM adds a pipeline: the digest goes on, with a part for each; a finding's money
    («1763666.33» as stored) reads «1 763 666 ₽»; the period's figures say they are the period's."""
    received, port = inbox
    account = default_account(session=session)
    set_smtp(
        session=session, account=account, store=store, host="127.0.0.1", port=port, security="none",
        sender="crm@example.ru",
    )  # fmt: skip
    sales = pipeline_for(session)
    wholesale = pipeline_for(session, name="Опт")
    for hour in range(3):
        add_journey(session, sales, Journey(f"2026-03-01 {8 + hour:02d}:00", won=f"2026-03-01 {12 + hour:02d}:00"))
    add_journey(session, wholesale, Journey("2026-03-01 09:00"))
    finding = {"summary": "Звонки по заявкам опаздывают", "money_at_stake_per_month": "1763666.33"}
    session.add(
        DiagnosisCache(
            pipeline_id=wholesale.id, account_id=account.id, computed_at=at("2026-03-02 05:00"),
            findings={"ru": [finding], "en": [{**finding, "summary": "Calls to leads are late"}]},
        )
    )  # fmt: skip
    session.commit()
    sessions = session_factory(engine)
    said = service.send_digest(sessions=sessions, account_id=1, store=store, kind="daily", now=at("2026-03-02 06:00"))
    assert said.params["added"] == 4  # the owner and the head: Telegram and e-mail each
    service.deliver(sessions=sessions, account_id=1, store=store, now=at("2026-03-02 06:00"), pacer=still_pacer())
    text = telegram.texts_to(OWNER_CHAT)[0].replace("\u00a0", " ").replace("\u202f", " ")
    assert "Воронка «Sales»" in text
    assert "Воронка «Опт»" in text
    assert "Звонки по заявкам опаздывают — 1 763 666 ₽" in text
    assert "1763666.33" not in text
    assert "Продаж на заявку за период: 100" in text  # three leads, three sales of the day
    assert "Считано по периоду" in text
    letter = next(m for m in received.messages if m["To"] == "owner@example.com")
    pictures = [p for p in letter.walk() if p.get_content_type() == "image/png"]
    assert len(pictures) == 2  # one funnel a pipeline
    page = letter.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    for picture in pictures:
        assert f"cid:{picture['Content-ID'][1:-1]}" in page


def test_a_users_alert_language_is_their_own_choice_not_their_browsers(
    session: Session, engine: Engine, tmp_path: Path
) -> None:
    from tests.web_helpers import log_in, make_client, make_user

    email = make_user(session, "Анна Петрова", Role.MANAGER)
    user = session.scalars(select(User).where(User.email == email)).one()
    user.lang = "ru"
    session.commit()
    client = make_client(engine, tmp_path)
    client.headers["Accept-Language"] = "en-US,en;q=0.9"
    log_in(client, email)
    client.get("/tasks")
    session.refresh(user)
    assert user.lang == "ru"  # visiting pages in an English browser changes nothing
    client.get("/lang/en", follow_redirects=False)
    session.refresh(user)
    assert user.lang == "en"  # choosing a language does


def test_a_team_digest_switched_on_for_a_manager_is_refused_with_the_reason(db_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from voronka.cli import app

    runner, env = CliRunner(), {"XDG_CONFIG_HOME": str(tmp_path)}
    base = ["--db", db_url, "--lang", "en"]
    assert runner.invoke(app, [*base, "init", "--stages", "Лид,Оплата"], env=env).exit_code == 0
    added = runner.invoke(
        app, [*base, "user", "add", "anna@example.ru", "--name", "Анна", "--role", "manager", "--password-env", "PW"],
        env={**env, "PW": "пароль-для-теста-1"},
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    anna = ["--user", "anna@example.ru"]
    refused = runner.invoke(app, [*base, "alerts", "pref", "digest_daily", "--on", *anna], env=env)
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "Error: digest_daily cannot be switched on for anna@example.ru: it goes only to those who see every deal "
        "(owners and heads of sales); anna@example.ru is a manager, so it would never arrive."
    )
    by_role = runner.invoke(app, [*base, "alerts", "pref", "finding", "--on", "--role", "manager"], env=env)
    assert by_role.exit_code == 1
    assert "for the role manager" in by_role.stderr
    off = runner.invoke(app, [*base, "alerts", "pref", "digest_daily", "--off", *anna], env=env)
    assert off.exit_code == 0, off.stderr
    on = runner.invoke(app, [*base, "alerts", "pref", "lead_waiting", "--on", *anna], env=env)
    assert on.stdout.strip() == "lead_waiting for anna@example.ru: on"


@pytest.mark.usefixtures("team")
def test_an_escalation_does_not_wait_for_a_manager_whose_channel_keeps_failing(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    telegram.flood_chats[MANAGER_CHAT], telegram.retry_after = 10, 90  # the manager's chat keeps saying «slow down»
    add_journey(session, pipeline_for(session), Journey("2026-03-02 07:00", manager="Анна"))
    session.commit()
    run(engine, store, "2026-03-02 07:05")
    run(engine, store, "2026-03-02 07:06:30")  # refused twice: next try at 07:08
    run(engine, store, "2026-03-02 07:10")  # the escalation is the safety net: it does not wait any longer
    assert {m["chat"]["id"] for m in telegram.sent} == {HEAD_CHAT, OWNER_CHAT}


@pytest.mark.usefixtures("team")
def test_im_calling_under_a_lead_alert_takes_the_lead_and_stops_its_escalation(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram, team: dict[str, User]
) -> None:
    pipeline = pipeline_for(session)
    taken = add_journey(session, pipeline, Journey("2026-03-02 07:00", manager="Анна"))
    other = add_journey(session, pipeline, Journey("2026-03-02 07:00"))  # nobody's: the heads hear of it
    session.commit()
    run(engine, store, "2026-03-02 07:05")
    alert = next(m for m in telegram.sent if m["chat"]["id"] == MANAGER_CHAT)
    assert alert["reply_markup"]["inline_keyboard"][0][0]["text"] == "📞 Звоню"
    telegram.user_presses(MANAGER_CHAT, alert["message_id"])
    run(engine, store, "2026-03-02 07:06")  # the press is read on the next pass
    assert telegram.answers[-1]["text"].endswith("ваш: больше никого о нём не побеспокоим.")
    run(engine, store, "2026-03-02 07:10")
    escalations = [m["text"] for m in telegram.sent if m["text"].startswith("🚨")]
    assert all(f"deals/{taken.id}" not in text for text in escalations)  # taken: nobody is paged further
    assert any(f"deals/{other.id}" in text for text in escalations)  # the lead nobody took still escalates
    session.refresh(taken)
    assert taken.manager_id == team["manager"].id

    head_alert = next(m for m in telegram.sent if m["chat"]["id"] == OWNER_CHAT and f"deals/{other.id}" in m["text"])
    assert "reply_markup" not in head_alert  # an escalation has no button: the lead is the manager's to call
    telegram.user_presses(MANAGER_CHAT, alert["message_id"])  # pressed again, after the lead was taken
    run(engine, store, "2026-03-02 07:11")
    assert telegram.answers[-1]["text"].endswith("ваш: больше никого о нём не побеспокоим.")  # idempotent


@pytest.mark.usefixtures("team")
def test_only_leads_whose_first_touch_voronka_sees_are_paged_about(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    """A RetailCRM order's calls never reach voronka: its lead is not paged about, unless the
    connection says so; an amoCRM lead (its calls are synced) and voronka's own are."""
    from typer.testing import CliRunner

    from voronka.cli import app
    from voronka.crm.deals import create_deal
    from voronka.crm.new_deal import NewDeal
    from voronka.ingest.connectors import CONNECTORS
    from voronka.ingest.connectors.store import add_connection

    account = default_account(session=session)
    pipeline = pipeline_for(session)
    for kind in ("retailcrm", "amocrm"):
        add_connection(
            session=session, account=account, connector=CONNECTORS[kind], name=kind, address="https://x.example",
            settings={}, secret_values=dict.fromkeys(CONNECTORS[kind].secret_names, "x"), store=store,
        )  # fmt: skip
    deals = {}
    for origin in ("own", "retailcrm", "amocrm"):
        deal = create_deal(
            session=session, pipeline=pipeline, new=NewDeal(currency="RUB", created_at=at("2026-03-02 07:00"))
        )
        deal.origin, deal.external_id = origin, f"{origin}-1"
        deal.manager_id = session.scalars(select(User.id).where(User.name == "Анна")).one()
        deals[origin] = deal.id
    session.commit()
    run(engine, store, "2026-03-02 07:05")
    paged = " ".join(telegram.texts_to(MANAGER_CHAT))
    assert f"deals/{deals['own']}" in paged
    assert f"deals/{deals['amocrm']}" in paged
    assert f"deals/{deals['retailcrm']}" not in paged
    url = session.get_bind().url.render_as_string(hide_password=False)
    said = CliRunner().invoke(app, ["--db", url, "--lang", "en", "alerts", "leads", "retailcrm", "--on"])
    assert said.exit_code == 0, said.stderr
    assert "paged about" in said.stdout
    run(engine, store, "2026-03-02 07:06")
    assert f"deals/{deals['retailcrm']}" in " ".join(telegram.texts_to(MANAGER_CHAT))


@pytest.mark.usefixtures("team")
def test_a_test_message_shows_whether_each_channel_works(
    session: Session, engine: Engine, store: SecretStore, telegram: FakeTelegram
) -> None:
    """`voronka alerts test` sends at once, quiet hours or not, to the leaders (or one user) through
    each channel they have, and says how each went; `voronka alerts digest` sends the digest now."""
    from typer.testing import CliRunner

    from voronka.cli import app

    set_rules(session=session, account=default_account(session=session), quiet="00:00-23:59")
    session.commit()
    results = service.send_test(
        sessions=session_factory(engine), account_id=1, store=store, now=at("2026-03-02 07:00"), pacer=still_pacer()
    )
    assert sorted((r.name, r.channel, r.status) for r in results) == [
        ("Ирина", "telegram", "sent"), ("Олег", "telegram", "sent")
    ]  # fmt: skip
    assert "A test from voronka for Ирина" in telegram.texts_to(HEAD_CHAT)[0]  # the head reads English
    assert telegram.texts_to(MANAGER_CHAT) == []
    one = service.send_test(
        sessions=session_factory(engine), account_id=1, store=store, now=at("2026-03-02 07:01"),
        user_email="manager@example.com", pacer=still_pacer(),
    )  # fmt: skip
    assert [(r.name, r.status) for r in one] == [("Анна", "sent")]
    url = session.get_bind().url.render_as_string(hide_password=False)
    runner = CliRunner()
    env = {"VORONKA_SECRETS_PATH": str(store.path)}
    base = ["--db", url, "--lang", "en", "alerts"]
    unknown = runner.invoke(app, [*base, "test", "--user", "nobody@example.com"], env=env)
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("Error:")
    digest = runner.invoke(app, [*base, "digest"], env=env)
    assert digest.exit_code == 0, digest.stderr
    assert "sent" in digest.stdout


def test_the_owner_sets_up_the_channels_on_the_alerts_page_and_sends_a_test(
    session: Session, engine: Engine, tmp_path: Path, inbox: tuple[Inbox, int]
) -> None:
    """Telegram's token and the e-mail server are set on the page (the secrets go to the secrets
    file and are never shown back); "Send me a test" arrives, and its state shows in the messages."""
    from tests.web_helpers import csrf_of, log_in, make_client, make_user

    handler, port = inbox
    pipeline_for(session)
    email_address = make_user(session, "Olga", Role.OWNER)
    client = make_client(engine, tmp_path)
    log_in(client, email_address)
    page = client.get("/settings/alerts")
    csrf = csrf_of(page.text)
    assert 'id="channels"' in page.text
    token = "123456:" + "A" * 30
    assert client.post("/settings/alerts/telegram", data={"csrf": csrf, "token": token}).status_code == 200
    form = {"csrf": csrf, "host": "127.0.0.1", "port": str(port), "security": "none", "sender": "crm@example.ru",
            "login": "", "password": "s3cret-mail"}  # fmt: skip
    assert client.post("/settings/alerts/smtp", data=form).status_code == 200
    shown = client.get("/settings/alerts").text
    assert token not in shown
    assert "s3cret-mail" not in shown
    secrets = (tmp_path / "secrets.json").read_text()
    assert token in secrets
    assert "s3cret-mail" in secrets
    sent = client.post("/settings/alerts/test", data={"csrf": csrf})
    assert sent.status_code == 200
    assert [m["To"] for m in handler.messages] == [email_address]
    assert "test" in str(handler.messages[0]["Subject"]).lower() or "провер" in str(handler.messages[0]["Subject"])
    manager = make_user(session, "Anna", Role.MANAGER)
    client.cookies.clear()
    log_in(client, manager)
    assert 'id="channels"' not in client.get("/settings/alerts").text
    refused = client.post(
        "/settings/alerts/telegram", data={"csrf": csrf_of(client.get("/settings/alerts").text), "token": token}
    )
    assert refused.status_code == 403


def test_a_new_account_starts_with_the_documented_rules(session: Session) -> None:
    rules = alert_settings(session=session, account=default_account(session=session))
    assert (rules.lead_minutes, rules.stall_factor) == (DEFAULT_LEAD_MINUTES, DEFAULT_STALL_FACTOR) == (5, 2)
