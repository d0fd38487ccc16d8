"""Deals per local day: the ``deal_days`` summary the cohort funnel reads instead of every deal.

A cell is a pipeline, a local day of creation (in the account's time zone), a manager and a source
(0 for none), a furthest stage, status, currency and whether the history is known; it holds how
many deals and their summed amounts. Each deal counts in four cells: its own manager and source,
and ``ALL`` in place of either or both, so that a report of the whole team reads a few thousand
cells, not one per manager × source × day. Every write keeps the cells in step, inside the same
transaction as the deals:

- deals written through the ORM (cards, the board, leads, syncs, re-imports, merges) by a flush
  hook that moves each changed deal out of its old cell and into its new one
  (``voronka.deal_days_tracking``);
- new deals inserted in bulk (imports) by ``add_deals``;
- a new time zone for the account, by the same hook rebuilding the account's cells;
- statements that rewrite many deals at once (renumbered stages, merged sources) by rebuilding
  the pipeline or the account from its deals (``rebuild_pipeline``, ``rebuild_account``).

``compute_cells`` counts the same cells from the deals directly: the rebuild, and the tests that
hold the kept cells equal to it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    and_,
    delete,
    func,
    insert,
    literal,
    select,
    tuple_,
    union_all,
)

from voronka import schema
from voronka.sqlfuncs import shifted_date, time_prefix
from voronka.sqlwrite import bulk_insert, dialect_insert
from voronka.timeutil import fixed_offset_minutes, zone

_DAYS = schema.deal_days
KEY = (
    "account_id",
    "pipeline_id",
    "manager_id",
    "source_id",
    "day",
    "furthest_position",
    "status",
    "currency",
    "history_known",
)
FACTS = (*KEY[:4], "created_at", *KEY[5:], "amount")
"""The deal's attributes its cell depends on (``created_at`` gives the day)."""
NONE = 0
"""The manager or source id of a deal that has none."""
ALL = -1
"""The manager or source id of a cell that counts every manager's or every source's deals."""


class Cell(NamedTuple):
    account_id: int
    pipeline_id: int
    manager_id: int
    source_id: int
    day: dt.date
    furthest_position: int
    status: str
    currency: str
    history_known: bool


Tally = dict[Cell, list[int]]
"""Cell → [deals, amount] to add (negative to take away)."""


@functools.lru_cache(maxsize=65_536)
def _local_day_of_hour(hour: dt.datetime, tz: ZoneInfo, minutes: int) -> dt.date:
    return (hour + dt.timedelta(minutes=minutes)).replace(tzinfo=dt.UTC).astimezone(tz).date()


def local_day(at: dt.datetime, tz: ZoneInfo) -> dt.date:
    """The local date of the naive UTC instant ``at``. Zones change offset on whole quarter hours,
    so the date is looked up per quarter hour."""
    quarter = at.minute - at.minute % 15
    return _local_day_of_hour(at.replace(minute=0, second=0, microsecond=0), tz, quarter)


def _add(
    counted: Tally,
    account_id: int,
    pipeline_id: int,
    manager_id: int | None,
    source_id: int | None,
    day: dt.date,
    outcome: tuple[int, str, str, bool],
    deals: int,
    amount: int,
) -> None:
    """Add deals to the four cells they count in: with their own manager and source, and under
    ``ALL`` for either and both."""
    manager, source = manager_id or NONE, source_id or NONE
    for m, s in ((manager, source), (manager, ALL), (ALL, source), (ALL, ALL)):
        counts = counted[Cell(account_id, pipeline_id, m, s, day, *outcome)]
        counts[0] += deals
        counts[1] += amount


