"""What an imported deal implies before it meets the database: its stage entries, closing and
first-contact times, search keys, furthest stage and stage reaches.

Pure functions of one record (no session, no ids), so a large import can run them in the process
that reads the file while this one writes (``importers.background``). ``laid_out`` goes one step
further, to the rows the tables store, leaving out only what the database hands out: the deal's id
and the ids of its source, manager and loss reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, NamedTuple

from voronka.crm import deal_state
from voronka.crm.phones import phone_key
from voronka.crm.search import search_text
from voronka.ingest.importers.base import DealRecord
from voronka.models import DealStatus


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
    """A new deal's derived state by the rules of ``crm.deal_state``: the arrival is its first
    entry, every later one a move; a new deal has no calls yet."""
    entries = planned_entries(record, last_position)
    won = record.status is DealStatus.WON
    won_entry = next((t for p, t in entries if p == last_position), None)
    closed_at = record.closed_at or (won_entry if won else None)
    first_contact = deal_state.first_contact(
        first_call=None,
        stated=record.first_contact_at,
        first_moved=min((t for _, t in entries[1:]), default=None),
        history_known=record.history_known,
    )
    furthest = deal_state.furthest_position(
        entries, won=won, last_position=last_position, current=record.stage_position
    )
    return Shaped(
        record=record,
        entries=entries,
        closed_at=closed_at,
        first_contact_at=first_contact,
        contact_minutes=deal_state.speed_minutes(record.created_at, first_contact),
        phone_key=phone_key(record.phone),
        search_text=search_text(record.title, record.contact_name, record.email),
        furthest_position=furthest,
        reaches=deal_state.reach_times(entries, furthest, won=won, last_position=last_position),
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


DEAL_FACT_COLUMNS = (
    "title",
    "contact_name",
    "phone",
    "phone_key",
    "email",
    "search_text",
    "amount",
    "currency",
    "status",
    "stage_id",
    "closed_at",
    "stated_contact_at",
    "created_at",
    "custom",
)
"""What a file states about a deal (a re-imported deal is compared on these and its names)."""
NEW_DEAL_COLUMNS = (
    *DEAL_FACT_COLUMNS,
    "first_contact_at",
    "contact_minutes",
    "account_id",
    "pipeline_id",
    "external_id",
    "furthest_position",
    "history_known",
    "updated_at",
)
"""A new deal's columns that ``laid_out`` fills, in its order."""
NEW_DEAL_TIMES = ("closed_at", "stated_contact_at", "first_contact_at", "created_at", "updated_at")
CURRENCY = NEW_DEAL_COLUMNS.index("currency")

Names = tuple[str | None, str | None, str | None]
"""A deal's source, manager and loss reason, by name."""
NewDeal = tuple[Names, tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]
"""A new deal laid out for storing: its names; its ``NEW_DEAL_COLUMNS`` values; its stage log as
(from stage id, to stage id, to position, at); its reaches as (position, reached at, entered at).
A plain tuple: a million of them cross the pipe from the reader, and named tuples pickle slowly."""


class Placement(NamedTuple):
    """What laying out a new deal needs of its destination."""

    account_id: int
    pipeline_id: int
    stage_ids: dict[int, int]
    """Stage id by position."""
    now: Any
    """The time of writing, as ``time`` gives it."""
    time: Callable[[dt.datetime], Any] | None
    """A time as the database stores it; None keeps times as they are (the insert converts them)."""


def laid_out(item: Shaped, place: Placement) -> NewDeal:
    """``item`` as the rows that store it, its times converted by ``place.time``."""
    record, stage_ids, time = item.record, place.stage_ids, place.time
    # Each entry time converted once: the arrival is the creation time, and the reaches and first
    # contact are entry times again (a million deals hold 7.5 million times, 3 million distinct).
    texts: dict[dt.datetime | None, Any] = {at: at if time is None else time(at) for _, at in item.entries}
    text = texts.__getitem__
    values = (
        record.title,
        record.contact_name,
        record.phone,
        item.phone_key,
        record.email,
        item.search_text,
        record.amount,
        record.currency,
        record.status.value,
        stage_ids[record.stage_position],
        _text_of(item.closed_at, texts, time),
        _text_of(record.first_contact_at, texts, time),
        text(record.created_at),
        record.custom,
        _text_of(item.first_contact_at, texts, time),
        item.contact_minutes,
        place.account_id,
        place.pipeline_id,
        record.external_id,
        item.furthest_position,
        record.history_known,
        place.now,
    )
    changes = []
    previous: int | None = None
    for position, at in item.entries:
        stage_id = stage_ids[position]
        changes.append((previous, stage_id, position, text(at)))
        previous = stage_id
    # A reach's times are entry times (``reach_times``); one not entered is None, which ``get`` keeps.
    reaches = [(position, text(at), texts.get(entered)) for position, at, entered in item.reaches]
    return (record.source, record.manager, record.loss_reason), values, changes, reaches


def _text_of(
    at: dt.datetime | None, texts: dict[dt.datetime | None, Any], time: Callable[[dt.datetime], Any] | None
) -> Any:
    """``at`` as stored: from ``texts`` when it is an entry time, else converted here."""
    if at is None:
        return None
    found = texts.get(at)
    if found is not None:
        return found
    return at if time is None else time(at)
