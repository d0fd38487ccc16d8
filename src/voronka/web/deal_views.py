"""What the working-day pages show, composed from library calls: names beside ids, the filters as
the page echoes them, the period a preset means in the account's calendar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from voronka.analysis.stalled import stalled_among
from voronka.crm import auth, tasks
from voronka.crm.accounts import find_pipeline, list_loss_reasons, list_pipelines, list_sources, list_users
from voronka.crm.board import Board, BoardFilter, build_board
from voronka.crm.search import DealFilter, DealPage, DealRow, Figure, InWorkElsewhere, deals_behind, find_deals
from voronka.errors import InvalidValue
from voronka.models import Account, CallOutcome, DealStatus, LossReason, Pipeline, Source, User
from voronka.timeutil import (
    PERIOD_PRESETS,
    local_midnight_utc,
    parse_day,
    preset_range,
    to_local,
    utcnow,
    zone,
)


def call_outcome(text: str) -> CallOutcome | None:
    if not text:
        return None
    try:
        return CallOutcome(text)
    except ValueError:
        raise InvalidValue(field="outcome", value=text, hint=", ".join(o.value for o in CallOutcome)) from None


@dataclass(frozen=True)
class Names:
    """Ids to names for a page: people, sources, stages."""

    users: dict[int, str]
    sources: dict[int, str]
    stages: dict[int, str] = field(default_factory=dict)

    def user(self, user_id: int | None) -> str:
        return self.users.get(user_id or 0, "")

    def source(self, source_id: int | None) -> str:
        return self.sources.get(source_id or 0, "")


def _names(session: Session, account: Account, pipelines: list[Pipeline] | None = None) -> Names:
    stages = {s.id: s.name for p in pipelines or [] for s in p.stages}
    return Names(
        {u.id: u.name for u in list_users(session=session, account=account)},
        {s.id: s.name for s in list_sources(session=session, account=account)},
        stages,
    )


def _id_of(names: dict[int, str], name: str | None, what: str) -> int | None:
    if not name:
        return None
    found = next((i for i, n in names.items() if n == name), None)
    if found is None:
        raise InvalidValue(field=what, value=name[:80], hint=f"one of the account's {what}s")
    return found


@dataclass(frozen=True)
class DealList:
    page: DealPage
    names: Names
    filters: dict[str, str]
    pipelines: list[str]
    managers: list[str]
    sources: list[str]
    can_see_all: bool

    def link(self, **changes: Any) -> str:
        """This list's address with some filters changed (the pager's links)."""
        from urllib.parse import urlencode

        merged = {**self.filters, **{k: str(v) for k, v in changes.items()}}
        return "/deals?" + urlencode({k: v for k, v in merged.items() if v})


@dataclass(frozen=True)
class DealListQuery:
    """What a list of deals is filtered by. ``stage`` is the stage a deal is at now (as in the
    API); ``reached``/``lost_at`` with ``view`` and the dates are a report's figure (``deals_behind``)."""

    pipeline: str | None = None
    stage: int | None = None
    status: str | None = None
    manager: str | None = None
    source: str | None = None
    unassigned: bool = False
    text: str | None = None
    page: int = 1
    reached: int | None = None
    lost_at: int | None = None
    view: str = "cohort"
    date_from: str | None = None
    date_to: str | None = None


