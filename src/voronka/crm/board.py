"""The kanban board: a pipeline's open deals by stage, with each column's count and sums counted in
SQL, the next task on every card, and how many deals were won and lost in the period.

Filters: a manager ("my deals" is the user's own), a source, a creation period, a search text.
A column shows ``per_stage`` cards a page; its count and sums cover every deal in it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field, replace

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from voronka.crm import auth
from voronka.crm.phones import region_of
from voronka.crm.search import MAX_PAGE, text_condition
from voronka.crm.tasks import TaskRow, next_tasks
from voronka.models import Account, Deal, DealStatus, Pipeline, User

PER_STAGE = 60


@dataclass(frozen=True)
class BoardFilter:
    manager_id: int | None = None
    source_id: int | None = None
    created_from: dt.datetime | None = None
    """UTC; with ``created_to`` (exclusive) the period whose deals are shown and closures counted."""
    created_to: dt.datetime | None = None
    text: str | None = None


@dataclass(frozen=True)
class Card:
    id: int
    title: str
    amount: int | None
    currency: str
    created_at: dt.datetime
    manager_id: int | None
    source_id: int | None
    phone: str | None
    next_task: TaskRow | None


@dataclass(frozen=True)
class BoardColumn:
    stage_id: int
    name: str
    position: int
    cards: list[Card]
    total: int
    sums: dict[str, int] = field(default_factory=dict)
    """Sum of the column's amounts per currency (minor units)."""


@dataclass(frozen=True)
class Closed:
    """Deals won or lost within the period (this month when no period is chosen)."""

    count: int
    sums: dict[str, int]


@dataclass(frozen=True)
class Board:
    pipeline_id: int
    columns: list[BoardColumn]
    won: Closed
    lost: Closed
    page: int
    per_stage: int

    @property
    def has_more(self) -> bool:
        return any(c.total > self.page * self.per_stage for c in self.columns)


def _conditions(user: User, account: Account, pipeline: Pipeline, chosen: BoardFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [auth.visible_deals(user), Deal.pipeline_id == pipeline.id]
    if chosen.manager_id is not None:
        conditions.append(Deal.manager_id == chosen.manager_id)
    if chosen.source_id is not None:
        conditions.append(Deal.source_id == chosen.source_id)
    if chosen.text:
        conditions.append(text_condition(chosen.text, region_of(account.timezone)))
    return conditions


def _created_within(chosen: BoardFilter) -> list[ColumnElement[bool]]:
    found = []
    if chosen.created_from is not None:
        found.append(Deal.created_at >= chosen.created_from)
    if chosen.created_to is not None:
        found.append(Deal.created_at < chosen.created_to)
    return found


def build_board(
    *,
    session: Session,
    account: Account,
    user: User,
    pipeline: Pipeline,
    chosen: BoardFilter,
    closed_from: dt.datetime | None,
    closed_to: dt.datetime | None,
    page: int = 1,
    per_stage: int = PER_STAGE,
) -> Board:
    """The board of ``pipeline`` as ``user`` may see it; won and lost counted by closing time in
    [``closed_from``, ``closed_to``) — either bound ``None`` for none (the board's "all time")."""
    auth.require(user, auth.Action.WORK_DEALS)
    page = max(1, min(page, MAX_PAGE))
    base = [*_conditions(user, account, pipeline, chosen), *_created_within(chosen)]
    open_deals = and_(*base, Deal.status == DealStatus.OPEN.value)
    totals: dict[int, int] = defaultdict(int)
    sums: dict[int, dict[str, int]] = defaultdict(dict)
    for stage_id, currency, count, amount in session.execute(
        select(Deal.stage_id, Deal.currency, func.count(), func.coalesce(func.sum(Deal.amount), 0))
        .where(open_deals)
        .group_by(Deal.stage_id, Deal.currency)
    ):
        totals[stage_id] += int(count)
        if amount:
            sums[stage_id][currency] = int(amount)
    stages = pipeline.stages[:-1]
    cards = {s.id: _cards(session, and_(open_deals, Deal.stage_id == s.id), page, per_stage) for s in stages}
    tasks = next_tasks(session=session, deal_ids=[card.id for column in cards.values() for card in column])
    columns = [
        BoardColumn(
            s.id,
            s.name,
            s.position,
            [replace(card, next_task=tasks.get(card.id)) for card in cards[s.id]],
            totals[s.id],
            sums[s.id],
        )
        for s in stages
    ]
    closed = [*_conditions(user, account, pipeline, chosen), Deal.closed_at.is_not(None)]
    if closed_from is not None:
        closed.append(Deal.closed_at >= closed_from)
    if closed_to is not None:
        closed.append(Deal.closed_at < closed_to)
    return Board(
        pipeline.id,
        columns,
        _closed(session, closed, DealStatus.WON),
        _closed(session, closed, DealStatus.LOST),
        page,
        per_stage,
    )


def _cards(session: Session, where: ColumnElement[bool], page: int, per_stage: int) -> list[Card]:
    title = func.coalesce(Deal.title, Deal.contact_name, Deal.external_id, "")
    rows = session.execute(
        select(
            Deal.id,
            title,
            Deal.amount,
            Deal.currency,
            Deal.created_at,
            Deal.manager_id,
            Deal.source_id,
            Deal.phone,
        )
        .where(where)
        .order_by(Deal.created_at, Deal.id)
        .offset((page - 1) * per_stage)
        .limit(per_stage)
    )
    return [Card(*row, next_task=None) for row in rows]


def _closed(session: Session, conditions: list[ColumnElement[bool]], status: DealStatus) -> Closed:
    rows = session.execute(
        select(Deal.currency, func.count(), func.coalesce(func.sum(Deal.amount), 0))
        .where(*conditions, Deal.status == status.value)
        .group_by(Deal.currency)
    ).all()
    return Closed(sum(int(r[1]) for r in rows), {r[0]: int(r[2]) for r in rows if r[2]})
