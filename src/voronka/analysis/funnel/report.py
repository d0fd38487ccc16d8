"""The funnel analytic: query → resolved context → SQL counts → pure figures → typed report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from voronka import schema
from voronka.analysis.funnel import counts
from voronka.analysis.funnel.aggregated import aggregated_figures, empty_figures, only_daily_counts
from voronka.analysis.funnel.compute import (
    FunnelFigures,
    cohort_figures,
    period_figures,
    reached_by_passage,
    split_by_group,
)
from voronka.analysis.funnel.counts import OutcomeRow, ReachRow, Scope
from voronka.analysis.funnel.dimensions import (
    Dimension,
    DimensionContext,
    ManagerDimension,
    PipelineDimension,
    SourceDimension,
    TimeDimension,
    resolve_dimension,
)
from voronka.analysis.funnel.query import FunnelQuery, Rule, View
from voronka.analysis.funnel.timing import Timing, load_timing
from voronka.errors import NoPipeline
from voronka.money import report_currency
from voronka.reading import AccountLike, PipelineLike, Reader, choose_pipeline, pipelines_of
from voronka.timeutil import fixed_offset_minutes, local_midnight_utc, utcnow, zone


@dataclass(frozen=True)
class FunnelGroup:
    by: str
    value: str | None
    figures: FunnelFigures


@dataclass(frozen=True)
class FunnelReport:
    """A funnel as docs/funnel.md defines it, with what it was computed from."""

    pipeline: str
    stage_names: tuple[str, ...]
    view: View
    rule: Rule
    date_from: dt.date | None
    date_to: dt.date | None
    currency: str
    timezone: str
    figures: FunnelFigures
    by: str | None = None
    groups: tuple[FunnelGroup, ...] | None = None
    timing: Timing | None = None
    immature_share: float = 0.2
    aggregated: bool = False
    """Counted from daily counts typed in without a CRM (period view only)."""


@dataclass(frozen=True)
class _Context:
    session: Reader
    query: FunnelQuery
    pipelines: tuple[PipelineLike, ...]
    scope: Scope
    dimension: Dimension | None
    dimension_context: DimensionContext
    summary: bool = True

    def key_of(self) -> Callable[[Any], Any] | None:
        dimension, context = self.dimension, self.dimension_context
        if dimension is None:
            return None
        return lambda column: dimension.key(context, column)

    @property
    def from_days(self) -> bool:
        """Whether the per-day summary answers: the cohort under the cumulative rule, in total or by
        a local period, source or manager (the passage rule and custom fields read the deals)."""
        query, dimension = self.query, self.dimension
        answerable = dimension is None or isinstance(
            dimension, TimeDimension | SourceDimension | ManagerDimension | PipelineDimension
        )
        return self.summary and query.view is View.COHORT and query.rule is Rule.CUMULATIVE and answerable

    def day_key(self) -> Any:
        """The summary's grouping key for the dimension: its local day cut to the period, or the id."""
        dimension = self.dimension
        if dimension is None or isinstance(dimension, PipelineDimension):
            return None
        if isinstance(dimension, SourceDimension | ManagerDimension):
            return dimension.day_column()
        return dimension.key(self.dimension_context, schema.deal_days.c.day)

    def names_of(self, pipeline_id: int) -> tuple[str, ...]:
        pipeline = next(p for p in self.pipelines if p.id == pipeline_id)
        return tuple(s.name for s in pipeline.stages)


def run_funnel(*, session: Reader, account: AccountLike, query: FunnelQuery, summary: bool = True) -> FunnelReport:
    """Count the funnel that ``query`` asks for. ``summary=False`` counts every deal even where the
    per-day summary could answer (how the summary is checked against the deals)."""
    query.validate()
    context = _resolve(session, account, query, summary)
    if only_daily_counts(session, context.scope.pipeline_ids) and not isinstance(context.dimension, PipelineDimension):
        return _aggregated_report(context, account)
    groups: tuple[FunnelGroup, ...] | None
    if isinstance(context.dimension, PipelineDimension):
        groups = _groups_per_pipeline(context)
        figures = _sum_groups(groups)
    else:
        figures, groups = _count(context)
    timing = None
    if query.timing and query.view is View.COHORT:
        timing = load_timing(session, context.scope, len(context.pipelines[0].stages))
    names = tuple(s.name for s in context.pipelines[0].stages) if len(context.pipelines) == 1 else ()
    return FunnelReport(
        pipeline=", ".join(p.name for p in context.pipelines),
        stage_names=names,
        view=query.view,
        rule=query.rule,
        date_from=query.date_from,
        date_to=query.date_to,
        currency=report_currency(figures.revenue, account.currency),
        timezone=account.timezone,
        figures=figures,
        by=context.dimension.name if context.dimension else None,
        groups=groups,
        timing=timing,
        immature_share=query.immature_share,
    )


