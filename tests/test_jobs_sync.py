"""Every connector syncs in the background and stores what it brought: amoCRM, Bitrix24 (with its
calls), RetailCRM, YCLIENTS and Yandex Direct, each against its fake, run by ``voronka worker
--once`` and by the job thread ``voronka serve`` starts — the job succeeds, the rows are there, and
nobody is told the sync failed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import account_for
from tests.fakes import amocrm, bitrix24, retailcrm, yclients
from tests.fakes.yandex_direct import TOKEN as DIRECT_TOKEN
from tests.fakes.yandex_direct import FakeDirect
from voronka.cli import app
from voronka.db import session_factory
from voronka.ingest.connectors import CONNECTORS, SPEND_CONNECTORS
from voronka.ingest.connectors.store import add_connection
from voronka.jobs.store import find_job
from voronka.jobs.worker import Worker
from voronka.models import AdSpend, CallAttempt, Deal, Job, OutboxMessage
from voronka.secretstore import SecretStore

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
"""``worker --once`` runs at the moment it is started; the serve thread is given this one (naive UTC, as
voronka keeps every time: an aware one made the alerts pass fail comparing it with stored times)."""


@dataclass(frozen=True)
class Stored:
    deals: int = 0
    calls: int = 0
    spend: int = 0
    """Minor units."""


@dataclass(frozen=True)
class Service:
    """A fake installed on the test's server, the connection to it, and what a sync must store."""

    kind: str
    address: str
    secrets: dict[str, str]
    settings: dict[str, object]
    stored: Stored


def _amocrm(server: HTTPServer) -> Service:
    crm = amocrm.world(40)
    first = crm.leads[min(crm.leads)]
    crm.call_note("leads", first.id, first.created_at + 240, status=4, duration=30)
    crm.install(server)
    return Service("amocrm", server.url_for("").rstrip("/"), {"token": amocrm.TOKEN}, {}, Stored(40, 1))


def _bitrix24(server: HTTPServer) -> Service:
    crm = bitrix24.portal(60)
    for deal_id in range(1, 56):  # more than a page of calls (50)
        crm.call(deal_id, dt.datetime.fromisoformat(crm.deals[deal_id]["DATE_CREATE"]) + dt.timedelta(minutes=3))
    crm.install(server)
    hook = server.url_for(f"/rest/1/{bitrix24.CODE}/")
    return Service("bitrix24", hook, {"webhook_url": hook}, {}, Stored(60, 55))


def _retailcrm(server: HTTPServer) -> Service:
    retailcrm.shop(45).install(server)
    return Service("retailcrm", server.url_for("").rstrip("/"), {"api_key": retailcrm.KEY}, {}, Stored(45))


def _yclients(server: HTTPServer) -> Service:
    salon = yclients.salon(30)
    salon.install(server)
    kept = sum(not r["deleted"] for r in salon.records.values())
    secrets = {"partner_token": yclients.PARTNER, "user_token": yclients.USER}
    return Service("yclients", server.url_for("").rstrip("/"), secrets, {"company_id": yclients.COMPANY}, Stored(kept))


def _yandex_direct(server: HTTPServer) -> Service:
    direct = FakeDirect()
    for back in range(1, 41):  # two reports: the first run asks a month a request
        direct.spend(NOW.date() - dt.timedelta(days=back), 101, "Поиск", 100.25)
    direct.install(server)
    return Service(
        "yandex_direct", server.url_for("/").rstrip("/"), {"token": DIRECT_TOKEN}, {}, Stored(spend=40 * 10_025)
    )


SERVICES: dict[str, Callable[[HTTPServer], Service]] = {
    "amocrm": _amocrm,
    "bitrix24": _bitrix24,
    "retailcrm": _retailcrm,
    "yclients": _yclients,
    "yandex_direct": _yandex_direct,
}


def _connect(session: Session, service: Service, store: SecretStore) -> None:
    connector = CONNECTORS.get(service.kind) or SPEND_CONNECTORS[service.kind]
    add_connection(
        session=session, account=account_for(session), connector=connector, name="crm", address=service.address,
        settings={"requests_per_second": 0, **service.settings}, secret_values=service.secrets, store=store,
    )  # fmt: skip
    session.commit()


def _stored(session: Session) -> Stored:
    return Stored(
        session.scalar(select(func.count()).select_from(Deal)) or 0,
        session.scalar(select(func.count()).select_from(CallAttempt)) or 0,
        session.scalar(select(func.coalesce(func.sum(AdSpend.amount), 0))) or 0,
    )


def _by_cli(db_url: str, secrets: Path, _engine: Engine) -> None:
    ran = CliRunner().invoke(
        app, ["--db", db_url, "--lang", "en", "worker", "--once"], env={"VORONKA_SECRETS_PATH": str(secrets)}
    )
    assert ran.exit_code == 0, ran.stderr
    assert "failed" not in ran.stderr.lower(), ran.stderr
    assert "Sync «crm»" in ran.stdout


def _by_serve_thread(_db_url: str, secrets: Path, engine: Engine) -> None:
    """The loop ``voronka serve`` starts beside the web app, on its own thread, for one pass."""
    worker = Worker(engine, SecretStore(secrets), clock=lambda: NOW)
    thread = worker.start()
    try:
        assert worker.passed.wait(timeout=300)
    finally:
        worker.stop()
        thread.join(timeout=60)
    assert not thread.is_alive()


@pytest.mark.parametrize("run", [_by_cli, _by_serve_thread], ids=["worker-once", "serve-thread"])
@pytest.mark.parametrize("kind", list(SERVICES))
def test_a_background_sync_stores_what_it_brought(
    kind: str,
    run: Callable[[str, Path, Engine], None],
    db_url: str,
    engine: Engine,
    session: Session,
    httpserver: HTTPServer,
    tmp_path: Path,
) -> None:
    secrets = tmp_path / "secrets.json"
    service = SERVICES[kind](httpserver)
    _connect(session, service, SecretStore(secrets))
    run(db_url, secrets, engine)
    with session_factory(engine)() as check:
        assert _stored(check) == service.stored
        job = find_job(session=check, account=account_for(check), kind="sync", target="crm")
        assert (job.failures, job.last_error) == (0, None)
        assert job.last_result is not None
        assert check.scalars(select(Job).where(Job.failures > 0)).all() == []
        assert check.scalars(select(OutboxMessage).where(OutboxMessage.event == "sync_failed")).all() == []
