"""CRM services: create deals, move them through stages, win, lose, reopen, log calls.

Every stage entry is appended to the stage-change log; what follows from the log — the deal's
furthest stage, reaches, first contact and speed to lead — is re-derived by the rules of
``crm.deal_state`` after each write (``crm.derived.rederive_deal``). Each service first locks the
deal (``crm.derived.lock_deal``), so two writes of one deal at once take turns and the second
decides on what the first left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voronka.crm.credentials import check_email
from voronka.crm.deal_state import standing_position
from voronka.crm.derived import counts_as_contact, first_call_contact, lock_deal, rederive_deal
from voronka.crm.history import record
from voronka.crm.new_deal import NewDeal, check_custom
from voronka.crm.phones import normalize_phone, phone_key, region_of
from voronka.crm.search import search_text
from voronka.errors import (
    DealClosed,
    DealExists,
    DealNotFound,
    InvalidTransition,
    InvalidValue,
    LossReasonRequired,
    StageOfOtherPipeline,
)
from voronka.models import (
    LEGACY_ORIGIN,
    OWN_ORIGIN,
    Account,
    CallAttempt,
    CallDirection,
    CallOutcome,
    Deal,
    DealStatus,
    LossReason,
    Pipeline,
    Role,
    Source,
    Stage,
    StageEntry,
    User,
)
from voronka.money import MAX_MINOR, check_currency
from voronka.timeutil import utcnow

__all__ = ["counts_as_contact", "first_call_contact"]  # re-exported: where callers have found them


def get_deal(*, session: Session, deal_id: int) -> Deal:
    deal = session.get(Deal, deal_id)
    if deal is None:
        raise DealNotFound(id=deal_id)
    return deal


def create_deal(*, session: Session, pipeline: Pipeline, new: NewDeal, by: User | None = None) -> Deal:
    """A new open deal in the pipeline's first stage, its arrival logged as the entry into it
    (``by`` whoever created it: nobody for a website lead, an import or a sync)."""
    new = new.checked()
    external_id = new.external_id
    if external_id is not None:
        existing = session.scalar(
            select(Deal.id).where(
                Deal.account_id == pipeline.account_id,
                Deal.origin.in_((OWN_ORIGIN, LEGACY_ORIGIN)),
                Deal.external_id == external_id,
            )
        )
        if existing is not None:
            raise DealExists(id=external_id, deal=existing)
    created_at = new.created_at or utcnow()
    first = pipeline.stages[0]
    deal = Deal(
        account_id=pipeline.account_id,
        pipeline_id=pipeline.id,
        external_id=external_id,
        title=new.title,
        contact_name=new.contact_name,
        phone=(shown := normalize_phone(new.phone, _region(session, pipeline.account_id))),
        phone_key=phone_key(shown),
        search_text=search_text(new.title, new.contact_name, new.email),
        email=new.email,
        source_id=new.source.id if new.source else None,
        manager_id=new.manager.id if new.manager else None,
        amount=new.amount,
        currency=new.currency,
        status=DealStatus.OPEN.value,
        stage_id=first.id,
        furthest_position=1,
        history_known=True,
        created_at=created_at,
        custom=dict(new.custom),
        updated_at=utcnow(),
    )
    session.add(deal)
    session.flush()
    _log_entry(session, deal, None, first, created_at, by)
    return deal


EDITABLE = ("title", "amount", "currency", "manager", "source", "contact_name", "phone", "email", "custom")
"""What a person may change on a deal's card; stage and status change only by moving, winning,
losing and reopening, so that the stage log stays the truth the funnel is counted from."""


def update_deal(
    *, session: Session, deal: Deal, changes: Mapping[str, Any], by: User | None = None, at: dt.datetime | None = None
) -> Deal:
    """Change the deal's fields, each change written to its history as old → new (``at``: the wall
    clock unless the caller keeps its own, as the alerts' handover does).

    ``manager`` is a ``User`` of the account or ``None``, ``source`` a ``Source`` or ``None``,
    ``amount`` minor units or ``None``, ``phone`` as typed (kept in international form when valid),
    ``custom`` the whole set of custom fields."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidValue(field="deal field", value=", ".join(sorted(unknown)), hint=", ".join(EDITABLE))
    lock_deal(session, deal)
    if by is not None and by.role == Role.MANAGER.value and changes.get("manager", by) != by:
        raise InvalidValue(
            field="manager", value=by.name, hint="a manager's deals stay their own; a head reassigns them"
        )
    whose = (deal.manager_id, deal.source_id)
    for name, value in changes.items():
        old = _shown_old(session, deal, name)
        new = _apply(session, deal, name, value)
        if old != new:
            record(session, deal, "changed", by, when=at, field=name, old=old, new=new)
    deal.search_text = search_text(deal.title, deal.contact_name, deal.email)
    deal.updated_at = at or utcnow()
    if (deal.manager_id, deal.source_id) != whose:
        rederive_deal(session=session, deal=deal)  # the reaches carry whose deal it is, for the reports
    session.flush()
    return deal


