"""Stage history (docs/import.md): ``deal_id, stage, entered_at``, one row per stage entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from voronka.crm.derived import rederive_deal
from voronka.db import begin_write
from voronka.errors import ImportFailed
from voronka.i18n import Message
from voronka.ingest.importers.base import EventRecord, ImportTarget
from voronka.models import LEGACY_ORIGIN, OWN_ORIGIN, Deal, StageEntry
from voronka.tabular.cells import RowError, is_empty, parse_datetime
from voronka.tabular.files import TableFile
from voronka.tabular.report import ImportReport, Rejected
from voronka.timeutil import zone

REQUIRED = ("deal_id", "stage", "entered_at")


class EventsImporter:
    name = "events"
    origin = OWN_ORIGIN

    def recognises(self, header: set[str]) -> bool:
        return set(REQUIRED) <= header

    def check_header(self, table: TableFile, target: ImportTarget) -> None:
        self._columns(table)

    def _columns(self, table: TableFile) -> dict[str, int]:
        lowered = [h.strip().casefold() for h in table.header]
        missing = [c for c in REQUIRED if c not in lowered]
        if missing:
            raise ImportFailed(
                reason=Message("import.missing_columns", {"file": table.path.name, "columns": ", ".join(missing)})
            )
        return {name: lowered.index(name) for name in REQUIRED}

    def records(self, table: TableFile, target: ImportTarget, report: ImportReport) -> Iterator[EventRecord]:
        columns = self._columns(table)
        positions = {s.name.casefold(): s.position for s in target.pipeline.stages}
        tz = zone(target.account.timezone)
        for line, cells in table.rows():
            try:
                values = {name: cells[i].strip() if i < len(cells) else "" for name, i in columns.items()}
                for name, value in values.items():
                    if is_empty(value):
                        raise RowError(Message("import.missing_value", {"column": name}))
                position = positions.get(values["stage"].casefold())
                if position is None:
                    raise RowError(
                        Message(
                            "import.unknown_stage",
                            {"value": values["stage"], "pipeline": target.pipeline.name},
                        )
                    )
                at = parse_datetime(values["entered_at"], "entered_at", tz)
            except RowError as error:
                report.rejected.append(Rejected(line, error.message))
                continue
            yield EventRecord(line, values["deal_id"], position, at)


def write_events(target: ImportTarget, events: list[EventRecord], report: ImportReport) -> None:
    """Append the entries the log does not hold yet and bring each touched deal up to date."""
    session = target.session
    stage_ids = {s.position: s.id for s in target.pipeline.stages}
    ids = sorted({e.external_id for e in events})
    deals: dict[str, Deal] = {}
    begin_write(session.connection())  # the deals are read to be changed: locked (``crm.derived``)
    rank = {target.origin or OWN_ORIGIN: 0, LEGACY_ORIGIN: 1}  # the ids of the deals file it goes with first
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        found = session.scalars(
            select(Deal)
            .where(
                Deal.account_id == target.account.id,
                Deal.pipeline_id == target.pipeline.id,
                Deal.external_id.in_(chunk),
            )
            .order_by(Deal.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        for candidate in found:
            chosen = deals.get(candidate.external_id or "")
            if candidate.external_id is not None and (
                chosen is None or rank.get(candidate.origin, 2) < rank.get(chosen.origin, 2)
            ):
                deals[candidate.external_id] = candidate
    touched: dict[int, Deal] = {}
    known: set[tuple[int, int, Any]] = set()
    for event in sorted(events, key=lambda e: (e.external_id, e.at)):
        deal = deals.get(event.external_id)
        if deal is None:
            report.rejected.append(
                Rejected(event.line, Message("import.history_unknown_deal", {"id": event.external_id}))
            )
            continue
        if deal.id not in touched:
            known.update(
                (deal.id, p, t)
                for p, t in session.execute(
                    select(StageEntry.to_position, StageEntry.at).where(StageEntry.deal_id == deal.id)
                )
            )
        touched[deal.id] = deal
        if (deal.id, event.stage_position, event.at) in known:
            report.unchanged += 1
            continue
        known.add((deal.id, event.stage_position, event.at))
        session.add(
            StageEntry(
                account_id=deal.account_id,
                deal_id=deal.id,
                to_stage_id=stage_ids[event.stage_position],
                to_position=event.stage_position,
                at=event.at,
            )
        )
        report.created += 1
    session.flush()
    for deal in touched.values():
        deal.history_known = True
        # The deal stands where its latest entry put it — never in the won stage unless it is won.
        rederive_deal(session=session, deal=deal, stage_from_log=True)
    session.flush()
