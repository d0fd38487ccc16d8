"""Adding and reordering stages after deals went through them keeps every count consistent with the log."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.builders import Journey, funnel, journeys_for, reached
from voronka.crm.pipelines import add_stage, move_stage, recount, rename_stage

JOURNEYS = [
    Journey("2026-03-01 10:00"),
    Journey("2026-03-01 11:00", moves=[("Qualified", "2026-03-02 10:00")]),
    Journey("2026-03-01 12:00", moves=[("Qualified", "2026-03-02 10:00"), ("Estimate", "2026-03-03 10:00")]),
    Journey("2026-03-01 13:00", moves=[("Estimate", "2026-03-03 10:00")], lost=("2026-03-04 10:00", "Дорого")),
    Journey("2026-03-01 14:00", moves=[("Qualified", "2026-03-02 10:00")], won="2026-03-05 10:00"),
]


def test_a_stage_added_before_estimate(session: Session) -> None:
    pipeline = journeys_for(session, JOURNEYS)
    assert reached(funnel(session)) == [5, 4, 3, 1, 1]
    estimate = pipeline.stages[2]
    add_stage(session=session, pipeline=pipeline, name="Замер", before=estimate)
    session.commit()
    assert [s.name for s in pipeline.stages] == ["Lead", "Qualified", "Замер", "Estimate", "Contract", "Won"]
    assert reached(funnel(session)) == [5, 4, 3, 3, 1, 1]  # cumulative: a skipped stage counts as passed
    assert reached(funnel(session, rule="passage")) == [5, 3, 0, 2, 0, 1]  # nobody has entered it yet
    before = reached(funnel(session, view="period", date_from=None))
    assert recount(session=session, pipeline=pipeline).stage_reaches == 0  # the derived table equals a rebuild
    assert reached(funnel(session, view="period")) == before


def test_stages_reordered_and_renamed(session: Session) -> None:
    pipeline = journeys_for(session, JOURNEYS)
    move_stage(session=session, stage=pipeline.stages[1], by=+1)  # Qualified after Estimate
    rename_stage(session=session, stage=pipeline.stages[0], name="Заявка")
    session.commit()
    assert [s.name for s in pipeline.stages] == ["Заявка", "Estimate", "Qualified", "Contract", "Won"]
    # Deals now reach «Estimate» at position 2 and «Qualified» at 3: recounted from the same log.
    assert reached(funnel(session)) == [5, 4, 3, 1, 1]
    assert reached(funnel(session, rule="passage")) == [5, 2, 3, 0, 1]
