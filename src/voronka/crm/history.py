"""A deal's history — who did what and when — and undoing the last move, win or loss.

Stage entries live in the stage-change log, calls and notes in their own tables; what no table
records (a loss and its reason, a reopening, a field changed, a task set or done) is a
``DealEvent``. ``timeline`` merges them all in time order for the deal card.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from voronka.crm.derived import lock_deal, rederive_deal
from voronka.errors import VoronkaError
from voronka.models import CallAttempt, Deal, DealEvent, DealStatus, Note, Stage, StageEntry, User
from voronka.timeutil import utcnow

UNDO_SECONDS = 30
"""How long after a move, win or loss its author may take it back (the kanban's "undo")."""
UNDOABLE = ("moved", "won", "lost")


class NothingToUndo(VoronkaError):
    """No move, win or loss of this user on this deal in the last few seconds."""

    key = "error.nothing_to_undo"


def record(
    session: Session, deal: Deal, kind: str, by: User | None, *, when: dt.datetime | None = None, **data: Any
) -> DealEvent:
    """One line of the deal's history, at ``when`` (the wall clock unless a caller keeps its own)."""
    event = DealEvent(
        account_id=deal.account_id,
        deal_id=deal.id,
        at=when or utcnow(),
        actor_id=by.id if by else None,
        kind=kind,
        data=data,
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class HistoryItem:
    """One line of the card's history: ``kind`` names it (created, moved, won, lost, reopened,
    changed, call, note, task_added, task_done, task_reopened, assigned); ``data`` holds its details."""

    at: dt.datetime
    kind: str
    actor_id: int | None
    data: dict[str, Any] = field(default_factory=dict)


def timeline(*, session: Session, deal: Deal) -> list[HistoryItem]:
    """Everything that happened to the deal, oldest first."""
    stages = {s.id: s for s in session.scalars(select(Stage).where(Stage.pipeline_id == deal.pipeline_id))}
    last_position = max((s.position for s in stages.values()), default=0)
    items = [_stage_item(change, stages, last_position) for change in _changes(session, deal)]
    items += [
        HistoryItem(
            c.at,
            "call",
            c.manager_id,
            {
                "outcome": c.outcome,
                "number": c.outgoing_number,
                "seconds": c.duration_seconds,
                "incoming": c.direction == "in",
                "client": c.client_phone,
            },
        )
        for c in session.scalars(select(CallAttempt).where(CallAttempt.deal_id == deal.id))
    ]
    items += [
        HistoryItem(n.created_at, "note", n.actor_id, {"text": n.text})
        for n in session.scalars(select(Note).where(Note.deal_id == deal.id))
    ]
    items += [
        HistoryItem(e.at, e.kind, e.actor_id, dict(e.data))
        for e in session.scalars(select(DealEvent).where(DealEvent.deal_id == deal.id))
        if e.kind not in ("moved", "won")  # shown from the stage-change log, which has the stages
    ]
    return sorted(items, key=lambda item: item.at)


def _changes(session: Session, deal: Deal) -> list[StageEntry]:
    query = select(StageEntry).where(StageEntry.deal_id == deal.id).order_by(StageEntry.at, StageEntry.id)
    return list(session.scalars(query))


def _stage_item(change: StageEntry, stages: dict[int, Stage], last_position: int) -> HistoryItem:
    stage = stages.get(change.to_stage_id)
    name = stage.name if stage else "?"
    if change.from_stage_id is None:
        return HistoryItem(change.at, "created", change.actor_id, {"stage": name})
    kind = "won" if change.to_position == last_position else "moved"
    before = stages.get(change.from_stage_id)
    return HistoryItem(change.at, kind, change.actor_id, {"stage": name, "from": before.name if before else "?"})


def last_undoable(*, session: Session, deal: Deal, by: User, now: dt.datetime | None = None) -> DealEvent | None:
    """The user's move, win or loss of this deal that may still be undone: the deal's latest such
    action, taken by this user within ``UNDO_SECONDS``."""
    now = now or utcnow()
    latest = session.scalars(
        select(DealEvent)
        .where(DealEvent.deal_id == deal.id, DealEvent.kind.in_(UNDOABLE))
        .order_by(DealEvent.at.desc(), DealEvent.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.actor_id != by.id or (now - latest.at).total_seconds() > UNDO_SECONDS:
        return None
    return latest


def undo_last(*, session: Session, deal: Deal, by: User, now: dt.datetime | None = None) -> Deal:
    """Take back the user's last move, win or loss of the deal, as if it had not happened: the
    stage entry leaves the log (so the funnel never counts it) and the deal's state is rebuilt."""
    lock_deal(session, deal)
    event = last_undoable(session=session, deal=deal, by=by, now=now)
    if event is None:
        raise NothingToUndo(seconds=UNDO_SECONDS)
    change_id = event.data.get("change_id")
    if change_id is not None:
        session.execute(delete(StageEntry).where(StageEntry.id == int(change_id), StageEntry.deal_id == deal.id))
    if event.kind in ("won", "lost"):
        deal.status = DealStatus.OPEN.value
        deal.closed_at = None
        deal.loss_reason_id = None
    session.delete(event)
    session.flush()
    deal.updated_at = utcnow()
    return rederive_deal(session=session, deal=deal, stage_from_log=True)
