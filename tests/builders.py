"""Declarative test data: a pipeline and deal journeys written through the real CRM services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from voronka.analysis.funnel.query import FunnelQuery
from voronka.analysis.funnel.report import FunnelReport, run_funnel
from voronka.crm.accounts import (
    create_pipeline,
    default_account,
    find_stage,
    get_or_create_loss_reason,
    get_or_create_manager,
    get_or_create_source,
)
from voronka.crm.deals import create_deal, lose_deal, move_deal, reopen_deal, win_deal
from voronka.crm.new_deal import NewDeal
from voronka.models import Account, Deal, Pipeline

STAGES = ("Lead", "Qualified", "Estimate", "Contract", "Won")


def at(text: str) -> dt.datetime:
    """``"2024-03-01 10:00"`` → naive UTC datetime."""
    return dt.datetime.fromisoformat(text)


@dataclass(frozen=True)
class Journey:
    """A deal's life: created, moved through stages, then maybe won, lost or reopened."""

    created: str
    moves: Sequence[tuple[str, str]] = ()
    won: str | None = None
    lost: tuple[str, str] | None = None  # (time, reason)
    reopened: str | None = None
    source: str | None = None
    manager: str | None = None
    amount: int | None = None
    currency: str = "RUB"
    custom: dict[str, str] = field(default_factory=dict)


def account_for(session: Session, timezone: str = "UTC") -> Account:
    return default_account(session=session, timezone=timezone)


def pipeline_for(session: Session, stages: Sequence[str] = STAGES, name: str = "Sales") -> Pipeline:
    account = account_for(session)
    return create_pipeline(session=session, account=account, name=name, stages=stages)


def add_journey(session: Session, pipeline: Pipeline, journey: Journey) -> Deal:
    account = account_for(session)
    deal = create_deal(
        session=session,
        pipeline=pipeline,
        new=NewDeal(
            created_at=at(journey.created),
            currency=journey.currency,
            amount=journey.amount,
            source=get_or_create_source(session=session, account=account, name=journey.source)
            if journey.source
            else None,
            manager=get_or_create_manager(session=session, account=account, name=journey.manager)
            if journey.manager
            else None,
            custom=dict(journey.custom),
        ),
    )
    for stage_name, when in journey.moves:
        move_deal(session=session, deal=deal, stage=find_stage(pipeline, stage_name), at=at(when))
    if journey.won:
        win_deal(session=session, deal=deal, at=at(journey.won))
    if journey.lost:
        reason = get_or_create_loss_reason(session=session, account=account, name=journey.lost[1])
        lose_deal(session=session, deal=deal, reason=reason, at=at(journey.lost[0]))
    if journey.reopened:
        reopen_deal(session=session, deal=deal, at=at(journey.reopened))
    return deal


def journeys_for(session: Session, journeys: Sequence[Journey], stages: Sequence[str] = STAGES) -> Pipeline:
    pipeline = pipeline_for(session, stages)
    for journey in journeys:
        add_journey(session, pipeline, journey)
    session.commit()
    return pipeline


def funnel(session: Session, **query: object) -> FunnelReport:
    return run_funnel(session=session, account=account_for(session), query=FunnelQuery(**query))  # type: ignore[arg-type]


def reached(report: FunnelReport) -> list[int]:
    return [s.reached for s in report.figures.stages]
