"""What the alerts settings page shows, gathered for one user: their own events and chat link; for
the owner also the thresholds, the role defaults, the jobs and the latest messages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from voronka.alerts.config import alert_settings, channels_of, events_for, prefs_of
from voronka.alerts.model import DEFAULT_LEAD_MINUTES, DEFAULT_STALL_FACTOR, Event, receivable, role_subject, wants
from voronka.alerts.outbox import recent_messages
from voronka.alerts.workhours import CALENDARS
from voronka.crm import auth
from voronka.formats import Formats
from voronka.i18n import Translator
from voronka.jobs.store import ensure_jobs, job_every, job_label, list_jobs, shown
from voronka.models import OutboxMessage, User
from voronka.roles import Role
from voronka.secretstore import SecretStore
from voronka.timeutil import utcnow, zone

ROLES = (Role.OWNER, Role.HEAD, Role.MANAGER)


@dataclass(frozen=True)
class JobLine:
    name: str
    every: str
    next_run: str
    last_run: str
    outcome: str
    failed: bool


@dataclass(frozen=True)
class AlertsPage:
    mine: dict[Event, bool]
    linked: bool
    telegram: bool
    email: bool
    admin: bool
    lead_minutes: int = DEFAULT_LEAD_MINUTES
    stall_factor: int = DEFAULT_STALL_FACTOR
    quiet: str = ""
    roles: dict[Role, dict[Event, bool]] | None = None
    jobs: tuple[JobLine, ...] = ()
    outbox: tuple[OutboxMessage, ...] = ()
    smtp: tuple[str, int, str, str, str] = ("", 587, "starttls", "", "")
    """The e-mail server as set (host, port, security, sender, login), for the owner's form; never its password."""
    working: tuple[str, str, bool] = ("", "", False)
    """Working hours ("09:00-18:00" or ""), the calendar ("RU" or "") and whether leads are handed over."""
    calendars: tuple[str, ...] = ()


def alerts_page(*, session: Session, user: User, store: SecretStore, lang: str) -> AlertsPage:
    account = auth.account_of(session=session, user=user)
    rules = alert_settings(session=session, account=account)
    channels, prefs = channels_of(rules, store), prefs_of(session=session, account=account)
    base = AlertsPage(events_for(user, prefs), bool(user.telegram_chat_id), channels.telegram, channels.email, False)
    if not auth.can(user, auth.Action.MANAGE_SETTINGS):
        return base
    roles = {
        role: {
            e: wants(e, role=role.value, user_id=0, prefs=_role_only(prefs, role))
            for e in Event
            if receivable(e, role.value)
        }
        for role in ROLES
    }
    t, formats, now = Translator(lang), Formats(lang, zone(account.timezone)), utcnow()
    ensure_jobs(session=session, account=account, now=now)
    jobs = tuple(
        JobLine(
            job_label(job, t),
            job_every(job, t, formats),
            formats.when(job.next_run_at),
            formats.when(job.last_finished_at),
            shown(job.last_error, lang) or shown(job.last_result, lang) or "—",
            bool(job.last_error),
        )
        for job in list_jobs(session=session, account=account)
    )
    quiet = f"{rules.quiet_from}-{rules.quiet_to}" if rules.quiet_from and rules.quiet_to else ""
    return AlertsPage(
        base.mine, base.linked, base.telegram, base.email, True, rules.lead_minutes, rules.stall_factor, quiet,
        roles, jobs, tuple(recent_messages(session=session, account=account, limit=20)),
        (rules.smtp_host or "", rules.smtp_port or 587, rules.smtp_security or "starttls", rules.smtp_from or "",
         rules.smtp_user or ""),
        (rules.work_hours or "", rules.work_calendar or "", rules.handover), CALENDARS,
    )  # fmt: skip


def _role_only(prefs: dict[str, bool], role: Role) -> dict[str, bool]:
    """The role's stored choices alone (no user's), for the table of role defaults."""
    prefix = role_subject(role.value) + "/"
    return {key: value for key, value in prefs.items() if key.startswith(prefix)}
