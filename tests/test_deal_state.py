"""The deal-state rules (docs/funnel.md, "What a deal has reached"): pure cases, the same answers
from every write path, and the paths that used to disagree pinned by hand-made cases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import Journey, account_for, at, funnel, journeys_for, pipeline_for, reached
from tests.oracle import plain_deals
from tests.test_import import run_import, write
from voronka.crm import deal_state
from voronka.crm.accounts import create_pipeline, find_stage
from voronka.crm.deal_state import LoggedEntry
from voronka.crm.deals import create_deal, log_call, move_deal, reopen_deal, win_deal
from voronka.crm.new_deal import NewDeal
from voronka.crm.pipelines import add_stage, move_stage, recount, remove_stage
from voronka.errors import InvalidPipeline
from voronka.ingest.importers.base import ImportTarget
from voronka.ingest.importers.run import import_file
from voronka.models import CallOutcome, Deal, Pipeline

T0 = dt.datetime(2024, 3, 1, 10)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


# --- the rules, pure ------------------------------------------------------------------------------
def test_a_won_stage_entry_counts_only_while_won() -> None:
    entries = [(1, h(0)), (5, h(1)), (2, h(2))]  # won straight from the first stage, reopened into the second
    assert deal_state.furthest_position(entries, won=False, last_position=5, current=2) == 2
    assert deal_state.reach_times(entries, 2, won=False, last_position=5) == [(2, h(2), h(2))]
    assert deal_state.furthest_position(entries, won=True, last_position=5) == 5
    assert deal_state.reach_times(entries, 5, won=True, last_position=5) == [
        (2, h(1), h(2)),
        (3, h(1), None),
        (4, h(1), None),
        (5, h(1), h(1)),
    ]


def test_where_a_deal_stands() -> None:
    entries = [(1, h(0)), (3, h(1)), (5, h(2))]
    assert deal_state.standing_position(entries, won=False, last_position=5) == 3  # never the won stage
    assert deal_state.standing_position(entries, won=True, last_position=5) == 5
    assert deal_state.standing_position([(1, h(0)), (2, h(1)), (4, h(1))], won=False, last_position=5) == 4


def test_first_contact_prefers_calls_and_stated_contacts_to_moves() -> None:
    rule = deal_state.first_contact
    assert rule(first_call=h(3), stated=None, first_moved=h(1), history_known=True) == h(3)
    assert rule(first_call=h(3), stated=h(2), first_moved=h(1), history_known=True) == h(2)
    assert rule(first_call=None, stated=None, first_moved=h(1), history_known=True) == h(1)
    assert rule(first_call=None, stated=None, first_moved=h(1), history_known=False) is None
    arrival, moved_back = LoggedEntry(1, h(0), False), LoggedEntry(1, h(4), True)
    assert deal_state.first_move([arrival]) is None
    assert deal_state.first_move([arrival, LoggedEntry(3, h(2), False), moved_back]) == h(2)  # a history file's entry
    assert deal_state.speed_minutes(h(0), h(0) + dt.timedelta(seconds=301)) == 6


entries_strategy = st.lists(
    st.tuples(st.integers(1, 5), st.integers(0, 100).map(lambda n: h(n))), min_size=1, max_size=8
)


@given(entries_strategy, st.booleans(), st.integers(1, 4))
def test_derived_state_holds_its_identities(entries: list[tuple[int, dt.datetime]], won: bool, current: int) -> None:
    logged = [LoggedEntry(p, t, i > 0) for i, (p, t) in enumerate(entries)]
    state = deal_state.derive(
        entries=logged,
        won=won,
        last_position=5,
        created_at=h(0),
        history_known=True,
        first_call=None,
        stated_contact=None,
        position=5 if won else current,
    )
    assert (state.position == 5) == won
    assert (state.furthest_position == 5) == won
    assert state.position <= state.furthest_position
    positions = [p for p, _, _ in state.reaches]
    assert positions == sorted(positions)
    assert all(p <= state.furthest_position for p in positions)
    reached_times = [r for _, r, _ in state.reaches]
    assert reached_times == sorted(reached_times)  # a later stage is never reached before an earlier one


# --- every path, the same answer ------------------------------------------------------------------
def test_a_reopened_won_deal_stays_below_the_won_stage_when_stages_change(session: Session) -> None:
    """Create, win, reopen: reached only the first stage; changing the stages in Settings and a
    recount keep it so, in the cohort and the period view alike."""
    pipeline = pipeline_for(session)
    deal = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", created_at=h(0)))
    win_deal(session=session, deal=deal, at=h(1))
    reopen_deal(session=session, deal=deal, at=h(2))
    session.commit()
    assert reached(funnel(session)) == [1, 0, 0, 0, 0]
    move_stage(session=session, stage=pipeline.stages[2], by=-1)
    add_stage(session=session, pipeline=pipeline, name="Замер")
    session.commit()
    assert reached(funnel(session)) == [1, 0, 0, 0, 0, 0]
    assert reached(funnel(session, view="period")) == [1, 0, 0, 0, 0, 0]
    done = recount(session=session, pipeline=pipeline)
    assert (done.deals, done.stage_reaches, done.day_cells) == (0, 0, 0)
    assert session.get(Deal, deal.id).furthest_position == 1  # type: ignore[union-attr]


def test_a_history_file_never_puts_a_deal_that_is_not_won_into_the_won_stage(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    run_import(
        session, write(tmp_path, "id,created_at,stage,status\nd1,2024-03-01,Lead,open\nd2,2024-03-01,Qualified,lost\n")
    )
    history = "deal_id,stage,entered_at\nd1,Estimate,2024-03-02\nd1,Won,2024-03-03\nd2,Won,2024-03-04\n"
    run_import(session, write(tmp_path, history, name="history.csv"))
    deals = {d.id: d for d in plain_deals(session).values()}
    stood = {session.get(Deal, i).external_id: d.position for i, d in deals.items()}  # type: ignore[union-attr]
    assert stood == {"d1": 3, "d2": 2}
    assert reached(funnel(session)) == [2, 2, 1, 0, 0]


def test_a_stage_cannot_be_removed_into_the_won_stage(session: Session) -> None:
    pipeline = journeys_for(session, [Journey("2024-03-01", moves=[("Estimate", "2024-03-02")])])
    with pytest.raises(InvalidPipeline):
        remove_stage(session=session, stage=find_stage(pipeline, "Estimate"), into=find_stage(pipeline, "Won"))
    remove_stage(session=session, stage=find_stage(pipeline, "Estimate"), into=find_stage(pipeline, "Qualified"))
    session.commit()
    assert reached(funnel(session)) == [1, 1, 0, 0]


def test_a_deal_reimported_into_another_pipeline_moves_there(session: Session, tmp_path: Path) -> None:
    """A CRM moves a lead between pipelines; a re-import naming the other pipeline does the same."""
    account = account_for(session)
    first = pipeline_for(session)
    second = create_pipeline(session=session, account=account, name="Опт", stages=["Заявка", "КП", "Оплата"])
    session.commit()
    header = "id,created_at,stage,status,entered:Qualified\n"
    rows = "d1,2024-03-01,Qualified,open,2024-03-02\nd2,2024-03-01,Lead,open,\n"
    import_file(target=ImportTarget(session, account, first), path=write(tmp_path, header + rows))
    moved_file = write(tmp_path, "id,created_at,stage,status\nd1,2024-03-01,КП,open\n", "b.csv")
    report = import_file(target=ImportTarget(session, account, second), path=moved_file)
    session.commit()
    assert (report.created, report.updated) == (0, 1)
    assert reached(funnel(session, pipeline="Sales")) == [1, 0, 0, 0, 0]  # d2 alone
    assert reached(funnel(session, pipeline="Опт")) == [1, 1, 0]
    moved = session.scalars(select(Deal).where(Deal.external_id == "d1")).one()
    assert moved.pipeline_id == second.id
    for pipeline in (first, second):
        done = recount(session=session, pipeline=pipeline)
        assert (done.deals, done.stage_reaches, done.day_cells) == (0, 0, 0)


def test_reimports_keep_the_first_call_and_follow_a_corrected_creation_time(session: Session, tmp_path: Path) -> None:
    """Speed to lead: a re-import with stage history does not replace the first call as first
    contact, and a corrected creation time corrects it (docs/funnel.md)."""
    pipeline_for(session)
    run_import(session, write(tmp_path, "id,created_at,stage\nd1,2024-03-01 10:00,Lead\n"))
    deal = session.scalars(select(Deal)).one()
    log_call(session=session, deal=deal, outcome=CallOutcome.ANSWERED, at=at("2024-03-01 10:02"))
    session.commit()
    assert deal.contact_minutes == 2
    header = "id,created_at,stage,entered:Estimate\n"
    run_import(session, write(tmp_path, header + "d1,2024-03-01 10:00,Estimate,2024-03-02 20:40\n", "again.csv"))
    session.refresh(deal)
    assert (deal.first_contact_at, deal.contact_minutes) == (at("2024-03-01 10:02"), 2)
    run_import(session, write(tmp_path, header + "d1,2024-03-01 09:50,Estimate,2024-03-02 20:40\n", "fixed.csv"))
    session.refresh(deal)
    assert (deal.first_contact_at, deal.contact_minutes) == (at("2024-03-01 10:02"), 12)
    stated = "id,created_at,stage,first_contact_at\nd1,2024-03-01 09:50,Estimate,2024-03-01 09:55\n"
    run_import(session, write(tmp_path, stated, "stated.csv"))
    session.refresh(deal)
    assert deal.contact_minutes == 5  # a stated contact earlier than the first call
    done = recount(session=session, pipeline=session.scalars(select(Pipeline)).one())
    assert done.deals == 0


def test_the_first_move_stands_in_only_without_calls(session: Session) -> None:
    pipeline = pipeline_for(session)
    deal = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", created_at=h(0)))
    move_deal(session=session, deal=deal, stage=pipeline.stages[1], at=h(1))
    assert deal.contact_minutes == 60
    log_call(session=session, deal=deal, outcome=CallOutcome.NO_ANSWER, at=h(2))
    assert deal.contact_minutes == 120  # a call logged: the call is the first contact, not the move
    session.commit()
    assert plain_deals(session)[deal.id].contact_minutes == 120


def test_speed_to_lead_is_counted_to_the_microsecond(session: Session) -> None:
    """A minute is 60 seconds on both databases (SQLite's julianday once made it 59.9999964)."""
    pipeline = pipeline_for(session)
    for created, called in (
        ("2024-03-01 10:00:00", "2024-03-01 10:01:00"),
        ("2024-03-01 10:00:00.999600", "2024-03-01 10:01:00"),
    ):
        deal = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", created_at=at(created)))
        log_call(session=session, deal=deal, outcome=CallOutcome.ANSWERED, at=at(called))
    session.commit()
    timing = funnel(session, timing=True).timing
    assert timing is not None
    assert timing.speed_to_lead.median_seconds == (60.0 + 59.0004) / 2


def test_recount_repairs_deals_a_crash_or_a_hand_edit_left_wrong(session: Session, db_url: str) -> None:
    """`voronka recount` re-derives the deals themselves, not only the summaries, and says what it changed."""
    from sqlalchemy import update

    from tests.test_cli import voronka
    from voronka.models import DealDay, StageReach

    pipeline = journeys_for(
        session,
        [
            Journey("2024-03-01 10:00", moves=[("Estimate", "2024-03-01 10:30")], lost=("2024-03-02", "Дорого")),
            Journey("2024-03-01 11:00", moves=[("Qualified", "2024-03-01 11:05")]),
            Journey("2024-03-01 12:00", won="2024-03-03"),
        ],
    )
    lost, open_, _ = session.scalars(select(Deal).order_by(Deal.id)).all()
    won_stage = pipeline.stages[-1].id
    session.execute(update(Deal).where(Deal.id == lost.id).values(stage_id=won_stage, furthest_position=5))
    session.execute(update(Deal).where(Deal.id == open_.id).values(first_contact_at=None, contact_minutes=None))
    session.execute(update(StageReach).where(StageReach.deal_id == open_.id).values(reached_at=at("2024-01-01")))
    session.execute(update(DealDay).values(deals=DealDay.deals + 1))
    session.commit()
    url = db_url
    code, out, _ = voronka("--db", url, "--lang", "en", "recount")
    assert code == 0
    said = " ".join(out.split())
    assert "Changed: 2 deals, 2 stage reaches," in said  # one reach replaced: one row out, one in
    session.expire_all()
    assert (lost.stage_id, lost.furthest_position) == (find_stage(pipeline, "Estimate").id, 3)
    assert (open_.first_contact_at, open_.contact_minutes) == (at("2024-03-01 11:05"), 5)
    assert reached(funnel(session)) == [3, 3, 2, 1, 1]
    again = " ".join(voronka("--db", url, "--lang", "en", "recount")[1].split())
    assert "Changed: 0 deals, 0 stage reaches, 0 cells." in again


def test_a_stage_added_before_the_first_leaves_speed_to_lead_as_it_was(session: Session) -> None:
    """The arrival is the deal's first entry, whatever its stage's position becomes: a stage added
    before the first one once made every uncalled deal's arrival look like a move (speed 0)."""
    pipeline = pipeline_for(session)
    waiting = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", created_at=h(0)))
    moved = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", created_at=h(0)))
    move_deal(session=session, deal=moved, stage=pipeline.stages[1], at=h(0.75))
    session.commit()
    add_stage(session=session, pipeline=pipeline, name="Предзаявка", before=pipeline.stages[0])
    session.commit()
    session.expire_all()
    assert (waiting.first_contact_at, waiting.contact_minutes) == (None, None)
    assert moved.contact_minutes == 45
    done = recount(session=session, pipeline=pipeline)
    assert done.deals == 0


def test_a_deal_won_by_a_history_file_reopens_where_its_log_had_it(session: Session, tmp_path: Path) -> None:
    """A won-stage entry from a history file names no stage it was won from: reopening puts the deal
    back in the stage of its latest entry short of winning, not in the last working stage."""
    pipeline_for(session)
    run_import(session, write(tmp_path, "id,created_at,stage,status\nd1,2024-03-01,Lead,open\n"))
    history = "deal_id,stage,entered_at\nd1,Qualified,2024-03-02\nd1,Won,2024-03-03\n"
    run_import(session, write(tmp_path, history, name="history.csv"))
    deal = session.scalars(select(Deal)).one()
    deal.status = "won"  # as the CRM had it
    session.commit()
    reopen_deal(session=session, deal=deal, at=at("2024-03-04"))
    session.commit()
    assert (session.get(Deal, deal.id).furthest_position, reached(funnel(session))) == (2, [1, 1, 0, 0, 0])  # type: ignore[union-attr]
