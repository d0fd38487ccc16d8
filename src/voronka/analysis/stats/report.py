"""The statistics template as a typed report: query → periods and mode → counted values → tables."""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from voronka import schema
from voronka.analysis.currencies import money_notes
from voronka.analysis.funnel.dimensions import DimensionContext, ManagerDimension, SourceDimension
from voronka.analysis.stats import counts, daily
from voronka.analysis.stats.metrics import Metric, Number, metrics_for
from voronka.analysis.stats.periods import Grain, Period, default_range, periods_between
from voronka.analysis.stats.plans import load_plans, plan_in_metric_units
from voronka.analysis.stats.table import Table, build_table
from voronka.errors import DateRangeReversed, InvalidQuery
from voronka.i18n import Message
from voronka.reading import AccountLike, Reader, choose_pipeline, pipelines_of
from voronka.timeutil import check_day, to_local, utcnow, zone


class Mode(enum.StrEnum):
    CRM = "crm"
    """Counted from deals, stage changes and calls."""
    COUNTS = "counts"
    """No-CRM mode: from the daily counts per stage a business keeps by hand (period view only)."""


MAX_COLUMNS = 1_000
"""More periods than this is not a table anyone reads (and would take the server's memory)."""


@dataclass(frozen=True)
class StatsQuery:
    pipeline: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    grain: Grain = Grain.WEEK
    by: str | None = None
    manager_id: int | None = None
    """Only this manager's deals (see ``voronka.crm.auth.report_scope``); spend is then not shown."""


@dataclass(frozen=True)
class StatsReport:
    pipeline: str
    stage_names: tuple[str, ...]
    grain: Grain
    periods: tuple[Period, ...]
    mode: Mode
    currency: str
    today: dt.date
    metrics: tuple[Metric, ...]
    total: Table
    by: str | None = None
    cuts: tuple[Table, ...] = ()
    plans: dict[str, dict[dt.date, Number]] = field(default_factory=dict)
    """The team's monthly plans per metric (in the metrics' units), for the workbook's plan sheet."""
    notes: tuple[Message, ...] = ()
    """What the figures leave out (won deals in other currencies than the account's)."""

    @property
    def tables(self) -> tuple[Table, ...]:
        return (self.total, *self.cuts)


_CUT_NAMES = {"manager": ManagerDimension(), "source": SourceDimension()}


