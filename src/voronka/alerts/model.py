"""What an alert is, who wants it, and when it may be sent: pure rules, tested without a database."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voronka.errors import InvalidValue
from voronka.formats import Shown as Shown  # figures in alerts: formatted per reader
from voronka.i18n import Message
from voronka.roles import Role


class Event(enum.StrEnum):
    LEAD_WAITING = "lead_waiting"
    """A new lead nobody has contacted N minutes after it came: its manager hears."""
    LEAD_ESCALATED = "lead_escalated"
    """Still nobody at 2N minutes: the head of sales and the owner hear (each may switch it off)."""
    TASK_OVERDUE = "task_overdue"
    MISSED_CALL = "missed_call"
    """A client whose deal is open called and nobody answered: the deal's manager hears."""
    DEAL_STALLED = "deal_stalled"
    FINDING = "finding"
    SYNC_FAILED = "sync_failed"
    DIGEST_DAILY = "digest_daily"
    DIGEST_WEEKLY = "digest_weekly"


def event_named(name: str) -> Event:
    """The event called ``name``, or an error listing them."""
    try:
        return Event(name)
    except ValueError:
        raise InvalidValue(field="event", value=name, hint=", ".join(e.value for e in Event)) from None


DEFAULT_LEAD_MINUTES = 5
"""A new account's rule: a lead uncalled this many working minutes alerts (its manager, then the
head at twice as long)."""
DEFAULT_STALL_FACTOR = 2
"""A new account's rule: an open deal untouched this many times its stage's usual time is stalled."""

EVERYONE = frozenset({Role.OWNER, Role.HEAD, Role.MANAGER})
LEADERS = frozenset({Role.OWNER, Role.HEAD})

DEFAULTS: Mapping[Event, frozenset[Role]] = {
    Event.LEAD_WAITING: EVERYONE,
    Event.LEAD_ESCALATED: LEADERS,
    Event.TASK_OVERDUE: EVERYONE,
    Event.MISSED_CALL: EVERYONE,
    Event.DEAL_STALLED: frozenset({Role.MANAGER, Role.HEAD}),
    Event.FINDING: LEADERS,
    Event.SYNC_FAILED: LEADERS,
    Event.DIGEST_DAILY: LEADERS,
    Event.DIGEST_WEEKLY: LEADERS,
}
"""Who gets an event unless the owner (per role) or the user says otherwise."""

TEAM_EVENTS = frozenset({Event.FINDING, Event.SYNC_FAILED, Event.DIGEST_DAILY, Event.DIGEST_WEEKLY})
"""About the whole team's figures: only roles that see every deal may receive them."""


def receivable(event: Event, role: str) -> bool:
    """Whether anyone of ``role`` is ever among an event's recipients (what a settings page offers)."""
    if event in TEAM_EVENTS or event is Event.LEAD_ESCALATED:
        return role in LEADERS
    return role in EVERYONE


def role_subject(role: str) -> str:
    return f"role:{role}"


def user_subject(user_id: int) -> str:
    return f"user:{user_id}"


def wants(event: Event, *, role: str, user_id: int, prefs: Mapping[str, bool]) -> bool:
    """Whether a user gets ``event``: their own choice, else their role's, else the default.

    ``prefs`` maps ``"<subject>/<event>"`` to on/off, as stored."""
    if not receivable(event, role):
        return False
    for subject in (user_subject(user_id), role_subject(role)):
        chosen = prefs.get(f"{subject}/{event.value}")
        if chosen is not None:
            return chosen
    return role in DEFAULTS[event]


@dataclass(frozen=True)
class QuietHours:
    start: dt.time
    end: dt.time

    def holds(self, local: dt.datetime) -> bool:
        moment = local.time()
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # spans midnight (21:00–09:00)

    def release(self, local: dt.datetime) -> dt.datetime:
        """When a message held at ``local`` may go: the end of the quiet hours (aware, local)."""
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return end if end > local else end + dt.timedelta(days=1)


def parse_quiet(start: str | None, end: str | None) -> QuietHours | None:
    if not start or not end:
        return None
    return QuietHours(dt.time.fromisoformat(start), dt.time.fromisoformat(end))


MAX_ATTEMPTS = 8


def retry_delay(failures: int, *, base: float = 60, cap: float = 3600) -> dt.timedelta:
    """Backoff after ``failures`` failures in a row: 1, 2, 4 … minutes, at most an hour."""
    return dt.timedelta(seconds=min(base * 2 ** max(failures - 1, 0), cap))


@dataclass(frozen=True)
class Alert:
    """Something to tell: ``key`` names the occurrence (the same lead, task or finding found again is
    the same key), ``recipients`` are user ids, ``text`` the message in any language."""

    key: str
    event: Event
    recipients: tuple[int, ...]
    text: Message
    data: Mapping[str, Any] = field(default_factory=dict)
    """Facts for the webhook (ids, times, amounts): what another program would act on."""
