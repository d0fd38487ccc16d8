"""What an imported deal implies before it meets the database: its stage entries, closing and
first-contact times, search keys, furthest stage and stage reaches.

Pure functions of one record (no session, no ids), so a large import can run them in the process
that reads the file while this one writes (``importers.background``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from voronka.crm.phones import phone_key
from voronka.crm.reaches import reach_times
from voronka.crm.search import search_text
from voronka.ingest.importers.base import DealRecord
from voronka.models import DealStatus
from voronka.timeutil import minutes_begun


class Shaped(NamedTuple):
    """A record and what follows from it alone; the writer adds the ids."""

    record: DealRecord
    entries: list[tuple[int, dt.datetime]]
    """Stage entries in time order, the arrival in the first stage included."""
    closed_at: dt.datetime | None
    first_contact_at: dt.datetime | None
    contact_minutes: int | None
    phone_key: str | None
    search_text: str | None
    furthest_position: int
    reaches: list[tuple[int, dt.datetime, dt.datetime | None]]
    """(position, reached at, entered at) for the stages after the first (``crm.reaches``)."""


def shape(record: DealRecord, last_position: int) -> Shaped:
    entries = planned_entries(record, last_position)
    won = record.status is DealStatus.WON
    won_entry = next((t for p, t in entries if p == last_position), None)
    closed_at = record.closed_at or (won_entry if won else None)
    moves = [t for _, t in entries[1:]] if record.history_known else []
    first_contact = record.first_contact_at or (min(moves) if moves else None)
    furthest = furthest_of((p for p, _ in entries), record.status.value, last_position)
    return Shaped(
        record=record,
        entries=entries,
        closed_at=closed_at,
        first_contact_at=first_contact,
        contact_minutes=minutes_begun(record.created_at, first_contact),
        phone_key=phone_key(record.phone),
        search_text=search_text(record.title, record.contact_name, record.email),
        furthest_position=furthest,
        reaches=reach_times(entries, furthest, won=won, last_position=last_position),
    )


def planned_entries(record: DealRecord, last_position: int) -> list[tuple[int, dt.datetime]]:
    """The stage entries a record implies, in time order, arrival in the first stage included."""
    entries = [(1, record.created_at)]
    entries.extend(e for e in record.entries if e[0] != 1)
    if record.status is DealStatus.WON and not any(p == last_position for p, _ in entries):
        entries.append((last_position, record.closed_at or max(t for _, t in entries)))
    if entries[-1][0] != record.stage_position and record.status is not DealStatus.WON:
        # The deal sits in a stage the history does not end in: it moved there after the last
        # known entry (or, without a history, at some unknown time; closing time is the best bound).
        entries.append((record.stage_position, record.closed_at or entries[-1][1]))
    return entries


def furthest_of(positions: Iterable[int], status: str, last_position: int) -> int:
    """Highest position entered; a deal that is not won never counts as in the won stage."""
    highest = max(positions, default=1)
    return last_position if status == DealStatus.WON.value else min(highest, last_position - 1)
