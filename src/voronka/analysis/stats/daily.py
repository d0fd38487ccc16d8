"""The statistics template's base values from daily counts (no-CRM mode), read as the reports need.

These are period-view numbers (docs/funnel.md, "Daily counts"): cohort-only figures and anything
that needs individual deals (calls, speed to lead, loss reasons) are not offered. The counts are
written by ``voronka.analysis.stats.nocrm``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from voronka import schema
from voronka.analysis.stats import counts
from voronka.analysis.stats.metrics import stage_key

UNAVAILABLE = frozenset({"reached", "within_5min", "speed_median", "non_target"})
"""Metrics daily counts can not give."""


def base_values(grid: counts.Grid, cut: counts.Cut | None) -> counts.BaseValues:
    """The counted rows per (cut value, period) from daily counts (and ad spend)."""
    values: counts.BaseValues = defaultdict(dict)
    daily = schema.daily_counts.c
    column = None if cut is None else (daily.manager_id if cut.name == "manager" else daily.source_id)
    selected = [daily.day, daily.stage_position, func.sum(daily.count), func.sum(daily.revenue)]
    query = select(*selected, *([column] if column is not None else [])).where(
        daily.pipeline_id == grid.pipeline.id,
        daily.day >= grid.periods[0].start,
        daily.day < grid.periods[-1].end,
    )
    if grid.manager_id is not None:
        query = query.where(daily.manager_id == grid.manager_id)
    query = query.group_by(daily.day, daily.stage_position, *([column] if column is not None else []))
    last = len(grid.pipeline.stages)
    rows: list[Any] = list(grid.session.execute(query))
    for row in rows:
        day, position, count, revenue = row[0], int(row[1]), int(row[2] or 0), row[3]
        cut_value = row[4] if column is not None else None
        period = next((p for p in grid.periods if p.contains(day)), None)
        if period is None:
            continue
        cell = values[(cut_value, period.label)]
        metric = "leads" if position == 1 else "sales" if position == last else stage_key(position)
        cell[metric] = (cell.get(metric) or 0) + count
        if position == last and revenue is not None:
            cell["revenue"] = (cell.get("revenue") or 0) + int(revenue)
    for spend_key, spend_metric, amount in counts.spend_values(grid, cut):
        spend_cell = values[spend_key]
        spend_cell[spend_metric] = (spend_cell.get(spend_metric) or 0) + amount
    return values
