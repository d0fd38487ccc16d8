"""What deserves an alert right now, found in SQL: leads nobody has called, tasks past due, deals
stalled past their stage's usual time. Each occurrence has a key of its own, so finding it again on
the next pass adds nothing to the outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from voronka.alerts.config import working_hours
from voronka.alerts.model import LEADERS, Alert, Event, Shown
from voronka.alerts.outbox import BASELINE
from voronka.alerts.workhours import LeadClock, lead_clock, lookback_start, next_working_moment
from voronka.analysis.stalled import stalled_condition, usual_stage_times
from voronka.crm.accounts import list_pipelines, list_users
from voronka.i18n import Message
from voronka.models import (
    LEGACY_ORIGIN,
    OWN_ORIGIN,
    Account,
    AlertSettings,
    CallAttempt,
    CallDirection,
    CallOutcome,
    Connection,
    Deal,
    DealEvent,
    DealStatus,
    OutboxMessage,
    Stage,
    Task,
    User,
)
from voronka.roles import Role
from voronka.timeutil import to_local, to_utc, zone

HANDOVER = "handover:"
"""The outbox key ``handover:<deal id>`` marks a lead handed over (never sent): the once-only guard."""
LOOKBACK = dt.timedelta(days=1)
"""Alerts concern the last day (and nothing before alerts were set up): a first run, or a worker
back after a week off, does not page the team about long-gone leads."""

Link = Callable[[int], str]


def team(session: Session, account: Account) -> dict[int, User]:
    """The account's active people by id (read once per pass)."""
    return {u.id: u for u in list_users(session=session, account=account, active_only=True)}


def leaders_of(users: Iterable[User]) -> tuple[int, ...]:
    """Those who see every deal's figures: the owners and the heads of sales."""
    return tuple(u.id for u in users if u.role in LEADERS)


def heads_of(users: Iterable[User]) -> tuple[int, ...]:
    """Who hears an escalation: the heads of sales, or the owners where there is no head."""
    people = list(users)
    for role in (Role.HEAD, Role.OWNER):
        found = tuple(u.id for u in people if u.role == role.value)
        if found:
            return found
    return ()


def _since(rules: AlertSettings, now: dt.datetime) -> dt.datetime:
    return max(rules.started_at, now - LOOKBACK)


def _deal_name(deal: Deal) -> str:
    return deal.title or deal.contact_name or deal.phone or f"#{deal.id}"


def escalation_key(deal_id: int) -> str:
    return f"lead:{deal_id}:2"


def markers(session: Session, account: Account, since: dt.datetime) -> tuple[set[int], set[int]]:
    """The leads taken with «I'm calling» and those handed over since ``since``: one read of the
    outbox's markers for both (an alerts pass runs every minute)."""
    keys = session.scalars(
        select(OutboxMessage.key).where(
            OutboxMessage.account_id == account.id,
            OutboxMessage.status == BASELINE,
            or_(OutboxMessage.key.like("lead:%:2/taken"), OutboxMessage.key.like(f"{HANDOVER}%")),
            OutboxMessage.created_at >= since,
        )
    )
    taken, handed = set(), set()
    for key in keys:
        if key.startswith(HANDOVER):
            handed.add(int(key.removeprefix(HANDOVER)))
        else:
            taken.add(int(key.split(":")[1]))
    return taken, handed


def watched_origins(session: Session, account: Account) -> list[str]:
    """Where the leads come from whose first touch voronka sees, and so may page about: its own
    (web leads, the card, the API, files) and the CRMs whose calls a sync brings (amoCRM, Bitrix24).
    A CRM whose calls voronka cannot read (RetailCRM, YCLIENTS) would page about leads the team did
    call. A connection's ``lead_alerts`` setting overrides either way (``voronka alerts leads``)."""
    from voronka.ingest.connectors import SERVICES

    watched = [OWN_ORIGIN, LEGACY_ORIGIN]
    for kind, settings in session.execute(
        select(Connection.kind, Connection.settings).where(Connection.account_id == account.id)
    ):
        service = SERVICES.get(kind)
        default = service.reads_calls if service is not None else False
        if (settings or {}).get("lead_alerts", default):
            watched.append(kind)
    return watched


@dataclass(frozen=True)
class Waiting:
    """A new lead nobody has called, with when its alerts are due (local time)."""

    deal: Deal
    clock: LeadClock
    escalate: bool
    """Its escalation is due and nobody took it with «I'm calling»."""


