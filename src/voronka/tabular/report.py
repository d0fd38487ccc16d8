"""What an import says when it is done, and how it reports progress on the way."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from voronka.i18n import Message


class Progress(Protocol):
    """Told how many rows to expect, then how many were just processed."""

    def start(self, total: int) -> None: ...

    def advance(self, rows: int) -> None: ...


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
    notes: list[Message] = field(default_factory=list)
    """What the reader should know besides the counts (a currency adopted or differing)."""

    def add_rejected(self, more: Iterable[Rejected]) -> None:
        """Rows refused elsewhere (while reading the file), kept in line order with the rest."""
        self.rejected = sorted([*self.rejected, *more], key=lambda r: r.line)

    def as_dict(self, lang: str = "en") -> dict[str, Any]:
        return {
            "file": self.file,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"line": r.line, "reason": r.reason.render(lang)} for r in self.rejected],
            "dry_run": self.dry_run,
            "notes": [note.render(lang) for note in self.notes],
        }
