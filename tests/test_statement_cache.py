"""A process that has served other queries gives the same figures as a fresh one.

SQLAlchemy caches compiled statements per engine; a custom SQL construct whose parameters are not in
its cache key is served another query's SQL. These tests ask one engine (and one running app) for
every grain and several time zones in turn, and compare each answer with a fresh engine's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.builders import Journey, account_for, journeys_for
from tests.web_helpers import api_token, make_client, make_user
from voronka.analysis.funnel.query import FunnelQuery, View
from voronka.analysis.funnel.report import FunnelReport, run_funnel
from voronka.analysis.stats.periods import Grain
from voronka.analysis.stats.report import StatsQuery, run_stats
from voronka.crm.accounts import default_account
from voronka.db import make_engine, session_factory
from voronka.models import Role

# Fixed offsets (Moscow, Kolkata) and zones whose offset changes inside the range (Berlin, New York:
# their days and months are mapped from hours), in an order that makes each follow another.
ZONES = ("Europe/Moscow", "Europe/Berlin", "Asia/Kolkata", "America/New_York", "Europe/Moscow")
BYS = ("month", "day", "week", "month", None, "day")
DATE = "2026-{:02d}-{:02d} {:02d}:{:02d}"
TODAY = dt.date(2026, 4, 20)


def _journeys() -> list[Journey]:
    """Deals created near local midnights across March's clock changes, some moving on."""
    journeys = []
    for n in range(48):
        month, day, hour = 2 + n % 3, 1 + (n * 7) % 28, (20 + n) % 24
        created = DATE.format(month, day, hour, 30)
        moves = [("Qualified", DATE.format(month, day, hour, 50))] if n % 2 else []
        journeys.append(Journey(created=created, moves=moves, source="Сайт" if n % 3 else "Авито"))
    return journeys


def _set_zone(engine: Engine, zone: str) -> None:
    with session_factory(engine)() as session:
        default_account(session=session).timezone = zone
        session.commit()


def _funnel(engine: Engine, query: FunnelQuery) -> FunnelReport:
    with session_factory(engine)() as session:
        return run_funnel(session=session, account=default_account(session=session), query=query)


@pytest.fixture
def filled(session: Session, db_url: str) -> str:
    account_for(session)
    journeys_for(session, _journeys())
    return db_url


def test_one_engine_answers_every_grain_and_zone_as_a_fresh_one(filled: str) -> None:
    shared = make_engine(filled)
    labels_seen: set[int] = set()
    try:
        for zone in ZONES:
            _set_zone(shared, zone)
            for by in BYS:
                for view in (View.COHORT, View.PERIOD):
                    query = FunnelQuery(by=by, view=view)
                    fresh_engine = make_engine(filled)
                    expected = _funnel(fresh_engine, query)
                    fresh_engine.dispose()
                    got = _funnel(shared, query)
                    assert got == expected, (zone, by, view)
                    labels_seen.update(len(g.value) for g in got.groups or () if isinstance(g.value, str))
    finally:
        shared.dispose()
    assert labels_seen >= {7, 10}, "months (YYYY-MM) and days/weeks (YYYY-MM-DD) were both asked for"


def test_one_engine_answers_every_stats_grain_as_a_fresh_one(filled: str) -> None:
    shared = make_engine(filled)
    try:
        for zone in ZONES[:3]:
            _set_zone(shared, zone)
            for grain in (Grain.MONTH, Grain.DAY, Grain.WEEK, Grain.MONTH):
                query = StatsQuery(grain=grain)
                fresh_engine = make_engine(filled)
                with session_factory(fresh_engine)() as session:
                    account = default_account(session=session)
                    expected = run_stats(session=session, account=account, query=query, today=TODAY)
                fresh_engine.dispose()
                with session_factory(shared)() as session:
                    account = default_account(session=session)
                    got = run_stats(session=session, account=account, query=query, today=TODAY)
                assert got == expected, (zone, grain)
    finally:
        shared.dispose()


def test_one_running_app_answers_every_grain_and_zone_as_a_fresh_app(
    filled: str, session: Session, engine: Engine, tmp_path: Path
) -> None:
    token = api_token(session, make_user(session, "Owner", Role.OWNER))
    headers = {"Authorization": f"Bearer {token}"}
    running = make_client(engine, tmp_path / "running")
    for zone in ZONES:
        _set_zone(engine, zone)
        for by in BYS:
            params = {"by": by} if by else {}
            fresh_engine = make_engine(filled)
            expected = make_client(fresh_engine, tmp_path / "fresh").get(
                "/api/v1/funnel", params=params, headers=headers
            )
            fresh_engine.dispose()
            got = running.get("/api/v1/funnel", params=params, headers=headers)
            assert got.status_code == 200, got.text
            assert got.json() == expected.json(), (zone, by)
