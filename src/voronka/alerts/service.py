"""What the jobs call: find what is due and put it in the outbox, deliver the outbox, send the
digests, keep the stored diagnosis fresh, report a failed job, and read chat links from the bot."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from voronka.alerts import digest as digests
from voronka.alerts.channels import Pacer, Refused, RetryLater, telegram_call
from voronka.alerts.config import Channels, alert_settings, channels_of, link_chat, prefs_of, quiet_hours
from voronka.alerts.events import (
    LOOKBACK,
    escalation_key,
    lead_alerts,
    leaders_of,
    markers,
    missed_call_alerts,
    repeat_alerts,
    stalled_alerts,
    task_alerts,
    team,
    waiting_leads,
)
from voronka.alerts.handover import hand_over_due
from voronka.alerts.model import Alert, Event, Shown, wants
from voronka.alerts.outbox import BASELINE, TAKE, Delivery, Letter, deliver_due, enqueue, lang_of, letters_for
from voronka.analysis.diagnose import run_diagnosis
from voronka.analysis.diagnose.model import Finding
from voronka.analysis.diagnose.output import summary
from voronka.analysis.diagnose.stored import keep_top_findings
from voronka.crm.accounts import account_by_id, list_pipelines
from voronka.crm.auth import UserNotFound
from voronka.crm.deals import update_deal
from voronka.crm.derived import lock_deal
from voronka.i18n import Message, Translator, translate
from voronka.models import Account, Deal, DealStatus, OutboxMessage, Role, User
from voronka.secretstore import SecretStore
from voronka.timeutil import to_local, zone


def deal_link(base_url: str | None) -> Callable[[int], str]:
    return (lambda deal_id: f"{base_url.rstrip('/')}/deals/{deal_id}") if base_url else (lambda deal_id: f"#{deal_id}")


def _queue(
    session: Session,
    account: Account,
    alerts: Iterable[Alert],
    users: Mapping[int, User],
    channels: Channels,
    now: dt.datetime,
) -> int:
    alerts = list(alerts)
    if not alerts:
        return 0  # most passes find nothing new: no query for the preferences either
    prefs = prefs_of(session=session, account=account)
    letters = [letter for alert in alerts for letter in letters_for(alert, users, channels, prefs)]
    # Most of what a pass finds it found on the pass before (a lead waits for a day): one read of
    # the keys spares an insert per letter; the insert still skips a key another worker just added.
    known: set[str] = set()
    for start in range(0, len(letters), 500):
        keys = [letter.key for letter in letters[start : start + 500]]
        known |= set(
            session.scalars(
                select(OutboxMessage.key).where(OutboxMessage.account_id == account.id, OutboxMessage.key.in_(keys))
            )
        )
    return sum(
        enqueue(session=session, account=account, letter=letter, now=now)
        for letter in letters
        if letter.key not in known
    )


def run_alerts(
    *,
    sessions: sessionmaker[Session],
    account_id: int,
    store: SecretStore,
    now: dt.datetime,
    base_url: str | None = None,
    pacer: Pacer | None = None,
    stalled: bool = True,
) -> Message:
    """One pass: read chat links, queue what became due, deliver what may go now. ``stalled=False``
    leaves stalled deals to their own hourly job: a stay of days needs no look every minute, and it
    is the pass's dearest query."""
    with sessions() as session, session.begin():
        account = account_by_id(session=session, account_id=account_id)
        rules = alert_settings(session=session, account=account, now=now)
        channels = channels_of(rules, store)
        linked = poll_links(session=session, account=account, channels=channels, now=now) if channels.telegram else 0
        users, link = team(session, account), deal_link(base_url)
        taken, handed = markers(session, account, now - 7 * LOOKBACK)
        waiting = waiting_leads(session=session, account=account, rules=rules, now=now, taken=taken)
        alerts = [
            *lead_alerts(waiting=waiting, handed=handed, now=now, link=link, users=users),
            *repeat_alerts(session=session, account=account, rules=rules, now=now, link=link, users=users),
            *missed_call_alerts(session=session, account=account, rules=rules, now=now, link=link, users=users),
            *task_alerts(session=session, account=account, rules=rules, now=now, link=link),
        ]
        if stalled:
            alerts += stalled_alerts(session=session, account=account, rules=rules, now=now, link=link, users=users)
        added = _queue(session, account, alerts, users, channels, now)
        if rules.handover:
            due = [item.deal.id for item in waiting if item.escalate and item.deal.id not in handed]
            added += _queue(session, account, hand_over_due(session, account, due, link, now), users, channels, now)
        quiet = quiet_hours(rules)
    delivery = deliver_due(sessions=sessions, account=account, channels=channels, quiet=quiet, now=now, pacer=pacer)
    return Message("alerts.pass", {"added": added, "linked": linked, "delivery": delivery.message()})


