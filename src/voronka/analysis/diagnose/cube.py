"""One pass per table over the diagnosis' whole span, counted by segment × manager × source.

The diagnosis compares three overlapping windows (recent, the year before it, the last twelve
months) and splits the last one by manager and by source. Counting each view separately scanned the
same rows five times; here the span is cut into three segments that every window is a union of, and
the SQL groups by (segment, manager, source). Python then sums whichever cells a view needs.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Executable, Table, and_, case, func, select, true

from voronka import schema
from voronka.analysis.funnel.compute import FunnelFigures, period_figures
from voronka.analysis.funnel.counts import Expression, OutcomeRow, ReachRow
from voronka.deal_days import cells_read, named_id
from voronka.reading import Reader
from voronka.schema import CallDirection, CallOutcome, DealStatus


class Segment(enum.IntEnum):
    """Consecutive parts of the span: before the last twelve months, the rest of the year before
    the recent window, the recent window."""

    EARLY = 0
    MIDDLE = 1
    RECENT = 2


PAST = frozenset({Segment.EARLY, Segment.MIDDLE})
YEAR = frozenset({Segment.MIDDLE, Segment.RECENT})
NOW = frozenset({Segment.RECENT})


@dataclass(frozen=True)
class Span:
    """UTC bounds: ``start`` ≤ ``middle`` ≤ ``recent`` ≤ ``end`` (exclusive)."""

    start: dt.datetime
    middle: dt.datetime
    recent: dt.datetime
    end: dt.datetime
    manager_id: int | None = None
    """Only this manager's deals: a manager's diagnosis is of their own funnel."""
    days: tuple[dt.date, dt.date, dt.date, dt.date] | None = None
    """The same bounds as local days (when each is a local midnight): arrivals are then read from
    the per-day summary."""
    account_id: int | None = None

    def owned(self, table: Table) -> ColumnElement[bool]:
        return true() if self.manager_id is None else table.c.manager_id == self.manager_id

    def parts(self, column: Expression) -> Iterator[tuple[int, ColumnElement[bool]]]:
        """Each segment with the condition that puts ``column`` in it. Counting the segments one
        query each is one scan in all, and cheaper than grouping by a CASE (SQLite sorts on it)."""
        bounds = (self.start, self.middle, self.recent, self.end)
        for segment in Segment:
            yield int(segment), and_(column >= bounds[segment], column < bounds[segment + 1])


Cell = tuple[int, int | None, int | None]
"""(segment, manager id, source id)."""


@dataclass(frozen=True)
class Cube:
    """Period-view counts of one pipeline by cell; ``figures`` sums the cells a view asks for."""

    stage_names: tuple[str, ...]
    entries: tuple[ReachRow, ...]
    closures: tuple[OutcomeRow, ...]
    manager_names: dict[int, str]
    source_names: dict[int, str]

    def figures(self, segments: frozenset[Segment], keep: Callable[[Cell], bool] = lambda cell: True) -> FunnelFigures:
        def chosen(row: ReachRow | OutcomeRow) -> bool:
            return row.group[0] in segments and keep(row.group)

        return period_figures(
            self.stage_names,
            [r for r in self.entries if chosen(r)],
            [r for r in self.closures if chosen(r)],
        )

    def by_manager(self, segments: frozenset[Segment]) -> dict[str, FunnelFigures]:
        return {
            name: self.figures(segments, lambda cell, i=manager_id: cell[1] == i)  # type: ignore[misc]
            for manager_id, name in self.manager_names.items()
        }

    def by_source(self, segments: frozenset[Segment]) -> dict[str, FunnelFigures]:
        return {
            name: self.figures(segments, lambda cell, i=source_id: cell[2] == i)  # type: ignore[misc]
            for source_id, name in self.source_names.items()
        }


def _per_segment(
    session: Reader, span: Span, column: Expression, query: Callable[[ColumnElement[bool]], Executable]
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query`` for each segment, the segment first."""
    for segment, inside in span.parts(column):
        for row in session.execute(query(inside)):
            yield (segment, *row)


def count_entries(session: Reader, pipeline_id: int, span: Span) -> list[ReachRow]:
    """Entries into stages 2… by the cumulative reach time, and arrivals into stage 1."""
    reach_columns = (
        schema.stage_reaches.c.manager_id,
        schema.stage_reaches.c.source_id,
        schema.stage_reaches.c.position,
    )
    entries = _per_segment(
        session,
        span,
        schema.stage_reaches.c.reached_at,
        lambda inside: (
            select(*reach_columns, func.count())
            .where(schema.stage_reaches.c.pipeline_id == pipeline_id, span.owned(schema.stage_reaches), inside)
            .group_by(*reach_columns)
        ),
    )
    rows = [ReachRow((s, m, src), int(p), int(n)) for s, m, src, p, n in entries]
    return rows + [ReachRow((s, m, src), 1, int(n)) for s, m, src, n in count_arrivals(session, pipeline_id, span)]


