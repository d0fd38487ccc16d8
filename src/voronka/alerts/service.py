"""What the jobs call: find what is due and put it in the outbox, deliver the outbox, send the
digests, keep the stored diagnosis fresh, report a failed job, and read chat links from the bot."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from voronka.alerts import digest as digests
from voronka.alerts.channels import Refused, RetryLater, telegram_call
from voronka.alerts.config import Channels, alert_settings, channels_of, link_chat, prefs_of, quiet_hours
from voronka.alerts.events import lead_alerts, leaders_of, repeat_alerts, stalled_alerts, task_alerts, team
from voronka.alerts.model import Alert, Event, Shown, wants
from voronka.alerts.outbox import Delivery, Letter, deliver_due, enqueue, lang_of, letters_for
from voronka.analysis.diagnose import run_diagnosis
from voronka.analysis.diagnose.model import Finding
from voronka.analysis.diagnose.output import summary
from voronka.analysis.diagnose.stored import keep_top_findings
from voronka.crm.accounts import account_by_id, list_pipelines
from voronka.i18n import Message, Translator, translate
from voronka.models import Account, User
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
    prefs = prefs_of(session=session, account=account)
    added = 0
    for alert in alerts:
        for letter in letters_for(alert, users, channels, prefs):
            added += enqueue(session=session, account=account, letter=letter, now=now)
    return added


def run_alerts(
    *,
    sessions: sessionmaker[Session],
    account_id: int,
    store: SecretStore,
    now: dt.datetime,
    base_url: str | None = None,
) -> Message:
    """One pass: read chat links, queue what became due, deliver what may go now."""
    with sessions() as session, session.begin():
        account = account_by_id(session=session, account_id=account_id)
        found = alert_settings(session=session, account=account, now=now)
        channels = channels_of(found, store)
        linked = poll_links(session=session, account=account, channels=channels, now=now) if channels.telegram else 0
        users, link = team(session, account), deal_link(base_url)
        alerts = [
            *lead_alerts(session=session, account=account, found=found, now=now, link=link, users=users),
            *repeat_alerts(session=session, account=account, found=found, now=now, link=link, users=users),
            *task_alerts(session=session, account=account, found=found, now=now, link=link),
            *stalled_alerts(session=session, account=account, found=found, now=now, link=link, users=users),
        ]
        added = _queue(session, account, alerts, users, channels, now)
        quiet = quiet_hours(found)
    delivery = deliver_due(sessions=sessions, account=account, channels=channels, quiet=quiet, now=now)
    return Message("alerts.pass", {"added": added, "linked": linked, "delivery": delivery.message()})


def deliver(*, sessions: sessionmaker[Session], account_id: int, store: SecretStore, now: dt.datetime) -> Delivery:
    with sessions() as session:
        account = account_by_id(session=session, account_id=account_id)
        found = alert_settings(session=session, account=account, now=now)
        channels, quiet = channels_of(found, store), quiet_hours(found)
        session.commit()
    return deliver_due(sessions=sessions, account=account, channels=channels, quiet=quiet, now=now)


def poll_links(*, session: Session, account: Account, channels: Channels, now: dt.datetime) -> int:
    """Read the bot's new messages (getUpdates from the stored offset); a message with a valid
    one-time code links its chat to that user, who gets a confirmation."""
    found = alert_settings(session=session, account=account)
    try:
        updates = telegram_call(
            channels, "getUpdates", {"offset": found.telegram_offset, "timeout": 0, "allowed_updates": ["message"]}
        )
    except RetryLater:
        return 0
    linked = 0
    for update in updates or []:
        found.telegram_offset = max(found.telegram_offset, int(update.get("update_id", 0)) + 1)
        message = update.get("message") or {}
        chat, text = (message.get("chat") or {}).get("id"), str(message.get("text") or "")
        if chat is None or not text:
            continue
        user = link_chat(session=session, account=account, code=text.removeprefix("/start"), chat_id=str(chat), now=now)
        linked += user is not None
        with contextlib.suppress(RetryLater, Refused):  # the link stands; the confirmation is a courtesy
            telegram_call(channels, "sendMessage", {"chat_id": chat, "text": _link_reply(user)})
    return linked


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
        alerts = []
        for pipeline in list_pipelines(session=session, account=account):
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
                alerts.append(
                    Alert(f"finding:{pipeline.id}:{finding.code}:{step}:{subject}", Event.FINDING, leaders, text, facts)
                )
        settings = alert_settings(session=session, account=account, now=now)
        added = _queue(session, account, alerts, users, channels_of(settings, store), now)
    return Message("alerts.diagnosed", {"findings": len(alerts), "added": added})


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
        prefs, chart, added = prefs_of(session=session, account=account), digests.digest_chart(built), 0
        for user in team(session, account).values():
            if not wants(event, role=user.role, user_id=user.id, prefs=prefs):
                continue
            for letter in _digest_letters(built, user, channels, chart):
                added += enqueue(session=session, account=account, letter=letter, now=now)
    return Message("alerts.digest_queued", {"added": added})


def _digest_letters(built: digests.Digest, user: User, channels: Channels, chart: str) -> list[Letter]:
    lang, key = lang_of(user), f"digest:{built.kind}:{built.start.isoformat()}"
    subject, text, letters = digests.digest_subject(built, lang), digests.digest_text(built, lang), []
    if channels.telegram and user.telegram_chat_id:
        letters.append(
            Letter(
                f"{key}/telegram/{user.id}", built.kind, "telegram", user.id, user.telegram_chat_id, subject, text, {}
            )
        )
    if channels.email and user.email:
        data = {"html": digests.digest_html(built, lang), "chart_png": chart}
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
    """A sync or other job failed: the leaders hear once per failed run."""
    with sessions() as session, session.begin():
        account = account_by_id(session=session, account_id=account_id)
        users = team(session, account)
        leaders = leaders_of(users.values())
        alert = Alert(
            f"failed:{what.key}:{what.params.get('name', '')}:{started:%Y%m%d%H%M%S}",
            Event.SYNC_FAILED,
            leaders,
            Message("alerts.sync_failed", {"what": what, "error": error}),
            {"job": what.render("en"), "error": error.render("en")},
        )
        _queue(
            session,
            account,
            [alert],
            users,
            channels_of(alert_settings(session=session, account=account, now=now), store),
            now,
        )