def run_stats(*, session: Reader, account: AccountLike, query: StatsQuery, today: dt.date | None = None) -> StatsReport:
    """The statistics template for one pipeline over day, week or month columns."""
    if query.by is not None and query.by not in counts.CUTS:
        raise InvalidQuery(code="unknown_cut", reason=f"unknown --by value {query.by!r}; use manager or source")
    pipeline = choose_pipeline(pipelines_of(session, account.id), query.pipeline)
    today = today or to_local(utcnow(), zone(account.timezone)).date()
    start, end = default_range(query.grain, today)
    start, end = query.date_from or start, query.date_to or end
    check_day(start, "--from")
    check_day(end, "--to")
    if start >= end:
        raise DateRangeReversed(code="date_range_ordered", start=start, end=end)
    days = (end - start).days
    if days / {Grain.DAY: 1, Grain.WEEK: 7, Grain.MONTH: 28}[query.grain] > MAX_COLUMNS:
        raise InvalidQuery(
            code="too_many_columns",
            reason=f"{start} to {end} by {query.grain.value} is more than {MAX_COLUMNS} columns; "
            "choose a shorter range or a coarser --grain",
        )
    periods = tuple(periods_between(query.grain, start, end))
    grid = counts.Grid(session, account, pipeline, query.grain, periods, today, query.manager_id)
    mode = _mode(session, pipeline.id)
    metrics = metrics_for(tuple(s.name for s in pipeline.stages))
    available = (
        frozenset(m.key for m in metrics if m.formula is None and m.key not in daily.UNAVAILABLE)
        if mode is Mode.COUNTS
        else None
    )
    if query.manager_id is not None:  # money is spent on sources, not by one manager
        available = (available or frozenset(m.key for m in metrics if m.formula is None)) - {"spend"}
    collect = daily.base_values if mode is Mode.COUNTS else counts.base_values
    plans = _plans(session, grid, metrics)
    if query.manager_id is not None:  # a manager's own figures are held against their own plans
        plans[(None, None)] = plans.get(("manager", query.manager_id), defaultdict(dict))
    cut = counts.CUTS[query.by] if query.by is not None else None
    if cut is None:
        total_values = collect(grid, None)
        cut_values: counts.BaseValues = {}
    else:
        # The team's medians (medians do not add up) and, when the cut does not split spend, its
        # spend are counted on their own, beside the cut's passes.
        extra: list[tuple[counts.Pass, counts.Cut | None]] = []
        if mode is Mode.CRM:
            extra.append((counts.speed_medians, None))
        if cut.spend is None:
            extra.append((counts.spend_values, None))
        if mode is Mode.CRM:
            cut_values, extra_rows = counts.base_values_and(grid, cut, extra)
        else:
            cut_values = collect(grid, cut)
            extra_rows = counts.run_passes(grid, extra)
        total_values = counts.merged(cut_values)
        for rows in extra_rows:
            for key, metric, value in rows:
                counts.add(total_values[key], metric, value)
    total = build_table(None, metrics, periods, _by_label(total_values, None), plans[(None, None)], today, available)
    cuts: tuple[Table, ...] = ()
    if cut is not None:
        ids = sorted({cut_id for cut_id, _ in cut_values}, key=lambda v: (v is None, v))
        names = _CUT_NAMES[cut.name].labels(grid_context(grid), ids)
        if cut.spend is None:  # money is spent on sources, not on managers
            available = (available or frozenset(m.key for m in metrics if m.formula is None)) - {"spend"}
        cuts = tuple(
            build_table(
                names.get(cut_id),
                metrics,
                periods,
                _by_label(cut_values, cut_id),
                plans[(cut.name, cut_id)],
                today,
                available,
            )
            for cut_id in ids
        )
    return StatsReport(
        pipeline=pipeline.name,
        stage_names=tuple(s.name for s in pipeline.stages),
        grain=query.grain,
        periods=periods,
        mode=mode,
        currency=account.currency,
        today=today,
        metrics=metrics,
        total=total,
        by=query.by,
        cuts=cuts,
        plans={metric: dict(months) for metric, months in plans[(None, None)].items()},
        notes=money_notes(session=session, account=account, pipeline_id=pipeline.id),
    )


def grid_context(grid: counts.Grid) -> DimensionContext:
    return DimensionContext(grid.session, grid.account.id, zone(grid.account.timezone))


def _mode(session: Reader, pipeline_id: int) -> Mode:
    has_deals = (
        session.scalar(select(schema.deals.c.id).where(schema.deals.c.pipeline_id == pipeline_id).limit(1)) is not None
    )
    if has_deals:
        return Mode.CRM
    has_counts = session.scalar(
        select(func.count()).select_from(schema.daily_counts).where(schema.daily_counts.c.pipeline_id == pipeline_id)
    )
    return Mode.COUNTS if has_counts else Mode.CRM


def _by_label(values: counts.BaseValues, cut_id: object) -> dict[str, dict[str, Number | None]]:
    return {label: cell for (cut, label), cell in values.items() if cut == cut_id}


PlanBook = dict[tuple[str | None, object], dict[str, dict[dt.date, Number]]]


def _plans(session: Reader, grid: counts.Grid, metrics: tuple[Metric, ...]) -> PlanBook:
    """Monthly plans by (cut kind, cut id) → metric → month, in the metrics' own units."""
    months = sorted(
        {p.start.replace(day=1) for p in grid.periods}
        | {(p.end - dt.timedelta(days=1)).replace(day=1) for p in grid.periods}
    )
    by_key = {m.key: m for m in metrics}
    book: PlanBook = defaultdict(lambda: defaultdict(dict))
    for plan in load_plans(session, grid.pipeline.id, months):
        metric = by_key.get(plan.metric)
        if metric is None:
            continue
        cut: tuple[str | None, object] = (
            ("manager", plan.manager_id)
            if plan.manager_id
            else ("source", plan.source_id)
            if plan.source_id
            else (None, None)
        )
        book[cut][plan.metric][plan.month] = plan_in_metric_units(metric, plan.value)
    return book
