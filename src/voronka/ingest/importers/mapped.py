"""Importing any table through a column map: each source row is rewritten into our deals columns and
then read exactly like a canonical file, so every rule and error of the deals format applies."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from voronka.errors import ImportFailed
from voronka.i18n import Message
from voronka.ingest.importers.base import DealRecord, ImportTarget
from voronka.ingest.importers.deals import ENTERED_PREFIX, OPTIONAL, DealsImporter, records_of
from voronka.ingest.importers.maps import ColumnMap, StageValue
from voronka.models import DealStatus
from voronka.tabular.cells import clean
from voronka.tabular.files import TableFile, open_table
from voronka.tabular.report import ImportReport, Rejected

_FIELDS = tuple(f for f in OPTIONAL if f != "status")
"""The canonical columns a map fills from its ``[columns]`` (stage and status have sections of their own)."""


@dataclass(frozen=True)
class _Source:
    """One source row with its joined rows: cells by case-folded header, first non-empty wins."""

    cells: dict[str, list[str]]

    def get(self, names: Sequence[str]) -> str | None:
        for name in names:
            for value in self.cells.get(name.strip().casefold(), ()):
                cleaned = clean(value)
                if cleaned is not None:
                    return cleaned
        return None


def _index(header: Sequence[str]) -> dict[str, list[int]]:
    """Column positions by case-folded, trimmed name; exports repeat names («Источник» twice)."""
    positions: dict[str, list[int]] = {}
    for number, name in enumerate(header):
        positions.setdefault(name.strip().casefold(), []).append(number)
    return positions


def _cells_by_name(positions: dict[str, list[int]], cells: list[str]) -> dict[str, list[str]]:
    size = len(cells)
    return {name: [cells[i] for i in indices if i < size] for name, indices in positions.items()}


class _Joined:
    """The rows of a joined file by their key column."""

    def __init__(self, table: TableFile, on: str) -> None:
        positions = _index(table.header)
        key = on.strip().casefold()
        if key not in positions:
            raise ImportFailed(reason=Message("import.missing_columns", {"file": table.path.name, "columns": on}))
        self.header = set(positions)
        self.rows: dict[str, dict[str, list[str]]] = {}
        for _, cells in table.rows():
            by_name = _cells_by_name(positions, cells)
            value = clean(by_name[key][0]) if by_name[key] else None
            if value is not None:
                self.rows.setdefault(value, by_name)
        self.on = key


class MappedImporter:
    """A format described by a column map: the built-in exports, or a user's ``--map`` file."""

    def __init__(self, column_map: ColumnMap) -> None:
        self.column_map = column_map
        self.name = column_map.name
        self.origin = column_map.origin

    def recognises(self, header: set[str]) -> bool:
        return bool(self.column_map.signature) and self.column_map.signature <= header

    def check_header(self, table: TableFile, target: ImportTarget) -> None:
        headers = set(_index(table.header)).union(*(j.header for j in self._joins(table)))
        wanted = [self.column_map.columns["id"], *(c for c in [self.column_map.columns.get("created_at")] if c)]
        missing = [names[0] for names in wanted if not any(n.strip().casefold() in headers for n in names)]
        if missing:
            raise ImportFailed(
                reason=Message("import.missing_columns", {"file": table.path.name, "columns": ", ".join(missing)})
            )

    def _joins(self, table: TableFile) -> list[_Joined]:
        return [_Joined(open_table(table.path.parent / j.file), j.on) for j in self.column_map.joins]

    def records(self, table: TableFile, target: ImportTarget, report: ImportReport) -> Iterator[DealRecord]:
        stage_names = [s.name for s in target.pipeline.stages]
        header = self._canonical_header()
        layout = DealsImporter().layout(replace(table, header=tuple(header)), target)
        rows = self._rewritten(table, target, stage_names, report)
        return records_of(rows, layout, report)

    def _canonical_header(self) -> list[str]:
        present = [f for f in _FIELDS if f in self.column_map.columns or f in self.column_map.defaults]
        entered = [f"{ENTERED_PREFIX}{stage}" for stage in self.column_map.entered]
        return ["id", "created_at", "stage", "status", *present, *entered, *self.column_map.custom]

    def _rewritten(
        self, table: TableFile, target: ImportTarget, stage_names: list[str], report: ImportReport
    ) -> Iterator[tuple[int, list[str]]]:
        column_map = self.column_map
        positions = _index(table.header)
        joins = self._joins(table)
        header = self._canonical_header()
        pipelines = self._pipeline_filter(table, target)
        for line, cells in table.rows():
            source = self._source(positions, cells, joins)
            if pipelines is not None:
                pipeline = source.get(column_map.columns["pipeline"])
                if pipeline is not None and pipeline.casefold() not in pipelines:
                    reason = Message("import.other_pipeline", {"value": pipeline, "pipeline": target.pipeline.name})
                    report.rejected.append(Rejected(line, reason))
                    continue
            yield line, [self._value(name, source, stage_names) for name in header]

    def _source(self, positions: dict[str, list[int]], cells: list[str], joins: list[_Joined]) -> _Source:
        by_name = _cells_by_name(positions, cells)
        for joined in joins:
            key = clean(by_name[joined.on][0]) if by_name.get(joined.on) else None
            for name, values in joined.rows.get(key or "", {}).items():
                by_name.setdefault(name, values)
        return _Source(by_name)

    def _pipeline_filter(self, table: TableFile, target: ImportTarget) -> set[str] | None:
        """When the file names pipelines and one of them is ours, only its rows are imported."""
        names = self.column_map.columns.get("pipeline")
        if names is None:
            return None
        positions = _index(table.header)
        found = {
            v.casefold() for _, cells in table.rows() if (v := _Source(_cells_by_name(positions, cells)).get(names))
        }
        ours = target.pipeline.name.casefold()
        return {ours} if ours in found else None

    def _value(self, name: str, source: _Source, stage_names: list[str]) -> str:
        column_map = self.column_map
        if name in ("stage", "status"):
            stage, status = self.stage_and_status(source, stage_names)
            return stage if name == "stage" else (status.value if status else "")
        if name.startswith(ENTERED_PREFIX):
            return source.get(column_map.entered[name[len(ENTERED_PREFIX) :]]) or ""
        if name in column_map.custom:
            return source.get(column_map.custom[name]) or ""
        value = source.get(column_map.columns[name]) if name in column_map.columns else None
        return value if value is not None else column_map.defaults.get(name, "")

    def stage_and_status(self, source: _Source, stage_names: Sequence[str]) -> tuple[str, DealStatus | None]:
        """Our stage name and status for a row (a won deal stands in the last stage)."""
        column_map = self.column_map
        first, last = stage_names[0], stage_names[-1]
        raw = source.get(column_map.stage_column) if column_map.stage_column else None
        meaning = column_map.stage_values.get(raw.casefold()) if raw else None
        if meaning is not None:
            stage, status = meaning.stage or first, meaning.status
        else:
            stage, status = raw or column_map.stage_default or first, None
        if column_map.won_when_filled and source.get(column_map.won_when_filled) is not None:
            status = DealStatus.WON
        if column_map.status_column:
            raw_status = source.get(column_map.status_column)
            if raw_status is not None:
                status = column_map.status_values.get(raw_status.casefold(), status)
        if status is DealStatus.WON:
            stage = last
        return stage, status