def _shown_old(session: Session, deal: Deal, name: str) -> str | None:
    """The field's value as the history shows it: people and sources by name."""
    if name == "manager":
        user = session.get(User, deal.manager_id) if deal.manager_id else None
        return user.name if user else None
    if name == "source":
        source = session.get(Source, deal.source_id) if deal.source_id else None
        return source.name if source else None
    return _shown(getattr(deal, name))


_COLUMN = {"manager": "manager_id", "source": "source_id"}


def _apply(session: Session, deal: Deal, name: str, value: Any) -> str | None:
    """Set one field after checking it; what the history shows as its new value."""
    if name == "amount":
        if value is not None and not 0 <= int(value) <= MAX_MINOR:
            raise InvalidValue(field="amount", value=value, hint="a sum of zero or more")
        deal.amount = None if value is None else int(value)
    elif name == "currency":
        deal.currency = check_currency(str(value))
    elif name in ("manager", "source"):
        if value is not None and value.account_id != deal.account_id:
            raise InvalidValue(field=name, value=value.name, hint="one of the account's own")
        setattr(deal, _COLUMN[name], value.id if value is not None else None)
        return value.name if value is not None else None
    elif name == "phone":
        deal.phone = normalize_phone(value, _region(session, deal.account_id))
        deal.phone_key = phone_key(deal.phone)
    elif name == "email":
        deal.email = check_contact_email(value)
    elif name == "custom":
        check_custom(value or {})
        deal.custom = dict(value or {})
    else:
        text = (str(value) if value is not None else "").strip()
        if len(text) > _MAX_TEXT[name]:
            raise InvalidValue(field=name, value=text[:40], hint=f"at most {_MAX_TEXT[name]} characters")
        setattr(deal, name, text or None)
    return _shown(getattr(deal, name))


_MAX_TEXT = {"title": 300, "contact_name": 200}


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or None
    return str(value)


def _region(session: Session, account_id: int) -> str | None:
    account = session.get(Account, account_id)
    return region_of(account.timezone) if account is not None else None


def check_contact_email(value: str | None) -> str | None:
    """A client's e-mail checked as logins are (``check_email``); empty is none."""
    text = (value or "").strip()
    return check_email(text) if text else None


def move_deal(
    *, session: Session, deal: Deal, stage: Stage, at: dt.datetime | None = None, by: User | None = None
) -> Deal:
    """Move an open deal to ``stage`` (forward, skipping or back). Moving into the won stage wins it;
    moving it where it already stands changes nothing."""
    lock_deal(session, deal)
    _require_open(deal)
    _require_same_pipeline(deal, stage)
    at = at or utcnow()
    if stage.position == _last_position(session, deal):
        return win_deal(session=session, deal=deal, at=at, by=by)
    if stage.id == deal.stage_id:
        return deal
    current = session.get(Stage, deal.stage_id)
    change = _log_entry(session, deal, current, stage, at, by)
    deal.stage_id = stage.id
    deal.updated_at = utcnow()
    rederive_deal(session=session, deal=deal)
    if by is not None:  # a person's move can be undone for a few seconds; imports and syncs cannot
        record(session, deal, "moved", by, change_id=change.id)
    return deal


def win_deal(
    *,
    session: Session,
    deal: Deal,
    at: dt.datetime | None = None,
    amount: int | None = None,
    by: User | None = None,
) -> Deal:
    """Close the deal as won: it enters the pipeline's last stage."""
    lock_deal(session, deal)
    _require_open(deal)
    at = at or utcnow()
    won_stage = _stages(session, deal)[-1]
    current = session.get(Stage, deal.stage_id)
    change = _log_entry(session, deal, current, won_stage, at, by)
    if amount is not None:
        if amount < 0:
            raise InvalidValue(field="amount", value=amount, hint="a sum of zero or more")
        deal.amount = amount
    deal.stage_id = won_stage.id
    deal.status = DealStatus.WON.value
    deal.closed_at = at
    deal.loss_reason_id = None
    deal.updated_at = utcnow()
    rederive_deal(session=session, deal=deal)
    if by is not None:
        record(session, deal, "won", by, change_id=change.id)
    return deal


def lose_deal(
    *,
    session: Session,
    deal: Deal,
    reason: LossReason | None,
    at: dt.datetime | None = None,
    by: User | None = None,
) -> Deal:
    """Close the deal as lost at the stage it is in; a reason is required."""
    lock_deal(session, deal)
    _require_open(deal)
    if reason is None:
        raise LossReasonRequired()
    deal.status = DealStatus.LOST.value
    deal.closed_at = at or utcnow()
    deal.loss_reason_id = reason.id
    deal.updated_at = utcnow()
    record(session, deal, "lost", by, reason=reason.name)
    session.flush()
    return deal