def run_stalled(
    *, sessions: sessionmaker[Session], account_id: int, store: SecretStore, now: dt.datetime, base_url: str | None
) -> Message:
    """Queue the alerts about deals that stalled (the next alerts pass delivers them)."""
    with sessions() as session, session.begin():
        account = account_by_id(session=session, account_id=account_id)
        rules = alert_settings(session=session, account=account, now=now)
        users, link = team(session, account), deal_link(base_url)
        alerts = stalled_alerts(session=session, account=account, rules=rules, now=now, link=link, users=users)
        added = _queue(session, account, alerts, users, channels_of(rules, store), now)
    return Message("alerts.stalled_pass", {"added": added})


def deliver(
    *,
    sessions: sessionmaker[Session],
    account_id: int,
    store: SecretStore,
    now: dt.datetime,
    pacer: Pacer | None = None,
) -> Delivery:
    with sessions() as session:
        account = account_by_id(session=session, account_id=account_id)
        rules = alert_settings(session=session, account=account, now=now)
        channels, quiet = channels_of(rules, store), quiet_hours(rules)
        session.commit()
    return deliver_due(sessions=sessions, account=account, channels=channels, quiet=quiet, now=now, pacer=pacer)


def poll_links(*, session: Session, account: Account, channels: Channels, now: dt.datetime) -> int:
    """Read the bot's new messages and button presses (getUpdates from the stored offset): a message
    with a valid one-time code links its chat to that user, who gets a confirmation; «I'm calling»
    under a lead's alert takes the lead (``take_lead``), and the presser is told the outcome."""
    rules = alert_settings(session=session, account=account)
    try:
        updates = telegram_call(
            channels,
            "getUpdates",
            {"offset": rules.telegram_offset, "timeout": 0, "allowed_updates": ["message", "callback_query"]},
        )
    except RetryLater:
        return 0
    linked = 0
    for update in updates or []:
        rules.telegram_offset = max(rules.telegram_offset, int(update.get("update_id", 0)) + 1)
        if isinstance(update.get("callback_query"), dict):
            _pressed(session, account, channels, update["callback_query"], now)
            continue
        message = update.get("message") or {}
        chat, text = (message.get("chat") or {}).get("id"), str(message.get("text") or "")
        if chat is None or not text:
            continue
        user = link_chat(session=session, account=account, code=text.removeprefix("/start"), chat_id=str(chat), now=now)
        linked += user is not None
        with contextlib.suppress(RetryLater, Refused):  # the link stands; the confirmation is a courtesy
            telegram_call(channels, "sendMessage", {"chat_id": chat, "text": _link_reply(user)})
    return linked


