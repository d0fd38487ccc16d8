"""A plain count of the log: the funnel as docs/funnel.md defines it, counted in Python straight from
the raw tables (deals, stage_changes, stages, call_attempts), written apart from the library's rules
so that the two can disagree. Tests compare every report with it after any sequence of writes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from voronka.models import Account, CallAttempt, Deal, Stage, StageEntry
from voronka.timeutil import zone


@dataclass(frozen=True)
class PlainDeal:
    id: int
    pipeline_id: int
    status: str
    position: int
    """The position of the stage it stands in."""
    furthest: int
    reached: dict[int, dt.datetime]
    """Position → when it was first reached (cumulative rule), for positions 2..furthest."""
    created_at: dt.datetime
    local_day: dt.date
    closed_at: dt.datetime | None
    source_id: int | None
    manager_id: int | None
    amount: int | None
    currency: str
    first_contact_at: dt.datetime | None
    contact_minutes: int | None


def plain_deals(session: Session) -> dict[int, PlainDeal]:
    """Every deal as the log says it is."""
    stages = {s.id: s for s in session.scalars(select(Stage))}
    last = defaultdict(int)
    for stage in stages.values():
        last[stage.pipeline_id] = max(last[stage.pipeline_id], stage.position)
    log: dict[int, list[StageEntry]] = defaultdict(list)
    for change in session.scalars(select(StageEntry).order_by(StageEntry.at, StageEntry.id)):
        log[change.deal_id].append(change)
    calls: dict[int, list[dt.datetime]] = defaultdict(list)
    for call in session.scalars(select(CallAttempt)):
        if call.direction == "out" or call.outcome == "answered":
            calls[call.deal_id].append(call.at)
    zones = {a.id: zone(a.timezone) for a in session.scalars(select(Account))}
    found = {}
    for deal in session.scalars(select(Deal)):
        n = last[deal.pipeline_id]
        won = deal.status == "won"
        ours = [
            (stages[c.to_stage_id].position, c.at)
            for c in log[deal.id]
            if stages[c.to_stage_id].pipeline_id == deal.pipeline_id
        ]
        counting = [(p, t) for p, t in ours if won or p != n]
        standing = stages[deal.stage_id].position
        furthest = n if won else max([p for p, _ in counting] + [standing, 1])
        reached = {}
        for k in range(2, furthest + 1):
            times = [t for p, t in counting if p >= k]
            if times:
                reached[k] = min(times)
        # The arrival is the first entry from no stage; every other entry is a move (docs/funnel.md).
        arrival = next((c for c in log[deal.id] if c.from_stage_id is None), None)
        moves = [c.at for c in log[deal.id] if c is not arrival]
        contacts = [t for t in [*calls[deal.id], deal.stated_contact_at] if t is not None]
        contact = min(contacts) if contacts else (min(moves) if moves and deal.history_known else None)
        minutes = None
        if contact is not None:
            minutes = max(math.ceil(round((contact - deal.created_at).total_seconds()) / 60), 0)
        local = deal.created_at.replace(tzinfo=dt.UTC).astimezone(zones[deal.account_id]).date()
        found[deal.id] = PlainDeal(
            deal.id,
            deal.pipeline_id,
            deal.status,
            standing,
            furthest,
            reached,
            deal.created_at,
            local,
            deal.closed_at,
            deal.source_id,
            deal.manager_id,
            deal.amount,
            deal.currency,
            contact,
            minutes,
        )
    return found


def cohort(deals: list[PlainDeal], positions: int) -> dict[str, Any]:
    """The cohort funnel of these deals under the cumulative rule."""
    return {
        "deals": len(deals),
        "won": sum(d.status == "won" for d in deals),
        "lost": sum(d.status == "lost" for d in deals),
        "reached": [sum(d.furthest >= k for d in deals) for k in range(1, positions + 1)],
        "lost_at": [sum(d.status == "lost" and d.furthest == k for d in deals) for k in range(1, positions + 1)],
        "open_at": [sum(d.status == "open" and d.furthest == k for d in deals) for k in range(1, positions + 1)],
    }


def period(deals: list[PlainDeal], positions: int, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """The period view of these deals over [start, end) in UTC: arrivals, first reaches, closures."""

    def within(at: dt.datetime | None) -> bool:
        return at is not None and start <= at < end

    reached = [sum(within(d.created_at) for d in deals)]
    reached += [sum(within(d.reached.get(k)) for d in deals) for k in range(2, positions + 1)]
    return {
        "reached": reached,
        "won": sum(d.status == "won" and within(d.closed_at) for d in deals),
        "lost": sum(d.status == "lost" and within(d.closed_at) for d in deals),
    }
