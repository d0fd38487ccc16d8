"""What every importer shares: the record it produces, the report it returns, the registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlalchemy.orm import Session

from voronka.models import Account, DealStatus, Pipeline
from voronka.tabular.files import TableFile
from voronka.tabular.report import ImportReport


class DealRecord(NamedTuple):
    """One deal as a file states it, validated and in our terms (times in naive UTC).

    A NamedTuple rather than a frozen dataclass: a million of them are built per large import.
    """

    line: int
    external_id: str
    created_at: dt.datetime
    stage_position: int
    status: DealStatus
    closed_at: dt.datetime | None = None
    loss_reason: str | None = None
    amount: int | None = None
    currency: str = "RUB"
    source: str | None = None
    manager: str | None = None
    title: str | None = None
    contact_name: str | None = None
    phone: str | None = None
    email: str | None = None
    first_contact_at: dt.datetime | None = None
    entries: tuple[tuple[int, dt.datetime], ...] = ()
    """Known stage entries (position, time) besides the arrival in the first stage."""
    custom: dict[str, Any] = {}  # noqa: RUF012 - never mutated; each record gets its own dict

    @property
    def history_known(self) -> bool:
        return bool(self.entries)


@dataclass(frozen=True)
class EventRecord:
    """One stage entry of an existing or imported deal."""

    line: int
    external_id: str
    stage_position: int
    at: dt.datetime


@dataclass(frozen=True)
class ImportTarget:
    """Where records go: the account and pipeline, and how to read times and money."""

    session: Session
    account: Account
    pipeline: Pipeline
    origin: str | None = None
    """Whose ids the deals carry (``models.Deal.origin``); None: the importer's own (a sync names its CRM)."""


class Importer(Protocol):
    """Reads one kind of file into records; ``write`` stores them (see importers.writer)."""

    name: str
    origin: str
    """Whose ids its files hold (``models.Deal.origin``)."""

    def recognises(self, header: set[str]) -> bool:
        """Whether a (case-folded) header looks like this format, for auto-detection."""

    def check_header(self, table: TableFile, target: ImportTarget) -> None:
        """Raise ImportFailed when the file is not of this format; nothing is written then."""

    def records(self, table: TableFile, target: ImportTarget, report: ImportReport) -> Iterator[Any]:
        """Records of the good rows; bad rows go to ``report.rejected``."""
