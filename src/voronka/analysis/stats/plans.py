"""Monthly plans as reports read them: the stored value per metric, month and cut."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from voronka import schema
from voronka.analysis.stats.metrics import Metric, Unit

if TYPE_CHECKING:
    from voronka.reading import Reader

PPM = 1_000_000
"""Shares are stored as parts per million."""


@dataclass(frozen=True)
class StoredPlan:
    metric: str
    month: dt.date
    manager_id: int | None
    source_id: int | None
    value: int
    """In the metric's base unit: a count, minor units of money, or parts per million of a share."""


def load_plans(session: Reader, pipeline_id: int, months: list[dt.date]) -> list[StoredPlan]:
    p = schema.plans.c
    rows = session.execute(
        select(p.metric, p.month, p.manager_id, p.source_id, p.value)
        .where(p.pipeline_id == pipeline_id, p.month.in_(months))
        .order_by(p.id)
    )
    return [StoredPlan(*row) for row in rows]


def plan_in_metric_units(metric: Metric, value: int) -> float:
    """A stored plan as the same kind of number as the metric's values."""
    return value / PPM if metric.unit is Unit.SHARE else float(value)
