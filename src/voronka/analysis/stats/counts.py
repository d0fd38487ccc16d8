"""The SQL side of the statistics template: base values per period and cut.

Period columns are flows (docs/funnel.md, period view): leads that arrived, stage reaches (cumulative
rule), sales and revenue closed, non-target losses — each in the period it happened. Speed to lead
and the share reached belong to the leads of the period.

Each period is counted with its own range query, so the database seeks its indexes (SQLite
skip-scans the covering index once it has statistics) instead of computing a period key for every
row and sorting them all.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, func, literal, or_, select

from voronka import schema
from voronka.analysis.funnel.counts import Expression
from voronka.analysis.stats.metrics import SPEND_AHEAD, stage_key
from voronka.analysis.stats.periods import Grain, Period
from voronka.db import parallel_reads
from voronka.reading import AccountLike, PipelineLike, Reader
from voronka.schema import CallOutcome, CauseFamily, DealStatus
from voronka.sqlwrite import dialect_name
from voronka.timeutil import local_midnight_utc, zone

Key = tuple[Any, str]  # (cut value id or None, period label)
BaseValues = dict[Key, dict[str, Any]]
WITHIN_MINUTES = 5
SPEED_MEDIAN = "speed_median"


class Cut:
    """What the table is split by: the deal column, the stage-reach column, the spend column."""

    def __init__(self, name: str, deal: Expression, reach: Expression, spend: Expression | None) -> None:
        self.name, self.deal, self.reach, self.spend = name, deal, reach, spend


CUTS: dict[str, Cut] = {
    "manager": Cut("manager", schema.deals.c.manager_id, schema.stage_reaches.c.manager_id, None),
    "source": Cut("source", schema.deals.c.source_id, schema.stage_reaches.c.source_id, schema.ad_spend.c.source_id),
}


@dataclass(frozen=True)
class Grid:
    """Where and when: the pipeline and the periods (local dates)."""

    session: Reader
    account: AccountLike
    pipeline: PipelineLike
    grain: Grain
    periods: tuple[Period, ...]
    today: dt.date | None = None
    """The report's local today: spend dated after it is budget, not fact."""
    manager_id: int | None = None
    """Only this manager's deals (a manager's own statistics); spend, which belongs to sources, is
    then not theirs to see."""

    def of(self, table: Table) -> ColumnElement[bool]:
        """The rows of ``table`` in the grid's pipeline and role scope."""
        condition: ColumnElement[bool] = table.c.pipeline_id == self.pipeline.id
        if self.manager_id is not None:
            condition = and_(condition, table.c.manager_id == self.manager_id)
        return condition

    def bounds(self) -> list[tuple[Period, dt.datetime, dt.datetime]]:
        """Each period with its UTC start and end: periods are local, storage is UTC."""
        tz = zone(self.account.timezone)
        return [(p, local_midnight_utc(p.start, tz), local_midnight_utc(p.end, tz)) for p in self.periods]


def _per_period(
    grid: Grid,
    time_column: Expression,
    cut_column: Expression | None,
    keys: Sequence[Any],
    aggregates: Sequence[Any],
    conditions: Sequence[ColumnElement[bool]],
    joins: Sequence[tuple[Any, Any]] = (),
) -> list[tuple[Any, ...]]:
    """Rows (cut value, period label, *keys, *aggregates): one range query per period."""
    groups = [cut_column] if cut_column is not None else []
    table = schema.stage_reaches if time_column is schema.stage_reaches.c.reached_at else schema.deals
    query = select(cut_column if cut_column is not None else literal(None), *keys, *aggregates).select_from(table)
    for target, on in joins:
        query = query.join(target, on)
    query = query.where(*conditions)
    if groups or keys:
        query = query.group_by(*groups, *keys)
    rows: list[tuple[Any, ...]] = []
    for period, start, end in grid.bounds():
        bounded = query.where(time_column >= start, time_column < end)
        rows.extend((row[0], period.label, *row[1:]) for row in grid.session.execute(bounded))
    return rows


Pass = Callable[[Grid, "Cut | None"], Iterable[tuple[Key, str, Any]]]


def base_values(grid: Grid, cut: Cut | None) -> BaseValues:
    """Every counted row of the template, per (cut value, period)."""
    return base_values_and(grid, cut, ())[0]


def base_values_and(
    grid: Grid, cut: Cut | None, extra: Sequence[tuple[Pass, Cut | None]]
) -> tuple[BaseValues, list[list[tuple[Key, str, Any]]]]:
    """``base_values`` and the rows of ``extra`` passes (the team's medians, say), all run together."""
    passes: list[tuple[Pass, Cut | None]] = [
        (p, cut) for p in (_arrivals, _reaches, _closures, _contacts, spend_values)
    ]
    results = run_passes(grid, [*passes, *extra])
    values: BaseValues = defaultdict(dict)
    for rows in results[: len(passes)]:
        for key, metric, value in rows:
            add(values[key], metric, value)
    return values, results[len(passes) :]


