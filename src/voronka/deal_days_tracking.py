"""The ORM's side of the per-day summary: a flush hook that keeps ``deal_days`` in step.

Every session the database module makes is tracked: after each flush, each deal the flush wrote
moves out of its old cell and into its new one, and an account whose time zone changed has its
cells rebuilt (its deals fall on other local days). Kept apart from ``voronka.deal_days`` so that
the reports, which read the cells, do not load the ORM.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, attributes, sessionmaker

from voronka.deal_days import FACTS, Tally, apply, count_into, rebuild_account
from voronka.models import Account, Deal
from voronka.timeutil import zone


def track(factory: sessionmaker[Session]) -> None:
    """Keep the cells in step with every flush of the sessions ``factory`` makes."""
    event.listen(factory, "after_flush", _after_flush)


def _after_flush(session: Session, _context: Any) -> None:
    _count_changed_deals(session)
    for account in session.dirty:
        if isinstance(account, Account) and attributes.get_history(account, "timezone").deleted:
            rebuild_account(session.connection(), account.id)  # its deals fall on other local days


def _count_changed_deals(session: Session) -> None:
    before: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []
    for deal in session.new:
        if isinstance(deal, Deal):
            after.append(_facts(deal, old=False))
    for deal in session.dirty:
        if isinstance(deal, Deal) and deal not in session.deleted:
            old, new = _facts(deal, old=True), _facts(deal, old=False)
            if old != new:
                before.append(old)
                after.append(new)
    for deal in session.deleted:
        if isinstance(deal, Deal):
            before.append(_facts(deal, old=True))
    if not before and not after:
        return
    connection = session.connection()
    account_ids = {f["account_id"] for f in (*before, *after)}
    zones = dict(connection.execute(select(Account.id, Account.timezone).where(Account.id.in_(account_ids))).all())
    changes: Tally = defaultdict(lambda: [0, 0])
    for facts_list, sign in ((before, -1), (after, 1)):
        for facts in facts_list:
            count_into(changes, facts, zone(zones.get(facts["account_id"]) or "UTC"), sign)
    apply(connection, changes)


def _facts(deal: Deal, *, old: bool) -> dict[str, Any]:
    """The deal's ``FACTS`` as flushed now, or as they were before this flush."""
    if not old:
        return {name: getattr(deal, name) for name in FACTS}
    facts = {}
    for name in FACTS:
        history = attributes.get_history(deal, name)
        if history.deleted:
            facts[name] = history.deleted[0]
        elif history.unchanged:
            facts[name] = history.unchanged[0]
        else:
            facts[name] = getattr(deal, name)
    return facts
