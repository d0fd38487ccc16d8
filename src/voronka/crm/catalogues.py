"""The account's own lists — sources and loss reasons — renamed, or merged when the new name is
one that exists already (every deal, plan and spend of the old one then belongs to the other), or
archived: kept wherever they were used, no longer offered for new deals."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from voronka import deal_days
from voronka.crm.accounts import owned_row
from voronka.errors import InvalidValue
from voronka.models import AdSpend, DailyCount, Deal, LossReason, Plan, Source, StageReach
from voronka.timeutil import utcnow

MAX_NAME = 200


def _clean(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidValue(field="name", value=name[:40], hint=f"a name of 1 to {MAX_NAME} characters")
    return name


def source_of(*, session: Session, account_id: int, source_id: int) -> Source:
    return owned_row(session=session, model=Source, row_id=source_id, account_id=account_id, what="source")


def reason_of(*, session: Session, account_id: int, reason_id: int) -> LossReason:
    return owned_row(session=session, model=LossReason, row_id=reason_id, account_id=account_id, what="loss reason")


def rename_source(*, session: Session, source: Source, name: str) -> Source:
    """Rename; a name another source has merges this one into it (spend of the same period adds up)."""
    name = _clean(name)
    other = session.scalars(
        select(Source).where(Source.account_id == source.account_id, Source.name == name, Source.id != source.id)
    ).first()
    if other is None:
        source.name = name
        session.flush()
        return source
    no_sync = {"synchronize_session": False}
    for table in (Deal, Plan, DailyCount, StageReach):
        session.execute(
            update(table).where(table.source_id == source.id).values(source_id=other.id), execution_options=no_sync
        )
    for spend in session.scalars(select(AdSpend).where(AdSpend.source_id == source.id)):
        same = session.scalars(
            select(AdSpend).where(
                AdSpend.source_id == other.id,
                AdSpend.period_start == spend.period_start,
                AdSpend.period_kind == spend.period_kind,
            )
        ).first()
        if same is not None and same.currency == spend.currency:
            same.amount += spend.amount
            session.delete(spend)
        elif same is None:
            spend.source_id = other.id
        else:
            raise InvalidValue(field="source", value=name, hint="spend of the same period in one currency to merge")
    session.flush()
    session.delete(source)
    session.flush()
    deal_days.rebuild_account(session.connection(), source.account_id)  # deals changed source in bulk
    session.expire_all()  # the bulk updates above bypassed the objects already loaded
    return other


def rename_reason(*, session: Session, reason: LossReason, name: str) -> LossReason:
    """Rename; a name another reason has merges this one into it (its lost deals move there)."""
    name = _clean(name)
    other = session.scalars(
        select(LossReason).where(
            LossReason.account_id == reason.account_id, LossReason.name == name, LossReason.id != reason.id
        )
    ).first()
    if other is None:
        reason.name = name
        session.flush()
        return reason
    session.execute(
        update(Deal).where(Deal.loss_reason_id == reason.id).values(loss_reason_id=other.id),
        execution_options={"synchronize_session": False},
    )
    session.delete(reason)
    session.flush()
    session.expire_all()
    return other


def archive(*, session: Session, item: Source | LossReason, archived: bool) -> None:
    """Archive a source or loss reason (it is no longer offered for new deals) or bring it back;
    the deals, plans and spend that use it keep it."""
    item.archived_at = (item.archived_at or utcnow()) if archived else None
    session.flush()
