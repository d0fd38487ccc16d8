"""The per-day summary (``deal_days``) stays equal to the deals it counts, whatever is written.

Random histories go through the real write paths (cards, moves, wins, losses, reopenings, edits,
deletions, imports and re-imports, merged sources, renumbered stages, a new time zone) on SQLite
and PostgreSQL; afterwards the kept cells equal a recount from the deals, and every funnel the
summary answers equals the same funnel counted from every deal.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tests.builders import STAGES, account_for, pipeline_for
from tests.conftest import BACKENDS, DemoFiller, _empty_postgres
from voronka import deal_days
from voronka.analysis.funnel.query import FunnelQuery, View
from voronka.analysis.funnel.report import run_funnel
from voronka.crm.accounts import (
    find_stage,
    get_or_create_loss_reason,
    get_or_create_manager,
    get_or_create_source,
    update_account,
)
from voronka.crm.catalogues import rename_source
from voronka.crm.deals import create_deal, lose_deal, move_deal, reopen_deal, update_deal, win_deal
from voronka.crm.new_deal import NewDeal
from voronka.crm.pipelines import move_stage
from voronka.db import make_engine, session_factory
from voronka.demo import DemoOptions
from voronka.ingest.importers.base import ImportTarget
from voronka.ingest.importers.run import import_file
from voronka.models import Account, Deal, DealDay, Pipeline, User

MANAGERS = ("Анна", "Олег")
SOURCES = ("Авито", "Сайт", "Выставка")
ZONES = ("UTC", "Europe/Moscow", "America/New_York", "Asia/Kolkata")
START = dt.datetime(2024, 3, 9, 22, 40)  # New York moves its clocks within the next days

created = st.tuples(
    st.just("create"),
    st.integers(0, 20 * 24 * 4),  # quarter hours after START
    st.sampled_from((None, *MANAGERS)),
    st.sampled_from((None, *SOURCES)),
    st.sampled_from((None, 0, 1500, 990_000)),
    st.sampled_from(("RUB", "RUB", "USD")),
)
on_deal = st.tuples(st.sampled_from(("move", "win", "lose", "reopen", "delete")), st.integers(0, 30), st.integers(1, 3))
edited = st.tuples(
    st.just("edit"),
    st.integers(0, 30),
    st.sampled_from(("amount", "manager", "source", "currency")),
    st.integers(0, 2),
)
imported = st.tuples(st.just("import"), st.lists(st.integers(0, 12), min_size=1, max_size=6), st.integers(0, 4))
whole = st.tuples(st.sampled_from(("timezone", "merge_sources", "reorder")), st.integers(0, 3))
operations = st.lists(st.one_of(created, created, on_deal, edited, imported, whole), min_size=1, max_size=25)


@contextmanager
def _empty_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A fresh migrated database for one example: a copy of the SQLite template, or PostgreSQL emptied."""
    if backend == "sqlite":
        path = tmp_path / "days.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        engine = make_engine(f"sqlite:///{path}")
    else:
        engine = _empty_postgres(request.getfixturevalue("postgres_url"))
    try:
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _apply(session: Session, pipeline: Pipeline, operation: tuple[Any, ...], tmp_path: Path) -> None:
    account = account_for(session)
    deals = list(session.scalars(select(Deal).where(Deal.pipeline_id == pipeline.id).order_by(Deal.id)))
    kind = operation[0]
    if kind == "create":
        _, quarters, manager, source, amount, currency = operation
        create_deal(
            session=session,
            pipeline=pipeline,
            new=NewDeal(
                created_at=START + dt.timedelta(minutes=15 * quarters),
                currency=currency,
                amount=amount,
                manager=get_or_create_manager(session=session, account=account, name=manager) if manager else None,
                source=get_or_create_source(session=session, account=account, name=source) if source else None,
            ),
        )
    elif kind == "import":
        _, numbers, stage = operation
        lines = ["id,created_at,stage,status,amount,source,manager"]
        for number in numbers:
            status = "won" if stage == len(STAGES) - 1 else ("lost" if number % 3 == 0 else "")
            day = START + dt.timedelta(hours=7 * number)
            lines.append(
                f"x{number},{day:%Y-%m-%d %H:%M},{STAGES[stage]},{status},{number * 100},"
                f"{SOURCES[number % 3]},{MANAGERS[number % 2]}"
            )
        path = tmp_path / "deals.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        import_file(target=ImportTarget(session, account, pipeline), path=path)
    elif kind == "timezone":
        update_account(session=session, account=account, timezone=ZONES[operation[1]])
    elif kind == "merge_sources":
        names = [get_or_create_source(session=session, account=account, name=n) for n in SOURCES[:2]]
        rename_source(session=session, source=names[0], name=names[1].name)
    elif kind == "reorder":
        move_stage(session=session, stage=pipeline.stages[operation[1] % 3 + 1], by=-1)
        session.refresh(pipeline)
    elif deals:
        _apply_to_deal(session, pipeline, account, deals[operation[1] % len(deals)], operation)
    session.flush()


