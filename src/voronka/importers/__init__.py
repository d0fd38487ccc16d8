"""Importers: one module per format behind a common shape, listed in an explicit registry."""

from __future__ import annotations

from voronka.importers.base import DealRecord, EventRecord, Importer, ImportReport, ImportTarget, Progress
from voronka.importers.deals import DealsImporter
from voronka.importers.events import EventsImporter
from voronka.importers.mapped import MappedImporter
from voronka.importers.maps import builtin_map
from voronka.importers.run import import_file

IMPORTERS: dict[str, Importer] = {
    importer.name: importer
    for importer in (
        DealsImporter(),
        EventsImporter(),
        MappedImporter(builtin_map("amocrm")),
        MappedImporter(builtin_map("bitrix24")),
    )
}

__all__ = [
    "IMPORTERS",
    "DealRecord",
    "EventRecord",
    "ImportReport",
    "ImportTarget",
    "Importer",
    "MappedImporter",
    "Progress",
    "import_file",
]