def _aggregated_report(context: _Context, account: AccountLike) -> FunnelReport:
    """No-CRM mode: the period view of the daily counts (a cohort needs deals to follow)."""
    pipeline = context.pipelines[0]
    names = tuple(s.name for s in pipeline.stages)
    query = context.query
    total, by_group = aggregated_figures(
        context.session,
        pipeline.id,
        names,
        account.currency,
        query.date_from,
        query.date_to,
        context.dimension,
        context.dimension_context,
        query.manager_id,
    )
    groups = None
    if context.dimension is not None:
        values = _ordered_values(context, set(by_group), {})
        empty = empty_figures(names)
        groups = tuple(FunnelGroup(context.dimension.name, v, by_group.get(v, empty)) for v in values)
    return FunnelReport(
        pipeline=pipeline.name,
        stage_names=names,
        view=View.PERIOD,
        rule=query.rule,
        date_from=query.date_from,
        date_to=query.date_to,
        currency=account.currency,
        timezone=account.timezone,
        figures=total,
        by=context.dimension.name if context.dimension else None,
        groups=groups,
        aggregated=True,
    )


def _resolve(session: Reader, account: AccountLike, query: FunnelQuery, summary: bool = True) -> _Context:
    dimension = resolve_dimension(query.by) if query.by else None
    if isinstance(dimension, PipelineDimension) and query.pipeline is None:
        pipelines = tuple(pipelines_of(session, account.id))
        if not pipelines:
            raise NoPipeline()
    else:
        pipelines = (choose_pipeline(pipelines_of(session, account.id), query.pipeline),)
    tz = zone(account.timezone)
    scope = Scope(
        pipeline_ids=tuple(p.id for p in pipelines),
        won_stage_ids=tuple(p.stages[-1].id for p in pipelines),
        start=local_midnight_utc(query.date_from, tz) if query.date_from else None,
        end=local_midnight_utc(query.date_to, tz) if query.date_to else None,
        manager_id=query.manager_id,
        first_day=query.date_from,
        end_day=query.date_to,
    )
    context = _Context(session, query, pipelines, scope, dimension, DimensionContext(session, account.id, tz), summary)
    if dimension is None or not dimension.is_time:
        return context
    # The summary's days are local already (SQL cuts them with no shift); deals need the zone's offset.
    offset = 0 if context.from_days else _fixed_offset(session, scope, tz)
    return replace(context, dimension_context=DimensionContext(session, account.id, tz, offset))


def _fixed_offset(session: Reader, scope: Scope, tz: ZoneInfo) -> int | None:
    """The zone's offset if it holds over the whole range (the data's own span when open-ended)."""
    start, end = scope.start, scope.end
    if start is None or end is None:
        first, last = session.execute(
            select(func.min(schema.deals.c.created_at), func.max(schema.deals.c.created_at)).where(
                schema.deals.c.pipeline_id.in_(scope.pipeline_ids)
            )
        ).one()
        if first is None:
            return None
        start = start or first
        end = end or max(last, utcnow())
    return fixed_offset_minutes(tz, start, end)


def _count(context: _Context) -> tuple[FunnelFigures, tuple[FunnelGroup, ...] | None]:
    """Figures of one pipeline, in total and per group of the dimension."""
    names = context.names_of(context.pipelines[0].id)
    key_of = context.key_of()
    build: Callable[[list[Any], list[Any]], FunnelFigures]
    if context.query.view is View.PERIOD:
        reaches, outcomes = _period_rows(context, key_of)

        def build(closures: list[Any], entries: list[Any]) -> FunnelFigures:
            return period_figures(names, entries, closures)

    else:
        outcomes, passages = _cohort_rows(context, key_of, len(names))
        passage = passages is not None
        reaches = passages or []

        def build(cohort: list[Any], entries: list[Any]) -> FunnelFigures:
            return _cohort(context, names, cohort, entries if passage else None)

    total = build(_ungroup(outcomes), _ungroup(reaches))
    if context.dimension is None:
        return total, None
    outcomes, reaches = _label(context, outcomes), _label(context, reaches)
    by_outcome, by_reach = split_by_group(outcomes), split_by_group(reaches)
    values = _ordered_values(context, set(by_outcome) | set(by_reach), by_outcome)
    dimension_name = context.dimension.name
    groups = tuple(
        FunnelGroup(dimension_name, value, build(by_outcome.get(value, []), by_reach.get(value, [])))
        for value in values
    )
    return total, groups


