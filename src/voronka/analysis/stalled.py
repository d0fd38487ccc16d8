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
from sqlalchemy.orm import Session

from voronka.models import CallAttempt, Deal, DealStatus, Pipeline, Stage, StageReach

STALL_FACTOR = 2
"""A deal is stalled after this many times its stage's usual time untouched."""


def stalled_condition(
    session: Session,
    pipeline: Pipeline,
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
        and_(Stage.position == position, _untouched_since(pipeline.id, now - factor * limit))
        for position, limit in sorted(usual.items())
    ]
    if not per_stage:
        return None
    return and_(Deal.pipeline_id == pipeline.id, Deal.status == DealStatus.OPEN.value, or_(*per_stage))


def _untouched_since(pipeline_id: int, since: dt.datetime) -> ColumnElement[bool]:
    # The pipeline's own reaches (its index's range): PostgreSQL hashes this subquery, and without
    # the pipeline it hashed every account's recent moves.
    moved = select(StageReach.id).where(
        StageReach.pipeline_id == pipeline_id, StageReach.deal_id == Deal.id, StageReach.reached_at >= since
    )
    called = select(CallAttempt.id).where(CallAttempt.deal_id == Deal.id, CallAttempt.at >= since)
    return and_(Deal.created_at < since, ~moved.exists(), ~called.exists())


def stalled_deals(
    session: Session, pipeline: Pipeline, now: dt.datetime, limit: int | None = None
) -> list[tuple[str, int]]:
    """(deal, stage position) of the stalled open deals (see ``stalled_condition``), oldest id first."""
    condition = stalled_condition(session, pipeline, now)
    if condition is None:
        return []
    rows = session.execute(
        select(func.coalesce(Deal.external_id, func.cast(Deal.id, Deal.external_id.type)), Stage.position)
        .join(Stage, Stage.id == Deal.stage_id)
        .where(condition)
        .order_by(Deal.id)
        .limit(limit)
    )
    return [(str(name), int(position)) for name, position in rows]


def stalled_among(session: Session, pipeline: Pipeline, now: dt.datetime, deal_ids: Iterable[int]) -> set[int]:
    """Which of these deals are stalled (the kanban marks its cards)."""
    ids = list(deal_ids)
    condition = stalled_condition(session, pipeline, now)
    if condition is None or not ids:
        return set()
    return set(
        session.scalars(select(Deal.id).join(Stage, Stage.id == Deal.stage_id).where(condition, Deal.id.in_(ids)))
    )


def stalled_counts(
    session: Session, pipeline: Pipeline, now: dt.datetime, manager_id: int | None = None
) -> dict[int, int]:
    """How many open deals (of ``manager_id``, when given) are stalled in each stage (by position)."""
    condition = stalled_condition(session, pipeline, now)
    if condition is None:
        return {}
    if manager_id is not None:
        condition = and_(condition, Deal.manager_id == manager_id)
    rows = session.execute(
        select(Stage.position, func.count())
        .select_from(Deal)
        .join(Stage, Stage.id == Deal.stage_id)
        .where(condition)
        .group_by(Stage.position)
    )
    return {int(position): int(count) for position, count in rows}


USUAL_SAMPLE = 1_000


def usual_stage_times(session: Session, pipeline_id: int) -> dict[int, dt.timedelta]:
    """Median time deals spent in each stage before moving on or closing, from the most recent
    decided deals (a sample of at most ``USUAL_SAMPLE``: a median needs no more — its 95 % interval
    spans about ±3 percentiles — and the kanban asks for it on every view)."""
    stays = decided_stays(session, pipeline_id, sample=USUAL_SAMPLE)
    return {p: dt.timedelta(seconds=statistics.median(v)) for p, v in stays.items() if v}


def decided_stays(
    session: Session, pipeline_id: int, *, sample: int, before: dt.datetime | None = None
) -> dict[int, list[float]]:
    """Seconds each of the most recent ``sample`` decided deals (created before ``before``) stayed in
    each stage it reached, until it reached a later one or closed: what a stage's usual time and its
    normal tail are measured on."""
    conditions = [Deal.pipeline_id == pipeline_id, Deal.status != DealStatus.OPEN.value, Deal.closed_at.is_not(None)]
    if before is not None:
        conditions.append(Deal.created_at < before)
    deals = session.execute(
        select(Deal.id, Deal.created_at, Deal.closed_at)
        .where(*conditions)
        .order_by(Deal.created_at.desc())
        .limit(sample)
    ).all()
    reached: dict[int, dict[int, dt.datetime]] = defaultdict(dict)
    ids = [row[0] for row in deals]
    for start in range(0, len(ids), 1_000):
        chunk = ids[start : start + 1_000]
        for deal_id, position, at in session.execute(
            select(StageReach.deal_id, StageReach.position, StageReach.reached_at).where(StageReach.deal_id.in_(chunk))
        ):
            reached[deal_id][int(position)] = at
    stays: dict[int, list[float]] = defaultdict(list)
    for deal_id, created, closed in deals:
        if closed is None:
            continue
        times = {1: created, **reached[deal_id]}
        for position, entered in times.items():
            later = [at for p, at in times.items() if p > position]
            stays[position].append(max(((min(later) if later else closed) - entered).total_seconds(), 0.0))
    return stays
