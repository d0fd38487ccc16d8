"""Model-based: any sequence of the writes a team makes keeps every figure equal to a plain count.

Hypothesis drives a seeded random sequence of every write a user has — new deals from the card and
from files, moves, wins, losses, reopenings, undo, calls, re-imports (changed stages, statuses,
creation times, stated first contacts, a move to another pipeline), history files, stages added,
moved and removed in Settings, and pairs of writes to one deal at the same moment from two threads.
After each step the kept figures are compared with ``tests.oracle``'s plain count of the raw tables:
each deal's stage, furthest stage, reaches, first contact and speed to lead; the per-day cells; the
funnel in both views, in total and by month, source and manager; speed to lead; the statistics'
leads and median speed per month; and a recount that must find nothing to change. On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.conftest import BACKENDS, _empty_postgres
from tests.oracle import PlainDeal, cohort, period, plain_deals
from tests.test_concurrent_writes import at_once
from voronka import deal_days
from voronka.analysis.funnel.query import FunnelQuery
from voronka.analysis.funnel.report import FunnelReport, run_funnel
from voronka.analysis.stats.grain import Grain
from voronka.analysis.stats.report import StatsQuery, run_stats
from voronka.crm import deals as service
from voronka.crm.accounts import create_pipeline, default_account, get_or_create_loss_reason, get_or_create_manager
from voronka.crm.history import undo_last
from voronka.crm.new_deal import NewDeal
from voronka.crm.pipelines import add_stage, move_stage, recount, remove_stage
from voronka.db import committed, make_engine, session_factory
from voronka.errors import VoronkaError
from voronka.ingest.connectors.base import RemoteDeal, RemotePipeline, RemoteStage
from voronka.ingest.connectors.sync import SyncReport, _local_pipeline, store_deals
from voronka.ingest.importers.base import ImportTarget
from voronka.ingest.importers.run import import_file
from voronka.models import CallDirection, CallOutcome, Deal, DealEvent, DealStatus, Pipeline, Source, StageReach, User

START = dt.datetime(2024, 1, 31, 18)  # close to a month's end in Moscow, so local months matter
TZ = "Europe/Moscow"
MANAGERS = ("Анна", "Олег")
SOURCES = ("Авито", "Сайт")


def _crm_pipeline(key: str, name: str, stages: list[str]) -> RemotePipeline:
    funnel = tuple(RemoteStage(f"{key}s{i}", stage) for i, stage in enumerate(stages, 1))
    return RemotePipeline(
        key,
        name,
        (
            *funnel,
            RemoteStage(f"{key}won", "Успешно", DealStatus.WON),
            RemoteStage(f"{key}lost", "Закрыто", DealStatus.LOST),
        ),
    )


CRM_PIPELINES = {
    "p1": _crm_pipeline("p1", "CRM Розница", ["Новый", "Контакт", "Замер", "Счёт"]),
    "p2": _crm_pipeline("p2", "CRM Опт", ["Новый", "КП"]),
}


class WriteModel(RuleBasedStateMachine):
    """A business's deals under a random sequence of writes; the invariant is the plain count."""

    def __init__(self, make_engine: Callable[[], Engine], folder: Path) -> None:
        super().__init__()
        self.engine = make_engine()
        self.sessions = session_factory(self.engine)
        self.folder = folder
        self.files = itertools.count()
        self.now = START
        self.numbers = itertools.count(1)
        self.crm: dict[str, dict[str, Any]] = {}
        """The CRM's leads: pipeline, stage, creation time and the stage entries it logged."""
        self.imported: dict[str, dt.datetime] = {}
        """External id → the creation time the last file gave."""

    def teardown(self) -> None:
        self.engine.dispose()

    # --- helpers ---------------------------------------------------------------------------------
    def tick(self, minutes: int) -> dt.datetime:
        self.now += dt.timedelta(minutes=minutes)
        return self.now

    def write(self, action: Callable[[Session], Any]) -> None:
        """One request's worth of work in its own session: committed, or rolled back on a refusal."""
        try:
            with committed(self.sessions()) as session:
                action(session)
        except VoronkaError:
            pass

    def pipelines(self, session: Session) -> tuple[Pipeline, Pipeline]:
        named = {p.name: p for p in session.scalars(select(Pipeline))}
        return named["Продажи"], named["Опт"]

    def deal_ids(self) -> list[int]:
        with self.sessions() as session:
            return list(session.scalars(select(Deal.id).order_by(Deal.id)))

    def pick(self, data: st.DataObject) -> int | None:
        ids = self.deal_ids()
        return data.draw(st.sampled_from(ids)) if ids else None

    def import_rows(self, rows: list[dict[str, str]], pipeline_index: int) -> None:
        header = ["id", "created_at", "stage", "status", "closed_at", "loss_reason", "source", "manager"]
        extra = sorted({k for row in rows for k in row} - set(header))
        lines = [",".join(header + extra)]
        lines += [",".join(row.get(k, "") for k in header + extra) for row in rows]
        path = self.folder / f"file{next(self.files)}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

        def run(session: Session) -> None:
            account = default_account(session=session)
            pipeline = self.pipelines(session)[pipeline_index]
            import_file(target=ImportTarget(session, account, pipeline), path=path)

        self.write(run)

    # --- the writes ------------------------------------------------------------------------------
    @initialize()
    def business(self) -> None:
        with committed(self.sessions()) as session:
            account = default_account(session=session, timezone=TZ)
            create_pipeline(
                session=session, account=account, name="Продажи", stages=["Заявка", "Квал", "КП", "Договор", "Оплата"]
            )
            create_pipeline(session=session, account=account, name="Опт", stages=["Заявка", "КП", "Оплата"])
            for name in MANAGERS:
                get_or_create_manager(session=session, account=account, name=name)
            get_or_create_loss_reason(session=session, account=account, name="Дорого")

    @rule(
        source=st.sampled_from((None, *SOURCES)), manager=st.sampled_from((None, *MANAGERS)), gap=st.integers(1, 3000)
    )
    def create_on_the_card(self, source: str | None, manager: str | None, gap: int) -> None:
        when = self.tick(gap)

        def run(session: Session) -> None:
            account = default_account(session=session)
            sales, _ = self.pipelines(session)
            service.create_deal(
                session=session,
                pipeline=sales,
                new=NewDeal(
                    created_at=when,
                    currency="RUB",
                    amount=100_000,
                    source=session.scalars(select(Source).where(Source.name == source)).first() if source else None,
                    manager=session.scalars(select(User).where(User.name == manager)).first() if manager else None,
                ),
                by=get_or_create_manager(session=session, account=account, name=MANAGERS[0]),
            )

        self.write(run)

    @rule(
        data=st.data(),
        stage=st.integers(1, 5),
        status=st.sampled_from(["open", "open", "won", "lost"]),
        history=st.lists(st.tuples(st.integers(2, 4), st.integers(1, 500)), max_size=3),
        stated=st.one_of(st.none(), st.integers(0, 300)),
        shift=st.sampled_from([0, 0, -10, 25]),
        into_wholesale=st.booleans(),
        again=st.booleans(),
    )
    def import_a_deal(
        self,
        data: st.DataObject,
        stage: int,
        status: str,
        history: list[tuple[int, int]],
        stated: int | None,
        shift: int,
        into_wholesale: bool,
        again: bool,
    ) -> None:
        """A new deal from a file, or one imported before imported again (corrected creation time,
        other stage or status, stage history, a stated first contact, or into the other pipeline)."""
        if again and self.imported:
            external = data.draw(st.sampled_from(sorted(self.imported)))
            created = self.imported[external] + dt.timedelta(minutes=shift)
        else:
            external, created = f"x{next(self.numbers)}", self.tick(30)
        self.imported[external] = created
        names = ["Заявка", "Квал", "КП", "Договор", "Оплата"] if not into_wholesale else ["Заявка", "КП", "Оплата"]
        stage = min(stage, len(names))
        if status == "won":
            stage = len(names)
        elif stage == len(names):
            stage -= 1
        fmt = "%Y-%m-%d %H:%M"
        row = {
            "id": external,
            "created_at": created.strftime(fmt),
            "stage": names[stage - 1],
            "status": status,
            "closed_at": (created + dt.timedelta(days=3)).strftime(fmt) if status != "open" else "",
            "loss_reason": "Дорого" if status == "lost" else "",
            "source": data.draw(st.sampled_from(["", *SOURCES])),
            "manager": data.draw(st.sampled_from(["", *MANAGERS])),
        }
        for position, minutes in history:
            if position < len(names):
                row[f"entered:{names[position - 1]}"] = (created + dt.timedelta(minutes=minutes)).strftime(fmt)
        if stated is not None:
            row["first_contact_at"] = (created + dt.timedelta(minutes=stated)).strftime(fmt)
        self.import_rows([row], 1 if into_wholesale else 0)

    @rule(data=st.data(), position=st.integers(1, 7), gap=st.integers(1, 600))
    def move(self, data: st.DataObject, position: int, gap: int) -> None:
        deal_id, when = self.pick(data), self.tick(gap)
        if deal_id is not None:
            self.write(lambda s: self._move(s, deal_id, position, when))

    def _move(self, session: Session, deal_id: int, position: int, when: dt.datetime) -> None:
        deal = service.get_deal(session=session, deal_id=deal_id)
        stages = list(session.get(Pipeline, deal.pipeline_id).stages)  # type: ignore[union-attr]
        by = get_or_create_manager(session=session, account=default_account(session=session), name=MANAGERS[0])
        service.move_deal(session=session, deal=deal, stage=stages[min(position, len(stages)) - 1], at=when, by=by)

    def _close(self, session: Session, deal_id: int, how: str, when: dt.datetime) -> None:
        deal = service.get_deal(session=session, deal_id=deal_id)
        by = get_or_create_manager(session=session, account=default_account(session=session), name=MANAGERS[0])
        if how == "win":
            service.win_deal(session=session, deal=deal, at=when, by=by)
        elif how == "lose":
            reason = get_or_create_loss_reason(session=session, account=default_account(session=session), name="Дорого")
            service.lose_deal(session=session, deal=deal, reason=reason, at=when, by=by)
        else:
            service.reopen_deal(session=session, deal=deal, at=when, by=by)

    @rule(data=st.data(), how=st.sampled_from(["win", "lose", "reopen"]), gap=st.integers(1, 600))
    def close_or_reopen(self, data: st.DataObject, how: str, gap: int) -> None:
        deal_id, when = self.pick(data), self.tick(gap)
        if deal_id is not None:
            self.write(lambda s: self._close(s, deal_id, how, when))

    @rule(
        data=st.data(),
        outcome=st.sampled_from(list(CallOutcome)),
        direction=st.sampled_from(list(CallDirection)),
        back=st.integers(-120, 120),
    )
    def call(self, data: st.DataObject, outcome: CallOutcome, direction: CallDirection, back: int) -> None:
        deal_id = self.pick(data)
        if deal_id is None:
            return
        when = self.now + dt.timedelta(minutes=back)

        def run(session: Session) -> None:
            deal = service.get_deal(session=session, deal_id=deal_id)
            service.log_call(session=session, deal=deal, outcome=outcome, direction=direction, at=when)

        self.write(run)

    @rule(data=st.data())
    def undo(self, data: st.DataObject) -> None:
        deal_id = self.pick(data)
        if deal_id is None:
            return

        def run(session: Session) -> None:
            deal = service.get_deal(session=session, deal_id=deal_id)
            by = get_or_create_manager(session=session, account=default_account(session=session), name=MANAGERS[0])
            latest = session.scalars(
                select(DealEvent).where(DealEvent.deal_id == deal_id).order_by(DealEvent.id.desc()).limit(1)
            ).first()
            if latest is not None:  # asked straight after the action, as the kanban's undo is
                undo_last(session=session, deal=deal, by=by, now=latest.at)

        self.write(run)

    @rule(data=st.data(), position=st.integers(1, 5), minutes=st.integers(-60, 5000))
    def history_file(self, data: st.DataObject, position: int, minutes: int) -> None:
        if not self.imported:
            return
        external = data.draw(st.sampled_from(sorted(self.imported)))
        names = ["Заявка", "Квал", "КП", "Договор", "Оплата"]
        when = (self.imported[external] + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M")
        path = self.folder / f"history{next(self.files)}.csv"
        path.write_text(f"deal_id,stage,entered_at\n{external},{names[position - 1]},{when}\n", encoding="utf-8")

        def run(session: Session) -> None:
            sales, _ = self.pipelines(session)
            import_file(target=ImportTarget(session, default_account(session=session), sales), path=path)

        self.write(run)

    @rule(change=st.sampled_from(["add", "earlier", "later", "remove"]), index=st.integers(0, 6))
    def stage_settings(self, change: str, index: int) -> None:
        def run(session: Session) -> None:
            sales, _ = self.pipelines(session)
            stages = list(sales.stages)
            stage = stages[min(index, len(stages) - 2)]
            if change == "add" and len(stages) < 7:
                add_stage(session=session, pipeline=sales, name=f"Этап {next(self.numbers)}", before=stage)
            elif change in ("earlier", "later"):
                move_stage(session=session, stage=stage, by=-1 if change == "earlier" else 1)
            elif change == "remove" and len(stages) > 3:
                into = stages[index - 1] if 0 < index < len(stages) - 1 else stages[1]
                if into is not stage:
                    remove_stage(session=session, stage=stage, into=into)

        self.write(run)

    @rule(
        data=st.data(),
        first=st.sampled_from(["move:2", "move:3", "win", "lose", "reopen"]),
        second=st.sampled_from(["move:2", "move:4", "win", "lose", "reopen"]),
    )
    def two_at_once(self, data: st.DataObject, first: str, second: str) -> None:
        """Two people (or two tabs) write the same deal at the same moment."""
        deal_id, when = self.pick(data), self.tick(5)
        if deal_id is None:
            return

        def act(what: str) -> Callable[[], None]:
            kind, _, position = what.partition(":")
            if kind == "move":
                return lambda: self.write(lambda s: self._move(s, deal_id, int(position), when))
            return lambda: self.write(lambda s: self._close(s, deal_id, kind, when))

        at_once(act(first), act(second))

    @rule(
        data=st.data(),
        change=st.sampled_from(["new", "forward", "back", "win", "lose", "reopen", "other pipeline"]),
        gap=st.integers(1, 900),
        everything=st.booleans(),
    )
    def crm_sync(self, data: st.DataObject, change: str, gap: int, everything: bool) -> None:
        """The CRM changes a lead (a new one, a move, a win or loss, a reopening, a move to its other
        pipeline) and a sync stores what it says — every lead, or only the changed one (incremental)."""
        when = self.tick(gap)
        crm = self.crm
        if change == "new" or not crm:
            lead = f"L{next(self.numbers)}"
            crm[lead] = {"pipeline": "p1", "stage": "p1s1", "created": when, "changes": [(when, "p1s1")]}
        else:
            lead = data.draw(st.sampled_from(sorted(crm)))
            state = crm[lead]
            remote = CRM_PIPELINES[state["pipeline"]]
            funnel = [s.id for s in remote.stages if s.outcome is None]
            won, lost = (next(s.id for s in remote.stages if s.outcome is o) for o in (DealStatus.WON, DealStatus.LOST))
            closed = state["stage"] in (won, lost)
            if change == "other pipeline":
                state["pipeline"] = "p2" if state["pipeline"] == "p1" else "p1"
                target = CRM_PIPELINES[state["pipeline"]].stages[1].id
            elif change == "reopen":
                target = funnel[0] if closed else state["stage"]
            elif closed:
                return
            elif change in ("forward", "back"):
                index = funnel.index(state["stage"]) + (1 if change == "forward" else -1)
                target = funnel[max(0, min(index, len(funnel) - 1))]
            else:
                target = won if change == "win" else lost
            state["stage"] = target
            state["changes"].append((when, target))
        leads = sorted(crm) if everything else [lead]
        remote_deals = [
            RemoteDeal(
                id=name,
                pipeline_id=crm[name]["pipeline"],
                stage_id=crm[name]["stage"],
                created_at=crm[name]["created"],
                amount=50_000,
                loss_reason="Дорого",
                changes=tuple(crm[name]["changes"]),
                history_known=True,
            )
            for name in leads
        ]

        def run(session: Session) -> None:
            account = default_account(session=session)
            ours = {p.id: _local_pipeline(session, account, p) for p in CRM_PIPELINES.values()}
            store_deals(session, account, ours, remote_deals, SyncReport("crm"), origin="amocrm")

        self.write(run)

    # --- the plain count ------------------------------------------------------------------------
    @invariant()
    def every_figure_equals_a_plain_count(self) -> None:
        with self.sessions() as session:
            check_against_the_log(session)


def check_against_the_log(session: Session) -> None:
    deals = plain_deals(session)
    stored = {d.id: d for d in session.scalars(select(Deal))}
    for deal_id, plain in deals.items():
        deal = stored[deal_id]
        assert deal.furthest_position == plain.furthest, (deal_id, plain)
        assert (deal.first_contact_at, deal.contact_minutes) == (plain.first_contact_at, plain.contact_minutes), plain
        assert (deal.status == "won") == (plain.position == _last(session, deal.pipeline_id)), plain
    kept_reaches = defaultdict(dict)
    for reach in session.scalars(select(StageReach)):
        kept_reaches[reach.deal_id][reach.position] = reach.reached_at
    assert {k: v for k, v in kept_reaches.items() if v} == {d.id: d.reached for d in deals.values() if d.reached}
    account = default_account(session=session)
    for pipeline in session.scalars(select(Pipeline)):
        connection = session.connection()
        assert deal_days.stored_cells(connection, pipeline.id) == deal_days.compute_cells(connection, pipeline.id)
        ours = [d for d in deals.values() if d.pipeline_id == pipeline.id]
        _check_funnels(session, account, pipeline, ours)
    _check_stats(session, account, [d for d in deals.values() if d.pipeline_id == _first_pipeline(session)])
    for pipeline in session.scalars(select(Pipeline)):
        done = recount(session=session, pipeline=pipeline)
        assert (done.deals, done.stage_reaches, done.day_cells) == (0, 0, 0)
    session.rollback()


def _last(session: Session, pipeline_id: int) -> int:
    pipeline = session.get(Pipeline, pipeline_id)
    assert pipeline is not None
    return len(pipeline.stages)


def _first_pipeline(session: Session) -> int:
    return int(session.scalars(select(Pipeline.id).order_by(Pipeline.id)).first() or 0)


def _funnel(session: Session, account: Any, pipeline: Pipeline, **query: Any) -> FunnelReport:
    return run_funnel(session=session, account=account, query=FunnelQuery(pipeline=pipeline.name, **query))


def _figures(report_figures: Any) -> tuple[Any, ...]:
    return (
        report_figures.deals,
        report_figures.won,
        report_figures.lost,
        tuple(s.reached for s in report_figures.stages),
    )


def _plain_figures(plain: dict[str, Any]) -> tuple[Any, ...]:
    return (plain["deals"], plain["won"], plain["lost"], tuple(plain["reached"]))


def _check_funnels(session: Session, account: Any, pipeline: Pipeline, deals: list[PlainDeal]) -> None:
    positions = len(pipeline.stages)
    total = _funnel(session, account, pipeline, timing=True)
    plain = cohort(deals, positions)
    assert _figures(total.figures) == _plain_figures(plain)
    assert [s.lost for s in total.figures.stages] == plain["lost_at"]
    assert [s.open for s in total.figures.stages] == plain["open_at"]
    delays = [max((d.first_contact_at - d.created_at).total_seconds(), 0.0) for d in deals if d.first_contact_at]
    assert total.timing is not None
    assert total.timing.speed_to_lead.median_seconds == (float(statistics.median(delays)) if delays else None)
    cuts: dict[str, Callable[[PlainDeal], Any]] = {
        "month": lambda d: d.local_day.strftime("%Y-%m"),
        "source": lambda d: d.source_id,
        "manager": lambda d: d.manager_id,
    }
    for by, key in cuts.items():
        report = _funnel(session, account, pipeline, by=by)
        groups = defaultdict(list)
        for deal in deals:
            groups[key(deal)].append(deal)
        expected = Counter(_plain_figures(cohort(g, positions)) for g in groups.values())
        got = Counter(_figures(g.figures) for g in report.groups or () if g.figures.deals)
        assert got == expected, by
    start, end = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
    periodic = _funnel(session, account, pipeline, view="period", date_from=start, date_to=end)
    utc = (dt.datetime(2023, 12, 31, 21), dt.datetime(2024, 12, 30, 21))  # Moscow's midnights, +03:00
    plain_period = period(deals, positions, *utc)
    assert [s.reached for s in periodic.figures.stages] == plain_period["reached"]
    assert (periodic.figures.won, periodic.figures.lost) == (plain_period["won"], plain_period["lost"])


def _check_stats(session: Session, account: Any, deals: list[PlainDeal]) -> None:
    query = StatsQuery(
        pipeline="Продажи", date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 7, 1), grain=Grain.MONTH
    )
    report = run_stats(session=session, account=account, query=query, today=dt.date(2024, 7, 1))
    months = [p.label for p in report.periods]
    leads = [sum(d.local_day.strftime("%Y-%m") == m for d in deals) for m in months]
    assert [c.fact for c in report.total.row("leads").cells] == leads
    medians = []
    for month in months:
        speeds = [
            d.contact_minutes * 60
            for d in deals
            if d.local_day.strftime("%Y-%m") == month and d.contact_minutes is not None
        ]
        medians.append(statistics.median(speeds) if speeds else None)
    assert [c.fact for c in report.total.row("speed_median").cells] == medians


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_sequence_of_writes_keeps_every_figure_equal_to_the_log(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    examples = itertools.count()

    def fresh() -> Engine:
        """An empty, migrated database for each example."""
        if backend == "sqlite":
            path = tmp_path / f"model{next(examples)}.db"
            shutil.copy(request.getfixturevalue("sqlite_template"), path)
            return make_engine(f"sqlite:///{path}")
        return _empty_postgres(request.getfixturevalue("postgres_url"))

    run_state_machine_as_test(
        lambda: WriteModel(fresh, tmp_path),
        settings=settings(
            max_examples=15,
            stateful_step_count=40,
            deadline=None,
            derandomize=True,  # seeded: the same sequences every run
            phases=[Phase.explicit, Phase.generate],  # a failure prints its steps; shrinking took minutes
            suppress_health_check=list(HealthCheck),
        ),
    )
