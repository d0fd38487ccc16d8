"""Tasks on deals: what to do, by whom, by when — and the lists a sales team runs its day by.

"My tasks" splits a user's open tasks into overdue, today, tomorrow, the rest of this week and
later, by the account's local calendar. A head also sees the team's overdue tasks and the open deals with no
open task at all (a deal nobody plans to touch is a deal being lost). Completing a call task can
log the call's outcome in the same step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from voronka.crm import auth
from voronka.crm.deals import log_call
from voronka.crm.history import record
from voronka.errors import InvalidValue, NotFound
from voronka.models import CallOutcome, Deal, DealStatus, Pipeline, Task, TaskKind, User
from voronka.timeutil import check_day, local_midnight_utc, to_local, utcnow, zone

MAX_TASK_TEXT = 2_000
LIST_LIMIT = 200


def add_task(
    *,
    session: Session,
    deal: Deal,
    kind: TaskKind,
    due_at: dt.datetime,
    responsible: User,
    text: str = "",
    by: User | None = None,
) -> Task:
    """A new open task on the deal (``due_at`` in UTC) for someone who can log in and may open the
    deal: its manager, a head of sales or the owner. Anyone else would see the deal's title (often
    the client's phone) in their list and alerts, then get "not found" opening it."""
    if not (auth.can_log_in(responsible) and auth.may_see_deal(responsible, deal)):
        raise InvalidValue(
            field="responsible",
            value=responsible.name,
            hint="someone who may open the deal: its manager, a head of sales or the owner",
        )
    text = (text or "").strip()
    if len(text) > MAX_TASK_TEXT:
        raise InvalidValue(field="task", value=text[:40], hint=f"at most {MAX_TASK_TEXT} characters")
    check_day(due_at, "due")  # one at the calendar's end could not be shown in every time zone
    task = Task(
        account_id=deal.account_id,
        deal_id=deal.id,
        kind=TaskKind(kind).value,
        due_at=due_at,
        manager_id=responsible.id,
        text=text,
        created_at=utcnow(),
        created_by_id=by.id if by else None,
    )
    session.add(task)
    session.flush()
    record(session, deal, "task_added", by, task=task.id, task_kind=task.kind, due=due_at.isoformat(), text=text)
    return task


def task_people(*, users: Iterable[User], deal: Deal) -> list[User]:
    """Of ``users``, those a task on ``deal`` may go to (``add_task`` takes no one else)."""
    return [u for u in users if auth.can_log_in(u) and auth.may_see_deal(u, deal)]


def get_task(*, session: Session, user: User, task_id: int) -> tuple[Task, Deal]:
    """The task and its deal, if the user may see the deal."""
    task = session.get(Task, task_id)
    deal = session.get(Deal, task.deal_id) if task is not None else None
    if task is None or deal is None or task.account_id != user.account_id:
        raise NotFound(what=f"task {task_id}")
    auth.require_deal(user, deal)
    return task, deal


def complete_task(
    *,
    session: Session,
    task: Task,
    deal: Deal,
    by: User,
    call_outcome: CallOutcome | None = None,
    outgoing_number: str | None = None,
    at: dt.datetime | None = None,
) -> Task:
    """Mark the task done; for a call task, ``call_outcome`` logs the call in the same step."""
    if task.done_at is not None:
        return task
    at = at or utcnow()
    if call_outcome is not None:
        if task.kind != TaskKind.CALL.value:
            raise InvalidValue(field="call outcome", value=call_outcome, hint="only a call task logs a call")
        log_call(session=session, deal=deal, outcome=call_outcome, at=at, outgoing_number=outgoing_number, manager=by)
    task.done_at = at
    task.done_by_id = by.id
    record(session, deal, "task_done", by, task=task.id, task_kind=task.kind, text=task.text, outcome=call_outcome)
    session.flush()
    return task


