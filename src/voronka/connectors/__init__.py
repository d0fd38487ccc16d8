"""Connectors to CRM APIs, listed in an explicit registry: each reads a CRM's pipelines, deals and
stage history for ``voronka sync`` (see connectors.sync)."""

from __future__ import annotations

from voronka.connectors.amocrm import AmoCrmConnector
from voronka.connectors.base import Connector
from voronka.connectors.bitrix24 import Bitrix24Connector
from voronka.connectors.retailcrm import RetailCrmConnector
from voronka.connectors.yclients import YclientsConnector

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
