"""The outbox: every message is a row with a unique key before anything is sent, so an event found
again — by this process or another, before or after a restart — adds nothing; delivery takes a row
with one conditional UPDATE (a lease), so two workers never send the same row, and a worker that dies
mid-send leaves a lease that runs out.

Delivery is at least once in one narrow case: a process killed after the other side took the message
but before the row was marked sent sends it again when the lease runs out.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from voronka.alerts.channels import CHANNELS, INLINE_WAIT, Outgoing, Pacer, Refused, RetryLater
from voronka.alerts.config import Channels
from voronka.alerts.model import MAX_ATTEMPTS, Alert, Event, QuietHours, retry_delay, wants
from voronka.db import dialect_insert
from voronka.i18n import Message, translate
from voronka.models import Account, OutboxMessage, User
from voronka.timeutil import to_local, to_utc, zone

log = logging.getLogger("voronka.alerts")
LEASE = dt.timedelta(minutes=5)
BATCH = 100
DEFAULT_LANG = "ru"


@dataclass(frozen=True)
class Letter:
    """One message for one person or endpoint, before it is stored."""

    key: str
    event: str
    channel: str
    recipient_id: int | None
    address: str
    subject: str
    body: str
    data: Mapping[str, Any]


BASELINE = "baseline"
"""The status of a row that only marks an alert as already known when alerts started (never sent)."""

URGENCY = {"lead_waiting": 0, "missed_call": 0, "lead_escalated": 1, "task_overdue": 2}
"""Delivery order: a waiting lead or a client who called in vain first, then a lead's escalation,
then tasks, then the rest."""


def enqueue(*, session: Session, account: Account, letter: Letter, now: dt.datetime, status: str = "pending") -> bool:
    """Store the letter unless its key is already there; True when it is new."""
    values = {
        "account_id": account.id,
        "key": letter.key,
        "event": letter.event,
        "channel": letter.channel,
        "recipient_id": letter.recipient_id,
        "address": letter.address,
        "subject": letter.subject[:300],
        "body": letter.body[:20000],
        "data": dict(letter.data),
        "status": status,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }
    statement = (
        dialect_insert(session, OutboxMessage)
        .values(values)
        .on_conflict_do_nothing(index_elements=["account_id", "key"])
        .returning(OutboxMessage.id)
    )
    # RETURNING, not the row count: through a Session on PostgreSQL the count is -1 (unknown), which
    # read as "new" even when the key was there — the handover's once-only guard relies on this.
    return session.execute(statement).first() is not None


def lang_of(user: User) -> str:
    return user.lang or DEFAULT_LANG


def letters_for(alert: Alert, users: Mapping[int, User], channels: Channels, prefs: Mapping[str, bool]) -> list[Letter]:
    """The alert for each recipient who wants it, on the channel they have (Telegram when their chat is
    linked, else e-mail), and once for the webhook."""
    letters = []
    for user_id in dict.fromkeys(alert.recipients):
        user = users.get(user_id)
        if user is None or not user.active or not wants(alert.event, role=user.role, user_id=user.id, prefs=prefs):
            continue
        channel, address = personal_channel(user, channels)
        if channel is None:
            continue
        text = alert.text.render(lang_of(user))
        subject = text.split("\n", 1)[0]
        extra = _take_button(alert, lang_of(user)) if channel == "telegram" else {}
        letters.append(
            Letter(f"{alert.key}/{channel}/{user.id}", alert.event, channel, user.id, address, subject, text, extra)
        )
    if channels.webhook_url:
        data = {"event": alert.event.value, "key": alert.key, "text": alert.text.render("en"), **alert.data}
        letters.append(
            Letter(
                f"{alert.key}/webhook",
                alert.event,
                "webhook",
                None,
                channels.webhook_url,
                alert.key,
                data["text"],
                data,
            )
        )
    return letters


TAKE = "take:"
"""The callback data of a lead alert's «I'm calling» button: ``take:<deal id>``."""


def _take_button(alert: Alert, lang: str) -> dict[str, Any]:
    """A waiting lead's alert on Telegram carries «I'm calling»: pressed, the lead is the presser's
    and its escalation is off (``service.take_lead``)."""
    if alert.event is not Event.LEAD_WAITING or "deal_id" not in alert.data:
        return {}
    return {"buttons": [{"text": translate("alerts.take", lang), "callback_data": f"{TAKE}{alert.data['deal_id']}"}]}


def personal_channel(user: User, channels: Channels) -> tuple[str | None, str]:
    if channels.telegram and user.telegram_chat_id:
        return "telegram", user.telegram_chat_id
    if channels.email and user.email:
        return "email", user.email
    return None, ""


@dataclass
class Delivery:
    sent: int = 0
    held: int = 0
    retried: int = 0
    failed: int = 0

    def message(self) -> Message:
        counts = {"sent": self.sent, "held": self.held, "retried": self.retried, "failed": self.failed}
        return Message("alerts.delivery", counts)


def _due(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
    )


def _urgency() -> ColumnElement[int]:
    return case(URGENCY, value=OutboxMessage.event, else_=len(URGENCY))


def deliver_due(
    *,
    sessions: sessionmaker[Session],
    account: Account,
    channels: Channels,
    quiet: QuietHours | None,
    now: dt.datetime,
    pacer: Pacer | None = None,
) -> Delivery:
    """Send what is due, most urgent first (a lead waiting for a call before anything older or less
    urgent, whatever the backlog), each row in its own short transaction (a slow server holds no lock),
    Telegram's messages at its pace."""
    done, pacer = Delivery(), pacer or Pacer()
    with sessions() as session:
        ids: Sequence[int] = session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.account_id == account.id, _due(now))
            .order_by(_urgency(), OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(BATCH)
        ).all()
    local_now = to_local(now, zone(account.timezone))
    for message_id in ids:
        with sessions() as session, session.begin():
            claimed = session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, _due(now))
                .values(status="sending", lease_until=now + LEASE)
            ).rowcount  # type: ignore[attr-defined]
            row = session.get(OutboxMessage, message_id) if claimed else None
            if row is None:
                continue  # another worker took it
            if quiet is not None and row.channel != "webhook" and quiet.holds(local_now):
                row.status, row.next_attempt_at = "pending", to_utc(quiet.release(local_now), zone(account.timezone))
                done.held += 1
                continue
            before = _earlier_step(session, row)
            if before is not None:  # the lead's first alert has not gone yet: its escalation waits for it
                row.status, row.next_attempt_at = "pending", max(before, now)
                done.held += 1
                continue
            letter = Outgoing(row.address, row.subject, row.body, row.data)
            channel = row.channel
        _record(sessions, message_id, _send(channel, letter, channels, pacer, message_id), now, done)
    return done


