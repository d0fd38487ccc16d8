"""Connectors, listed in explicit registries: CRMs (pipelines, deals, stage history and calls for
``voronka sync``, see connectors.sync) and ad cabinets (daily spend, see connectors.yandex_direct)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from voronka.ingest.connectors.amocrm import AmoCrmConnector
from voronka.ingest.connectors.base import Connector, Described
from voronka.ingest.connectors.bitrix24 import Bitrix24Connector
from voronka.ingest.connectors.retailcrm import RetailCrmConnector
from voronka.ingest.connectors.store import find_connection
from voronka.ingest.connectors.yandex_direct import YandexDirectConnector
from voronka.ingest.connectors.yclients import YclientsConnector
from voronka.models import Account

CONNECTORS: dict[str, Connector] = {
    connector.name: connector
    for connector in (
        AmoCrmConnector(),
        Bitrix24Connector(),
        RetailCrmConnector(),
        YclientsConnector(),
    )
}

SPEND_CONNECTORS = {connector.name: connector for connector in (YandexDirectConnector(),)}
"""Ad cabinets: their sync brings daily spend, not deals."""
SERVICES: dict[str, Described] = {**CONNECTORS, **SPEND_CONNECTORS}
"""Everything a connection can be made to."""


def wait_message(*, session: Session, account: Account, name: str | None = None) -> str:
    """The catalogue key that tells of a wait during the sync of connection ``name``: a CRM pauses a
    method for its time limit (Bitrix24), Yandex Direct builds a report offline — different waits,
    worded as their own service words them."""
    kind = find_connection(session=session, account=account, name=name).kind
    return "connect.report_waiting" if kind in SPEND_CONNECTORS else "connect.waiting"


__all__ = ["CONNECTORS", "SERVICES", "SPEND_CONNECTORS", "Connector", "wait_message"]
