"""Syncing from RetailCRM (orders and their change log from sinceId) and YCLIENTS (bookings by
attendance) against local fakes of their documented APIs."""

from __future__ import annotations

import datetime as dt

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy.orm import Session

from tests.builders import account_for
from tests.fakes import expected_funnel, observed
from tests.fakes.retailcrm import GROUPS, KEY, STATUSES, FakeRetailCrm, shop
from tests.fakes.yclients import COMPANY, PARTNER, USER, FakeYclients, salon
from voronka.crm.accounts import find_pipeline
from voronka.errors import ConnectorAuthFailed, ConnectorFailed
from voronka.ingest.connectors import CONNECTORS
from voronka.ingest.connectors.http import RetryPolicy
from voronka.ingest.connectors.store import add_connection
from voronka.ingest.connectors.sync import SyncReport, sync_connection
from voronka.secretstore import SecretStore

FAST = RetryPolicy(attempts=5, first_wait=0.001, max_wait=0.01)


def connect(
    session: Session, kind: str, address: str, store: SecretStore, secrets: dict[str, str], **settings: object
) -> None:
    add_connection(
        session=session,
        account=account_for(session),
        connector=CONNECTORS[kind],
        name=kind,
        address=address,
        settings={"requests_per_second": 0, **settings},
        secret_values=secrets,
        store=store,
    )
    session.commit()


def run(session: Session, store: SecretStore) -> SyncReport:
    return sync_connection(session=session, account=account_for(session), store=store, retry=FAST)


def retail_expected(crm: FakeRetailCrm) -> tuple[tuple[int, int, int, int], list[int]]:
    position = {code: number for number, (code, *_rest) in enumerate(GROUPS[:5], start=1)}
    deals = []
    for order_id, order in crm.orders.items():
        groups = [STATUSES[h["newValue"]["code"]] for h in crm.history if h["order"]["id"] == order_id]
        group = STATUSES[order["status"]]
        kind = "won" if group == "complete" else "lost" if group == "cancel" else "open"
        deals.append(([position[g] for g in groups if g in position], kind))
    return expected_funnel(deals, 5)


def test_retailcrm_full_then_incremental(session: Session, httpserver: HTTPServer, store: SecretStore) -> None:
    crm = shop(260)
    crm.install(httpserver)
    connect(session, "retailcrm", httpserver.url_for("").rstrip("/"), store, {"api_key": KEY})
    report = run(session, store)
    assert report.created == 260
    assert report.pipelines == ["RetailCRM"]
    pipeline = find_pipeline(session=session, account=account_for(session))
    assert [s.name for s in pipeline.stages] == ["Новый", "Согласование", "Комплектация", "Доставка", "Выполнен"]
    assert observed(session) == retail_expected(crm)

    later = dt.datetime(2026, 9, 1, 12, 0)
    crm.create(261, later, 5000)
    for order_id in (1, 2, 3):
        crm.set_status(order_id, "complete", later)
    before = crm.requests
    report = run(session, store)
    assert report.created == 1
    assert report.updated == 3
    assert crm.requests - before <= 5  # two references, the users, one page of the log from sinceId, its orders
    assert observed(session) == retail_expected(crm)


def test_retailcrm_503_is_retried_and_a_wrong_key_refused(
    session: Session, httpserver: HTTPServer, store: SecretStore
) -> None:
    crm = shop(120)
    crm.rate_limit_every = 3
    crm.install(httpserver)
    connect(session, "retailcrm", httpserver.url_for("").rstrip("/"), store, {"api_key": KEY})
    run(session, store)
    assert observed(session) == retail_expected(crm)

    connect(session, "retailcrm", httpserver.url_for("").rstrip("/"), store, {"api_key": "wrong"})
    with pytest.raises(ConnectorFailed) as caught:
        run(session, store)
    assert "Access denied." in caught.value.message("en")


def test_retailcrm_a_key_without_the_users_section_syncs_managers_by_id(
    session: Session, httpserver: HTTPServer, store: SecretStore
) -> None:
    crm = shop(60)
    crm.users_allowed = False
    crm.install(httpserver)
    connect(session, "retailcrm", httpserver.url_for("").rstrip("/"), store, {"api_key": KEY})
    report = run(session, store)
    assert observed(session) == retail_expected(crm)
    assert "users section" in report.warnings[0].render("en")


def yclients_expected(crm: FakeYclients) -> tuple[tuple[int, int, int, int], list[int]]:
    meaning = {0: ([1], "open"), 2: ([2], "open"), 1: ([3], "won"), -1: ([1], "lost")}
    return expected_funnel([meaning[r["attendance"]] for r in crm.records.values() if not r["deleted"]], 3)


def test_yclients_full_then_incremental(session: Session, httpserver: HTTPServer, store: SecretStore) -> None:
    crm = salon(450)
    crm.rate_limit_every = 2
    crm.install(httpserver)
    connect(
        session,
        "yclients",
        httpserver.url_for("").rstrip("/"),
        store,
        {"partner_token": PARTNER, "user_token": USER},
        company_id=COMPANY,
    )
    report = run(session, store)
    assert report.created == 449  # the deleted record is left out
    pipeline = find_pipeline(session=session, account=account_for(session))
    assert [s.name for s in pipeline.stages] == ["Запись", "Подтверждена", "Визит"]
    assert observed(session) == yclients_expected(crm)

    now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    for record_id in (1, 2, 3, 4, 5):
        crm.change(record_id, 1, now)
    report = run(session, store)
    assert report.created == 0
    assert report.updated + report.unchanged == 5
    assert observed(session) == yclients_expected(crm)


def test_yclients_wrong_tokens(session: Session, httpserver: HTTPServer, store: SecretStore) -> None:
    salon(5).install(httpserver)
    connect(
        session,
        "yclients",
        httpserver.url_for("").rstrip("/"),
        store,
        {"partner_token": PARTNER, "user_token": "bad"},
        company_id=COMPANY,
    )
    with pytest.raises(ConnectorAuthFailed) as caught:
        run(session, store)
    assert "Не авторизован" in caught.value.message("en")  # YCLIENTS' own words, from meta.message
