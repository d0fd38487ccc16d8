"""An account's alert settings: thresholds, quiet hours, channels, who wants which event, and the
one-time codes that link a user's Telegram chat. Secrets (the bot token, the SMTP password, the
webhook's signing key) go to the secrets file, never to the database or the screen."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from voronka.alerts.model import (
    DEFAULT_LEAD_MINUTES,
    DEFAULT_STALL_FACTOR,
    Event,
    QuietHours,
    parse_quiet,
    receivable,
    role_subject,
    user_subject,
    wants,
)
from voronka.alerts.workhours import CALENDARS, WorkingHours, parse_hours
from voronka.crm import auth
from voronka.errors import InvalidValue, NotReceivable, RoleNotReceivable
from voronka.i18n import Message
from voronka.models import Account, AlertPref, AlertSettings, OutboxMessage, User
from voronka.roles import Role
from voronka.secretstore import SecretStore, hash_token
from voronka.timeutil import utcnow

TELEGRAM_API = "https://api.telegram.org"
SMTP_SECURITY = ("starttls", "ssl", "none")
CODE_MINUTES = 30
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def alert_settings(*, session: Session, account: Account, now: dt.datetime | None = None) -> AlertSettings:
    """The account's alert rules, made with the defaults on first use (alerts look back no further)."""
    rules = session.get(AlertSettings, account.id)
    if rules is None:
        rules = AlertSettings(
            account_id=account.id,
            lead_minutes=DEFAULT_LEAD_MINUTES,
            stall_factor=DEFAULT_STALL_FACTOR,
            telegram_offset=0,
            smtp_security="starttls",
            secret_ref=uuid.uuid4().hex,
            started_at=now or utcnow(),
        )
        session.add(rules)
        session.flush()
    return rules


def set_rules(
    *,
    session: Session,
    account: Account,
    lead_minutes: int | None = None,
    stall_factor: int | None = None,
    quiet: str | None = None,
    now: dt.datetime | None = None,
) -> AlertSettings:
    """Thresholds and quiet hours (``"21:00-09:00"``, or ``""`` for none). Changed quiet hours let go
    of what the old ones held: the next delivery sends it, or holds it again under the new hours."""
    rules = alert_settings(session=session, account=account)
    if lead_minutes is not None:
        if not 1 <= lead_minutes <= 24 * 60:
            raise InvalidValue(field="lead minutes", value=str(lead_minutes), hint="1 to 1440")
        rules.lead_minutes = lead_minutes
    if stall_factor is not None:
        if not 1 <= stall_factor <= 10:
            raise InvalidValue(field="stall factor", value=str(stall_factor), hint="1 to 10")
        rules.stall_factor = stall_factor
    if quiet is not None:
        bounds = _quiet_bounds(quiet)
        if bounds != (rules.quiet_from, rules.quiet_to):
            rules.quiet_from, rules.quiet_to = bounds
            _release_held(session, account, now or utcnow())
    return rules


def set_working(
    *,
    session: Session,
    account: Account,
    hours: str | None = None,
    calendar: str | None = None,
    handover: bool | None = None,
) -> AlertSettings:
    """Working hours (``"09:00-18:00"``, or ``""`` for around the clock), the production calendar
    naming the working days (``"RU"``, or ``""`` for Monday to Friday) and whether a lead uncalled at
    the escalation goes to the next manager in turn. ``None`` leaves a setting as it is."""
    rules = alert_settings(session=session, account=account)
    if hours is not None:
        bounds = _quiet_bounds(hours, field="working hours", example="09:00-18:00")
        if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
            raise InvalidValue(field="working hours", value=hours, hint="they end the day they start, e.g. 09:00-18:00")
        rules.work_hours = f"{bounds[0]}-{bounds[1]}" if bounds[0] else None
    if calendar is not None:
        code = calendar.strip().upper() or None
        if code is not None and code not in CALENDARS:
            raise InvalidValue(field="calendar", value=calendar, hint=", ".join(CALENDARS) + ' or "" for none')
        rules.work_calendar = code
    if handover is not None:
        rules.handover = handover
    session.flush()
    return rules


def working_hours(rules: AlertSettings) -> WorkingHours | None:
    return parse_hours(rules.work_hours, rules.work_calendar)


