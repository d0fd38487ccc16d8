"""A deal's external id is unique where it came from (docs/connect.md, "Ids from several places"):
an old spreadsheet's 101 and a CRM's 101 are two deals; a CRM's export and a sync of the same CRM
are one; deals stored before origins were kept are claimed by the first that names them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alembic import command
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from tests.builders import account_for, funnel
from tests.fakes.bitrix24 import FakeBitrix24, portal
from tests.test_crm_exports import AMO_HEADER, AMO_ROWS, import_export, write_csv
from tests.test_import import write
from tests.test_sync_bitrix24 import connect, run
from voronka.crm.accounts import create_pipeline, find_pipeline
from voronka.db import _alembic_config, ensure_schema
from voronka.ingest.connectors.base import RemoteDeal, RemotePipeline, RemoteStage
from voronka.ingest.connectors.sync import SyncReport, _local_pipeline, store_deals
from voronka.ingest.importers import ImportTarget, import_file
from voronka.models import Deal, DealStatus, Pipeline, StageEntry
from voronka.secretstore import SecretStore


def _spreadsheet(session: Session, tmp_path: Path, ids: range) -> None:
    account = account_for(session)
    pipeline = create_pipeline(session=session, account=account, name="Таблица", stages=["Заявка", "Счёт", "Оплата"])
    rows = "".join(f"{n},2025-06-01,Счёт,open\n" for n in ids)
    import_file(
        target=ImportTarget(session, account, pipeline), path=write(tmp_path, "id,created_at,stage,status\n" + rows)
    )
    session.commit()


def test_a_crm_sync_after_an_old_spreadsheet_overwrites_none_of_it(
    session: Session, httpserver: HTTPServer, store: SecretStore, tmp_path: Path
) -> None:
    """The spreadsheet numbered its deals 101-160; Bitrix24 numbers its own from 1: 230 new deals."""
    crm: FakeBitrix24 = portal(230)
    crm.install(httpserver)
    _spreadsheet(session, tmp_path, range(101, 161))
    connect(session, httpserver, store)
    report = run(session, store)
    assert (report.created, report.updated) == (230, 0)
    assert session.scalar(select(func.count()).select_from(Deal)) == 290
    sheet = session.scalars(select(Pipeline).where(Pipeline.name == "Таблица")).one()
    assert [s.reached for s in funnel(session, pipeline="Таблица").figures.stages] == [60, 60, 0]
    assert {d.origin for d in session.scalars(select(Deal).where(Deal.pipeline_id == sheet.id))} == {"own"}
    again = run(session, store)
    assert again.created == 0  # the second sync finds its own deals, not the spreadsheet's


def _amo_pipeline() -> RemotePipeline:
    names = ["Первичный контакт", "Принимают решение"]
    return RemotePipeline(
        "7",
        "Воронка",
        (
            *(RemoteStage(f"s{i}", n) for i, n in enumerate(names)),
            RemoteStage("142", "Успешно реализовано", DealStatus.WON),
            RemoteStage("143", "Закрыто и не реализовано", DealStatus.LOST),
        ),
    )


def test_a_crm_export_and_a_sync_of_the_same_crm_are_the_same_deals(session: Session, tmp_path: Path) -> None:
    """amoCRM's export imported first, then amoCRM synced: deal 101 is updated, not doubled."""
    account = account_for(session)
    import_export(session, write_csv(tmp_path / "amocrm_export.csv", AMO_HEADER, AMO_ROWS[:4], "utf-8", ","))
    assert {d.origin for d in session.scalars(select(Deal))} == {"amocrm"}
    created = dt.datetime(2026, 3, 1, 7, 15)
    moved = RemoteDeal(
        id="101", pipeline_id="7", stage_id="s1", created_at=created, changes=((created, "s0"),), history_known=True
    )
    ours = {"7": _local_pipeline(session, account, _amo_pipeline())}
    report = SyncReport("amocrm")
    store_deals(session, account, ours, [moved], report, origin="amocrm")
    session.commit()
    assert (report.created, report.updated) == (0, 1)
    assert session.scalar(select(func.count()).select_from(Deal)) == 4
    # The same id from another CRM is another deal.
    other = SyncReport("bitrix24")
    store_deals(session, account, ours, [moved], other, origin="bitrix24")
    session.commit()
    assert (other.created, other.updated) == (1, 0)


