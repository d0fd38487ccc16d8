"""The deal card: everything a person working a deal sees on one page, read in one place."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from voronka.crm import auth
from voronka.crm.accounts import list_loss_reasons, list_sources, list_users, owned_row
from voronka.crm.deals import get_deal
from voronka.crm.history import HistoryItem, last_undoable, timeline
from voronka.crm.tasks import TaskRow, deal_tasks, task_people
from voronka.errors import InvalidValue
from voronka.models import CallAttempt, Deal, LossReason, Note, Pipeline, Source, Stage, User
from voronka.timeutil import utcnow

MAX_NOTE = 4_000


@dataclass(frozen=True)
class DealCard:
    deal: Deal
    stages: list[Stage]
    """The pipeline's stages in order."""
    sheet: DealSheet
    """Its stage, and the names of its manager, source and loss reason."""
    history: list[HistoryItem]
    tasks: list[TaskRow]
    users: list[User]
    """The account's people: names in the history, choices for manager and task owner."""
    sources: list[Source]
    loss_reasons: list[LossReason]
    can_undo: bool
    task_people: list[User]
    """Who a task on this deal may go to: people who can log in and may open it."""

    def user_name(self, user_id: int | None) -> str | None:
        return next((u.name for u in self.users if u.id == user_id), None)


def open_deal(*, session: Session, user: User, deal_id: int) -> Deal:
    """The deal, if the user may work it (else ``NotFound``: its existence is not revealed)."""
    deal = get_deal(session=session, deal_id=deal_id)
    auth.require_deal(user, deal)
    return deal


def deal_card(*, session: Session, user: User, deal_id: int) -> DealCard:
    deal = open_deal(session=session, user=user, deal_id=deal_id)
    account = auth.account_of(session=session, user=user)
    users = list_users(session=session, account=account)
    return DealCard(
        deal=deal,
        stages=deal_pipeline_stages(session, deal),
        sheet=deal_sheet(session=session, deal=deal),
        history=as_it_happened(timeline(session=session, deal=deal)),
        tasks=deal_tasks(session=session, deal=deal),
        users=users,
        sources=list_sources(session=session, account=account, active_only=True),
        loss_reasons=list_loss_reasons(session=session, account=account, active_only=True),
        can_undo=last_undoable(session=session, deal=deal, by=user) is not None,
        task_people=task_people(users=users, deal=deal),
    )


def as_it_happened(items: list[HistoryItem]) -> list[HistoryItem]:
    """The history with the names its stage entries had when they happened: a deleted stage's
    entries were moved to another stage (the funnel counts them there), and its ``stage_removed``
    events say which. The earliest deletion names an entry (a stage deleted into one deleted later)."""
    removed = [item for item in items if item.kind == "stage_removed"]
    if not removed:
        return items
    names: dict[tuple[str, str], str] = {}
    for event in reversed(removed):
        for at, side in event.data.get("entries", []):
            names[(str(at), str(side))] = str(event.data.get("stage", ""))
    shown = []
    for item in items:
        if item.kind in ("created", "moved", "won"):
            at = item.at.isoformat()
            data = dict(item.data)
            if (at, "to") in names:
                data["stage"] = names[(at, "to")]
            if (at, "from") in names:
                data["from"] = names[(at, "from")]
            item = HistoryItem(item.at, item.kind, item.actor_id, data)
        shown.append(item)
    return shown


def deal_pipeline_stages(session: Session, deal: Deal) -> list[Stage]:
    """The deal's pipeline's stages in order."""
    pipeline = session.get(Pipeline, deal.pipeline_id)
    assert pipeline is not None
    return list(pipeline.stages)


def add_note(*, session: Session, deal: Deal, user: User, text: str) -> Note | None:
    """A note on the deal by ``user``; empty text adds nothing."""
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > MAX_NOTE:
        raise InvalidValue(field="note", value=text[:40], hint=f"at most {MAX_NOTE} characters")
    note = Note(account_id=deal.account_id, deal_id=deal.id, actor_id=user.id, text=text, created_at=utcnow())
    session.add(note)
    session.flush()
    return note


@dataclass(frozen=True)
class DealSheet:
    """A deal with the names of what it points to: the API's view of one deal."""

    deal: Deal
    pipeline: str
    stage: Stage
    manager: str | None
    source: str | None
    loss_reason: str | None


def deal_sheet(*, session: Session, deal: Deal) -> DealSheet:
    stage = session.get(Stage, deal.stage_id)
    pipeline = session.get(Pipeline, deal.pipeline_id)
    assert stage is not None
    assert pipeline is not None
    manager = session.get(User, deal.manager_id) if deal.manager_id else None
    source = session.get(Source, deal.source_id) if deal.source_id else None
    reason = session.get(LossReason, deal.loss_reason_id) if deal.loss_reason_id else None
    return DealSheet(
        deal,
        pipeline.name,
        stage,
        manager.name if manager else None,
        source.name if source else None,
        reason.name if reason else None,
    )


def deal_calls(*, session: Session, deal: Deal) -> list[CallAttempt]:
    return list(session.scalars(select(CallAttempt).where(CallAttempt.deal_id == deal.id).order_by(CallAttempt.at)))


def pipeline_of(*, session: Session, account_id: int, pipeline_id: int) -> Pipeline:
    """The account's pipeline of this id (another account's is not found)."""
    return owned_row(session=session, model=Pipeline, row_id=pipeline_id, account_id=account_id, what="pipeline")
