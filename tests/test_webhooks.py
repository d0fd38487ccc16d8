"""CRM webhooks: amoCRM's form-encoded leads[add]/leads[status] and Bitrix24's ONCRMDEALUPDATE reach
the app, the deal is re-read from the (fake) CRM, and a repeated delivery changes nothing."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.builders import account_for
from tests.fakes.amocrm import LOST, TOKEN, WON, Lead, world
from tests.fakes.bitrix24 import CODE, portal
from voronka.config import Settings
from voronka.ingest.connectors import CONNECTORS
from voronka.ingest.connectors.http import RetryPolicy
from voronka.ingest.connectors.store import add_connection
from voronka.ingest.connectors.sync import sync_connection
from voronka.ingest.connectors.webhooks import amocrm_lead_ids, bitrix24_deal_ids
from voronka.models import Deal, StageEntry
from voronka.secretstore import SecretStore
from voronka.web import create_app

FAST = RetryPolicy(attempts=3, first_wait=0.001, max_wait=0.01)


def test_ids_from_payloads() -> None:
    form = {"leads[status][0][id]": "10701093", "leads[status][0][status_id]": "142", "leads[add][0][id]": "7",
            "leads[status][1][id]": "10701093", "account[subdomain]": "apfitness"}  # fmt: skip
    assert amocrm_lead_ids(form) == ["10701093", "7"]
    assert bitrix24_deal_ids({"event": "ONCRMDEALUPDATE", "data[FIELDS][ID]": "759", "ts": "1736405807"}) == ["759"]
    assert bitrix24_deal_ids({"event": "ONCRMDEALUPDATE", "data": {"FIELDS": {"ID": "759"}}}) == ["759"]
    assert bitrix24_deal_ids({"event": "ONCRMCONTACTADD", "data[FIELDS][ID]": "1"}) == []


def app_for(engine: Engine, store: SecretStore) -> TestClient:
    return TestClient(create_app(Settings(database_url=str(engine.url), secrets_path=store.path), engine))


def test_amocrm_webhook(session: Session, engine: Engine, httpserver: HTTPServer, store: SecretStore) -> None:
    crm = world(30)
    crm.install(httpserver)
    account = account_for(session)
    _, token = add_connection(session=session, account=account, connector=CONNECTORS["amocrm"], name="amo",
                              address=httpserver.url_for("").rstrip("/"), settings={"requests_per_second": 0},
                              secret_values={"token": TOKEN}, store=store)  # fmt: skip
    session.commit()
    sync_connection(session=session, account=account, store=store, retry=FAST)
    client = app_for(engine, store)

    lead_id = next(iter(crm.leads))
    crm.move(lead_id, WON, crm.clock)
    crm.add_lead(Lead(99, 3177727, 32392159, crm.clock, crm.clock, 5000, 504141), [(crm.clock + 60, LOST)])
    form = {"leads[status][0][id]": str(lead_id), "leads[status][0][status_id]": str(WON),
            "leads[add][0][id]": "99", "account[subdomain]": "example"}  # fmt: skip
    answer = client.post(f"/webhooks/amocrm/{token}", data=form)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"deals": [str(lead_id), "99"], "created": 1, "updated": 1}
    session.expire_all()
    won = session.scalars(select(Deal).where(Deal.external_id == str(lead_id))).one()
    assert won.status == "won"
    assert session.scalars(select(Deal.status).where(Deal.external_id == "99")).one() == "lost"

    changes = session.scalar(select(func.count()).select_from(StageEntry))
    again = client.post(f"/webhooks/amocrm/{token}", data=form)  # the CRM delivers it twice
    assert again.json()["created"] == 0
    assert again.json()["updated"] == 0
    assert session.scalar(select(func.count()).select_from(StageEntry)) == changes

    assert client.post("/webhooks/amocrm/not-the-token", data=form).status_code == 404
    assert client.post(f"/webhooks/bitrix24/{token}", data=form).status_code == 404  # the token of another kind


def test_bitrix24_webhook(session: Session, engine: Engine, httpserver: HTTPServer, store: SecretStore) -> None:
    crm = portal(20)
    crm.install(httpserver)
    account = account_for(session)
    url = httpserver.url_for(f"/rest/1/{CODE}/")
    _, token = add_connection(session=session, account=account, connector=CONNECTORS["bitrix24"], name="b24",
                              address=url, settings={"requests_per_second": 0},
                              secret_values={"webhook_url": url, "application_token": "app-token-1"},
                              store=store)  # fmt: skip
    session.commit()
    sync_connection(session=session, account=account, store=store, retry=FAST)
    crm.move(5, "LOSE", dt.datetime(2026, 8, 1, tzinfo=dt.UTC))
    client = app_for(engine, store)
    event = {"event": "ONCRMDEALUPDATE", "data[FIELDS][ID]": "5"}
    # Bitrix24's documentation: a handler compares auth[application_token] with the stored token.
    for forged in ({}, {"auth[application_token]": "guess"}):
        refused = client.post(f"/webhooks/bitrix24/{token}", data={**event, **forged})
        assert refused.status_code == 403, refused.text
        assert "application token" in refused.json()["detail"]
    answer = client.post(f"/webhooks/bitrix24/{token}", data={**event, "auth[application_token]": "app-token-1"})
    assert answer.status_code == 200
    assert answer.json()["updated"] == 1
    session.expire_all()
    assert session.scalars(select(Deal.status).where(Deal.external_id == "5")).one() == "lost"
    ignored = client.post(
        f"/webhooks/bitrix24/{token}",
        json={
            "event": "ONCRMCONTACTADD",
            "data": {"FIELDS": {"ID": "1"}},
            "auth": {"application_token": "app-token-1"},
        },
    )
    assert ignored.json() == {"deals": [], "created": 0, "updated": 0}