def run_passes(grid: Grid, passes: Sequence[tuple[Pass, Cut | None]]) -> list[list[tuple[Key, str, Any]]]:
    """The rows of each pass, in order, two passes at a time (see ``voronka.db.parallel_reads``)."""

    def task(collect: Pass, cut: Cut | None) -> Callable[[Reader], list[tuple[Key, str, Any]]]:
        return lambda session: list(collect(replace(grid, session=session), cut))

    return parallel_reads(grid.session, [task(collect, cut) for collect, cut in passes])


def add(cell: dict[str, Any], metric: str, value: Any) -> None:
    cell[metric] = value if metric == SPEED_MEDIAN else (cell.get(metric) or 0) + value


def merged(values: BaseValues) -> BaseValues:
    """The team total of the sums per cut (medians do not add up: count them with ``speed_medians``)."""
    total: BaseValues = defaultdict(dict)
    for (_, label), cell in values.items():
        for metric, value in cell.items():
            if metric != SPEED_MEDIAN:
                add(total[(None, label)], metric, value)
    return total


def _arrivals(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, int]]:
    """Leads of the period, those first contacted within five minutes, and — when the pipeline logs
    no calls at all (imported data) — those reached, taken as the ones that got past the first stage."""
    within = func.sum(case((schema.deals.c.contact_minutes <= WITHIN_MINUTES, 1), else_=0))
    past_first = func.sum(case((schema.deals.c.furthest_position > 1, 1), else_=0))
    rows = _per_period(
        grid,
        schema.deals.c.created_at,
        cut.deal if cut else None,
        [],
        [func.count(), within, past_first],
        [grid.of(schema.deals)],
    )
    calls = _has_calls(grid)
    for cut_value, label, count, within_5, reached in rows:
        yield (cut_value, label), "leads", int(count)
        yield (cut_value, label), "within_5min", int(within_5 or 0)
        if not calls:
            yield (cut_value, label), "reached", int(reached or 0)


def _has_calls(grid: Grid) -> bool:
    found = grid.session.scalar(
        select(schema.call_attempts.c.id)
        .join(schema.deals, schema.deals.c.id == schema.call_attempts.c.deal_id)
        .where(grid.of(schema.deals))
        .limit(1)
    )
    return found is not None


def _reaches(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, int]]:
    last = len(grid.pipeline.stages)
    rows = _per_period(
        grid,
        schema.stage_reaches.c.reached_at,
        cut.reach if cut else None,
        [schema.stage_reaches.c.position],
        [func.count()],
        [grid.of(schema.stage_reaches)],
    )
    for cut_value, label, position, count in rows:
        yield (cut_value, label), "sales" if position == last else stage_key(int(position)), int(count)


def _closures(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, int]]:
    """Revenue of the deals won in the period (account currency) and the deals lost as non-target."""
    non_target_reasons = list(
        grid.session.scalars(
            select(schema.loss_reasons.c.id).where(
                schema.loss_reasons.c.account_id == grid.account.id,
                schema.loss_reasons.c.family == CauseFamily.NON_TARGET.value,
            )
        )
    )
    won = (schema.deals.c.status == DealStatus.WON.value) & (schema.deals.c.currency == grid.account.currency)
    revenue = func.coalesce(func.sum(case((won, schema.deals.c.amount), else_=0)), 0)
    lost = (schema.deals.c.status == DealStatus.LOST.value) & schema.deals.c.loss_reason_id.in_(
        non_target_reasons or [-1]
    )
    non_target = func.sum(case((lost, 1), else_=0))
    rows = _per_period(
        grid,
        schema.deals.c.closed_at,
        cut.deal if cut else None,
        [],
        [revenue, non_target],
        [grid.of(schema.deals), schema.deals.c.closed_at.is_not(None), schema.deals.c.status != DealStatus.OPEN.value],
    )
    for cut_value, label, amount, lost_count in rows:
        yield (cut_value, label), "revenue", int(amount or 0)
        yield (cut_value, label), "non_target", int(lost_count or 0)


def _contacts(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, Any]]:
    """The median speed to lead per period of arrival, and the leads reached by an answered call."""
    yield from speed_medians(grid, cut)
    if _has_calls(grid):
        yield from _answered(grid, cut)


