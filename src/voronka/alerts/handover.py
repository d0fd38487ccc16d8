"""A lead still uncalled at its escalation goes to the next manager in turn, when the account asks
for it (``set_working(handover=True)``): once per lead, recorded in the deal's history, and the new
manager is told. Its first manager's alert stays the one they had."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from voronka.alerts.events import HANDOVER, escalation_key
from voronka.alerts.model import Alert, Event, Shown
from voronka.alerts.outbox import BASELINE, Letter, enqueue
from voronka.crm.deals import update_deal
from voronka.crm.derived import lock_deal
from voronka.crm.leads import next_in_turn
from voronka.i18n import Message
from voronka.models import Account, Deal, DealStatus, OutboxMessage, User

MARK = HANDOVER


def hand_over(*, session: Session, account: Account, deal_id: int, now: dt.datetime) -> tuple[User, User] | None:
    """Give the uncalled lead to the manager after its own in turn: (from, to), or None when it was
    called or closed meanwhile, was handed over already (by this pass or another worker's), or there
    is nobody else to give it to. The deal is locked first, so of two passes at once the second sees
    the first's marker and leaves it."""
    deal = session.get(Deal, deal_id)
    if deal is None or deal.account_id != account.id:
        return None
    lock_deal(session, deal)
    if deal.status != DealStatus.OPEN.value or deal.first_contact_at is not None or deal.manager_id is None:
        return None
    if _taken(session, account, deal.id):
        return None
    previous = session.get(User, deal.manager_id)
    chosen = next_in_turn(session=session, account_id=account.id, after=deal.manager_id)
    if previous is None or chosen is None or chosen.id == previous.id:
        return None
    marker = Letter(f"{MARK}{deal.id}", Event.LEAD_WAITING, "none", chosen.id, "", "", "", {})
    if not enqueue(session=session, account=account, letter=marker, now=now, status=BASELINE):
        return None
    update_deal(session=session, deal=deal, changes={"manager": chosen}, at=now)  # the history says who had it
    return previous, chosen


def _taken(session: Session, account: Account, deal_id: int) -> bool:
    """Whether «I'm calling» was pressed for the lead (it locks the deal too, so after the lock the
    press is either in or waits for this handover)."""
    key = f"{escalation_key(deal_id)}/taken"
    found = session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.account_id == account.id, OutboxMessage.key == key)
    )
    return found is not None


def handover_alert(deal: Deal, previous: User, link: str, now: dt.datetime) -> Alert:
    """The new manager's one alert (with «I'm calling» on Telegram, as a waiting lead's)."""
    name = deal.title or deal.contact_name or deal.phone or f"#{deal.id}"
    params = {
        "deal": name,
        "phone": deal.phone or "—",
        "previous": previous.name,
        "waited": Shown("wait", (now - deal.created_at).total_seconds()),
        "link": link,
    }
    facts = {"deal_id": deal.id, "deal": name, "phone": deal.phone or "", "handed_over_from": previous.id}
    assert deal.manager_id is not None
    return Alert(
        f"{MARK}{deal.id}:to", Event.LEAD_WAITING, (deal.manager_id,), Message("alerts.lead_handed", params), facts
    )


def hand_over_due(
    session: Session, account: Account, deal_ids: list[int], link: Callable[[int], str], now: dt.datetime
) -> list[Alert]:
    """Each lead uncalled at its escalation to the next manager (called after the escalation is
    queued, so the leaders hear whose lead it was); the new managers' alerts."""
    alerts = []
    for deal_id in deal_ids:
        moved = hand_over(session=session, account=account, deal_id=deal_id, now=now)
        deal = session.get(Deal, deal_id)
        if moved is not None and deal is not None:
            alerts.append(handover_alert(deal, moved[0], link(deal_id), now))
    return alerts