def _pressed(
    session: Session, account: Account, channels: Channels, query: Mapping[str, Any], now: dt.datetime
) -> None:
    """A button under one of the bot's messages was pressed: act on it and answer the query (Telegram
    shows the presser a spinner until it is answered)."""
    chat = str((query.get("from") or {}).get("id", ""))
    user = session.scalars(
        select(User).where(User.account_id == account.id, User.telegram_chat_id == chat, User.active.is_(True))
    ).first()
    data = str(query.get("data") or "")
    said = Message("alerts.take_unknown")
    if user is not None and data.startswith(TAKE) and data.removeprefix(TAKE).isdigit():
        said = take_lead(session=session, account=account, user=user, deal_id=int(data.removeprefix(TAKE)), now=now)
    answer = {"callback_query_id": query.get("id"), "text": said.render(lang_of(user) if user else "ru")}
    with contextlib.suppress(RetryLater, Refused):  # what was done stands; the answer is a courtesy
        telegram_call(channels, "answerCallbackQuery", answer)


def take_lead(*, session: Session, account: Account, user: User, deal_id: int, now: dt.datetime) -> Message:
    """«I'm calling»: the lead becomes ``user``'s (when it is theirs or nobody's, or they lead the team)
    and its escalation is off. A lead already contacted, closed or another manager's is left alone,
    and the presser is told why."""
    deal = session.get(Deal, deal_id)
    if deal is None or deal.account_id != account.id:
        return Message("alerts.take_unknown")
    lock_deal(session, deal)  # two presses at once: the second sees the first's manager
    if deal.status != DealStatus.OPEN.value or deal.first_contact_at is not None:
        return Message("alerts.take_done", {"deal": deal.title or f"#{deal.id}"})
    if deal.manager_id not in (None, user.id) and user.role not in (Role.OWNER.value, Role.HEAD.value):
        return Message("alerts.take_other", {"deal": deal.title or f"#{deal.id}"})
    if deal.manager_id != user.id:
        update_deal(session=session, deal=deal, changes={"manager": user}, by=user)
    marker = Letter(f"{escalation_key(deal.id)}/taken", Event.LEAD_ESCALATED, "none", user.id, "", "", "", {})
    enqueue(session=session, account=account, letter=marker, now=now, status=BASELINE)
    return Message("alerts.take_ok", {"deal": deal.title or f"#{deal.id}"})


def _link_reply(user: User | None) -> str:
    if user is not None:
        return translate("alerts.linked", lang_of(user), name=user.name)
    return "\n".join(translate("alerts.unknown_code", lang) for lang in ("ru", "en"))


def refresh_diagnosis(
    *, sessions: sessionmaker[Session], account_id: int, store: SecretStore, now: dt.datetime
) -> Message:
    """Diagnose every pipeline, keep the top findings for the dashboard (both languages), and tell the
    leaders once about each new confident finding with its money at stake."""
    with sessions() as session, session.begin():
        account = account_by_id(session=session, account_id=account_id)
        today = to_local(now, zone(account.timezone)).date()
        users = team(session, account)
        leaders = leaders_of(users.values())
        alerts: list[Alert] = []
        fresh: list[Alert] = []
        for pipeline in list_pipelines(session=session, account=account):
            found_here: list[Alert] = []
            found = run_diagnosis(session=session, account=account, pipeline=pipeline.name, today=today)
            keep_top_findings(session=session, account=account, pipeline=pipeline, diagnosis=found, now=now)
            for finding in found.findings:
                if not finding.confident:
                    continue
                subject = f"{finding.subject.kind}={finding.subject.value}" if finding.subject else ""
                step = "-".join(map(str, finding.step)) if finding.step else ""
                money = Shown("money", finding.money_at_stake_per_month, account.currency)
                text = Message(
                    "alerts.finding", {"summary": FindingSentence(finding), "money": money, "pipeline": pipeline.name}
                )
                facts = {
                    "pipeline": pipeline.name,
                    "code": finding.code,
                    "step": step,
                    "subject": subject,
                    "money_at_stake_per_month_minor": round(finding.money_at_stake_per_month),
                }
                found_here.append(
                    Alert(f"finding:{pipeline.id}:{finding.code}:{step}:{subject}", Event.FINDING, leaders, text, facts)
                )
            alerts += found_here
            fresh += _past_baseline(session, account, f"finding:{pipeline.id}", found_here, now)
        settings = alert_settings(session=session, account=account, now=now)
        added = _queue(session, account, fresh, users, channels_of(settings, store), now)
    return Message("alerts.diagnosed", {"findings": len(alerts), "added": added})