def _sources(table: TableFile) -> Iterator[tuple[int, _Source]]:
    positions = _index(table.header)
    for line, cells in table.rows():
        yield line, _Source(_cells_by_name(positions, cells))


def stages_in_file(path: Path, column_map: ColumnMap) -> list[str]:
    """The pipeline a file implies: the map's stages, or the open stage values in order of first
    appearance, then the won stage (as the file spells it, or «Won»)."""
    if column_map.stages:
        return list(column_map.stages)
    seen: list[str] = [column_map.stage_default] if column_map.stage_default else []
    won = "Won"
    for _, source in _sources(open_table(path)) if column_map.stage_column else ():
        raw = source.get(column_map.stage_column)
        meaning = column_map.stage_values.get(raw.casefold(), StageValue(raw)) if raw else None
        if meaning is not None and meaning.status is DealStatus.WON:
            won = raw or won
        elif meaning is not None and meaning.status is None and meaning.stage and meaning.stage not in seen:
            seen.append(meaning.stage)
    return [*(seen or ["Lead"]), won]


def first_pipeline_in(path: Path, column_map: ColumnMap) -> str | None:
    """The first pipeline name the file's rows give, if the map reads one."""
    names = column_map.columns.get("pipeline")
    if names is None:
        return None
    return next((value for _, source in _sources(open_table(path)) if (value := source.get(names))), None)
