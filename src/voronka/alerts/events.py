"""What deserves an alert right now, found in SQL: leads nobody has called, tasks past due, deals
stalled past their stage's usual time. Each occurrence has a key of its own, so finding it again on
the next pass adds nothing to the outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from voronka.alerts.model import LEADERS, Alert, Event, Shown
from voronka.analysis.stalled import stalled_condition, usual_stage_times
from voronka.crm.accounts import list_pipelines, list_users
from voronka.i18n import Message
from voronka.models import (
    LEGACY_ORIGIN,
    OWN_ORIGIN,
    Account,
    AlertSettings,
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


def _since(found: AlertSettings, now: dt.datetime) -> dt.datetime:
    return max(found.started_at, now - LOOKBACK)


def _deal_name(deal: Deal) -> str:
    return deal.title or deal.contact_name or deal.phone or f"#{deal.id}"


def escalation_key(deal_id: int) -> str:
    return f"lead:{deal_id}:2"


def _taken(session: Session, account: Account, since: dt.datetime) -> set[int]:
    """Leads someone took with «I'm calling» (their marker in the outbox): no escalation for them."""
    keys = session.scalars(
        select(OutboxMessage.key).where(
            OutboxMessage.account_id == account.id,
            OutboxMessage.key.like("lead:%:2/taken"),
            OutboxMessage.created_at >= since,
        )
    )
    return {int(key.split(":")[1]) for key in keys}


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


def lead_alerts(
    *, session: Session, account: Account, found: AlertSettings, now: dt.datetime, link: Link, users: dict[int, User]
) -> list[Alert]:
    """A new lead with no call and no move after N minutes → its manager (the heads when it has
    none); after 2N → the head of sales and the owner as well."""
    wait = dt.timedelta(minutes=found.lead_minutes)
    waiting = session.scalars(
        select(Deal).where(
            Deal.account_id == account.id,
            Deal.origin.in_(watched_origins(session, account)),
            Deal.status == DealStatus.OPEN.value,
            Deal.first_contact_at.is_(None),
            Deal.created_at >= _since(found, now),
            Deal.created_at <= now - wait,
        )
    )
    heads = heads_of(users.values())
    leaders = leaders_of(users.values())
    taken = _taken(session, account, now - 2 * LOOKBACK)
    alerts = []
    for deal in waiting:
        facts = {
            "deal_id": deal.id,
            "deal": _deal_name(deal),
            "phone": deal.phone or "",
            "created_at": deal.created_at.isoformat() + "Z",
        }
        owner = (deal.manager_id,) if deal.manager_id in users else heads
        params = {"deal": _deal_name(deal), "phone": deal.phone or "—", "link": link(deal.id)}
        waited = Shown("wait", (now - deal.created_at).total_seconds())
        alerts.append(
            Alert(
                f"lead:{deal.id}:1",
                Event.LEAD_WAITING,
                owner,
                Message("alerts.lead_waiting", {**params, "waited": waited}),
                facts,
            )
        )
        if now - deal.created_at >= 2 * wait and deal.id not in taken:
            manager = users.get(deal.manager_id or 0)
            text = Message(
                "alerts.lead_escalated", {**params, "waited": waited, "manager": manager.name if manager else "—"}
            )
            alerts.append(Alert(escalation_key(deal.id), Event.LEAD_ESCALATED, leaders, text, facts))
    return alerts


def repeat_alerts(
    *, session: Session, account: Account, found: AlertSettings, now: dt.datetime, link: Link, users: dict[int, User]
) -> list[Alert]:
    """A client whose deal is open sent the form again → the deal's manager (the heads when it has
    none), at once: they are asking again. Sent as a lead alert, so the same switch governs it."""
    rows = session.execute(
        select(DealEvent, Deal)
        .join(Deal, Deal.id == DealEvent.deal_id)
        .where(
            DealEvent.account_id == account.id, DealEvent.kind == "lead_repeated", DealEvent.at >= _since(found, now)
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
    *, session: Session, account: Account, found: AlertSettings, now: dt.datetime, link: Link
) -> list[Alert]:
    """An open task past its due time → the person responsible (once per due time: moved, it alerts again)."""
    rows = session.execute(
        select(Task, Deal)
        .join(Deal, Deal.id == Task.deal_id)
        .where(
            Task.account_id == account.id,
            Task.done_at.is_(None),
            Task.due_at <= now,
            Task.due_at >= _since(found, now),
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
        alerts.append(Alert(key, Event.TASK_OVERDUE, (task.user_id,), text, facts))
    return alerts


def stalled_alerts(
    *, session: Session, account: Account, found: AlertSettings, now: dt.datetime, link: Link, users: dict[int, User]
) -> list[Alert]:
    """An open deal untouched for ``stall_factor`` times its stage's usual time → its manager and the
    heads (once per deal and stage). Only deals that stalled since alerts were set up (and within the
    last day) count: those already stalled then are the baseline, not news to page anyone about."""
    heads = heads_of(users.values())
    since = _since(found, now)
    alerts = []
    for pipeline in list_pipelines(session=session, account=account):
        usual = usual_stage_times(session, pipeline.id)
        condition = stalled_condition(session, pipeline, now, factor=found.stall_factor, usual=usual)
        if condition is None:
            continue
        already = stalled_condition(session, pipeline, since, factor=found.stall_factor, usual=usual)
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