def _apply_to_deal(
    session: Session, pipeline: Pipeline, account: Account, deal: Deal, operation: tuple[Any, ...]
) -> None:
    kind, later = operation[0], deal.created_at + dt.timedelta(days=1)
    if kind == "delete":
        session.delete(deal)
    elif kind == "edit":
        _, _, field, choice = operation
        value: Any = {
            "amount": (None, 7000, 12)[choice],
            "manager": get_or_create_manager(session=session, account=account, name=MANAGERS[choice % 2])
            if choice
            else None,
            "source": get_or_create_source(session=session, account=account, name=SOURCES[choice]) if choice else None,
            "currency": ("RUB", "USD", "EUR")[choice],
        }[field]
        update_deal(session=session, deal=deal, changes={field: value})
    elif deal.status == "open" and kind == "move":
        move_deal(session=session, deal=deal, stage=find_stage(pipeline, STAGES[operation[2]]), at=later)
    elif deal.status == "open" and kind == "win":
        win_deal(session=session, deal=deal, at=later)
    elif deal.status == "open" and kind == "lose":
        reason = get_or_create_loss_reason(session=session, account=account, name="Дорого")
        lose_deal(session=session, deal=deal, reason=reason, at=later)
    elif deal.status != "open" and kind == "reopen":
        reopen_deal(session=session, deal=deal, at=later + dt.timedelta(hours=1))


def _funnels(session: Session, *, summary: bool) -> list[Any]:
    account = account_for(session)
    manager = session.scalar(select(User.id).where(User.name == MANAGERS[0]))
    reports = []
    for by in (None, "day", "week", "month", "source", "manager", "pipeline"):
        for scope in ({}, {"date_from": dt.date(2024, 3, 10), "date_to": dt.date(2024, 3, 17)}):
            queries = [FunnelQuery(by=by, **scope)]  # type: ignore[arg-type]
            if manager is not None:
                queries.append(FunnelQuery(by=by, manager_id=manager, **scope))  # type: ignore[arg-type]
            for query in queries:
                reports.append(run_funnel(session=session, account=account, query=query, summary=summary))
    return reports


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=operations)
def test_the_summary_equals_the_deals_after_any_writes(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, operations: list[Any]
) -> None:
    with _empty_database(backend, request, tmp_path) as session:
        pipeline = pipeline_for(session)
        session.commit()
        for operation in operations:
            _apply(session, pipeline, operation, tmp_path)
        session.commit()
        connection = session.connection()
        recounted = deal_days.compute_cells(connection, pipeline.id)
        assert deal_days.stored_cells(connection, pipeline.id) == {c: n for c, n in recounted.items() if n[0]}
        assert _funnels(session, summary=True) == _funnels(session, summary=False)


def test_a_cohort_by_month_reads_the_summary(session: Session) -> None:
    """A hand-made case: the cells are what the deals say, and the report answers from them (a cell
    changed by hand shows in the report, which it could not if the report read the deals)."""
    pipeline = pipeline_for(session)
    account = account_for(session)
    update_account(session=session, account=account, timezone="Europe/Moscow")
    for created_at, amount in ((dt.datetime(2024, 1, 31, 21, 30), 100), (dt.datetime(2024, 1, 31, 20, 30), 50)):
        deal = create_deal(
            session=session, pipeline=pipeline, new=NewDeal(created_at=created_at, currency="RUB", amount=amount)
        )
    win_deal(session=session, deal=deal, at=dt.datetime(2024, 2, 3))
    session.commit()
    cells = deal_days.stored_cells(session.connection(), pipeline.id)
    whole = [
        (c.day.isoformat(), c.status, c.furthest_position, n, a) for c, (n, a) in cells.items() if c.manager_id < 0
    ]
    assert len(cells) == 2 * len(whole)  # each deal also under its own (no) manager and (no) source
    team = [
        (c.day.isoformat(), c.status, c.furthest_position, n, a)
        for c, (n, a) in cells.items()
        if c.manager_id < 0 and c.source_id < 0
    ]
    assert sorted(team) == [
        ("2024-01-31", "won", len(STAGES), 1, 50),
        ("2024-02-01", "open", 1, 1, 100),  # 21:30 UTC is 00:30 in Moscow
    ]
    session.execute(DealDay.__table__.update().values(deals=DealDay.deals * 10))  # type: ignore[attr-defined]
    by_month = run_funnel(session=session, account=account, query=FunnelQuery(by="month", view=View.COHORT))
    assert [(g.value, g.figures.deals) for g in by_month.groups or ()] == [("2024-01", 10), ("2024-02", 10)]
    direct = run_funnel(session=session, account=account, query=FunnelQuery(by="month"), summary=False)
    assert [(g.value, g.figures.deals) for g in direct.groups or ()] == [("2024-01", 1), ("2024-02", 1)]
    session.rollback()