def deal_list(
    *, session: Session, user: User, query: DealListQuery | None = None, everywhere: bool = False
) -> DealList:
    """A page of deals; ``everywhere`` searches every pipeline (the search box)."""
    q = query or DealListQuery()
    auth.require(user, auth.Action.WORK_DEALS)
    account = auth.account_of(session=session, user=user)
    pipelines = list_pipelines(session=session, account=account)
    names = _names(session, account, pipelines)
    chosen = None if everywhere else find_pipeline(session=session, account=account, name=q.pipeline)
    if q.status and q.status not in {s.value for s in DealStatus}:
        raise InvalidValue(field="status", value=q.status, hint="open, won or lost")
    found_by = DealFilter(
        pipeline_id=chosen.id if chosen else None,
        status=q.status,
        stage_ids=tuple(s.id for s in chosen.stages if s.position == q.stage) if chosen and q.stage else None,
        manager_id=_id_of(names.users, q.manager, "manager"),
        unassigned=q.unassigned,
        source_id=_id_of(names.sources, q.source, "source"),
        text=q.text,
    )
    figure_asked = q.reached is not None or q.lost_at is not None
    if figure_asked:
        figure = Figure(
            kind="lost" if q.lost_at is not None else "reached",
            position=int(q.lost_at if q.lost_at is not None else q.reached or 1),
            view=q.view,
            date_from=parse_day(q.date_from, "date_from"),
            date_to=parse_day(q.date_to, "date_to"),
        )
        found_by = deals_behind(figure=figure, timezone=account.timezone, base=found_by)
    found = find_deals(session=session, user=user, account=account, query=found_by, page=q.page)
    filters = {
        "pipeline": chosen.name if chosen else "",
        "stage": str(q.stage or ""),
        "reached": str(q.reached or ""),
        "lost_at": str(q.lost_at or ""),
        "view": q.view if figure_asked else "",
        "date_from": q.date_from or "",
        "date_to": q.date_to or "",
        "status": q.status or "",
        "manager": q.manager or "",
        "source": q.source or "",
        "unassigned": "1" if q.unassigned else "",
        "q": q.text or "",
    }
    see_all = auth.can(user, auth.Action.SEE_ALL_DEALS)
    return DealList(
        found,
        names,
        filters,
        [p.name for p in pipelines],
        sorted(set(names.users.values())) if see_all else [user.name],
        sorted(set(names.sources.values())),
        see_all,
    )


@dataclass(frozen=True)
class KanbanView:
    board: Board
    pipeline: Pipeline
    pipelines: list[str]
    names: Names
    stalled: set[int]
    reasons: list[LossReason]
    managers: list[str]
    sources: list[str]
    filters: dict[str, str]
    presets: tuple[str, ...]
    currency: str
    now: dt.datetime

    def age_days(self, created_at: dt.datetime) -> int:
        return (self.now - created_at).days


@dataclass(frozen=True)
class KanbanQuery:
    """What the board shows: a pipeline's deals, by whom, from where, created when (a preset)."""

    pipeline: str | None = None
    manager: str | None = None
    source: str | None = None
    period: str = "all"
    mine: bool = False
    text: str | None = None
    page: int = 1


def kanban(*, session: Session, user: User, query: KanbanQuery) -> KanbanView:
    q = query
    auth.require(user, auth.Action.WORK_DEALS)
    account = auth.account_of(session=session, user=user)
    chosen = find_pipeline(session=session, account=account, name=q.pipeline)
    names = _names(session, account, [chosen])
    tz = zone(account.timezone)
    now = utcnow()
    today = to_local(now, tz).date()
    start, end = preset_range(q.period, today)
    manager_id = user.id if q.mine else _id_of(names.users, q.manager, "manager")
    board = build_board(
        session=session,
        account=account,
        user=user,
        pipeline=chosen,
        chosen=BoardFilter(
            manager_id=manager_id,
            source_id=_id_of(names.sources, q.source, "source"),
            created_from=local_midnight_utc(start, tz) if start else None,
            created_to=local_midnight_utc(end, tz) if end else None,
            text=q.text,
        ),
        # The won and lost columns count the closings of the chosen period; "all time" is all of them.
        closed_from=local_midnight_utc(start, tz) if start else None,
        closed_to=local_midnight_utc(end, tz) if end else None,
        page=q.page,
    )
    cards = [card.id for column in board.columns for card in column.cards]
    see_all = auth.can(user, auth.Action.SEE_ALL_DEALS)
    return KanbanView(
        board=board,
        pipeline=chosen,
        pipelines=[p.name for p in list_pipelines(session=session, account=account)],
        names=names,
        stalled=stalled_among(session, chosen, local_midnight_utc(today, tz), cards),
        reasons=list_loss_reasons(session=session, account=account, active_only=True),
        managers=sorted(set(names.users.values())) if see_all else [],
        sources=sorted(set(names.sources.values())),
        filters={
            "pipeline": chosen.name,
            "manager": q.manager or "",
            "source": q.source or "",
            "period": q.period,
            "mine": "1" if q.mine else "",
            "q": q.text or "",
        },
        presets=PERIOD_PRESETS,
        currency=account.currency,
        now=now,
    )