def reopen_task(*, session: Session, task: Task, deal: Deal, by: User) -> Task:
    """Undo "done": the task is open again."""
    if task.done_at is None:
        return task
    task.done_at = None
    task.done_by_id = None
    record(session, deal, "task_reopened", by, task=task.id, task_kind=task.kind, text=task.text)
    session.flush()
    return task


@dataclass(frozen=True)
class TaskRow:
    """A task as the lists show it, with its deal's name."""

    id: int
    deal_id: int
    deal_title: str
    kind: str
    due_at: dt.datetime
    text: str
    manager_id: int
    done_at: dt.datetime | None


def _rows(session: Session, narrow: Callable[[Any], Any]) -> list[TaskRow]:
    """Task rows with their deal's name, from the task query ``narrow`` makes of the base one."""
    title = func.coalesce(Deal.title, Deal.contact_name, Deal.external_id, "")
    selected = select(
        Task.id, Task.deal_id, title, Task.kind, Task.due_at, Task.text, Task.manager_id, Task.done_at
    ).join(Deal, Deal.id == Task.deal_id)
    found: Any = session.execute(narrow(selected))
    return [TaskRow(*row) for row in found]


def deal_tasks(*, session: Session, deal: Deal) -> list[TaskRow]:
    """The deal's tasks, open ones first by due time, then done ones."""
    return _rows(
        session,
        lambda q: q.where(Task.deal_id == deal.id).order_by(Task.done_at.is_not(None), Task.due_at, Task.id),
    )


@dataclass(frozen=True)
class MyTasks:
    overdue: list[TaskRow]
    today: list[TaskRow]
    tomorrow: list[TaskRow]
    this_week: list[TaskRow]
    """Due after tomorrow and before next Monday (local)."""
    later: list[TaskRow]
    """Every task due from next Monday on: nothing planned vanishes from the list."""


def day_bounds(now: dt.datetime, timezone: str) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """UTC start of today, start of tomorrow and start of next week, by the account's calendar."""
    tz = zone(timezone)
    today = to_local(now, tz).date()
    monday = today + dt.timedelta(days=7 - today.weekday())
    return (
        local_midnight_utc(today, tz),
        local_midnight_utc(today + dt.timedelta(days=1), tz),
        local_midnight_utc(monday, tz),
    )


def my_tasks(*, session: Session, user: User, timezone: str, now: dt.datetime | None = None) -> MyTasks:
    """The user's open tasks: overdue (due before now), today, tomorrow, the rest of this week and
    later. Each group is read on its own, so many overdue tasks never push today's out of the list."""
    now = now or utcnow()
    _, tomorrow, next_week = day_bounds(now, timezone)
    tz = zone(timezone)
    after_tomorrow = local_midnight_utc(to_local(now, tz).date() + dt.timedelta(days=2), tz)

    def between(start: dt.datetime | None, end: dt.datetime | None) -> list[TaskRow]:
        def narrow(q: Any) -> Any:
            q = q.where(Task.account_id == user.account_id, Task.done_at.is_(None), Task.manager_id == user.id)
            if start is not None:
                q = q.where(Task.due_at >= start)
            if end is not None:
                q = q.where(Task.due_at < end)
            return q.order_by(Task.due_at, Task.id).limit(LIST_LIMIT)

        return _rows(session, narrow)

    return MyTasks(
        overdue=between(None, now),
        today=between(now, tomorrow),
        tomorrow=between(tomorrow, after_tomorrow),
        # On a Sunday "tomorrow" is already next week: this week has nothing after it then.
        this_week=between(after_tomorrow, next_week) if after_tomorrow < next_week else [],
        later=between(max(next_week, after_tomorrow), None),
    )


def team_overdue(*, session: Session, user: User, now: dt.datetime | None = None) -> list[TaskRow]:
    """Every overdue open task of the team (a head's or owner's control list)."""
    auth.require(user, auth.Action.SEE_ALL_DEALS)
    now = now or utcnow()
    return _rows(
        session,
        lambda q: (
            q.where(Task.account_id == user.account_id, Task.done_at.is_(None), Task.due_at < now)
            .order_by(Task.due_at, Task.id)
            .limit(LIST_LIMIT)
        ),
    )


