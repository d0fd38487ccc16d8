"""Stalled deals: open deals nobody has touched for twice the usual time in their stage.

The one home of the rule. The audit counts them, the kanban marks their cards, the alerts page their
managers, and the diagnosis prices the backlog; each asks here. A stage's usual time is the median
stay of recently decided deals in it (``usual_stage_times``); "touched" is a stage entry or a call.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import ColumnElement, and_, func, or_, select

from voronka import schema
from voronka.reading import PipelineLike, Reader
from voronka.schema import DealStatus

STALL_FACTOR = 2
"""A deal is stalled after this many times its stage's usual time untouched."""


def stalled_condition(
    session: Reader,
    pipeline: PipelineLike,
    now: dt.datetime,
    factor: float = STALL_FACTOR,
    usual: Mapping[int, dt.timedelta] | None = None,
) -> ColumnElement[bool] | None:
    """Open deals of the pipeline untouched — no stage move, no call, not just created — for
    ``factor`` times (twice, by default) the usual time in their current stage (None when no stage
    has a usual time yet). Put in SQL so that the database compares; only the stalled ones come back.
    The query must join ``Stage`` on the deal's current stage. ``usual``: the usual stage times when
    the caller has them already (the condition at two moments reads them once)."""
    usual = usual_stage_times(session, pipeline.id) if usual is None else usual
    per_stage = [
        and_(schema.stages.c.position == position, _untouched_since(pipeline.id, now - factor * limit))
        for position, limit in sorted(usual.items())
    ]
    if not per_stage:
        return None
    return and_(
        schema.deals.c.pipeline_id == pipeline.id, schema.deals.c.status == DealStatus.OPEN.value, or_(*per_stage)
    )


def _untouched_since(pipeline_id: int, since: dt.datetime) -> ColumnElement[bool]:
    # The pipeline's own reaches (its index's range): PostgreSQL hashes this subquery, and without
    # the pipeline it hashed every account's recent moves.
    moved = select(schema.stage_reaches.c.id).where(
        schema.stage_reaches.c.pipeline_id == pipeline_id,
        schema.stage_reaches.c.deal_id == schema.deals.c.id,
        schema.stage_reaches.c.reached_at >= since,
    )
    called = select(schema.call_attempts.c.id).where(
        schema.call_attempts.c.deal_id == schema.deals.c.id, schema.call_attempts.c.at >= since
    )
    return and_(schema.deals.c.created_at < since, ~moved.exists(), ~called.exists())


def stalled_deals(
    session: Reader, pipeline: PipelineLike, now: dt.datetime, limit: int | None = None
) -> list[tuple[str, int]]:
    """(deal, stage position) of the stalled open deals (see ``stalled_condition``), oldest id first."""
    condition = stalled_condition(session, pipeline, now)
    if condition is None:
        return []
    rows = session.execute(
        select(
            func.coalesce(schema.deals.c.external_id, func.cast(schema.deals.c.id, schema.deals.c.external_id.type)),
            schema.stages.c.position,
        )
        .join(schema.stages, schema.stages.c.id == schema.deals.c.stage_id)
        .where(condition)
        .order_by(schema.deals.c.id)
        .limit(limit)
    )
    return [(str(name), int(position)) for name, position in rows]


def stalled_among(session: Reader, pipeline: PipelineLike, now: dt.datetime, deal_ids: Iterable[int]) -> set[int]:
    """Which of these deals are stalled (the kanban marks its cards)."""
    ids = list(deal_ids)
    condition = stalled_condition(session, pipeline, now)
    if condition is None or not ids:
        return set()
    return set(
        session.scalars(
            select(schema.deals.c.id)
            .join(schema.stages, schema.stages.c.id == schema.deals.c.stage_id)
            .where(condition, schema.deals.c.id.in_(ids))
        )
    )


def stalled_counts(
    session: Reader, pipeline: PipelineLike, now: dt.datetime, manager_id: int | None = None
) -> dict[int, int]:
    """How many open deals (of ``manager_id``, when given) are stalled in each stage (by position)."""
    condition = stalled_condition(session, pipeline, now)
    if condition is None:
        return {}
    if manager_id is not None:
        condition = and_(condition, schema.deals.c.manager_id == manager_id)
    rows = session.execute(
        select(schema.stages.c.position, func.count())
        .select_from(schema.deals)
        .join(schema.stages, schema.stages.c.id == schema.deals.c.stage_id)
        .where(condition)
        .group_by(schema.stages.c.position)
    )
    return {int(position): int(count) for position, count in rows}


USUAL_SAMPLE = 1_000


def usual_stage_times(session: Reader, pipeline_id: int) -> dict[int, dt.timedelta]:
    """Median time deals spent in each stage before moving on or closing, from the most recent
    decided deals (a sample of at most ``USUAL_SAMPLE``: a median needs no more — its 95 % interval
    spans about ±3 percentiles — and the kanban asks for it on every view)."""
    stays = decided_stays(session, pipeline_id, sample=USUAL_SAMPLE)
    return {p: dt.timedelta(seconds=statistics.median(v)) for p, v in stays.items() if v}


def decided_stays(
    session: Reader, pipeline_id: int, *, sample: int, before: dt.datetime | None = None
) -> dict[int, list[float]]:
    """Seconds each of the most recent ``sample`` decided deals (created before ``before``) stayed in
    each stage it reached, until it reached a later one or closed: what a stage's usual time and its
    normal tail are measured on."""
    conditions = [
        schema.deals.c.pipeline_id == pipeline_id,
        schema.deals.c.status != DealStatus.OPEN.value,
        schema.deals.c.closed_at.is_not(None),
    ]
    if before is not None:
        conditions.append(schema.deals.c.created_at < before)
    sampled = (
        select(schema.deals.c.id, schema.deals.c.created_at, schema.deals.c.closed_at)
        .where(*conditions)
        .order_by(schema.deals.c.created_at.desc(), schema.deals.c.id.desc())
        .limit(sample)
        .subquery()
    )
    # The sample and its stage entries in one statement (one snapshot, also on PostgreSQL), rather
    # than the sample's ids sent back as a thousand parameters, which took longer to render into
    # the statement than the database took to answer it.
    rows = session.execute(
        select(
            sampled.c.id,
            sampled.c.created_at,
            sampled.c.closed_at,
            schema.stage_reaches.c.position,
            schema.stage_reaches.c.reached_at,
        ).select_from(sampled.outerjoin(schema.stage_reaches, schema.stage_reaches.c.deal_id == sampled.c.id))
    )
    decided: dict[int, tuple[dt.datetime, dt.datetime]] = {}
    reached: dict[int, dict[int, dt.datetime]] = defaultdict(dict)
    for deal_id, created, closed, position, at in rows:
        decided[deal_id] = (created, closed)
        if position is not None:
            reached[deal_id][int(position)] = at
    stays: dict[int, list[float]] = defaultdict(list)
    for deal_id, (created, closed) in decided.items():
        # From the furthest stage back: a stage's stay ends at the earliest entry into any later
        # stage it reached, or at the closing when it reached none.
        earliest_later: dt.datetime | None = None
        for position, entered in sorted({1: created, **reached[deal_id]}.items(), reverse=True):
            end = closed if earliest_later is None else earliest_later
            stays[position].append(max((end - entered).total_seconds(), 0.0))
            earliest_later = entered if earliest_later is None else min(earliest_later, entered)
    return stays