def _release_held(session: Session, account: Account, now: dt.datetime) -> None:
    """Messages held for the morning (pending, never tried, due later) become due again, each at the
    time it was made, so they go out in the order their events happened."""
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.account_id == account.id,
            OutboxMessage.status == "pending",
            OutboxMessage.attempts == 0,
            OutboxMessage.next_attempt_at > now,
        )
        .values(next_attempt_at=OutboxMessage.created_at)
        .execution_options(synchronize_session=False)
    )


def _quiet_bounds(
    text: str, *, field: str = "quiet hours", example: str = "21:00-09:00"
) -> tuple[str | None, str | None]:
    text = text.strip().replace("–", "-")
    if not text:
        return None, None
    start, _, end = (part.strip() for part in text.partition("-"))
    if not (_HHMM.match(start) and _HHMM.match(end)) or start == end:
        raise InvalidValue(field=field, value=text, hint=f"two local times, e.g. {example}")
    return start, end


def quiet_hours(rules: AlertSettings) -> QuietHours | None:
    return parse_quiet(rules.quiet_from, rules.quiet_to)


def set_telegram(
    *, session: Session, account: Account, store: SecretStore, token: str, api_url: str | None = None
) -> None:
    """The account's bot: its token (from @BotFather) to the secrets file; ``api_url`` for a local
    Bot API server (or a test's)."""
    if not re.fullmatch(r"\d+:[A-Za-z0-9_-]{20,}", token.strip()):
        raise InvalidValue(field="bot token", value="…", hint="the token @BotFather gave, like 123456:ABC-DEF…")
    rules = alert_settings(session=session, account=account)
    rules.telegram_api_url = api_url.rstrip("/") if api_url else None
    store.put(rules.secret_ref, {"telegram_token": token.strip()})


def set_smtp(
    *,
    session: Session,
    account: Account,
    store: SecretStore,
    host: str,
    port: int,
    security: str,
    sender: str,
    user: str | None = None,
    password: str | None = None,
) -> None:
    if security not in SMTP_SECURITY:
        raise InvalidValue(field="SMTP security", value=security, hint=", ".join(SMTP_SECURITY))
    if not 1 <= port <= 65535:
        raise InvalidValue(field="SMTP port", value=str(port), hint="1 to 65535")
    rules = alert_settings(session=session, account=account)
    rules.smtp_host, rules.smtp_port, rules.smtp_security = host.strip(), port, security
    rules.smtp_user, rules.smtp_from = (user or None), sender.strip()
    if password is not None:
        store.put(rules.secret_ref, {"smtp_password": password})


def set_webhook(
    *, session: Session, account: Account, store: SecretStore, url: str, signing_key: str | None = None
) -> str:
    """Where every alert is also POSTed as signed JSON; returns the signing key (made when not given)."""
    if not url.startswith(("https://", "http://")):
        raise InvalidValue(field="webhook URL", value=url, hint="an http(s):// address")
    rules = alert_settings(session=session, account=account)
    rules.webhook_url = url
    key = signing_key or secrets.token_urlsafe(32)
    store.put(rules.secret_ref, {"webhook_key": key})
    return key


@dataclass(frozen=True)
class Channels:
    """What an account can send through, with the secrets it needs (never printed)."""

    telegram_url: str | None
    telegram_token: str | None
    smtp_host: str | None
    smtp_port: int
    smtp_security: str
    smtp_user: str | None
    smtp_password: str | None
    smtp_from: str | None
    webhook_url: str | None
    webhook_key: str | None

    @property
    def telegram(self) -> bool:
        return bool(self.telegram_token)

    @property
    def email(self) -> bool:
        return bool(self.smtp_host and self.smtp_from)

    def __repr__(self) -> str:  # no secret in a log or a traceback
        return f"Channels(telegram={self.telegram}, email={self.email}, webhook={bool(self.webhook_url)})"


def channels_of(rules: AlertSettings, store: SecretStore) -> Channels:
    held = store.get(rules.secret_ref)
    return Channels(
        telegram_url=rules.telegram_api_url or TELEGRAM_API,
        telegram_token=held.get("telegram_token"),
        smtp_host=rules.smtp_host,
        smtp_port=rules.smtp_port or (465 if rules.smtp_security == "ssl" else 587),
        smtp_security=rules.smtp_security,
        smtp_user=rules.smtp_user,
        smtp_password=held.get("smtp_password"),
        smtp_from=rules.smtp_from,
        webhook_url=rules.webhook_url,
        webhook_key=held.get("webhook_key"),
    )


