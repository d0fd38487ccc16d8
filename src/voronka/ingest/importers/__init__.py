"""Importers: one module per format behind a common shape, listed in an explicit registry."""

from __future__ import annotations

from voronka.ingest.importers.base import DealRecord, EventRecord, Importer, ImportTarget
from voronka.ingest.importers.deals import DealsImporter
from voronka.ingest.importers.events import EventsImporter
from voronka.ingest.importers.mapped import MappedImporter
from voronka.ingest.importers.maps import builtin_map
from voronka.ingest.importers.run import import_file
from voronka.tabular.report import ImportReport, Progress

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