def test_recount_mends_a_summary_edited_by_hand(db_url: str, fill_demo: DemoFiller) -> None:
    """The demo's cells equal a recount as written; emptied by hand, `voronka recount` restores them
    and the funnel by month reads as before."""
    from tests.test_cli import voronka

    fill_demo(db_url, DemoOptions(leads=400, seed=3), "Europe/Moscow")
    before = voronka("--db", db_url, "--lang", "en", "funnel", "--by", "month", "--format", "json")[1]
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        pipeline_id = session.scalars(select(Pipeline.id)).one()
        kept = deal_days.stored_cells(session.connection(), pipeline_id)
        assert kept == deal_days.compute_cells(session.connection(), pipeline_id)
        session.execute(delete(DealDay))
        session.commit()
    assert voronka("--db", db_url, "--lang", "en", "funnel", "--by", "month", "--format", "json")[1] != before
    code, out, _ = voronka("--db", db_url, "--lang", "en", "recount")
    assert code == 0
    said = " ".join(out.split())
    assert f"{len(kept):,} cells of deals per day)" in said
    assert f"Changed: 0 deals, 0 stage reaches, {len(kept):,} cells." in said  # every cell came back
    assert voronka("--db", db_url, "--lang", "en", "funnel", "--by", "month", "--format", "json")[1] == before
    again = " ".join(voronka("--db", db_url, "--lang", "en", "recount")[1].split())
    assert "Changed: 0 deals, 0 stage reaches, 0 cells." in again
    with session_factory(engine)() as session:  # the database wrote them itself (Moscow's offset holds)
        assert deal_days.stored_cells(session.connection(), pipeline_id) == kept
    engine.dispose()


@pytest.mark.parametrize("timezone", ["Europe/Moscow", "America/New_York"])
def test_the_diagnosis_counts_the_same_arrivals_from_the_summary(
    demo_session: Callable[..., Session], timezone: str
) -> None:
    """The diagnosis' arrivals per segment × manager × source, from the per-day cells and from the
    deals, for a whole team and for one manager, in a zone with daylight saving time and without."""
    from voronka.analysis.diagnose.cube import Span, count_arrivals
    from voronka.timeutil import local_midnight_utc, zone

    session = demo_session(DemoOptions(leads=600, seed=5, today=dt.date(2026, 1, 1)), timezone)
    pipeline = session.scalars(select(Pipeline)).one()
    account = account_for(session)
    days = (dt.date(2024, 10, 3), dt.date(2025, 1, 1), dt.date(2025, 10, 3), dt.date(2026, 1, 1))
    bounds = [local_midnight_utc(day, zone(timezone)) for day in days]
    manager = session.scalars(select(User.id).where(User.role == "manager")).first()
    for whose in (None, manager):
        direct = Span(*bounds, manager_id=whose)
        summed = Span(*bounds, manager_id=whose, days=days, account_id=account.id)
        from_deals = sorted(count_arrivals(session, pipeline.id, direct), key=str)
        assert sum(row[-1] for row in from_deals) > 100
        assert sorted(count_arrivals(session, pipeline.id, summed), key=str) == from_deals


def test_a_deal_deleted_after_its_session_forgot_it_leaves_its_cells(session: Session) -> None:
    """A deal whose loaded values were expired (as after a bulk statement) is deleted: its old cell
    is still known, so the cells stay equal to a recount."""
    pipeline = pipeline_for(session)
    for amount in (100, 250):
        create_deal(
            session=session,
            pipeline=pipeline,
            new=NewDeal(created_at=dt.datetime(2024, 5, 1, 12), currency="RUB", amount=amount),
        )
    session.commit()
    deal = session.scalars(select(Deal).order_by(Deal.id)).first()
    session.expire_all()
    session.delete(deal)
    session.commit()
    connection = session.connection()
    recounted = deal_days.compute_cells(connection, pipeline.id)
    assert deal_days.stored_cells(connection, pipeline.id) == {c: n for c, n in recounted.items() if n[0]}
    assert sum(n for c, (n, _) in recounted.items() if c.manager_id < 0 and c.source_id < 0) == 1