def set_pref(*, session: Session, account: Account, subject: str, event: Event, enabled: bool | None) -> None:
    """Switch ``event`` on or off for ``role:<role>`` or ``user:<id>``; ``None`` goes back to the default.
    Switching on what the subject's role never receives is refused, saying why (it would say "on" and
    never take effect)."""
    if enabled:
        _check_receivable(session, account, subject, event)
    row = session.scalars(
        select(AlertPref).where(
            AlertPref.account_id == account.id, AlertPref.subject == subject, AlertPref.event == event.value
        )
    ).first()
    if enabled is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        session.add(AlertPref(account_id=account.id, subject=subject, event=event.value, enabled=enabled))
    else:
        row.enabled = enabled
    session.flush()


def _check_receivable(session: Session, account: Account, subject: str, event: Event) -> None:
    kind, _, value = subject.partition(":")
    if kind == "role":
        if not receivable(event, value):
            raise RoleNotReceivable(event=event.value, role=Message(f"web.role_{value}"))
        return
    user = session.get(User, int(value))
    if user is not None and user.account_id == account.id and not receivable(event, user.role):
        raise NotReceivable(event=event.value, who=user.email, role=Message(f"web.role_{user.role}"))


def set_role_pref(*, session: Session, owner: User, role: Role, event: Event, enabled: bool | None) -> None:
    auth.require(owner, auth.Action.MANAGE_SETTINGS)
    account = auth.account_of(session=session, user=owner)
    set_pref(session=session, account=account, subject=role_subject(role.value), event=event, enabled=enabled)


def set_own_pref(*, session: Session, user: User, event: Event, enabled: bool | None) -> None:
    account = auth.account_of(session=session, user=user)
    set_pref(session=session, account=account, subject=user_subject(user.id), event=event, enabled=enabled)


def prefs_of(*, session: Session, account: Account) -> dict[str, bool]:
    """Every stored choice as ``"<subject>/<event>"`` → on/off (what ``model.wants`` reads)."""
    rows = session.execute(
        select(AlertPref.subject, AlertPref.event, AlertPref.enabled).where(AlertPref.account_id == account.id)
    )
    return {f"{subject}/{event}": enabled for subject, event, enabled in rows}


def events_for(user: User, prefs: Mapping[str, bool]) -> dict[Event, bool]:
    """What this user gets, event by event (the settings page shows it)."""
    return {
        event: wants(event, role=user.role, user_id=user.id, prefs=prefs)
        for event in Event
        if receivable(event, user.role)
    }


def new_link_code(*, session: Session, user: User, now: dt.datetime | None = None) -> str:
    """A one-time code the user sends the bot to link their chat (valid for half an hour). Only its
    hash is kept."""
    code = f"{secrets.randbelow(10**8):08d}"
    user.telegram_code_hash = hash_token(code)
    user.telegram_code_until = (now or utcnow()) + dt.timedelta(minutes=CODE_MINUTES)
    session.flush()
    return code


def link_chat(*, session: Session, account: Account, code: str, chat_id: str, now: dt.datetime) -> User | None:
    """The user whose valid code this is gets the chat; the code is spent. None for a wrong code."""
    digits = re.sub(r"\D", "", code)
    if len(digits) != 8:
        return None
    user = session.scalars(
        select(User).where(
            User.account_id == account.id,
            User.telegram_code_hash == hash_token(digits),
            User.telegram_code_until >= now,
            User.active.is_(True),
        )
    ).first()
    if user is not None:
        user.telegram_chat_id = chat_id
        user.telegram_code_hash = None
        user.telegram_code_until = None
        session.flush()
    return user


def unlink_chat(*, session: Session, user: User) -> None:
    user.telegram_chat_id = None
    session.flush()


def set_own_events(*, session: Session, user: User, enabled: set[Event]) -> None:
    """The user's own choice for every event at once (the settings page's checkboxes)."""
    for event in Event:
        if receivable(event, user.role):
            set_own_pref(session=session, user=user, event=event, enabled=event in enabled)


def set_role_events(
    *, session: Session, owner: User, enabled: set[tuple[Role, Event]], roles: tuple[Role, ...]
) -> None:
    """The owner's choice for every role and event at once."""
    for role in roles:
        for event in Event:
            if receivable(event, role.value):
                set_role_pref(session=session, owner=owner, role=role, event=event, enabled=(role, event) in enabled)