def reopen_deal(
    *,
    session: Session,
    deal: Deal,
    stage: Stage | None = None,
    at: dt.datetime | None = None,
    by: User | None = None,
) -> Deal:
    """Make a closed deal open again.

    A lost deal stays at its stage (or moves to ``stage``). A won deal goes back to ``stage``, by
    default the stage it was in before it was won, and stops counting as having reached the won stage.
    """
    lock_deal(session, deal)
    if deal.status == DealStatus.OPEN.value:
        raise InvalidTransition(reason="the deal is already open")
    at = at or utcnow()
    stages = _stages(session, deal)
    if stage is not None:
        _require_same_pipeline(deal, stage)
        if stage.position == stages[-1].position:
            raise InvalidTransition(reason="a reopened deal cannot be in the won stage")
    elif deal.status == DealStatus.WON.value:
        stage = _stage_before_win(session, deal, stages)
    was_won = deal.status == DealStatus.WON.value
    deal.status = DealStatus.OPEN.value
    deal.closed_at = None
    deal.loss_reason_id = None
    if stage is not None and stage.id != deal.stage_id:
        _log_entry(session, deal, session.get(Stage, deal.stage_id), stage, at, by)
        deal.stage_id = stage.id
    deal.updated_at = utcnow()
    rederive_deal(session=session, deal=deal)
    record(session, deal, "reopened", by, was="won" if was_won else "lost")
    return deal


def log_call(
    *,
    session: Session,
    deal: Deal,
    outcome: CallOutcome,
    at: dt.datetime | None = None,
    outgoing_number: str | None = None,
    duration_seconds: int = 0,
    manager: User | None = None,
    direction: CallDirection = CallDirection.OUTGOING,
) -> CallAttempt:
    """Record a call; the first that counts as contact sets the deal's first-contact time."""
    if duration_seconds < 0:
        raise InvalidValue(field="duration", value=duration_seconds, hint="seconds, zero or more")
    lock_deal(session, deal)
    at = at or utcnow()
    call = CallAttempt(
        account_id=deal.account_id,
        deal_id=deal.id,
        at=at,
        outgoing_number=outgoing_number,
        outcome=CallOutcome(outcome).value,
        duration_seconds=duration_seconds,
        manager_id=manager.id if manager else deal.manager_id,
        direction=CallDirection(direction).value,
    )
    session.add(call)
    rederive_deal(session=session, deal=deal)
    return call


def _log_entry(
    session: Session, deal: Deal, from_stage: Stage | None, to_stage: Stage, at: dt.datetime, by: User | None
) -> StageEntry:
    change = StageEntry(
        account_id=deal.account_id,
        deal_id=deal.id,
        from_stage_id=from_stage.id if from_stage else None,
        to_stage_id=to_stage.id,
        to_position=to_stage.position,
        at=at,
        actor_id=by.id if by else None,
    )
    session.add(change)
    session.flush()
    return change


def _require_open(deal: Deal) -> None:
    if deal.status != DealStatus.OPEN.value:
        raise DealClosed(id=deal.external_id or deal.id, status=deal.status)


def _require_same_pipeline(deal: Deal, stage: Stage) -> None:
    if stage.pipeline_id != deal.pipeline_id:
        raise StageOfOtherPipeline(stage=stage.name)


def _stages(session: Session, deal: Deal) -> list[Stage]:
    return list(session.scalars(select(Stage).where(Stage.pipeline_id == deal.pipeline_id).order_by(Stage.position)))


def _last_position(session: Session, deal: Deal) -> int:
    return int(session.scalar(select(func.max(Stage.position)).where(Stage.pipeline_id == deal.pipeline_id)) or 0)


def _stage_before_win(session: Session, deal: Deal, stages: list[Stage]) -> Stage:
    won_position = stages[-1].position
    previous = session.scalars(
        select(StageEntry)
        .where(StageEntry.deal_id == deal.id, StageEntry.to_position == won_position)
        .order_by(StageEntry.at.desc(), StageEntry.id.desc())
    ).first()
    if previous is not None and previous.from_stage_id is not None:
        before = session.get(Stage, previous.from_stage_id)
        if before is not None and before.position < won_position:
            return before
    # No stage it was won from (a history file's entry): where its log puts it short of winning, so
    # that reopening raises it no further than it had got.
    of_stage = {s.id: s.position for s in stages}
    log = session.execute(
        select(StageEntry.to_stage_id, StageEntry.at)
        .where(StageEntry.deal_id == deal.id)
        .order_by(StageEntry.at, StageEntry.id)
    )
    entries = [(of_stage[to], at) for to, at in log if to in of_stage]
    position = standing_position(entries, won=False, last_position=won_position)
    return next(s for s in stages if s.position == position)
