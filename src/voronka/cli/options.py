"""Option types shared by commands."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from voronka.errors import InvalidValue


def parse_date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidValue(field=option, value=value, hint="an ISO date such as 2024-03-01") from None


PipelineOption = Annotated[str | None, typer.Option("--pipeline", help="Pipeline name (default: the only one).")]