_ESCALATION = re.compile(r"^(lead:\d+):2/")
EARLIER_STEP_TRIES = 2
"""An escalation waits for its lead's first alert only while that alert is held or has failed less
than this many times: when the manager's channel is down, the escalation is the safety net."""


def _earlier_step(session: Session, row: OutboxMessage) -> dt.datetime | None:
    """When a lead's escalation is about to go while the lead's first alert is still waiting — held
    by quiet hours, or retried after a busy answer — that alert's next attempt: for one lead the
    manager hears first, then the head (whatever channel each reads); the webhook gets them in order
    too."""
    escalation = _ESCALATION.match(row.key)
    if escalation is None:
        return None
    same_kind = OutboxMessage.channel == "webhook" if row.channel == "webhook" else OutboxMessage.channel != "webhook"
    waiting: dt.datetime | None = session.scalar(
        select(func.max(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.account_id == row.account_id,
            OutboxMessage.key.like(f"{escalation.group(1)}:1/%"),
            same_kind,
            OutboxMessage.status.in_(("pending", "sending")),
            OutboxMessage.attempts < EARLIER_STEP_TRIES,
        )
    )
    return waiting


def _send(channel: str, letter: Outgoing, channels: Channels, pacer: Pacer, message_id: int) -> Exception | None:
    """Send once (twice when Telegram asks for a short pause: it is waited out here, not a pass
    later); None when it went, else what stopped it."""
    for attempt in (1, 2):
        if channel == "telegram":
            pacer.wait(letter.address)
        try:
            CHANNELS[channel](letter, channels)
            return None
        except RetryLater as exc:
            if channel != "telegram" or exc.after is None or exc.after > INLINE_WAIT or attempt == 2:
                return exc
            pacer.hold(exc.after)
        except Exception as exc:  # a message that breaks a channel must not stop the ones behind it
            if not isinstance(exc, Refused):
                log.exception("message %s could not be sent", message_id)
            return exc
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns


def _record(
    sessions: sessionmaker[Session], message_id: int, error: Exception | None, now: dt.datetime, done: Delivery
) -> None:
    with sessions() as session, session.begin():
        row = session.get(OutboxMessage, message_id)
        assert row is not None
        row.attempts += 1
        row.lease_until = None
        if error is None:
            row.status, row.sent_at, row.last_error = "sent", now, None
            done.sent += 1
            return
        reason = str(error) if isinstance(error, RetryLater | Refused) else f"{type(error).__name__}: {error}"
        row.last_error = reason[:500]
        if not isinstance(error, RetryLater) or row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
            done.failed += 1
            return
        row.status = "pending"
        # The wait the other side named (Telegram's retry_after), else the usual backoff.
        delay = dt.timedelta(seconds=error.after) if error.after is not None else retry_delay(row.attempts)
        row.next_attempt_at = now + delay
        done.retried += 1


def recent_messages(*, session: Session, account: Account, limit: int = 50) -> list[OutboxMessage]:
    """The latest messages with their state and last error (the settings page and ``voronka alerts``)."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.account_id == account.id, OutboxMessage.status != BASELINE)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .limit(limit)
        )
    )
