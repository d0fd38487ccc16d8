"""Stage reaches as rows: when each deal reached each stage after the first (the times come from
``crm.deal_state.reach_times``; ``crm.derived`` keeps them in step with the log). Stage 1 needs no
rows: every deal reaches it when it is created.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from voronka import schema
from voronka.crm.deal_state import reach_times
from voronka.db import bulk_insert
from voronka.models import DealStatus

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
_REACHES = schema.stage_reaches


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
