"""Connectors to CRM APIs (amoCRM, Bitrix24, RetailCRM, YCLIENTS), listed in an explicit registry.

None is built yet; the registry exists so that the catalogue states truthfully what voronka can
sync with (nothing, so far).
"""

from __future__ import annotations

from typing import Protocol


class Connector(Protocol):
    name: str


CONNECTORS: dict[str, Connector] = {}
