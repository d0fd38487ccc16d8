"""CRM services: moves are logged, invalid actions raise named errors, derived state matches the log."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import Journey, account_for, add_journey, at, funnel, journeys_for, pipeline_for
from voronka.crm.accounts import create_pipeline, find_pipeline, find_stage, get_or_create_loss_reason
from voronka.crm.deals import (
    create_deal,
    get_deal,
    log_call,
    lose_deal,
    move_deal,
    reopen_deal,
    win_deal,
)
from voronka.crm.derived import rederive_deal
from voronka.crm.new_deal import NewDeal
from voronka.errors import (
    DealClosed,
    DealNotFound,
    InvalidPipeline,
    InvalidTransition,
    InvalidValue,
    LossReasonRequired,
    NoPipeline,
    PipelineExists,
    PipelineNotFound,
    PipelineRequired,
    StageNotFound,
    StageOfOtherPipeline,
)
from voronka.models import CallOutcome, DealStatus, StageEntry


def test_moves_are_logged_and_state_follows(session: Session) -> None:
    pipeline = pipeline_for(session)
    deal = add_journey(
        session,
        pipeline,
        Journey("2024-03-01 10:00", moves=[("Estimate", "2024-03-02 10:00"), ("Qualified", "2024-03-03 10:00")]),
    )
    log = session.execute(
        select(StageEntry.to_position, StageEntry.at).where(StageEntry.deal_id == deal.id).order_by(StageEntry.id)
    ).all()
    assert [(p, str(t)) for p, t in log] == [
        (1, "2024-03-01 10:00:00"),
        (3, "2024-03-02 10:00:00"),
        (2, "2024-03-03 10:00:00"),
    ]
    assert (deal.furthest_position, find_stage(pipeline, "Qualified").id == deal.stage_id) == (3, True)
    assert deal.first_contact_at == at("2024-03-02 10:00")  # no call logged: the first move


def test_calls_set_first_contact(session: Session) -> None:
    pipeline = pipeline_for(session)
    deal = add_journey(session, pipeline, Journey("2024-03-01 10:00", moves=[("Qualified", "2024-03-01 12:00")]))
    log_call(
        session=session,
        deal=deal,
        outcome=CallOutcome.NO_ANSWER,
        at=at("2024-03-01 10:20"),
        outgoing_number="1",
    )
    log_call(
        session=session,
        deal=deal,
        outcome=CallOutcome.ANSWERED,
        at=at("2024-03-01 10:07"),
        outgoing_number="2",
    )
    assert deal.first_contact_at == at("2024-03-01 10:07")
    session.commit()
    timing = funnel(session, timing=True).timing
    assert timing is not None
    assert timing.speed_to_lead.median_seconds == pytest.approx(7 * 60, abs=1)
    assert dict(timing.speed_to_lead.buckets)["m5_30"] == 1.0
    assert timing.time_to_stage[0].median_seconds == pytest.approx(2 * 3600, abs=1)


def test_moving_into_the_won_stage_wins(session: Session) -> None:
    pipeline = pipeline_for(session)
    deal = add_journey(session, pipeline, Journey("2024-03-01 10:00"))
    move_deal(session=session, deal=deal, stage=find_stage(pipeline, "Won"), at=at("2024-03-05 10:00"))
    assert (deal.status, deal.closed_at, deal.furthest_position) == ("won", at("2024-03-05 10:00"), 5)


def test_closed_deals_cannot_move(session: Session) -> None:
    pipeline = pipeline_for(session)
    deal = add_journey(session, pipeline, Journey("2024-03-01 10:00", lost=("2024-03-02 10:00", "Дорого")))
    with pytest.raises(DealClosed):
        move_deal(session=session, deal=deal, stage=find_stage(pipeline, "Estimate"))
    with pytest.raises(DealClosed):
        win_deal(session=session, deal=deal)
    with pytest.raises(DealClosed):
        lose_deal(session=session, deal=deal, reason=None)


def test_lost_needs_a_reason(session: Session) -> None:
    pipeline = pipeline_for(session)
    deal = add_journey(session, pipeline, Journey("2024-03-01 10:00"))
    with pytest.raises(LossReasonRequired):
        lose_deal(session=session, deal=deal, reason=None)


def test_stage_of_another_pipeline_is_refused(session: Session) -> None:
    pipeline = pipeline_for(session)
    other = pipeline_for(session, ["X", "Y"], name="Other")
    deal = add_journey(session, pipeline, Journey("2024-03-01 10:00"))
    with pytest.raises(StageOfOtherPipeline):
        move_deal(session=session, deal=deal, stage=other.stages[0])
    with pytest.raises(StageNotFound):
        find_stage(pipeline, "Nowhere")


def test_reopen(session: Session) -> None:
    pipeline = pipeline_for(session)
    lost = add_journey(
        session,
        pipeline,
        Journey("2024-03-01", moves=[("Estimate", "2024-03-02")], lost=("2024-03-03", "Сроки")),
    )
    reopen_deal(session=session, deal=lost, at=at("2024-03-04"))
    assert (lost.status, lost.closed_at, lost.loss_reason_id, lost.furthest_position) == (
        "open",
        None,
        None,
        3,
    )
    won = add_journey(session, pipeline, Journey("2024-03-01", moves=[("Contract", "2024-03-02")], won="2024-03-03"))
    reopen_deal(session=session, deal=won, at=at("2024-03-04"))
    assert (won.status, won.stage_id, won.furthest_position) == (
        "open",
        find_stage(pipeline, "Contract").id,
        4,
    )
    with pytest.raises(InvalidTransition):
        reopen_deal(session=session, deal=won)


def test_rebuild_from_the_log_gives_the_same_state(session: Session) -> None:
    pipeline = journeys_for(
        session,
        [
            Journey("2024-03-01", moves=[("Estimate", "2024-03-02"), ("Lead", "2024-03-03")]),
            Journey("2024-03-01", won="2024-03-09"),
            Journey("2024-03-01", moves=[("Contract", "2024-03-02")], won="2024-03-03", reopened="2024-03-05"),
            Journey("2024-03-01", moves=[("Qualified", "2024-03-02")], lost=("2024-03-04", "Дорого")),
        ],
    )
    from voronka.models import Deal

    for deal in session.scalars(select(Deal).where(Deal.pipeline_id == pipeline.id)):
        before = (deal.stage_id, deal.furthest_position, deal.first_contact_at, deal.contact_minutes)
        rederive_deal(session=session, deal=deal, stage_from_log=True)
        assert (deal.stage_id, deal.furthest_position, deal.first_contact_at, deal.contact_minutes) == before


def test_pipelines_are_validated(session: Session) -> None:
    account = account_for(session)
    with pytest.raises(NoPipeline):
        find_pipeline(session=session, account=account)
    with pytest.raises(InvalidPipeline):
        create_pipeline(session=session, account=account, name="P", stages=["Only"])
    with pytest.raises(InvalidPipeline):
        create_pipeline(session=session, account=account, name="P", stages=["A", "a", "B"])
    first = create_pipeline(session=session, account=account, name="P", stages=["A", "B"])
    assert create_pipeline(session=session, account=account, name="P", stages=["A", "B"]).id == first.id
    with pytest.raises(PipelineExists):
        create_pipeline(session=session, account=account, name="P", stages=["A", "C"])
    create_pipeline(session=session, account=account, name="Q", stages=["A", "B"])
    with pytest.raises(PipelineRequired):
        find_pipeline(session=session, account=account)
    with pytest.raises(PipelineNotFound):
        find_pipeline(session=session, account=account, name="Z")
    assert find_pipeline(session=session, account=account, name=" q ").name == "Q"


def test_a_new_deal_is_checked_before_anything_is_read() -> None:
    """The bounds every way in shares (form, API, lead capture): no session needed to refuse."""
    assert NewDeal(currency="rub", title="Окна").checked() == NewDeal(currency="RUB", title="Окна")
    for wrong in (
        NewDeal(currency="RUB", amount=-1),
        NewDeal(currency="RUB", title="x" * 301),
        NewDeal(currency="RUB", email="a" * 321),
        NewDeal(currency="RUB", custom={f"f{i}": i for i in range(51)}),
        NewDeal(currency="рубли"),
    ):
        with pytest.raises(InvalidValue):
            wrong.checked()


def test_bad_values_are_named_errors(session: Session) -> None:
    pipeline = pipeline_for(session)
    with pytest.raises(InvalidValue):
        create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", amount=-1))
    with pytest.raises(DealNotFound):
        get_deal(session=session, deal_id=999_999)
    deal = add_journey(session, pipeline, Journey("2024-03-01"))
    with pytest.raises(InvalidValue):
        log_call(session=session, deal=deal, outcome=CallOutcome.BUSY, duration_seconds=-5)
    reason = get_or_create_loss_reason(session=session, account=account_for(session), name="Ушёл к конкуренту")
    assert reason.family == "competitor"
    assert lose_deal(session=session, deal=deal, reason=reason).status == DealStatus.LOST.value