def count_arrivals(session: Reader, pipeline_id: int, span: Span) -> Iterable[tuple[Any, ...]]:
    """Deals created per segment × manager × source: from the per-day summary's cells of one
    manager and one source when the span is whole local days, from the deals otherwise."""
    if span.days is None or span.account_id is None:
        return _per_segment(
            session,
            span,
            schema.deals.c.created_at,
            lambda inside: (
                select(schema.deals.c.manager_id, schema.deals.c.source_id, func.count())
                .where(schema.deals.c.pipeline_id == pipeline_id, span.owned(schema.deals), inside)
                .group_by(schema.deals.c.manager_id, schema.deals.c.source_id)
            ),
        )
    manager, source = named_id(schema.deal_days.c.manager_id), named_id(schema.deal_days.c.source_id)
    cells = cells_read(manager_id=span.manager_id, by_manager=True, by_source=True)
    rows: list[tuple[Any, ...]] = []
    for segment in Segment:
        query = (
            select(manager, source, func.sum(schema.deal_days.c.deals))
            .where(
                schema.deal_days.c.account_id == span.account_id,
                schema.deal_days.c.pipeline_id == pipeline_id,
                cells,
                schema.deal_days.c.day >= span.days[segment],
                schema.deal_days.c.day < span.days[segment + 1],
            )
            .group_by(manager, source)
        )
        rows.extend((int(segment), *row) for row in session.execute(query))
    return rows


@dataclass(frozen=True)
class Closures:
    outcomes: list[OutcomeRow]
    losses: dict[LossKey, int]
    """Lost deals with a reason, by segment × manager × source × stage × cause family."""


LossKey = tuple[int, int | None, int | None, int, str]
"""(segment, manager id, source id, stage position lost at, cause family)."""


def count_closures(session: Reader, pipeline_id: int, span: Span) -> Closures:
    """Deals won or lost within the span, by cell × furthest stage × status × currency; and, from
    the same rows (the loss reason is in the index), the lost ones' cause families."""
    columns = (
        schema.deals.c.manager_id,
        schema.deals.c.source_id,
        schema.deals.c.furthest_position,
        schema.deals.c.status,
        schema.deals.c.currency,
        schema.deals.c.loss_reason_id,
    )
    rows = _per_segment(
        session,
        span,
        schema.deals.c.closed_at,
        lambda inside: (
            select(*columns, func.count(), func.coalesce(func.sum(schema.deals.c.amount), 0))
            .where(
                schema.deals.c.pipeline_id == pipeline_id,
                span.owned(schema.deals),
                schema.deals.c.status != DealStatus.OPEN.value,
                inside,
            )
            .group_by(*columns)
        ),
    )
    families = {
        int(i): str(f) for i, f in session.execute(select(schema.loss_reasons.c.id, schema.loss_reasons.c.family))
    }
    outcomes: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    losses: dict[LossKey, int] = defaultdict(int)
    for s, manager, source, furthest, status, currency, reason, n, amount in rows:
        cell = outcomes[((s, manager, source), int(furthest), status, currency)]
        cell[0] += int(n)
        cell[1] += int(amount or 0)
        if status == DealStatus.LOST.value and reason is not None:
            losses[(s, manager, source, int(furthest), families[int(reason)])] += int(n)
    return Closures(
        [
            OutcomeRow(group, furthest, status, currency, n, amount)
            for (group, furthest, status, currency), (n, amount) in outcomes.items()
        ],
        dict(losses),
    )


def make_cube(
    session: Reader, stage_names: Sequence[str], entries: Sequence[ReachRow], closures: Sequence[OutcomeRow]
) -> Cube:
    """The counted rows with the names of the managers and sources they mention."""
    managers = {row.group[1] for row in entries} - {None}
    sources = {row.group[2] for row in entries} - {None}
    return Cube(
        tuple(stage_names),
        tuple(entries),
        tuple(closures),
        _names(session, schema.users, managers),
        _names(session, schema.sources, sources),
    )


def _names(session: Reader, model: Table, ids: Iterable[Any]) -> dict[int, str]:
    wanted = sorted(ids)
    if not wanted:
        return {}
    return {
        int(i): str(name) for i, name in session.execute(select(model.c.id, model.c.name).where(model.c.id.in_(wanted)))
    }