@dataclass(frozen=True)
class TaskLists:
    mine: tasks.MyTasks
    team_overdue: list[tasks.TaskRow] | None
    without_task: list[tasks.DealWithoutTask]
    without_task_total: int
    names: Names
    now: dt.datetime
    unassigned: int | None = None
    """Open deals with no manager (website leads waiting), for those who assign them."""
    new_leads: list[tasks.DealWithoutTask] = field(default_factory=list)
    new_leads_total: int = 0


def task_lists(*, session: Session, user: User) -> TaskLists:
    """My tasks; for those who see every deal, also the team's overdue tasks; for everyone, the
    open deals (of theirs) with no open task."""
    account = auth.account_of(session=session, user=user)
    now = utcnow()
    see_all = auth.can(user, auth.Action.SEE_ALL_DEALS) and auth.can(user, auth.Action.WORK_DEALS)
    without, total = tasks.deals_without_task(session=session, user=user, limit=100)
    fresh, fresh_total = tasks.new_leads(session=session, user=user, now=now, limit=100)
    return TaskLists(
        new_leads=fresh,
        new_leads_total=fresh_total,
        mine=tasks.my_tasks(session=session, user=user, timezone=account.timezone, now=now),
        team_overdue=tasks.team_overdue(session=session, user=user, now=now) if see_all else None,
        without_task=without,
        without_task_total=total,
        names=_names(session, account, list_pipelines(session=session, account=account)),
        now=now,
        unassigned=find_deals(
            session=session, user=user, account=account, query=DealFilter(status="open", unassigned=True), per_page=1
        ).total
        if see_all
        else None,
    )


@dataclass(frozen=True)
class NewDealForm:
    values: Mapping[str, str]
    pipelines: list[str]
    managers: list[str]
    sources: list[Source]
    currency: str
    duplicates: list[DealRow]
    can_assign: bool
    elsewhere: list[InWorkElsewhere]
    """Open deals with the phone the user may not open: only who works them is said."""


def new_deal_form(
    *,
    session: Session,
    user: User,
    pipeline: str | None,
    values: Mapping[str, str],
    duplicates: list[DealRow] | None = None,
    elsewhere: list[InWorkElsewhere] | None = None,
) -> NewDealForm:
    auth.require(user, auth.Action.WORK_DEALS)
    account = auth.account_of(session=session, user=user)
    can_assign = auth.can(user, auth.Action.SEE_ALL_DEALS)
    return NewDealForm(
        values={"pipeline": pipeline or "", **values},
        pipelines=[p.name for p in list_pipelines(session=session, account=account)],
        # People who can log in: a name from imported history could never open the deal.
        managers=[u.name for u in list_users(session=session, account=account) if auth.can_log_in(u)]
        if can_assign
        else [],
        sources=list_sources(session=session, account=account, active_only=True),
        currency=account.currency,
        duplicates=duplicates or [],
        can_assign=can_assign,
        elsewhere=elsewhere or [],
    )


def custom_fields(form: Mapping[str, str], current: Mapping[str, Any]) -> dict[str, Any]:
    """The custom fields as the card's form leaves them: ``custom:<name>`` inputs (empty removes
    one) and one new ``new_custom_name``/``new_custom_value`` pair."""
    fields: dict[str, Any] = {}
    for name in current:
        value = form.get(f"custom:{name}", str(current[name]))
        if value.strip():
            fields[name] = value.strip()
    new_name, new_value = form.get("new_custom_name", "").strip(), form.get("new_custom_value", "").strip()
    if new_name and new_value:
        fields[new_name] = new_value
    return fields
