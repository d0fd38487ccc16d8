"""Keeping what is derived from a deal's log equal to the log: its stage, furthest stage, first
contact, speed to lead and stage reaches (the rules: ``crm.deal_state``), one deal at a time or a
whole pipeline at once; and the lock that serialises writes to one deal.

Why the lock: a write reads the deal, decides (is it open? which stage is it leaving?) and writes.
Two writes of one deal at once — a double drop on the kanban, two tabs, an API client retrying —
would both decide on the state before either, and the per-day summary, which moves the deal out of
the cell its session loaded, would count it twice. ``lock_deal`` re-reads the deal under a lock held
to the end of the transaction: PostgreSQL's ``SELECT … FOR UPDATE``, SQLite's write transaction
taken before the read (SQLite has one writer at a time, so that lock is the whole database's).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session

from voronka import deal_days
from voronka.crm.deal_state import DealState, LoggedEntry, derive, first_contact, first_move, speed_minutes
from voronka.crm.reaches import REACH_COLUMNS, insert_reaches, rows_of_reaches
from voronka.db import begin_write
from voronka.models import CallAttempt, CallDirection, CallOutcome, Deal, DealStatus, Stage, StageEntry, StageReach

_LOCKED = "voronka.locked_deals"


def lock_deal(session: Session, deal: Deal) -> Deal:
    """Hold ``deal`` for this transaction and bring it up to date: what a write decides from it is
    then what another write, waiting for the lock, will see. Cheap when already held."""
    transaction = session.get_transaction()
    held: tuple[Any, set[int]] | None = session.info.get(_LOCKED)
    if held is None or held[0] is not transaction:
        held = (transaction, set())
    if deal.id in held[1] or deal in session.new:
        return deal
    begin_write(session.connection())
    if deal in session.dirty:
        session.flush()
    session.refresh(deal, with_for_update=True)
    held[1].add(deal.id)
    session.info[_LOCKED] = (session.get_transaction(), held[1])
    return deal


def lock_pipeline(session: Session, pipeline_id: int) -> None:
    """Hold every deal of a pipeline for this transaction, as ``lock_deal`` holds one: a recount or a
    renumbering reads them all and writes what it read, and a move committed in between would be
    overwritten with the state from before it."""
    begin_write(session.connection())
    session.execute(select(Deal.id).where(Deal.pipeline_id == pipeline_id).order_by(Deal.id).with_for_update())


def counts_as_contact() -> Any:
    """A call is a contact when we made it, or when an incoming one was answered (a missed incoming
    call is the client waiting, not a contact)."""
    return or_(CallAttempt.direction == CallDirection.OUTGOING.value, CallAttempt.outcome == CallOutcome.ANSWERED.value)


def first_call_contact(session: Session, deal_id: int) -> dt.datetime | None:
    return session.scalar(select(func.min(CallAttempt.at)).where(CallAttempt.deal_id == deal_id, counts_as_contact()))


def _positions(session: Session, pipeline_id: int) -> dict[int, int]:
    """Stage id → position of the pipeline's stages."""
    return dict(session.execute(select(Stage.id, Stage.position).where(Stage.pipeline_id == pipeline_id)).all())


def deal_state(session: Session, deal: Deal, *, stage_from_log: bool = False) -> DealState:
    """What the deal's log, calls and status imply now (``stage_from_log``: where it stands too,
    instead of keeping the stage it has)."""
    positions = _positions(session, deal.pipeline_id)
    log = session.execute(
        select(StageEntry.to_stage_id, StageEntry.to_position, StageEntry.at, StageEntry.from_stage_id)
        .where(StageEntry.deal_id == deal.id)
        .order_by(StageEntry.at, StageEntry.id)
    )
    entries, elsewhere = _split_log(positions, ((to, position, at, origin) for to, position, at, origin in log))
    return derive(
        elsewhere=elsewhere,
        entries=entries,
        won=deal.status == DealStatus.WON.value,
        last_position=max(positions.values()),
        created_at=deal.created_at,
        history_known=deal.history_known,
        first_call=first_call_contact(session, deal.id),
        stated_contact=deal.stated_contact_at,
        position=None if stage_from_log else positions.get(deal.stage_id),
    )


def _split_log(
    positions: dict[int, int], log: Iterable[tuple[int, int, dt.datetime, int | None]]
) -> tuple[list[LoggedEntry], list[LoggedEntry]]:
    """A deal's log rows (to stage, its position as logged, at, from stage) as entries into its
    pipeline's stages, and entries into the stages of a pipeline it has left."""
    entries, elsewhere = [], []
    for to, logged, at, origin in log:
        if to in positions:
            entries.append(LoggedEntry(positions[to], at, origin is not None))
        else:
            elsewhere.append(LoggedEntry(logged, at, origin is not None))
    return entries, elsewhere