@dataclass(frozen=True)
class SpeedHistogram:
    """Leads by minutes begun to first contact, per (segment, manager id)."""

    counts: dict[tuple[int, int | None], dict[int, int]]

    def median_seconds(self, segments: frozenset[Segment], manager_id: int | None = None) -> float | None:
        """The exact median of the chosen cells (the mean of the two middle leads when even)."""
        merged: dict[int, int] = defaultdict(int)
        for (segment, manager), histogram in self.counts.items():
            if segment in segments and (manager_id is None or manager == manager_id):
                for minutes, leads in histogram.items():
                    merged[minutes] += leads
        size = sum(merged.values())
        if not size:
            return None
        ordered = sorted(merged.items())
        return (_value_at(ordered, (size + 1) // 2) + _value_at(ordered, (size + 2) // 2)) / 2 * 60


def _value_at(ordered: Sequence[tuple[int, int]], rank: int) -> int:
    """The ``rank``-th smallest value (from 1) of a sorted histogram."""
    seen = 0
    for value, count in ordered:
        seen += count
        if seen >= rank:
            return value
    raise ValueError(rank)


def count_speeds(session: Reader, pipeline_id: int, span: Span) -> SpeedHistogram:
    rows = _per_segment(
        session,
        span,
        schema.deals.c.created_at,
        lambda inside: (
            select(schema.deals.c.manager_id, schema.deals.c.contact_minutes, func.count())
            .where(
                schema.deals.c.pipeline_id == pipeline_id,
                span.owned(schema.deals),
                schema.deals.c.contact_minutes.is_not(None),
                inside,
            )
            .group_by(schema.deals.c.manager_id, schema.deals.c.contact_minutes)
        ),
    )
    counts: dict[tuple[int, int | None], dict[int, int]] = defaultdict(dict)
    for s, manager, minutes, leads in rows:
        counts[(s, manager)][int(minutes)] = int(leads)
    return SpeedHistogram(dict(counts))


NumberKey = tuple[int, str]
"""(segment, outgoing number)."""


def count_numbers(session: Reader, pipeline_id: int, span: Span) -> dict[NumberKey, tuple[int, int]]:
    """Per segment and outgoing number: attempts and answered attempts."""
    answered = func.sum(case((schema.call_attempts.c.outcome == CallOutcome.ANSWERED.value, 1), else_=0))
    rows = _per_segment(
        session,
        span,
        schema.call_attempts.c.at,
        lambda inside: (
            select(schema.call_attempts.c.outgoing_number, func.count(), answered)
            .join(schema.deals, schema.deals.c.id == schema.call_attempts.c.deal_id)
            .where(
                schema.deals.c.pipeline_id == pipeline_id,
                span.owned(schema.deals),
                schema.call_attempts.c.outgoing_number.is_not(None),
                schema.call_attempts.c.direction
                == CallDirection.OUTGOING.value,  # the client's calls say nothing of our lines
                inside,
            )
            .group_by(schema.call_attempts.c.outgoing_number)
        ),
    )
    return {(s, str(number)): (int(n), int(ok or 0)) for s, number, n, ok in rows}


def count_attempts_on_unreached(session: Reader, pipeline_id: int, span: Span) -> dict[int, tuple[int, int]]:
    """Per segment: leads lost without ever being reached (closed in the segment) and the call
    attempts made on them — how hard the team tried before giving up."""
    rows = _per_segment(
        session,
        span,
        schema.deals.c.closed_at,
        lambda inside: (
            select(func.count(schema.deals.c.id.distinct()), func.count(schema.call_attempts.c.id))
            .outerjoin(
                schema.call_attempts,
                and_(
                    schema.call_attempts.c.deal_id == schema.deals.c.id,
                    schema.call_attempts.c.direction == CallDirection.OUTGOING.value,
                ),
            )
            .where(
                schema.deals.c.pipeline_id == pipeline_id,
                span.owned(schema.deals),
                schema.deals.c.status == DealStatus.LOST.value,
                schema.deals.c.furthest_position == 1,
                inside,
            )
        ),
    )
    return {s: (int(leads), int(attempts)) for s, leads, attempts in rows if leads}


def count_lines_known(session: Reader, pipeline_id: int, since: dt.datetime) -> tuple[int, int]:
    """Outgoing calls on the pipeline's deals since ``since``: how many, and how many name the line
    they went out on (what the answer rate per number needs)."""
    known = func.sum(case((schema.call_attempts.c.outgoing_number.is_not(None), 1), else_=0))
    row = session.execute(
        select(func.count(), known)
        .select_from(schema.call_attempts)
        .join(schema.deals, schema.deals.c.id == schema.call_attempts.c.deal_id)
        .where(
            schema.deals.c.pipeline_id == pipeline_id,
            schema.call_attempts.c.direction == CallDirection.OUTGOING.value,
            schema.call_attempts.c.at >= since,
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)