@dataclass(frozen=True)
class DealWithoutTask:
    id: int
    title: str
    manager_id: int | None
    stage_id: int
    created_at: dt.datetime


def deals_without_task(*, session: Session, user: User, limit: int = LIST_LIMIT) -> tuple[list[DealWithoutTask], int]:
    """Open deals the user may see with no open task, oldest first, and how many there are."""
    has_task = exists().where(and_(Task.deal_id == Deal.id, Task.done_at.is_(None)))
    condition = and_(auth.visible_deals(user), Deal.status == DealStatus.OPEN.value, ~has_task)
    total = int(session.scalar(select(func.count()).select_from(Deal).where(condition)) or 0)
    title = func.coalesce(Deal.title, Deal.contact_name, Deal.external_id, "")
    rows = session.execute(
        select(Deal.id, title, Deal.manager_id, Deal.stage_id, Deal.created_at)
        .where(condition)
        .order_by(Deal.created_at, Deal.id)
        .limit(limit)
    )
    return [DealWithoutTask(*row) for row in rows], total


NEW_LEAD_DAYS = 7
"""How long an untouched lead counts as new: older ones are the "deals without a task" list's."""


def _new_lead_condition(user: User, now: dt.datetime) -> Any:
    # By the account's pipelines first: the arrivals index (pipeline, created_at) then reads only
    # the last week's deals — the menu's badge asks on every page.
    pipelines = select(Pipeline.id).where(Pipeline.account_id == user.account_id)
    return and_(
        Deal.pipeline_id.in_(pipelines),
        auth.visible_deals(user),
        Deal.status == DealStatus.OPEN.value,
        Deal.contact_minutes.is_(None),  # nobody has called or written (kept with first_contact_at)
        Deal.furthest_position <= 1,  # nor moved it on
        Deal.created_at >= now - dt.timedelta(days=NEW_LEAD_DAYS),
        Deal.created_at <= now,
    )


def new_leads(
    *, session: Session, user: User, now: dt.datetime | None = None, limit: int = LIST_LIMIT
) -> tuple[list[DealWithoutTask], int]:
    """New, untouched leads the user may see, newest first, and how many there are: created in the
    last ``NEW_LEAD_DAYS`` days, never contacted and still at the first stage. The first thing a
    manager's day shows (a lead called in five minutes is worth many called tomorrow)."""
    if not auth.can(user, auth.Action.WORK_DEALS):
        return [], 0
    condition = _new_lead_condition(user, now or utcnow())
    total = int(session.scalar(select(func.count()).select_from(Deal).where(condition)) or 0)
    title = func.coalesce(Deal.title, Deal.contact_name, Deal.external_id, "")
    rows = session.execute(
        select(Deal.id, title, Deal.manager_id, Deal.stage_id, Deal.created_at)
        .where(condition)
        .order_by(Deal.created_at.desc(), Deal.id.desc())
        .limit(limit)
    )
    return [DealWithoutTask(*row) for row in rows], total


def new_lead_count(*, session: Session, user: User, now: dt.datetime | None = None) -> int:
    """How many new, untouched leads the user may see (the menu's badge)."""
    if not auth.can(user, auth.Action.WORK_DEALS):
        return 0
    condition = _new_lead_condition(user, now or utcnow())
    return int(session.scalar(select(func.count()).select_from(Deal).where(condition)) or 0)


def next_tasks(*, session: Session, deal_ids: Iterable[int]) -> dict[int, TaskRow]:
    """Each deal's earliest open task (the kanban card shows it)."""
    ids = list(deal_ids)
    if not ids:
        return {}
    found: dict[int, TaskRow] = {}
    for row in _rows(
        session, lambda q: q.where(Task.deal_id.in_(ids), Task.done_at.is_(None)).order_by(Task.due_at, Task.id)
    ):
        found.setdefault(row.deal_id, row)
    return found
