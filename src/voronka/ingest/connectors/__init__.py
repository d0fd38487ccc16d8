"""Connectors, listed in explicit registries: CRMs (pipelines, deals, stage history and calls for
``voronka sync``, see connectors.sync) and ad cabinets (daily spend, see connectors.yandex_direct)."""

from __future__ import annotations

from voronka.ingest.connectors.amocrm import AmoCrmConnector
from voronka.ingest.connectors.base import Connector, Described
from voronka.ingest.connectors.bitrix24 import Bitrix24Connector
from voronka.ingest.connectors.retailcrm import RetailCrmConnector
from voronka.ingest.connectors.yandex_direct import YandexDirectConnector
from voronka.ingest.connectors.yclients import YclientsConnector

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

__all__ = ["CONNECTORS", "SERVICES", "SPEND_CONNECTORS", "Connector"]