def _past_baseline(
    session: Session, account: Account, scope: str, alerts: list[Alert], now: dt.datetime
) -> list[Alert]:
    """The findings of one pipeline to tell: on its first diagnosis after alerts were set up, none —
    what it finds then is the baseline (marked known, never sent; the dashboard shows it) — and
    afterwards those not in the baseline. The first run leaves a marker for the pipeline itself, so
    one with nothing to find at first does not take its first finding later for the baseline."""
    wanted = [_marker(scope), *(_marker(a.key) for a in alerts)]
    marked = set(
        session.scalars(
            select(OutboxMessage.key).where(
                OutboxMessage.account_id == account.id, OutboxMessage.status == BASELINE, OutboxMessage.key.in_(wanted)
            )
        )
    )
    if _marker(scope) not in marked:
        for key in [scope, *(a.key for a in alerts)]:
            _mark(session, account, key, now)
        return []
    return [a for a in alerts if _marker(a.key) not in marked]


def _marker(key: str) -> str:
    return f"{key}/{BASELINE}"


def _mark(session: Session, account: Account, key: str, now: dt.datetime) -> None:
    letter = Letter(_marker(key), Event.FINDING, "none", None, "", "", "", {})
    enqueue(session=session, account=account, letter=letter, now=now, status=BASELINE)


@dataclass(frozen=True)
class FindingSentence:
    """A finding's sentence, rendered in each reader's language when the alert is written."""

    finding: Finding

    def render(self, lang: str) -> str:
        return summary(self.finding, Translator(lang))


def send_digest(
    *, sessions: sessionmaker[Session], account_id: int, store: SecretStore, kind: str, now: dt.datetime
) -> Message:
    """Queue the daily or weekly digest for everyone who wants it: the text on Telegram, the HTML
    with the funnel picture by e-mail (each once: the key names the period)."""
    event = Event.DIGEST_DAILY if kind == "daily" else Event.DIGEST_WEEKLY
    with sessions() as session, session.begin():
        account = account_by_id(session=session, account_id=account_id)
        if not list_pipelines(session=session, account=account):
            return Message("alerts.digest_nothing")
        channels = channels_of(alert_settings(session=session, account=account, now=now), store)
        today = to_local(now, zone(account.timezone)).date()
        built = digests.build_digest(session=session, account=account, kind=kind, today=today, now=now)
        prefs, charts, added = prefs_of(session=session, account=account), digests.digest_charts(built), 0
        for user in team(session, account).values():
            if not wants(event, role=user.role, user_id=user.id, prefs=prefs):
                continue
            for letter in _digest_letters(built, user, channels, charts):
                added += enqueue(session=session, account=account, letter=letter, now=now)
    return Message("alerts.digest_queued", {"added": added})


def _digest_letters(built: digests.Digest, user: User, channels: Channels, charts: list[str]) -> list[Letter]:
    lang, key = lang_of(user), f"digest:{built.kind}:{built.start.isoformat()}"
    subject, text, letters = digests.digest_subject(built, lang), digests.digest_text(built, lang), []
    if channels.telegram and user.telegram_chat_id:
        letters.append(
            Letter(
                f"{key}/telegram/{user.id}", built.kind, "telegram", user.id, user.telegram_chat_id, subject, text, {}
            )
        )
    if channels.email and user.email:
        data = {"html": digests.digest_html(built, lang), "charts": charts}
        letters.append(Letter(f"{key}/email/{user.id}", built.kind, "email", user.id, user.email, subject, text, data))
    return letters