def _cohort(
    context: _Context,
    names: Sequence[str],
    outcomes: Sequence[OutcomeRow],
    reaches: Sequence[ReachRow] | None,
) -> FunnelFigures:
    passage = reached_by_passage(reaches, len(names)) if reaches is not None else None
    return cohort_figures(names, outcomes, passage_reached=passage, immature_share=context.query.immature_share)


def _cohort_rows(context: _Context, key_of: Any, positions: int) -> tuple[list[OutcomeRow], list[ReachRow] | None]:
    if context.from_days:
        dimension = context.dimension
        return counts.day_outcomes(
            context.session,
            context.scope,
            context.day_key(),
            account_id=context.dimension_context.account_id,
            by_manager=isinstance(dimension, ManagerDimension),
            by_source=isinstance(dimension, SourceDimension),
        ), None
    outcomes = counts.cohort_outcomes(context.session, context.scope, key_of)
    if context.query.rule is Rule.CUMULATIVE:
        return outcomes, None
    # Passage: actual entries for deals with a known history; the rest count cumulatively.
    reaches = counts.cohort_passages(context.session, context.scope, key_of)
    unknown = counts.cohort_outcomes(context.session, context.scope, key_of, history_known=False)
    for row in unknown:
        reaches.extend(
            ReachRow(row.group, position, row.count) for position in range(1, min(row.furthest, positions) + 1)
        )
    return outcomes, reaches


def _period_rows(context: _Context, key_of: Any) -> tuple[list[ReachRow], list[OutcomeRow]]:
    passage = context.query.rule is Rule.PASSAGE
    dimension = context.dimension
    reach_key = dimension.reach_column() if isinstance(dimension, SourceDimension | ManagerDimension) else None
    needs_deal = dimension is not None and not dimension.is_time and reach_key is None
    reaches = counts.period_entries(
        context.session, context.scope, key_of, passage=passage, needs_deal=needs_deal, reach_key=reach_key
    )
    return reaches, counts.period_closures(context.session, context.scope, key_of)


def _ungroup(rows: Sequence[Any]) -> list[Any]:
    return [replace(row, group=None) for row in rows]


def _label(context: _Context, rows: Sequence[Any]) -> list[Any]:
    assert context.dimension is not None
    labels = context.dimension.labels(context.dimension_context, {row.group for row in rows})
    return [replace(row, group=labels.get(row.group)) for row in rows]


def _ordered_values(context: _Context, values: set[Any], outcomes: dict[Any, list[OutcomeRow]]) -> list[Any]:
    """Periods in time order (empty ones filled in); other groups by size, the unnamed group last."""
    dimension = context.dimension
    assert dimension is not None
    if dimension.is_time:
        present = sorted(v for v in values if v is not None)
        first, last = _period_bounds(context, present)
        return dimension.fill(first, last) if first and last else present
    size = {v: sum(r.count for r in outcomes.get(v, [])) for v in values}
    return sorted(values, key=lambda v: (v is None, -size[v], str(v)))


def _period_bounds(context: _Context, present: list[str]) -> tuple[str | None, str | None]:
    dimension = context.dimension
    query = context.query
    assert isinstance(dimension, TimeDimension)
    label_of = dimension.label_of
    first = label_of(query.date_from) if query.date_from else (present[0] if present else None)
    last_day = query.date_to - dt.timedelta(days=1) if query.date_to else None
    last = label_of(last_day) if last_day else (present[-1] if present else None)
    return first, last


def _groups_per_pipeline(context: _Context) -> tuple[FunnelGroup, ...]:
    groups = []
    for pipeline in context.pipelines:
        single = replace(
            context,
            pipelines=(pipeline,),
            scope=replace(context.scope, pipeline_ids=(pipeline.id,), won_stage_ids=(pipeline.stages[-1].id,)),
            dimension=None,
        )
        figures, _ = _count(single)
        groups.append(FunnelGroup("pipeline", pipeline.name, figures))
    return tuple(groups)


def _sum_groups(groups: Sequence[FunnelGroup]) -> FunnelFigures:
    """The total over pipelines: deals and money add up; stages only when all pipelines share them."""
    revenue: dict[str, int] = {}
    for group in groups:
        for currency, amount in group.figures.revenue.items():
            revenue[currency] = revenue.get(currency, 0) + amount
    opens = [g.figures.open for g in groups]
    deals = sum(g.figures.deals for g in groups)
    open_total = None if any(o is None for o in opens) else sum(o or 0 for o in opens)
    return FunnelFigures(
        deals=deals,
        won=sum(g.figures.won for g in groups),
        lost=sum(g.figures.lost or 0 for g in groups),
        open=open_total,
        revenue=revenue,
        stages=(),
        open_share=(open_total / deals) if open_total is not None and deals else None,
    )