def waiting_leads(
    *, session: Session, account: Account, rules: AlertSettings, now: dt.datetime, taken: set[int]
) -> list[Waiting]:
    """New leads with no call and no move whose manager's alert is due (their clock counted in
    working minutes when the account has working hours); ``taken`` ones escalate no further."""
    hours, tz = working_hours(rules), zone(account.timezone)
    local_now = to_local(now, tz)
    since = max(rules.started_at, to_utc(lookback_start(local_now, hours, LOOKBACK), tz))
    candidates = session.scalars(
        select(Deal)
        .where(
            Deal.account_id == account.id,
            Deal.origin.in_(watched_origins(session, account)),
            Deal.status == DealStatus.OPEN.value,
            Deal.first_contact_at.is_(None),
            Deal.created_at >= since,
            Deal.created_at <= now - dt.timedelta(minutes=rules.lead_minutes if hours is None else 0),
        )
        .order_by(Deal.id)
    )
    found_now = []
    for deal in candidates:
        clock = lead_clock(to_local(deal.created_at, tz), rules.lead_minutes, hours)
        if clock.page_at <= local_now:
            escalate = clock.escalate_at <= local_now and deal.id not in taken
            found_now.append(Waiting(deal, clock, escalate))
    return found_now


def lead_alerts(
    *, waiting: list[Waiting], handed: set[int], now: dt.datetime, link: Link, users: dict[int, User]
) -> list[Alert]:
    """A new lead with no call and no move after N minutes → its manager (the heads when it has
    none); after 2N → the head of sales and the owner as well. A lead handed to the next manager
    has told its first manager already: the new one hears of it by the handover's own alert."""
    heads = heads_of(users.values())
    leaders = leaders_of(users.values())
    alerts = []
    for item in waiting:
        deal = item.deal
        facts = {
            "deal_id": deal.id,
            "deal": _deal_name(deal),
            "phone": deal.phone or "",
            "created_at": deal.created_at.isoformat() + "Z",
        }
        owner = (deal.manager_id,) if deal.manager_id in users else heads
        params = {"deal": _deal_name(deal), "phone": deal.phone or "—", "link": link(deal.id)}
        waited = Shown("wait", (now - deal.created_at).total_seconds())
        if deal.id not in handed:
            text = Message("alerts.lead_waiting", {**params, "waited": waited})
            alerts.append(Alert(f"lead:{deal.id}:1", Event.LEAD_WAITING, owner, text, facts))
        if item.escalate:
            manager = users.get(deal.manager_id or 0)
            text = Message(
                "alerts.lead_escalated", {**params, "waited": waited, "manager": manager.name if manager else "—"}
            )
            alerts.append(Alert(escalation_key(deal.id), Event.LEAD_ESCALATED, leaders, text, facts))
    return alerts


def repeat_alerts(
    *, session: Session, account: Account, rules: AlertSettings, now: dt.datetime, link: Link, users: dict[int, User]
) -> list[Alert]:
    """A client whose deal is open sent the form again → the deal's manager (the heads when it has
    none), at once: they are asking again. Sent as a lead alert, so the same switch governs it."""
    rows = session.execute(
        select(DealEvent, Deal)
        .join(Deal, Deal.id == DealEvent.deal_id)
        .where(
            DealEvent.account_id == account.id, DealEvent.kind == "lead_repeated", DealEvent.at >= _since(rules, now)
        )
    )
    heads = heads_of(users.values())
    alerts = []
    for event, deal in rows:
        owner = (deal.manager_id,) if deal.manager_id in users else heads
        params = {
            "deal": _deal_name(deal),
            "phone": deal.phone or "—",
            "link": link(deal.id),
            "form": event.data.get("form", ""),
        }
        facts = {"deal_id": deal.id, "deal": _deal_name(deal), "phone": deal.phone or "", "repeated": True}
        alerts.append(
            Alert(f"repeat:{event.id}", Event.LEAD_WAITING, owner, Message("alerts.lead_repeated", params), facts)
        )
    return alerts


