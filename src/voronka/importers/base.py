"""What every importer shares: the record it produces, the report it returns, the registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from sqlalchemy.orm import Session

from voronka.i18n import Message
from voronka.importers.tables import TableFile
from voronka.models import Account, DealStatus, Pipeline


class Progress(Protocol):
    """Told how many rows to expect, then how many were just processed."""

    def start(self, total: int) -> None: ...

    def advance(self, rows: int) -> None: ...


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
class Rejected:
    line: int
    reason: Message


@dataclass
class ImportReport:
    file: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self, lang: str = "en") -> dict[str, Any]:
        return {
            "file": self.file,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"line": r.line, "reason": r.reason.render(lang)} for r in self.rejected],
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class ImportTarget:
    """Where records go: the account and pipeline, and how to read times and money."""

    session: Session
    account: Account
    pipeline: Pipeline


class Importer(Protocol):
    """Reads one kind of file into records; ``write`` stores them (see importers.writer)."""

    name: str

    def recognises(self, header: set[str]) -> bool:
        """Whether a (case-folded) header looks like this format, for auto-detection."""

    def check_header(self, table: TableFile, target: ImportTarget) -> None:
        """Raise ImportFailed when the file is not of this format; nothing is written then."""

    def records(self, table: TableFile, target: ImportTarget, report: ImportReport) -> Iterator[Any]:
        """Records of the good rows; bad rows go to ``report.rejected``."""