def notify_failure(
    *,
    sessions: sessionmaker[Session],
    account_id: int,
    store: SecretStore,
    what: Message,
    error: Message,
    started: dt.datetime,
    now: dt.datetime,
) -> None:
    """A sync or other job started failing: the leaders hear (the worker calls this once a streak)."""
    text = Message("alerts.sync_failed", {"what": what, "error": error})  # and: you will hear when it works
    _tell_leaders(
        sessions, account_id, store, f"failed:{what.key}:{what.params.get('name', '')}:{started:%Y%m%d%H%M%S}",
        text,
        {"job": what.render("en"), "error": error.render("en")}, now,
    )  # fmt: skip


def notify_recovery(
    *,
    sessions: sessionmaker[Session],
    account_id: int,
    store: SecretStore,
    what: Message,
    failures: int,
    now: dt.datetime,
) -> None:
    """A job that was failing worked again: the leaders hear once."""
    _tell_leaders(
        sessions, account_id, store, f"recovered:{what.key}:{what.params.get('name', '')}:{now:%Y%m%d%H%M%S}",
        Message("alerts.sync_recovered", {"what": what, "failures": failures}),
        {"job": what.render("en"), "recovered": True, "failures": failures}, now,
    )  # fmt: skip


def _tell_leaders(
    sessions: sessionmaker[Session],
    account_id: int,
    store: SecretStore,
    key: str,
    text: Message,
    data: Mapping[str, object],
    now: dt.datetime,
) -> None:
    with sessions() as session, session.begin():
        account = account_by_id(session=session, account_id=account_id)
        users = team(session, account)
        alert = Alert(key, Event.SYNC_FAILED, leaders_of(users.values()), text, dict(data))
        settings = alert_settings(session=session, account=account, now=now)
        _queue(session, account, [alert], users, channels_of(settings, store), now)


@dataclass(frozen=True)
class TestResult:
    """How one test message went: to whom, through what, and what the channel answered."""

    name: str
    channel: str
    status: str
    error: str | None


def send_test(
    *,
    sessions: sessionmaker[Session],
    account_id: int,
    store: SecretStore,
    now: dt.datetime,
    user_email: str | None = None,
    pacer: Pacer | None = None,
) -> list[TestResult]:
    """Send a test message now, outside quiet hours, to the user (by default the owners and heads)
    through every channel they have, and say how each went: the way to check a set-up."""
    with sessions() as session, session.begin():
        account = account_by_id(session=session, account_id=account_id)
        channels = channels_of(alert_settings(session=session, account=account, now=now), store)
        people = list(team(session, account).values())
        if user_email is not None:
            people = [u for u in people if (u.email or "").casefold() == user_email.strip().casefold()]
            if not people:
                raise UserNotFound(email=user_email)
        else:
            people = [u for u in people if u.id in leaders_of(people)]
        keys = []
        for user in people:
            lang = lang_of(user)
            text = Message("alerts.test_text", {"name": user.name}).render(lang)
            subject = Message("alerts.test_subject", {}).render(lang)
            for channel, address in (("telegram", user.telegram_chat_id), ("email", user.email)):
                if address and getattr(channels, channel):
                    key = f"test:{now.isoformat()}/{channel}/{user.id}"
                    letter = Letter(key, "test", channel, user.id, address, subject, text, {})
                    enqueue(session=session, account=account, letter=letter, now=now)
                    keys.append((key, user.name))
    deliver_due(sessions=sessions, account=account, channels=channels, quiet=None, now=now, pacer=pacer)
    with sessions() as session:
        rows = {
            row.key: row
            for row in session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.account_id == account_id, OutboxMessage.key.in_([k for k, _ in keys])
                )
            )
        }
        return [
            TestResult(name, rows[key].channel, rows[key].status, rows[key].last_error)
            for key, name in keys
            if key in rows
        ]