def task_alerts(
    *, session: Session, account: Account, rules: AlertSettings, now: dt.datetime, link: Link
) -> list[Alert]:
    """An open task past its due time → the person responsible (once per due time: moved, it alerts again)."""
    rows = session.execute(
        select(Task, Deal)
        .join(Deal, Deal.id == Task.deal_id)
        .where(
            Task.account_id == account.id,
            Task.done_at.is_(None),
            Task.due_at <= now,
            Task.due_at >= _since(rules, now),
        )
    )
    alerts = []
    for task, deal in rows:
        due = Shown("when", task.due_at, timezone=account.timezone)
        text = Message(
            "alerts.task_overdue",
            {
                "kind": Message(f"web.task_{task.kind}"),
                "text": task.text,
                "deal": _deal_name(deal),
                "due": due,
                "link": link(deal.id),
            },
        )
        facts = {"task_id": task.id, "deal_id": deal.id, "due_at": task.due_at.isoformat() + "Z", "kind": task.kind}
        key = f"task:{task.id}:{task.due_at:%Y%m%d%H%M}"
        alerts.append(Alert(key, Event.TASK_OVERDUE, (task.manager_id,), text, facts))
    return alerts


def stalled_alerts(
    *, session: Session, account: Account, rules: AlertSettings, now: dt.datetime, link: Link, users: dict[int, User]
) -> list[Alert]:
    """An open deal untouched for ``stall_factor`` times its stage's usual time → its manager and the
    heads (once per deal and stage). Only deals that stalled since alerts were set up (and within the
    last day) count: those already stalled then are the baseline, not news to page anyone about."""
    heads = heads_of(users.values())
    since = _since(rules, now)
    alerts = []
    for pipeline in list_pipelines(session=session, account=account):
        usual = usual_stage_times(session, pipeline.id)
        condition = stalled_condition(session, pipeline, now, factor=rules.stall_factor, usual=usual)
        if condition is None:
            continue
        already = stalled_condition(session, pipeline, since, factor=rules.stall_factor, usual=usual)
        if already is not None:
            condition = and_(condition, ~already)
        rows = session.execute(
            select(Deal, Stage.name).join(Stage, Stage.id == Deal.stage_id).where(condition).limit(500)
        )
        for deal, stage in rows:
            to = tuple(dict.fromkeys(((deal.manager_id,) if deal.manager_id in users else ()) + heads))
            text = Message("alerts.deal_stalled", {"deal": _deal_name(deal), "stage": stage, "link": link(deal.id)})
            facts = {"deal_id": deal.id, "stage": stage, "pipeline": pipeline.name}
            alerts.append(Alert(f"stalled:{deal.id}:{deal.stage_id}", Event.DEAL_STALLED, to, text, facts))
    return alerts


def missed_call_alerts(
    *, session: Session, account: Account, rules: AlertSettings, now: dt.datetime, link: Link, users: dict[int, User]
) -> list[Alert]:
    """An incoming call nobody answered from a client whose deal is open → the deal's manager (the
    heads when it has none), once per call; outside working hours, as they begin. A call answered,
    on a closed deal, or from a number with no deal (kept waiting, not on a deal) tells nobody."""
    hours, tz = working_hours(rules), zone(account.timezone)
    local_now = to_local(now, tz)
    since = max(rules.started_at, to_utc(lookback_start(local_now, hours, LOOKBACK), tz))
    rows = session.execute(
        select(CallAttempt, Deal)
        .join(Deal, Deal.id == CallAttempt.deal_id)
        .where(
            CallAttempt.account_id == account.id,
            CallAttempt.direction == CallDirection.INCOMING.value,
            CallAttempt.outcome != CallOutcome.ANSWERED.value,
            CallAttempt.at >= since,
            CallAttempt.at <= now,
            Deal.status == DealStatus.OPEN.value,
        )
        .order_by(CallAttempt.at, CallAttempt.id)
    )
    heads = heads_of(users.values())
    alerts = []
    for call, deal in rows:
        local_at = to_local(call.at, tz)
        if hours is not None and next_working_moment(local_at, hours) > local_now:
            continue  # at night or on a day off: its manager hears as work begins
        owner = (deal.manager_id,) if deal.manager_id in users else heads
        phone = call.client_phone or deal.phone or "—"
        when = Shown("when", call.at, timezone=account.timezone)
        params = {"deal": _deal_name(deal), "phone": phone, "when": when, "link": link(deal.id)}
        facts = {"deal_id": deal.id, "call_id": call.id, "phone": phone, "at": call.at.isoformat() + "Z"}
        alerts.append(
            Alert(f"missed:{call.id}", Event.MISSED_CALL, owner, Message("alerts.missed_call", params), facts)
        )
    return alerts
