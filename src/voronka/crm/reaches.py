"""Stage reaches: when each deal reached each stage after the first, derived from the log.

The cumulative rule says a deal reached stage k when it first entered k or any later stage; a
skipped stage is passed at the moment the deal jumps beyond it. Entries into the won stage count
only while the deal is won. Stage 1 needs no rows: every deal reaches it when it is created.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from voronka.db import bulk_insert
from voronka.models import Deal, DealStatus, Stage, StageChange, StageReach

REACH_COLUMNS = (
    "account_id",
    "pipeline_id",
    "deal_id",
    "manager_id",
    "source_id",
    "position",
    "reached_at",
    "entered_at",
)
"""A reach row's columns: the deal's own first, then one ``reach_times`` triple, so that a row is
the deal's prefix joined to the triple (a million-deal import builds 1.3 million of them)."""
REACH_TIMES = ("reached_at", "entered_at")
_REACHES = cast(Table, StageReach.__table__)


def reach_times(
    entries: Iterable[tuple[int, dt.datetime]], furthest: int, *, won: bool, last_position: int
) -> list[tuple[int, dt.datetime, dt.datetime | None]]:
    """(position, reached at, first actual entry or None) for positions 2..furthest, from logged entries."""
    first: dict[int, dt.datetime] = {}
    for position, at in entries:
        if position == last_position and not won:
            continue  # an entry into the won stage that a reopen undid
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


class DealFacts(NamedTuple):
    """What ``reach_rows`` needs of a deal, for rows inserted in bulk without ORM objects (a tuple:
    a large import builds one per deal, and a frozen dataclass took three times as long)."""

    id: int
    account_id: int
    pipeline_id: int
    status: str
    furthest_position: int
    manager_id: int | None
    source_id: int | None

    @classmethod
    def of_row(cls, deal_id: int, row: dict[str, Any]) -> DealFacts:
        return cls(
            deal_id,
            row["account_id"],
            row["pipeline_id"],
            row["status"],
            row["furthest_position"],
            row["manager_id"],
            row["source_id"],
        )


def reach_rows(deal: Any, entries: Iterable[tuple[int, dt.datetime]], last_position: int) -> list[tuple[Any, ...]]:
    """Rows of the ``stage_reaches`` table for one deal (anything with the Deal's attributes)."""
    won = deal.status == DealStatus.WON.value
    return rows_of_reaches(deal, reach_times(entries, deal.furthest_position, won=won, last_position=last_position))


def rows_of_reaches(deal: Any, reaches: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``reach_times``' reaches of one deal (its times maybe as stored) as rows of ``stage_reaches``."""
    prefix = (deal.account_id, deal.pipeline_id, deal.id, deal.manager_id, deal.source_id)
    return [prefix + reach for reach in reaches]


def insert_reaches(session: Session, rows: Sequence[tuple[Any, ...]], *, stored: Collection[str] = ()) -> None:
    """Store reach rows (``stored``: their time columns already as the database stores them)."""
    if rows:
        bulk_insert(session.connection(), _REACHES, REACH_COLUMNS, rows, stored=stored)


def refresh_reaches(*, session: Session, deal: Deal) -> None:
    """Recompute one deal's reaches from its log (after a move, win, reopen or re-import)."""
    session.flush()
    session.execute(delete(StageReach).where(StageReach.deal_id == deal.id))
    last = session.scalar(
        select(Stage.position).where(Stage.pipeline_id == deal.pipeline_id).order_by(Stage.position.desc()).limit(1)
    )
    entries = session.execute(
        select(StageChange.to_position, StageChange.at).where(StageChange.deal_id == deal.id)
    ).all()
    insert_reaches(session, reach_rows(deal, [(int(p), t) for p, t in entries], int(last or 0)))


def rebuild_reaches(*, session: Session, pipeline_id: int) -> int:
    """Rebuild every reach of a pipeline from the log; returns the number of rows written."""
    session.flush()
    session.execute(delete(StageReach).where(StageReach.pipeline_id == pipeline_id))
    last = int(
        session.scalar(
            select(Stage.position).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position.desc()).limit(1)
        )
        or 0
    )
    deals = {d.id: d for d in session.scalars(select(Deal).where(Deal.pipeline_id == pipeline_id))}
    entries: dict[int, list[tuple[int, dt.datetime]]] = {deal_id: [] for deal_id in deals}
    log = session.execute(
        select(StageChange.deal_id, StageChange.to_position, StageChange.at)
        .join(Deal)
        .where(Deal.pipeline_id == pipeline_id)
    )
    for deal_id, position, at in log:
        entries[deal_id].append((int(position), at))
    rows = [row for deal_id, deal in deals.items() for row in reach_rows(deal, entries[deal_id], last)]
    insert_reaches(session, rows)
    return len(rows)
