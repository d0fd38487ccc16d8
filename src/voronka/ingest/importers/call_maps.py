"""Call maps: how a telephony service's call-detail export becomes our calls (``--map``).

The canonical calls format is a map too (every field read from the column of its own name). A map
names the source column of each field and how the source writes directions and outcomes (without an
outcome column, a call with talk time was answered). The built-in maps live in ``call_maps/*.toml``;
docs/import.md describes the format.
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
from voronka.models import CallDirection, CallOutcome

CALL_FIELDS = (
    "started_at",
    "direction",
    "our_number",
    "client_number",
    "from_number",
    "to_number",
    "outgoing_line",
    "outcome",
    "duration",
    "manager",
    "deal_id",
    "call_id",
)
"""What a map's ``[columns]`` may feed. ``from_number``/``to_number`` stand for our and the client's
number when the export names the two ends of the call instead: the direction says which is which.
``outgoing_line``: the external line an outgoing call went out on, where the calling end is an
employee's extension (Sipuni's «Исходящая линия»): our number for the spam check, when filled."""

DIRECTIONS: Mapping[str, CallDirection] = {
    **dict.fromkeys(("out", "outgoing", "исходящий", "исходящая", "исх", "исх."), CallDirection.OUTGOING),
    **dict.fromkeys(("in", "incoming", "входящий", "входящая", "вх", "вх."), CallDirection.INCOMING),
}
OUTCOMES: Mapping[str, CallOutcome] = {
    **dict.fromkeys(("answered", "отвечен", "отвеченный", "успешный", "success", "ответ"), CallOutcome.ANSWERED),
    **dict.fromkeys(("no_answer", "no answer", "не отвечен", "пропущен", "missed", "недозвон"), CallOutcome.NO_ANSWER),
    **dict.fromkeys(("busy", "занято", "занят"), CallOutcome.BUSY),
    **dict.fromkeys(("rejected", "declined", "отклонён", "отклонен", "сброшен"), CallOutcome.REJECTED),
}


@dataclass(frozen=True)
class CallMap:
    name: str
    columns: Mapping[str, tuple[str, ...]]
    directions: Mapping[str, CallDirection] = field(default_factory=lambda: dict(DIRECTIONS))
    outcomes: Mapping[str, CallOutcome] = field(default_factory=lambda: dict(OUTCOMES))
    default_direction: CallDirection = CallDirection.OUTGOING

    def source_columns(self, name: str) -> tuple[str, ...]:
        return self.columns.get(name, ())


CANONICAL = CallMap("calls", {name: (name,) for name in CALL_FIELDS})


def builtin_call_map(name: str) -> CallMap:
    text = resources.files(__package__).joinpath("call_maps", f"{name}.toml").read_text(encoding="utf-8")
    return parse_call_map(tomllib.loads(text), name)


BUILTIN = ("sipuni", "uis", "zadarma-in", "zadarma-out")


def load_call_map(path: Path) -> CallMap:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ImportFailed(reason=Message("import.bad_map", {"file": path.name, "detail": str(error)})) from None
    return parse_call_map(data, path.stem)


def parse_call_map(data: Mapping[str, Any], name: str) -> CallMap:
    columns = data.get("columns") or {}
    unknown = sorted(set(columns) - set(CALL_FIELDS))
    if unknown:
        detail = f"unknown fields {', '.join(unknown)}; known: {', '.join(CALL_FIELDS)}"
        raise ImportFailed(reason=Message("import.bad_map", {"file": name, "detail": detail}))
    if "started_at" not in columns:
        raise ImportFailed(reason=Message("import.bad_map", {"file": name, "detail": "[columns] needs started_at"}))
    directions = {**DIRECTIONS, **{k.casefold(): CallDirection(v) for k, v in (data.get("directions") or {}).items()}}
    outcomes = {**OUTCOMES, **{k.casefold(): CallOutcome(v) for k, v in (data.get("outcomes") or {}).items()}}
    return CallMap(
        name=str(data.get("name", name)),
        columns={k: (v,) if isinstance(v, str) else tuple(v) for k, v in columns.items()},
        directions=directions,
        outcomes=outcomes,
        default_direction=CallDirection(data.get("default_direction", "out")),
    )
