"""The funnel from daily counts (no-CRM mode): period view only, since there are no deals to follow.

Entries per stage come straight from the counts typed in; losses are not known (only how many
reached each stage), so they are reported as unknown rather than as zero.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from voronka import schema
from voronka.analysis.funnel.compute import FunnelFigures, reached_by_passage, stage_figures
from voronka.analysis.funnel.counts import ReachRow
from voronka.analysis.funnel.dimensions import (
    Dimension,
    DimensionContext,
    ManagerDimension,
    SourceDimension,
    TimeDimension,
)
from voronka.reading import Reader


def only_daily_counts(session: Reader, pipeline_ids: Sequence[int]) -> bool:
    """True when the pipelines hold daily counts and no deals."""
    has_deals = (
        session.scalar(select(schema.deals.c.id).where(schema.deals.c.pipeline_id.in_(pipeline_ids)).limit(1))
        is not None
    )
    if has_deals:
        return False
    return (
        session.scalar(
            select(schema.daily_counts.c.id).where(schema.daily_counts.c.pipeline_id.in_(pipeline_ids)).limit(1)
        )
        is not None
    )


def aggregated_figures(
    session: Reader,
    pipeline_id: int,
    names: Sequence[str],
    currency: str,
    date_from: dt.date | None,
    date_to: dt.date | None,
    dimension: Dimension | None,
    context: DimensionContext,
    manager_id: int | None = None,
) -> tuple[FunnelFigures, dict[Any, FunnelFigures]]:
    """Figures in total and per group of ``dimension`` (time, source or manager); with
    ``manager_id``, of that manager's rows only."""
    query = select(
        schema.daily_counts.c.day,
        schema.daily_counts.c.stage_position,
        schema.daily_counts.c.source_id,
        schema.daily_counts.c.manager_id,
        schema.daily_counts.c.count,
        schema.daily_counts.c.revenue,
    ).where(schema.daily_counts.c.pipeline_id == pipeline_id)
    if manager_id is not None:
        query = query.where(schema.daily_counts.c.manager_id == manager_id)
    if date_from is not None:
        query = query.where(schema.daily_counts.c.day >= date_from)
    if date_to is not None:
        query = query.where(schema.daily_counts.c.day < date_to)
    rows = session.execute(query).all()
    ids = {"source": {r[2] for r in rows}, "manager": {r[3] for r in rows}}
    labels: dict[Any, str | None] = {}
    if isinstance(dimension, SourceDimension | ManagerDimension):
        labels = dimension.labels(context, ids[dimension.name])
    reaches: dict[Any, list[ReachRow]] = defaultdict(list)
    revenue: dict[Any, int] = defaultdict(int)
    for day, position, source_id, manager_id, count, money in rows:
        group = _group_of(dimension, labels, day, source_id, manager_id)
        reaches[group].append(ReachRow(group, int(position), int(count)))
        if position == len(names) and money:
            revenue[group] += int(money)
    total = _figures(names, currency, [r for rs in reaches.values() for r in rs], sum(revenue.values()))
    groups = {g: _figures(names, currency, rs, revenue.get(g, 0)) for g, rs in reaches.items()} if dimension else {}
    return total, groups


def _group_of(
    dimension: Dimension | None, labels: dict[Any, str | None], day: dt.date, source_id: Any, manager_id: Any
) -> Any:
    if dimension is None:
        return None
    if isinstance(dimension, TimeDimension):
        return dimension.label_of(day)
    return labels.get(source_id if dimension.name == "source" else manager_id)


def empty_figures(names: Sequence[str]) -> FunnelFigures:
    """A group (a period, say) with nothing typed in."""
    return _figures(names, "", [], 0)


def _figures(names: Sequence[str], currency: str, reaches: Sequence[ReachRow], revenue: int) -> FunnelFigures:
    reached = reached_by_passage(reaches, len(names))
    return FunnelFigures(
        deals=reached[0] if reached else 0,
        won=reached[-1] if reached else 0,
        lost=None,
        open=None,
        revenue={currency: revenue} if revenue else {},
        stages=stage_figures(names, reached, None, None),
    )