def speed_medians(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, float]]:
    """Exact medians of speed to lead (minutes begun, as seconds) per cut and period.

    Window functions number each cut's leads by speed and keep the one or two middle rows, so the
    database returns two rows per group instead of every lead.
    """
    if dialect_name(grid.session) == "postgresql":
        yield from _medians_by_aggregate(grid, cut)
        return
    cut_column = cut.deal if cut else None
    partition = [cut_column] if cut_column is not None else []
    order = schema.deals.c.contact_minutes
    numbered = select(
        (cut_column if cut_column is not None else literal(None)).label("cut"),
        order.label("minutes"),
        func.row_number().over(partition_by=partition or None, order_by=order).label("rank"),
        func.count().over(partition_by=partition or None).label("size"),
    ).where(grid.of(schema.deals), schema.deals.c.contact_minutes.is_not(None))
    for period, start, end in grid.bounds():
        ranked = numbered.where(schema.deals.c.created_at >= start, schema.deals.c.created_at < end).subquery()
        middle = or_(ranked.c.rank == (ranked.c.size + 1) // 2, ranked.c.rank == (ranked.c.size + 2) // 2)
        values: dict[Any, list[int]] = defaultdict(list)
        for cut_value, minutes in grid.session.execute(select(ranked.c.cut, ranked.c.minutes).where(middle)):
            values[cut_value].append(int(minutes))
        for cut_value, middle_values in values.items():
            yield (cut_value, period.label), SPEED_MEDIAN, statistics.fmean(middle_values) * 60


def _medians_by_aggregate(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, float]]:
    """The same medians by PostgreSQL's ordered-set aggregate, a third faster than numbering the
    rows: ``percentile_cont(0.5)`` is the middle value, or the mean of the two middle ones."""
    median = func.percentile_cont(0.5).within_group(schema.deals.c.contact_minutes)
    rows = _per_period(
        grid,
        schema.deals.c.created_at,
        cut.deal if cut else None,
        [],
        [median],
        [grid.of(schema.deals), schema.deals.c.contact_minutes.is_not(None)],
    )
    for cut_value, label, minutes in rows:
        if minutes is not None:  # the team's aggregate gives a row even for a period with no lead
            yield (cut_value, label), SPEED_MEDIAN, float(minutes) * 60


def _answered(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, int]]:
    answered = (
        select(schema.call_attempts.c.deal_id)
        .where(schema.call_attempts.c.outcome == CallOutcome.ANSWERED.value)
        .distinct()
        .subquery()
    )
    rows = _per_period(
        grid,
        schema.deals.c.created_at,
        cut.deal if cut else None,
        [],
        [func.count()],
        [grid.of(schema.deals)],
        joins=[(answered, answered.c.deal_id == schema.deals.c.id)],
    )
    for cut_value, label, count in rows:
        yield (cut_value, label), "reached", int(count or 0)


def spend_values(grid: Grid, cut: Cut | None) -> Iterable[tuple[Key, str, int]]:
    """Spend in the account's currency, monthly amounts spread evenly over the month's days.

    Like leads and sales, spend is fact only through today: a month's budget entered on the 1st
    counts one day's share that day; the days still ahead go to ``SPEND_AHEAD``, which the
    period's spend forecast adds back (docs/stats.md)."""
    if (cut is not None and cut.spend is None) or grid.manager_id is not None:
        return
    first, last = grid.periods[0].start, grid.periods[-1].end
    rows = grid.session.execute(
        select(
            schema.ad_spend.c.source_id,
            schema.ad_spend.c.period_start,
            schema.ad_spend.c.period_kind,
            schema.ad_spend.c.amount,
        ).where(
            schema.ad_spend.c.account_id == grid.account.id,
            schema.ad_spend.c.currency == grid.account.currency,
            schema.ad_spend.c.period_start < last,
            schema.ad_spend.c.period_start >= dt.date(first.year, first.month, 1),
        )
    )
    for source_id, start, kind, amount in rows:
        for day, share in spread(start, kind, int(amount)):
            period = next((p for p in grid.periods if p.contains(day)), None)
            if period is not None and share:
                ahead = grid.today is not None and day > grid.today
                yield (source_id if cut is not None else None, period.label), SPEND_AHEAD if ahead else "spend", share


def spread(start: dt.date, kind: str, amount: int) -> list[tuple[dt.date, int]]:
    """A day's or a month's spend as (day, amount) in whole minor units, remainders to the first days."""
    if kind == "day":
        return [(start, amount)]
    following = dt.date(start.year + start.month // 12, start.month % 12 + 1, 1)
    days = (following - start).days
    each, remainder = divmod(amount, days)
    return [(start + dt.timedelta(days=n), each + (1 if n < remainder else 0)) for n in range(days)]
