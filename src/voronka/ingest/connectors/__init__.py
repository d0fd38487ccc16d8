"""Connectors to CRM APIs, listed in an explicit registry: each reads a CRM's pipelines, deals and
stage history for ``voronka sync`` (see connectors.sync)."""

from __future__ import annotations

from voronka.ingest.connectors.amocrm import AmoCrmConnector
from voronka.ingest.connectors.base import Connector
from voronka.ingest.connectors.bitrix24 import Bitrix24Connector
from voronka.ingest.connectors.retailcrm import RetailCrmConnector
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

__all__ = ["CONNECTORS", "Connector"]