def count_into(counted: Tally, facts: Mapping[str, Any], tz: ZoneInfo, sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) one deal given its ``FACTS``."""
    outcome = (
        int(facts["furthest_position"]),
        str(facts["status"]),
        str(facts["currency"]),
        bool(facts["history_known"]),
    )
    day = local_day(facts["created_at"], tz)
    amount = sign * int(facts["amount"] or 0)
    _add(
        counted,
        facts["account_id"],
        facts["pipeline_id"],
        facts["manager_id"],
        facts["source_id"],
        day,
        outcome,
        sign,
        amount,
    )


def tally(deals: Iterable[Mapping[str, Any]], tz: ZoneInfo) -> Tally:
    counted: Tally = defaultdict(lambda: [0, 0])
    for facts in deals:
        count_into(counted, facts, tz, 1)
    return counted


def apply(connection: Connection, changes: Tally) -> None:
    """Add ``changes`` to the stored cells (in key order, so concurrent writers lock cells in the
    same order) and drop cells left with no deals."""
    rows = [
        {**cell._asdict(), "deals": n, "amount": amount} for cell, (n, amount) in sorted(changes.items()) if n or amount
    ]
    if not rows:
        return
    statement = dialect_insert(connection, schema.deal_days)
    upsert = statement.on_conflict_do_update(
        index_elements=list(KEY),
        set_={
            "deals": schema.deal_days.c.deals + statement.excluded.deals,
            "amount": schema.deal_days.c.amount + statement.excluded.amount,
        },
    )
    connection.execute(upsert, rows)
    emptied = [tuple(cell) for cell, (n, _) in changes.items() if n < 0]
    for start in range(0, len(emptied), 500):
        keys = emptied[start : start + 500]
        connection.execute(
            delete(schema.deal_days).where(
                tuple_(*(getattr(schema.deal_days.c, k) for k in KEY)).in_(keys), schema.deal_days.c.deals <= 0
            )
        )


def add_deals(connection: Connection, deals: Iterable[Mapping[str, Any]], timezone: str) -> None:
    """Count newly inserted deals (each a mapping with ``FACTS``) into their cells."""
    apply(connection, tally(deals, zone(timezone)))


def compute_cells(connection: Connection, pipeline_id: int) -> Tally:
    """The cells of a pipeline counted from its deals. SQL counts the deals per local day when the
    zone's offset holds over their span (per local hour otherwise, the hours then put on their
    local days here): Python sees groups, not deals."""
    tz, first, last = _zone_and_span(connection, pipeline_id)
    counted: Tally = defaultdict(lambda: [0, 0])
    if first is None:
        return counted
    offset = fixed_offset_minutes(tz, first, last)
    # A fixed offset cuts local days in SQL; otherwise hours, shifted by the offset's sub-hour part.
    shift = offset if offset is not None else _offset_minutes(tz, first) % 60
    when = time_prefix(schema.deals.c.created_at, shift, 10 if offset is not None else 13)
    columns = [
        schema.deals.c.account_id,
        schema.deals.c.pipeline_id,
        schema.deals.c.manager_id,
        schema.deals.c.source_id,
        when,
        *(getattr(schema.deals.c, k) for k in KEY[5:]),
    ]
    rows = connection.execute(
        select(*columns, func.count(), func.coalesce(func.sum(schema.deals.c.amount), 0))
        .where(schema.deals.c.pipeline_id == pipeline_id)
        .group_by(*columns)
    )
    day_of = _day_parser(tz, offset, shift)
    for account_id, _, manager, source, text, furthest, status, currency, known, n, amount in rows:
        facts = (int(furthest), str(status), str(currency), bool(known))
        _add(counted, account_id, pipeline_id, manager, source, day_of(text), facts, int(n), int(amount))
    return counted


def _offset_minutes(tz: ZoneInfo, at: dt.datetime) -> int:
    return int((at.replace(tzinfo=dt.UTC).astimezone(tz).utcoffset() or dt.timedelta()).total_seconds() // 60)


def _day_parser(tz: ZoneInfo, offset: int | None, shift: int) -> Any:
    """Local date of a group's time key: a local day as text, or an hour shifted by ``shift`` minutes."""
    if offset is not None:
        return dt.date.fromisoformat

    @functools.cache
    def of_hour(text: str) -> dt.date:
        utc = dt.datetime.strptime(text, "%Y-%m-%d %H") - dt.timedelta(minutes=shift)
        return local_day(utc, tz)

    return of_hour


def rebuild_pipeline(connection: Connection, pipeline_id: int) -> int:
    """Recount a pipeline's cells from its deals; returns how many cells it has.

    When the zone's offset holds over the deals' span, the database counts and writes the cells
    itself (one ``INSERT … SELECT``): putting each group into its four cells in Python took 20 of
    the 24 seconds a million-deal import spent here. Otherwise the cells are counted here
    (``compute_cells``), local days need zoneinfo's rules."""
    connection.execute(delete(schema.deal_days).where(schema.deal_days.c.pipeline_id == pipeline_id))
    offset = _fixed_offset(connection, pipeline_id)
    if offset is not None:
        connection.execute(
            insert(schema.deal_days).from_select([*KEY, "deals", "amount"], _cells_select(pipeline_id, offset))
        )
        return int(connection.scalar(select(func.count()).where(schema.deal_days.c.pipeline_id == pipeline_id)) or 0)
    cells = compute_cells(connection, pipeline_id)
    rows = [(*cell, n, amount) for cell, (n, amount) in sorted(cells.items()) if n]
    bulk_insert(connection, _DAYS, (*KEY, "deals", "amount"), rows)
    return len(rows)


