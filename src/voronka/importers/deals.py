"""The canonical deals format (CONTRACT.md, format 1): one row per deal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from voronka.errors import ImportFailed, InvalidValue
from voronka.i18n import Message
from voronka.importers.base import DealRecord, ImportReport, ImportTarget, Rejected
from voronka.importers.tables import TableFile
from voronka.importers.values import RowError, is_empty, parse_datetime, parse_optional_datetime, parse_status
from voronka.models import DealStatus
from voronka.money import parse_amount
from voronka.timeutil import zone

REQUIRED = ("id", "created_at", "stage")
KNOWN = (
    *REQUIRED,
    "status",
    "closed_at",
    "loss_reason",
    "amount",
    "currency",
    "source",
    "manager",
    "title",
    "first_contact_at",
    "contact",
    "phone",
    "email",
)
ENTERED_PREFIX = "entered:"


@dataclass(frozen=True)
class _Layout:
    """Which column holds what, resolved once from the header."""

    columns: dict[str, int]
    entered: tuple[tuple[int, int, str], ...]  # (column index, stage position, header)
    custom: tuple[tuple[int, str], ...]
    stage_positions: dict[str, int]
    last_position: int
    tz: ZoneInfo
    currency: str
    pipeline: str


class DealsImporter:
    name = "deals"

    def recognises(self, header: set[str]) -> bool:
        return set(REQUIRED) <= header

    def check_header(self, table: TableFile, target: ImportTarget) -> None:
        self._layout(table, target)

    def _layout(self, table: TableFile, target: ImportTarget) -> _Layout:
        normalised = [h.strip() for h in table.header]
        lowered = [h.casefold() for h in normalised]
        missing = [c for c in REQUIRED if c not in lowered]
        if missing:
            raise ImportFailed(
                reason=Message(
                    "import.missing_columns", {"file": table.path.name, "columns": ", ".join(missing)}
                )
            )
        positions = {s.name.casefold(): s.position for s in target.pipeline.stages}
        columns: dict[str, int] = {}
        entered: list[tuple[int, int, str]] = []
        custom: list[tuple[int, str]] = []
        for index, (name, low) in enumerate(zip(normalised, lowered, strict=True)):
            if low in KNOWN and low not in columns:
                columns[low] = index
            elif low.startswith(ENTERED_PREFIX):
                stage = low[len(ENTERED_PREFIX) :].strip()
                if stage not in positions:
                    raise ImportFailed(
                        reason=Message(
                            "import.unknown_stage",
                            {"value": name[len(ENTERED_PREFIX) :], "pipeline": target.pipeline.name},
                        )
                    )
                entered.append((index, positions[stage], name))
            elif name:
                custom.append((index, name))
        return _Layout(
            columns=columns,
            entered=tuple(entered),
            custom=tuple(custom),
            stage_positions=positions,
            last_position=len(positions),
            tz=zone(target.account.timezone),
            currency=target.account.currency,
            pipeline=target.pipeline.name,
        )

    def records(self, table: TableFile, target: ImportTarget, report: ImportReport) -> Iterator[DealRecord]:
        layout = self._layout(table, target)
        first_line: dict[str, int] = {}
        for line, cells in table.rows():
            try:
                record = _record(line, cells, layout)
            except RowError as error:
                report.rejected.append(Rejected(line, error.message))
                continue
            seen = first_line.setdefault(record.external_id, line)
            if seen != line:
                report.rejected.append(
                    Rejected(
                        line, Message("import.duplicate_id", {"id": record.external_id, "first_line": seen})
                    )
                )
                continue
            yield record


def _cell(cells: list[str], layout: _Layout, name: str) -> str | None:
    index = layout.columns.get(name)
    if index is None or index >= len(cells):
        return None
    value = cells[index].strip()
    return None if is_empty(value) else value


def _required(cells: list[str], layout: _Layout, name: str) -> str:
    value = _cell(cells, layout, name)
    if value is None:
        raise RowError(Message("import.missing_value", {"column": name}))
    return value


def _record(line: int, cells: list[str], layout: _Layout) -> DealRecord:
    external_id = _required(cells, layout, "id")
    created_at = parse_datetime(_required(cells, layout, "created_at"), "created_at", layout.tz)
    stage_name = _required(cells, layout, "stage")
    position = layout.stage_positions.get(stage_name.casefold())
    if position is None:
        raise RowError(Message("import.unknown_stage", {"value": stage_name, "pipeline": layout.pipeline}))
    status = _status(parse_status(_cell(cells, layout, "status")), position, layout, stage_name)
    currency = (_cell(cells, layout, "currency") or layout.currency).upper()
    closed_at = parse_optional_datetime(_cell(cells, layout, "closed_at"), "closed_at", layout.tz)
    entries = _entries(cells, layout, status)
    if status is DealStatus.WON:
        position = layout.last_position
    return DealRecord(
        line=line,
        external_id=external_id,
        created_at=created_at,
        stage_position=position,
        status=status,
        closed_at=closed_at if status is not DealStatus.OPEN else None,
        loss_reason=_cell(cells, layout, "loss_reason") if status is DealStatus.LOST else None,
        amount=_amount(_cell(cells, layout, "amount"), currency),
        currency=currency,
        source=_cell(cells, layout, "source"),
        manager=_cell(cells, layout, "manager"),
        title=_cell(cells, layout, "title"),
        contact_name=_cell(cells, layout, "contact"),
        phone=_cell(cells, layout, "phone"),
        email=_cell(cells, layout, "email"),
        first_contact_at=parse_optional_datetime(
            _cell(cells, layout, "first_contact_at"), "first_contact_at", layout.tz
        ),
        entries=entries,
        custom=_custom(cells, layout),
    )


def _status(given: DealStatus | None, position: int, layout: _Layout, stage_name: str) -> DealStatus:
    """A deal in the won stage is won; saying otherwise is a contradiction, not a guess to make."""
    if position == layout.last_position:
        if given in (None, DealStatus.WON):
            return DealStatus.WON
        raise RowError(Message("import.won_stage_not_won", {"value": stage_name}))
    return given or DealStatus.OPEN


def _entries(cells: list[str], layout: _Layout, status: DealStatus) -> tuple[tuple[int, Any], ...]:
    entries = []
    for index, position, header in layout.entered:
        if index >= len(cells) or is_empty(cells[index]):
            continue
        if position == layout.last_position and status is not DealStatus.WON:
            continue  # entering the won stage is winning; a deal that is not won did not
        entries.append((position, parse_datetime(cells[index], header, layout.tz)))
    return tuple(sorted(entries, key=lambda e: (e[1], e[0])))


def _amount(text: str | None, currency: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_amount(text, currency)
    except InvalidValue:
        raise RowError(Message("import.bad_amount", {"value": text})) from None


def _custom(cells: list[str], layout: _Layout) -> dict[str, Any]:
    return {name: cells[i].strip() for i, name in layout.custom if i < len(cells) and not is_empty(cells[i])}
