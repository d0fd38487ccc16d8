"""The canonical deals format (docs/import.md): one row per deal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from voronka.crm.new_deal import MAX_CUSTOM_FIELDS, MAX_CUSTOM_NAME, MAX_CUSTOM_VALUE
from voronka.errors import ImportFailed, InvalidValue
from voronka.i18n import Message
from voronka.ingest.importers.base import DealRecord, ImportTarget
from voronka.models import OWN_ORIGIN, DealStatus
from voronka.money import parse_amount
from voronka.tabular.cells import RowError, clean, parse_datetime, parse_optional_datetime, parse_status
from voronka.tabular.files import TableFile
from voronka.tabular.report import ImportReport, Rejected
from voronka.timeutil import zone

REQUIRED = ("id", "created_at", "stage")
OPTIONAL = (
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
KNOWN = (*REQUIRED, *OPTIONAL)
ENTERED_PREFIX = "entered:"


@dataclass(frozen=True)
class Layout:
    """Which column holds what, resolved once from the header."""

    columns: dict[str, int]
    entered: tuple[tuple[int, int, str], ...]  # (column index, stage position, header)
    custom: tuple[tuple[int, str], ...]
    stage_positions: dict[str, int]
    stage_names: dict[int, str]
    last_position: int
    tz: ZoneInfo
    currency: str
    pipeline: str


class DealsImporter:
    name = "deals"
    origin = OWN_ORIGIN

    def recognises(self, header: set[str]) -> bool:
        return set(REQUIRED) <= header

    def check_header(self, table: TableFile, target: ImportTarget) -> None:
        self.layout(table, target)

    def layout(self, table: TableFile, target: ImportTarget) -> Layout:
        normalised = [h.strip() for h in table.header]
        lowered = [h.casefold() for h in normalised]
        missing = [c for c in REQUIRED if c not in lowered]
        if missing:
            raise ImportFailed(
                reason=Message("import.missing_columns", {"file": table.path.name, "columns": ", ".join(missing)})
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
        return Layout(
            columns=columns,
            entered=tuple(entered),
            custom=tuple(custom),
            stage_positions=positions,
            stage_names={s.position: s.name for s in target.pipeline.stages},
            last_position=len(positions),
            tz=zone(target.account.timezone),
            currency=target.account.currency,
            pipeline=target.pipeline.name,
        )

    def records(self, table: TableFile, target: ImportTarget, report: ImportReport) -> Iterator[DealRecord]:
        return records_of(table.rows(), self.layout(table, target), report)


def records_of(rows: Iterable[tuple[int, list[str]]], layout: Layout, report: ImportReport) -> Iterator[DealRecord]:
    """Records of rows in the canonical columns of ``layout``; bad and repeated rows are rejected."""
    first_line: dict[str, int] = {}
    for line, cells in rows:
        try:
            record = _record(line, cells, layout)
        except RowError as error:
            report.rejected.append(Rejected(line, error.message))
            continue
        seen = first_line.setdefault(record.external_id, line)
        if seen != line:
            report.rejected.append(
                Rejected(line, Message("import.duplicate_id", {"id": record.external_id, "first_line": seen}))
            )
            continue
        yield record


def _values(cells: list[str], layout: Layout) -> dict[str, str | None]:
    """The known columns of one row, cleaned (``None`` for empty)."""
    size = len(cells)
    return {name: clean(cells[index]) if index < size else None for name, index in layout.columns.items()}


def _required(values: dict[str, str | None], name: str) -> str:
    value = values.get(name)
    if value is None:
        raise RowError(Message("import.missing_value", {"column": name}))
    return value


def _record(line: int, cells: list[str], layout: Layout) -> DealRecord:
    values = _values(cells, layout)
    get = values.get
    external_id = _required(values, "id")
    created_at = parse_datetime(_required(values, "created_at"), "created_at", layout.tz)
    stage_name = _required(values, "stage")
    position = layout.stage_positions.get(stage_name.casefold())
    if position is None:
        raise RowError(Message("import.unknown_stage", {"value": stage_name, "pipeline": layout.pipeline}))
    status = _status(parse_status(get("status")), position, layout, stage_name)
    currency = (get("currency") or layout.currency).upper()
    closed_at = parse_optional_datetime(get("closed_at"), "closed_at", layout.tz)
    entries = _entries(cells, layout, status)
    _check_order(created_at, closed_at if status is not DealStatus.OPEN else None, entries, layout)
    if status is DealStatus.WON:
        position = layout.last_position
    return DealRecord(
        line=line,
        external_id=external_id,
        created_at=created_at,
        stage_position=position,
        status=status,
        closed_at=closed_at if status is not DealStatus.OPEN else None,
        loss_reason=get("loss_reason") if status is DealStatus.LOST else None,
        amount=_amount(get("amount"), currency),
        currency=currency,
        source=get("source"),
        manager=get("manager"),
        title=get("title"),
        contact_name=get("contact"),
        phone=get("phone"),
        email=get("email"),
        first_contact_at=parse_optional_datetime(get("first_contact_at"), "first_contact_at", layout.tz),
        entries=entries,
        custom=_custom(cells, layout),
    )


def _check_order(
    created_at: dt.datetime, closed_at: dt.datetime | None, entries: tuple[tuple[int, Any], ...], layout: Layout
) -> None:
    """A deal is not closed, nor enters a stage, before it was created: such a row would count a sale
    in a month before its lead, so it is rejected with the reason rather than stored."""
    if closed_at is not None and closed_at < created_at:
        raise RowError(Message("import.closed_before_created"))
    for position, when in entries:
        if when < created_at:
            raise RowError(Message("import.entered_before_created", {"stage": layout.stage_names[position]}))


def _status(given: DealStatus | None, position: int, layout: Layout, stage_name: str) -> DealStatus:
    """A deal in the won stage is won; saying otherwise is a contradiction, not a guess to make."""
    if position == layout.last_position:
        if given in (None, DealStatus.WON):
            return DealStatus.WON
        raise RowError(Message("import.won_stage_not_won", {"value": stage_name}))
    return given or DealStatus.OPEN


def _entries(cells: list[str], layout: Layout, status: DealStatus) -> tuple[tuple[int, Any], ...]:
    entries = []
    size = len(cells)
    for index, position, header in layout.entered:
        text = clean(cells[index]) if index < size else None
        if text is None:
            continue
        if position == layout.last_position and status is not DealStatus.WON:
            continue  # entering the won stage is winning; a deal that is not won did not
        entries.append((position, parse_datetime(text, header, layout.tz)))
    entries.sort(key=_by_time)
    return tuple(entries)


def _by_time(entry: tuple[int, Any]) -> tuple[Any, int]:
    return entry[1], entry[0]


def _amount(text: str | None, currency: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_amount(text, currency)
    except InvalidValue:
        raise RowError(Message("import.bad_amount", {"value": text})) from None


def _custom(cells: list[str], layout: Layout) -> dict[str, Any]:
    """The row's filled custom columns, within the bounds the web and the API apply (a deal of
    200,000 fields would be stored whole otherwise); a row beyond them is rejected, not cut."""
    size = len(cells)
    custom: dict[str, Any] = {}
    for index, name in layout.custom:
        value = clean(cells[index]) if index < size else None
        if value is not None:
            if len(custom) == MAX_CUSTOM_FIELDS:
                raise RowError(Message("import.too_many_custom", {"limit": MAX_CUSTOM_FIELDS}))
            if len(name) > MAX_CUSTOM_NAME:
                raise RowError(Message("import.custom_name_too_long", {"name": name[:40], "limit": MAX_CUSTOM_NAME}))
            if len(value) > MAX_CUSTOM_VALUE:
                raise RowError(Message("import.cell_too_long", {"limit": MAX_CUSTOM_VALUE}))
            custom[name] = value
    return custom