def _zone_and_span(connection: Connection, pipeline_id: int) -> tuple[ZoneInfo, Any, Any]:
    """The account's zone and the first and last creation time of the pipeline's deals (None, None
    without deals)."""
    timezone = connection.scalar(
        select(schema.accounts.c.timezone)
        .join(schema.pipelines, schema.pipelines.c.account_id == schema.accounts.c.id)
        .where(schema.pipelines.c.id == pipeline_id)
    )
    first, last = connection.execute(
        select(func.min(schema.deals.c.created_at), func.max(schema.deals.c.created_at)).where(
            schema.deals.c.pipeline_id == pipeline_id
        )
    ).one()
    return zone(timezone or "UTC"), first, last


def _fixed_offset(connection: Connection, pipeline_id: int) -> int | None:
    """The account zone's offset over the pipeline's deals, if it does not change (0 with no deals)."""
    tz, first, last = _zone_and_span(connection, pipeline_id)
    return 0 if first is None else fixed_offset_minutes(tz, first, last)


def _cells_select(pipeline_id: int, offset: int) -> Any:
    """The pipeline's cells as rows in ``KEY`` order plus deals and amount: the deals grouped once,
    then each group under its own manager and source and under ``ALL`` for either and both."""
    outcome = [
        schema.deals.c.furthest_position,
        schema.deals.c.status,
        schema.deals.c.currency,
        schema.deals.c.history_known,
    ]
    own = [
        schema.deals.c.account_id,
        schema.deals.c.pipeline_id,
        func.coalesce(schema.deals.c.manager_id, NONE).label("manager_id"),
        func.coalesce(schema.deals.c.source_id, NONE).label("source_id"),
        shifted_date(schema.deals.c.created_at, offset).label("day"),
        *outcome,
    ]
    grouped = (
        select(*own, func.count().label("deals"), func.coalesce(func.sum(schema.deals.c.amount), 0).label("amount"))
        .where(schema.deals.c.pipeline_id == pipeline_id)
        .group_by(*own)
        .cte("grouped")
    )
    g = grouped.c
    rest = [g.day, g.furthest_position, g.status, g.currency, g.history_known]
    variants = []
    for manager, source in ((g.manager_id, g.source_id), (g.manager_id, None), (None, g.source_id), (None, None)):
        keys = [g.account_id, g.pipeline_id, *(c for c in (manager, source) if c is not None), *rest]
        columns = [
            g.account_id,
            g.pipeline_id,
            manager if manager is not None else literal(ALL, Integer),
            source if source is not None else literal(ALL, Integer),
            *rest,
        ]
        if manager is not None and source is not None:
            variants.append(select(*columns, g.deals, g.amount))
        else:
            variants.append(select(*columns, func.sum(g.deals), func.sum(g.amount)).group_by(*keys))
    return union_all(*variants)


def rebuild_account(connection: Connection, account_id: int) -> int:
    """Recount every pipeline of an account (after its time zone changed, or sources merged)."""
    pipeline_ids = connection.scalars(
        select(schema.pipelines.c.id).where(schema.pipelines.c.account_id == account_id)
    ).all()
    return sum(rebuild_pipeline(connection, pipeline_id) for pipeline_id in pipeline_ids)


def cells_read(*, manager_id: int | None, by_manager: bool, by_source: bool) -> ColumnElement[bool]:
    """The coarsest cells that still tell apart what a read splits or filters by: one manager's
    (``manager_id``), each manager's or all of them; each source's or all of them."""
    if manager_id is not None:
        whose = schema.deal_days.c.manager_id == manager_id
    else:
        whose = schema.deal_days.c.manager_id != ALL if by_manager else schema.deal_days.c.manager_id == ALL
    return and_(whose, schema.deal_days.c.source_id != ALL if by_source else schema.deal_days.c.source_id == ALL)


def named_id(column: Any) -> ColumnElement[Any]:
    """A cell's manager or source id as the deals have it: ``None`` for none."""
    return func.nullif(column, NONE)


def stored_cells(connection: Connection, pipeline_id: int) -> Tally:
    """The cells as kept, for comparing with ``compute_cells``."""
    rows = connection.execute(select(schema.deal_days).where(schema.deal_days.c.pipeline_id == pipeline_id)).mappings()
    return {Cell(*(row[k] for k in KEY)): [row["deals"], row["amount"]] for row in rows}