def test_deals_stored_before_origins_keep_their_history_and_are_claimed_once(engine: Engine, tmp_path: Path) -> None:
    """Upgrading from 0012: the deals table is rebuilt (SQLite) without cascading to its history; a
    legacy deal is claimed by the first import that names its id, and then belongs to that origin."""
    _downgrade(engine, "0012")
    with Session(engine) as session:
        account = account_for(session)
        pipeline = create_pipeline(
            session=session, account=account, name="Продажи", stages=["Заявка", "Счёт", "Оплата"]
        )
        session.commit()
        stage = pipeline.stages[0].id
        created = "2025-06-01 10:00:00"
        session.execute(
            text(
                "INSERT INTO deals (account_id, pipeline_id, external_id, currency, status, stage_id,"
                " furthest_position, history_known, created_at, custom, updated_at)"
                " VALUES (:a, :p, '101', 'RUB', 'open', :s, 1, true, :t, '{}', :t)"
            ),
            {"a": account.id, "p": pipeline.id, "s": stage, "t": created},
        )
        deal_id = session.scalar(text("SELECT id FROM deals"))
        session.execute(
            text(
                "INSERT INTO stage_changes (account_id, deal_id, to_stage_id, to_position, at)"
                " VALUES (:a, :d, :s, 1, :t)"
            ),
            {"a": account.id, "d": deal_id, "s": stage, "t": created},
        )
        session.commit()
    ensure_schema(engine)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(StageEntry)) == 1  # not cascaded away
        assert session.scalars(select(Deal.origin)).one() == ""
        account = account_for(session)
        target = ImportTarget(session, account, find_pipeline(session=session, account=account))
        report = import_file(target=target, path=write(tmp_path, "id,created_at,stage\n101,2025-06-01 10:00,Счёт\n"))
        session.commit()
        assert (report.created, report.updated) == (0, 1)
        assert session.scalars(select(Deal.origin)).one() == "own"


def test_the_schema_keeps_a_deal_in_a_stage_of_its_own_pipeline(session: Session) -> None:
    """Checked by the database itself (a foreign key over stage and pipeline), on both databases."""
    import pytest
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    account = account_for(session)
    first = create_pipeline(session=session, account=account, name="А", stages=["Заявка", "Оплата"])
    second = create_pipeline(session=session, account=account, name="Б", stages=["Заявка", "Оплата"])
    from voronka.crm.deals import create_deal
    from voronka.crm.new_deal import NewDeal

    deal = create_deal(session=session, pipeline=first, new=NewDeal(currency="RUB"))
    session.commit()
    with pytest.raises(IntegrityError):
        session.execute(update(Deal).where(Deal.id == deal.id).values(stage_id=second.stages[0].id))
        session.flush()
    session.rollback()


def test_a_deal_left_in_another_pipelines_stage_moves_there_on_upgrade(engine: Engine) -> None:
    """Before 0015 a re-import could leave a deal in pipeline A standing in a stage of B; the
    upgrade gives it B and re-derives both pipelines."""
    from voronka import deal_days
    from voronka.crm.deals import create_deal
    from voronka.crm.new_deal import NewDeal

    with Session(engine) as session:  # written by today's code, then taken back to 0014
        account = account_for(session)
        first = create_pipeline(session=session, account=account, name="А", stages=["Заявка", "Оплата"])
        second = create_pipeline(session=session, account=account, name="Б", stages=["Заявка", "Оплата"])
        deal = create_deal(session=session, pipeline=first, new=NewDeal(currency="RUB"))
        session.commit()
        stray = {"s": second.stages[0].id, "d": deal.id}
        ids = (deal.id, first.id, second.id)
    _downgrade(engine, "0014")
    with Session(engine) as session:
        session.execute(text("UPDATE deals SET stage_id = :s WHERE id = :d"), stray)
        session.commit()
    ensure_schema(engine)
    with Session(engine) as session:
        moved = session.get(Deal, ids[0])
        assert moved is not None
        assert moved.pipeline_id == ids[2]
        for pipeline_id in ids[1:]:
            connection = session.connection()
            assert deal_days.stored_cells(connection, pipeline_id) == deal_days.compute_cells(connection, pipeline_id)


def _downgrade(engine: Engine, revision: str) -> None:
    """The schema as it was at ``revision``, the way ``ensure_schema`` migrates (SQLite's foreign keys
    off, so that rebuilding a table cascades to nothing)."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