def rederive_deal(*, session: Session, deal: Deal, stage_from_log: bool = False) -> Deal:
    """Bring the deal's furthest stage, first contact, speed to lead and reaches in step with its
    log (after any write that touched the log, the calls, the status or the pipeline). The deal keeps
    its stage unless it may not stand there (a deal not won in the won stage, a stage of another
    pipeline) or ``stage_from_log`` (an entry was taken back, or a history file added entries)."""
    session.flush()
    state = deal_state(session, deal, stage_from_log=stage_from_log)
    stage_id = _stage_at(session, deal.pipeline_id, state.position)
    if deal.stage_id != stage_id:
        deal.stage_id = stage_id
    deal.furthest_position = state.furthest_position
    deal.first_contact_at = state.first_contact_at
    deal.contact_minutes = state.contact_minutes
    session.flush()
    session.execute(delete(StageReach).where(StageReach.deal_id == deal.id))
    insert_reaches(session, rows_of_reaches(deal, state.reaches))
    return deal


def _stage_at(session: Session, pipeline_id: int, position: int) -> int:
    found = session.scalar(select(Stage.id).where(Stage.pipeline_id == pipeline_id, Stage.position == position))
    assert found is not None
    return int(found)


@dataclass(frozen=True)
class Rederived:
    """What re-deriving a pipeline changed (all zero for a pipeline that was in step)."""

    deals: int
    """Deals whose stage, furthest stage, first contact or speed to lead changed."""
    stage_reaches: int
    """Reach rows added or removed."""
    day_cells: int
    """Per-day cells added, removed or changed."""
    reaches_total: int
    cells_total: int


_DEAL_COLUMNS = ("stage_id", "furthest_position", "first_contact_at", "contact_minutes")


def rederive_pipeline(*, session: Session, pipeline_id: int) -> Rederived:
    """Re-derive every deal of a pipeline from the log, its reaches and its per-day cells, and say
    what changed: after stages were renumbered or removed, or to repair whatever a crash or a hand
    edit left (``voronka recount``)."""
    session.flush()
    lock_pipeline(session, pipeline_id)
    positions = _positions(session, pipeline_id)
    stage_of = {p: s for s, p in positions.items()}
    last = max(positions.values())
    deals = session.execute(
        select(
            Deal.id,
            Deal.account_id,
            Deal.pipeline_id,
            Deal.manager_id,
            Deal.source_id,
            Deal.status,
            Deal.stage_id,
            Deal.created_at,
            Deal.history_known,
            Deal.stated_contact_at,
            *(getattr(Deal, c) for c in _DEAL_COLUMNS[1:]),
        ).where(Deal.pipeline_id == pipeline_id)
    ).all()
    in_pipeline = select(Deal.id).where(Deal.pipeline_id == pipeline_id).scalar_subquery()
    logs: dict[int, list[tuple[int, int, dt.datetime, int | None]]] = defaultdict(list)
    for deal_id, *row in session.execute(
        select(
            StageEntry.deal_id,
            StageEntry.to_stage_id,
            StageEntry.to_position,
            StageEntry.at,
            StageEntry.from_stage_id,
        )
        .where(StageEntry.deal_id.in_(in_pipeline))
        .order_by(StageEntry.deal_id, StageEntry.at, StageEntry.id)
    ):
        logs[deal_id].append(tuple(row))  # type: ignore[arg-type]
    calls = dict(
        session.execute(
            select(CallAttempt.deal_id, func.min(CallAttempt.at))
            .where(CallAttempt.deal_id.in_(in_pipeline), counts_as_contact())
            .group_by(CallAttempt.deal_id)
        ).all()
    )
    changed: list[dict[str, Any]] = []
    reaches: list[tuple[Any, ...]] = []
    for deal in deals:
        entries, elsewhere = _split_log(positions, logs.get(deal.id, ()))
        state = derive(
            entries=entries,
            elsewhere=elsewhere,
            won=deal.status == DealStatus.WON.value,
            last_position=last,
            created_at=deal.created_at,
            history_known=deal.history_known,
            first_call=calls.get(deal.id),
            stated_contact=deal.stated_contact_at,
            position=positions.get(deal.stage_id),
        )
        new = (stage_of[state.position], state.furthest_position, state.first_contact_at, state.contact_minutes)
        if new != (deal.stage_id, deal.furthest_position, deal.first_contact_at, deal.contact_minutes):
            changed.append({"deal": deal.id, **dict(zip(_DEAL_COLUMNS, new, strict=True))})
        reaches.extend(rows_of_reaches(deal, state.reaches))
    if changed:
        table = Deal.__table__
        session.execute(
            update(table).where(table.c.id == bindparam("deal")).values({c: bindparam(c) for c in _DEAL_COLUMNS}),
            changed,
        )
    old_reaches = _stored_reaches(session, pipeline_id)
    session.execute(delete(StageReach).where(StageReach.pipeline_id == pipeline_id))
    insert_reaches(session, reaches)
    connection = session.connection()
    old_cells = deal_days.stored_cells(connection, pipeline_id)
    cells = deal_days.rebuild_pipeline(connection, pipeline_id)
    new_cells = deal_days.stored_cells(connection, pipeline_id)
    _expire_deals(session)
    new_reaches = {_reach_key(row) for row in reaches}
    return Rederived(
        deals=len(changed),
        stage_reaches=len(old_reaches ^ new_reaches),
        day_cells=sum(1 for k in old_cells.keys() | new_cells.keys() if old_cells.get(k) != new_cells.get(k)),
        reaches_total=len(reaches),
        cells_total=cells,
    )


