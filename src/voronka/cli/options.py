"""Option types shared by commands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated

import typer

from voronka.errors import InvalidChoice, InvalidValue


def parse_date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidValue(field=option, value=value, hint="an ISO date such as 2024-03-01") from None


PipelineOption = Annotated[str | None, typer.Option("--pipeline", help="Pipeline name (default: the only one).")]


def parse_stage_rates(settings: list[str] | None, stages: Sequence[tuple[int, str]], option: str) -> dict[int, float]:
    """``4=35%`` or ``"Точный расчёт=0.35"``: a conversion into a stage named by position or name."""
    chosen: dict[int, float] = {}
    for setting in settings or []:
        key, _, value = setting.partition("=")
        position = next((p for p, name in stages if key.strip() in (str(p), name)), None)
        text = value.strip().replace(",", ".")
        try:
            number = float(text.rstrip("%").strip()) / (100 if text.endswith("%") or float(text.rstrip("%")) > 1 else 1)
        except ValueError:
            number = -1.0
        if position is None or not 0 <= number <= 1:
            raise InvalidValue(field=option, value=setting, hint='STAGE=CONVERSION, e.g. 4=35% or "Точный расчёт=0.35"')
        chosen[position] = number
    return chosen


TABLE_JSON = ("table", "json")
TABLE_JSON_CSV = ("table", "json", "csv")


def choose(value: str, option: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices`` (case ignored), else the one-line ``InvalidChoice``: a
    report asked for in a format nobody offers must not quietly print a table and exit 0."""
    chosen = value.strip().casefold()
    if chosen not in choices:
        raise InvalidChoice(option=option, value=value, choices=", ".join(choices))
    return chosen
