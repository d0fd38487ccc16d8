"""The deal-state rules, in one place: what a deal's stage log and calls imply.

Every path that writes a deal — the CRM services, the import writer, the events file, the demo,
renumbering stages, reopening and undoing, ``voronka recount`` — asks these pure functions how far
the deal got, when it reached each stage, where it stands, when it was first contacted and how fast.
They take plain values (positions, times, a status), never a session, so they are tested without a
database and a second process can run them (``importers.shaping``). docs/funnel.md states the
same rules in words.

The rules:

- **Won-stage entries count only while the deal is won.** Entering the last stage *is* winning; a
  deal reopened after a win, lost after one, or given such an entry by a file or a CRM has not
  reached the won stage, and no stage is passed by that entry.
- **Furthest stage**: the highest stage counted (entered, or stood in now); the won stage for a won
  deal; never the won stage for any other.
- **Reaches** (the cumulative rule): a deal reached stage k when it first entered k or any later
  stage; a skipped stage is passed at the moment the deal jumped beyond it.
- **Where a deal stands**: a won deal in the won stage; any other in the stage of its latest counted
  entry (the first stage when it has none).
- **First contact**: the earliest of its first call that counts as contact (ours, or an answered
  incoming one) and a first contact a file stated; only without either does the first stage move
  stand in, and only when the deal's history is known. The arrival — the deal's first entry, which
  moved it from no stage — is not a move; an entry a history file added later is.
- **Speed to lead**: whole minutes begun from creation to first contact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from voronka.timeutil import minutes_begun

Entry = tuple[int, dt.datetime]
"""A stage entry: (position, when)."""


class LoggedEntry(NamedTuple):
    """A stage entry as the log holds it: its position, when, and whether it moved the deal from
    another stage (an arrival did not)."""

    position: int
    at: dt.datetime
    moved: bool


def counted(entries: Iterable[Entry], *, won: bool, last_position: int) -> list[Entry]:
    """The entries that count: all of them, less the won stage's unless the deal is won."""
    return [(p, at) for p, at in entries if won or p != last_position]


def furthest_position(entries: Iterable[Entry], *, won: bool, last_position: int, current: int = 1) -> int:
    """How far the deal got: the won stage for a won deal; else the highest stage it entered or
    stands in, below the won stage."""
    if won:
        return last_position
    highest = max((p for p, _ in entries if p != last_position), default=1)
    return max(min(max(highest, current), last_position - 1), 1)


def reach_times(
    entries: Iterable[Entry], furthest: int, *, won: bool, last_position: int
) -> list[tuple[int, dt.datetime, dt.datetime | None]]:
    """(position, reached at, first actual entry or None) for positions 2..``furthest``."""
    first: dict[int, dt.datetime] = {}
    for position, at in entries:
        if position == last_position and not won:
            continue  # an entry into the won stage of a deal that is not won
        if position not in first or at < first[position]:
            first[position] = at
    rows = []
    earliest: dt.datetime | None = None
    for position in range(furthest, 1, -1):
        if position in first:
            earliest = first[position] if earliest is None else min(earliest, first[position])
        if earliest is not None:
            rows.append((position, earliest, first.get(position)))
    return sorted(rows)


def standing_position(entries: Iterable[Entry], *, won: bool, last_position: int) -> int:
    """Where the deal stands: the won stage when won; else the stage of its latest counted entry
    (entries in log order, so a later one at the same time wins), the first stage without one."""
    if won:
        return last_position
    latest: Entry | None = None
    for entry in entries:
        if entry[0] != last_position and (latest is None or entry[1] >= latest[1]):
            latest = entry
    return latest[0] if latest is not None else 1


def first_move(entries: Iterable[LoggedEntry]) -> dt.datetime | None:
    """When the deal first moved between stages: its earliest entry but its arrival — the first
    entry (in time, then log order) that came from no stage. Positions do not tell it: a stage added
    before the first one makes the arrival's stage the second."""
    arrived = False
    for entry in sorted(entries, key=lambda e: e.at):  # stable: log order among equal times
        if not entry.moved and not arrived:
            arrived = True
            continue
        return entry.at
    return None


def first_contact(
    *,
    first_call: dt.datetime | None,
    stated: dt.datetime | None,
    first_moved: dt.datetime | None,
    history_known: bool,
) -> dt.datetime | None:
    """The first contact: the earliest call that counts or stated contact; else the first move,
    when the history is known (a deal imported without entry times has none to trust)."""
    contacts = [t for t in (first_call, stated) if t is not None]
    if contacts:
        return min(contacts)
    return first_moved if history_known else None


def speed_minutes(created_at: dt.datetime, contact: dt.datetime | None) -> int | None:
    """Speed to lead: whole minutes begun from creation to first contact (None without contact)."""
    return minutes_begun(created_at, contact)


class DealState(NamedTuple):
    """Everything derived about one deal."""

    position: int
    """The stage it stands in."""
    furthest_position: int
    reaches: list[tuple[int, dt.datetime, dt.datetime | None]]
    first_contact_at: dt.datetime | None
    contact_minutes: int | None


def derive(
    *,
    entries: list[LoggedEntry],
    won: bool,
    last_position: int,
    created_at: dt.datetime,
    history_known: bool,
    first_call: dt.datetime | None,
    stated_contact: dt.datetime | None,
    position: int | None = None,
    elsewhere: Iterable[LoggedEntry] = (),
) -> DealState:
    """A deal's whole derived state from its log (entries into its pipeline's stages, in log
    order), status and calls. ``position``: where it stands, when that is known apart from the log
    (a won deal's or a lost deal's stage); a stage it may not stand in is replaced by the rule's.
    ``elsewhere``: its entries into the stages of a pipeline it has left, which tell when it was
    first moved but nothing of how far it got in this one."""
    pairs = [(e.position, e.at) for e in entries]
    standing = standing_position(pairs, won=won, last_position=last_position)
    if position is not None and (position == last_position) == won:
        standing = position
    furthest = furthest_position(pairs, won=won, last_position=last_position, current=standing)
    contact = first_contact(
        first_call=first_call,
        stated=stated_contact,
        first_moved=first_move([*entries, *elsewhere]),
        history_known=history_known,
    )
    return DealState(
        standing,
        furthest,
        reach_times(pairs, furthest, won=won, last_position=last_position),
        contact,
        speed_minutes(created_at, contact),
    )