_REACH_KEY = tuple(REACH_COLUMNS.index(c) for c in ("deal_id", "manager_id", "source_id", "position", "reached_at"))


def _reach_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*(row[i] for i in _REACH_KEY), row[REACH_COLUMNS.index("entered_at")])


def _stored_reaches(session: Session, pipeline_id: int) -> set[tuple[Any, ...]]:
    rows = session.execute(
        select(
            StageReach.deal_id,
            StageReach.manager_id,
            StageReach.source_id,
            StageReach.position,
            StageReach.reached_at,
            StageReach.entered_at,
        ).where(StageReach.pipeline_id == pipeline_id)
    )
    return {tuple(row) for row in rows}


def rederive_contacts(*, session: Session, deal_ids: Iterable[int]) -> int:
    """First contact and speed to lead of these deals by the rules, in bulk (after calls were
    stored for them); returns how many changed. Their stages and reaches do not depend on calls."""
    ordered = sorted(set(deal_ids))
    changed = 0
    begin_write(session.connection())
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        # Locked before their calls are read, as any write to a deal is (``lock_deal``): a call logged
        # on the card meanwhile is then either seen here or sees these.
        session.execute(select(Deal.id).where(Deal.id.in_(chunk)).order_by(Deal.id).with_for_update())
        calls = dict(
            session.execute(
                select(CallAttempt.deal_id, func.min(CallAttempt.at))
                .where(CallAttempt.deal_id.in_(chunk), counts_as_contact())
                .group_by(CallAttempt.deal_id)
            ).all()
        )
        entered: dict[int, list[LoggedEntry]] = defaultdict(list)
        for deal_id, position, when, origin in session.execute(
            select(StageEntry.deal_id, StageEntry.to_position, StageEntry.at, StageEntry.from_stage_id)
            .where(StageEntry.deal_id.in_(chunk))
            .order_by(StageEntry.deal_id, StageEntry.at, StageEntry.id)
        ):
            entered[deal_id].append(LoggedEntry(position, when, origin is not None))
        moves = {deal_id: first_move(entries) for deal_id, entries in entered.items()}
        rows = session.execute(
            select(
                Deal.id,
                Deal.created_at,
                Deal.history_known,
                Deal.stated_contact_at,
                Deal.first_contact_at,
                Deal.contact_minutes,
            ).where(Deal.id.in_(chunk))
        )
        updates = []
        for deal_id, created, known, stated, was_at, was_minutes in rows:
            at = first_contact(
                first_call=calls.get(deal_id), stated=stated, first_moved=moves.get(deal_id), history_known=known
            )
            minutes = speed_minutes(created, at)
            if (at, minutes) != (was_at, was_minutes):
                updates.append({"deal": deal_id, "first_contact_at": at, "contact_minutes": minutes})
        if updates:
            table = Deal.__table__
            session.execute(
                update(table)
                .where(table.c.id == bindparam("deal"))
                .values(first_contact_at=bindparam("first_contact_at"), contact_minutes=bindparam("contact_minutes")),
                updates,
            )
        changed += len(updates)
    _expire_deals(session)
    return changed


_CHUNK = 5_000


def _expire_deals(session: Session) -> None:
    """Deals loaded in the session are read again after a bulk update wrote their columns."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Deal):
            session.expire(obj)
