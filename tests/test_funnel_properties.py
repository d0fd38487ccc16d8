"""The identities of docs/funnel.md hold for any history (hypothesis).

Pure: random outcome rows straight into the compute layer. Through the database: random journeys
written with the CRM services into real SQLite, counted by SQL, checked against the same identities.
"""

from __future__ import annotations

import datetime as dt
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tests.builders import STAGES, Journey, add_journey, funnel, pipeline_for
from voronka.analysis.funnel.compute import FunnelFigures, cohort_figures
from voronka.analysis.funnel.counts import OutcomeRow
from voronka.analysis.funnel.query import Rule
from voronka.models import (
    Account,
    CallAttempt,
    Deal,
    LossReason,
    Pipeline,
    Source,
    Stage,
    StageEntry,
    StageReach,
    User,
)

POSITIONS = len(STAGES)


def check_identities(figures: FunnelFigures, *, cumulative: bool = True) -> None:
    reached = [s.reached for s in figures.stages]
    assert figures.deals == figures.won + figures.lost + (figures.open or 0)
    assert reached[0] == figures.deals
    assert figures.lost == sum(s.lost or 0 for s in figures.stages)
    assert figures.open == sum(s.open or 0 for s in figures.stages)
    if cumulative:
        assert reached[-1] == figures.won
        assert all(a >= b for a, b in pairwise(reached)), reached
        for stage in figures.stages:
            assert stage.conversion is None or 0 <= stage.conversion <= 1
            assert stage.conversion_from_start is None or 0 <= stage.conversion_from_start <= 1
        for stage in figures.stages[:-1]:
            assert stage.dropped == (stage.lost or 0) + (stage.open or 0)


outcome_rows = st.lists(
    st.builds(
        lambda furthest, status, count, amount: OutcomeRow(
            None, POSITIONS if status == "won" else min(furthest, POSITIONS - 1), status, "RUB", count, amount
        ),
        st.integers(1, POSITIONS),
        st.sampled_from(["open", "won", "lost"]),
        st.integers(1, 50),
        st.integers(0, 10**9),
    ),
    max_size=30,
)


@given(outcome_rows)
def test_identities_hold_for_any_outcome_counts(rows: list[OutcomeRow]) -> None:
    check_identities(cohort_figures(STAGES, rows))


journey_strategy = st.builds(
    lambda day, path, ending, source: _journey(day, path, ending, source),
    st.integers(0, 60),
    st.lists(st.sampled_from(STAGES[:-1]), max_size=5),
    st.sampled_from(["open", "won", "lost", "reopened"]),
    st.sampled_from([None, "Авито", "Сайт"]),
)


def _journey(day: int, path: list[str], ending: str, source: str | None) -> Journey:
    start = dt.datetime(2024, 1, 1, 9) + dt.timedelta(days=day)
    moves = [(name, str(start + dt.timedelta(hours=i + 1))) for i, name in enumerate(path)]
    close = str(start + dt.timedelta(hours=len(path) + 2))
    return Journey(
        str(start),
        moves=moves,
        won=close if ending in ("won", "reopened") else None,
        lost=(close, "Дорого") if ending == "lost" else None,
        reopened=str(start + dt.timedelta(hours=len(path) + 3)) if ending == "reopened" else None,
        source=source,
        amount=1000,
    )


def _clear(session: Session) -> None:
    for model in (StageReach, StageEntry, CallAttempt, Deal, Stage, Pipeline, LossReason, Source, User, Account):
        session.execute(delete(model))
    session.commit()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(journey_strategy, min_size=1, max_size=12))
def test_identities_hold_for_any_history_counted_in_sql(sqlite_session: Session, journeys: list[Journey]) -> None:
    _clear(sqlite_session)
    pipeline = pipeline_for(sqlite_session)
    for journey in journeys:
        add_journey(sqlite_session, pipeline, journey)
    sqlite_session.commit()
    total = funnel(sqlite_session)
    check_identities(total.figures)
    assert total.figures.deals == len(journeys)
    for by in ("source", "month", "week"):
        report = funnel(sqlite_session, by=by)
        assert report.groups is not None
        for group in report.groups:
            check_identities(group.figures)
        assert sum(g.figures.deals for g in report.groups) == total.figures.deals
        assert sum(g.figures.won for g in report.groups) == total.figures.won
        for position in range(POSITIONS):
            assert sum(g.figures.stages[position].reached for g in report.groups) == reached_at(total, position)
    passage = funnel(sqlite_session, rule=Rule.PASSAGE)
    check_identities(passage.figures, cumulative=False)
    cumulative = [s.reached for s in total.figures.stages]
    assert all(p <= c for p, c in zip((s.reached for s in passage.figures.stages), cumulative, strict=True))


def reached_at(report: object, position: int) -> int:
    return report.figures.stages[position].reached  # type: ignore[attr-defined, no-any-return]


def _reaches(session: Session) -> list[tuple[object, ...]]:
    from voronka.models import StageReach

    rows = session.execute(
        select(
            StageReach.deal_id,
            StageReach.position,
            StageReach.reached_at,
            StageReach.entered_at,
            StageReach.manager_id,
            StageReach.source_id,
        ).order_by(StageReach.deal_id, StageReach.position)
    )
    return [tuple(row) for row in rows]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(journey_strategy, min_size=1, max_size=10))
def test_kept_reaches_equal_a_rebuild_from_the_log(sqlite_session: Session, journeys: list[Journey]) -> None:
    from voronka.crm.pipelines import recount

    _clear(sqlite_session)
    pipeline = pipeline_for(sqlite_session)
    for journey in journeys:
        add_journey(sqlite_session, pipeline, journey)
    sqlite_session.commit()
    kept = _reaches(sqlite_session)
    done = recount(session=sqlite_session, pipeline=pipeline)
    assert _reaches(sqlite_session) == kept
    assert (done.deals, done.stage_reaches, done.day_cells) == (0, 0, 0)
