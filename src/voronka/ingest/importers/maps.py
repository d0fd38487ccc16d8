"""Column maps: how another system's table becomes our deals format (``--map MAP.toml``).

A map says which source column feeds which field (a list means "the first non-empty of these"), how
source stage and status values translate, which columns hold stage entry times, which columns to
keep as custom fields, and other files to join by a key. The built-in exports (amoCRM, Bitrix24)
are maps too, shipped with the package; docs/import.md describes the format.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from voronka.errors import ImportFailed
from voronka.i18n import Message
from voronka.ingest.importers.deals import OPTIONAL
from voronka.models import OWN_ORIGIN, DealStatus

FIELDS = ("id", "created_at", *(f for f in OPTIONAL if f != "status"), "pipeline")
"""What a map's ``[columns]`` may feed (stage and status have sections of their own)."""


@dataclass(frozen=True)
class StageValue:
    """What one source stage value means: our stage (None: the first stage) and the deal's status."""

    stage: str | None
    status: DealStatus | None = None


@dataclass(frozen=True)
class Join:
    """Another file whose row with the same ``on`` value adds its columns to each row."""

    file: str
    on: str


@dataclass(frozen=True)
class ColumnMap:
    name: str
    columns: Mapping[str, tuple[str, ...]]
    stage_column: tuple[str, ...] = ()
    stage_values: Mapping[str, StageValue] = field(default_factory=dict)
    stage_default: str | None = None
    won_when_filled: tuple[str, ...] = ()
    """Columns whose being filled in means the deal was won (a joined file of closed deals, say)."""
    status_column: tuple[str, ...] = ()
    status_values: Mapping[str, DealStatus] = field(default_factory=dict)
    entered: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    custom: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)
    joins: tuple[Join, ...] = ()
    stages: tuple[str, ...] = ()
    """The pipeline's stages in order, for ``--create-pipeline`` (else taken from the file)."""
    pipeline_name: str | None = None
    signature: frozenset[str] = frozenset()
    """Case-folded headers that identify the format, for auto-detection (built-in maps)."""
    origin: str = OWN_ORIGIN
    """Whose ids the file's ``id`` column holds: the business's own, or a CRM's (its export)."""

    def source_columns(self) -> set[str]:
        named = [*self.columns.values(), self.stage_column, self.status_column, self.won_when_filled]
        named += [*self.entered.values(), *self.custom.values()]
        return {c for names in named for c in names}


def _fail(path: Path | str, problem: str, **params: object) -> ImportFailed:
    """``problem`` is a key of the ``map`` catalogue section."""
    detail = Message(f"map.{problem}", params)
    return ImportFailed(reason=Message("import.bad_map", {"file": str(path), "problem": detail}))


def _names(value: Any, where: str, path: Path | str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _fail(path, "not_columns", where=where)


def _status(text: Any, where: str, path: Path | str) -> DealStatus:
    try:
        return DealStatus(str(text).strip().casefold())
    except ValueError:
        raise _fail(path, "bad_status", where=where, value=str(text)) from None


def parse_map(data: Mapping[str, Any], path: Path | str) -> ColumnMap:
    """A map from its TOML tables; every mistake is named with where it is."""
    sections = {
        "name",
        "origin",
        "detect",
        "columns",
        "stage",
        "status",
        "entered",
        "custom",
        "defaults",
        "join",
        "pipeline",
    }
    unknown = set(data) - sections
    if unknown:
        raise _fail(path, "unknown_sections", names=", ".join(sorted(unknown)))
    columns_table = data.get("columns", {})
    bad = set(columns_table) - set(FIELDS)
    if bad:
        raise _fail(path, "unknown_fields", names=", ".join(sorted(bad)), fields=", ".join(FIELDS))
    columns = {key: _names(value, f"[columns] {key}", path) for key, value in columns_table.items()}
    stage = data.get("stage", {})
    stage_values: dict[str, StageValue] = {}
    for source, meaning in stage.get("values", {}).items():
        if isinstance(meaning, str):
            stage_values[source.strip().casefold()] = StageValue(meaning)
        elif isinstance(meaning, dict):
            status = _status(meaning["status"], f"[stage.values] {source}", path) if "status" in meaning else None
            stage_values[source.strip().casefold()] = StageValue(meaning.get("stage"), status)
        else:
            raise _fail(path, "bad_stage_value", value=source)
    status = data.get("status", {})
    status_values = {
        str(k).strip().casefold(): _status(v, f"[status.values] {k}", path) for k, v in status.get("values", {}).items()
    }
    pipeline = data.get("pipeline", {})
    joins = tuple(Join(str(j["file"]), str(j["on"])) for j in data.get("join", []))
    if "id" not in columns:
        raise _fail(path, "id_required")
    if "created_at" not in columns and "created_at" not in data.get("defaults", {}):
        raise _fail(path, "created_required")
    return ColumnMap(
        name=str(data.get("name", Path(str(path)).stem)),
        origin=str(data.get("origin", OWN_ORIGIN)),
        columns=columns,
        stage_column=_names(stage["column"], "[stage] column", path) if "column" in stage else (),
        stage_values=stage_values,
        stage_default=stage.get("default"),
        won_when_filled=_names(stage["won_when_filled"], "[stage] won_when_filled", path)
        if "won_when_filled" in stage
        else (),
        status_column=_names(status["column"], "[status] column", path) if "column" in status else (),
        status_values=status_values,
        entered={k: _names(v, f"[entered] {k}", path) for k, v in data.get("entered", {}).items()},
        custom={k: _names(v, f"[custom] {k}", path) for k, v in data.get("custom", {}).items()},
        defaults={k: str(v) for k, v in data.get("defaults", {}).items()},
        joins=joins,
        stages=tuple(pipeline.get("stages", ())),
        pipeline_name=pipeline.get("name"),
        signature=frozenset(h.strip().casefold() for h in data.get("detect", {}).get("headers", ())),
    )


def load_map(path: Path) -> ColumnMap:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImportFailed(
            reason=Message("import.cannot_open", {"file": path.name, "reason": exc.strerror or str(exc)})
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path.name, "syntax", detail=str(exc)) from None
    return parse_map(data, path.name)


def builtin_map(name: str) -> ColumnMap:
    """A map shipped with the package (``ingest/importers/maps/NAME.toml``)."""
    text = resources.files("voronka.ingest.importers").joinpath("maps", f"{name}.toml").read_text(encoding="utf-8")
    return parse_map(tomllib.loads(text), f"{name}.toml")
