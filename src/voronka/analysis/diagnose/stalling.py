"""What the stalled-deals finding needs beyond a count: when each stalled deal was last touched,
and how many open deals the normal long tail of a stage's time leaves past the limit anyway."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from voronka import schema
from voronka.analysis.stalled import STALL_FACTOR, decided_stays, stalled_condition, usual_stage_times
from voronka.reading import PipelineLike, Reader

TAIL_SAMPLE = 2_000
"""Decided deals read for the tail of the time in each stage: a mean beyond a limit needs no more."""


@dataclass(frozen=True)
class Stalling:
    touched: dict[int, tuple[dt.datetime, ...]] = field(default_factory=dict)
    """Per stage position, when each of its stalled deals was last touched (moved, called or created)."""
    limits: dict[int, float] = field(default_factory=dict)
    """Seconds untouched after which an open deal in the stage counts as stalled."""
    tails: dict[int, float] = field(default_factory=dict)
    """Per stage, the mean seconds a deal entering it stays beyond the limit — E[(time − limit)⁺]
    over decided deals that entered it before the recent window: × the rate of entries, the open
    deals past the limit a healthy business has anyway."""

    now: dt.datetime | None = None
    """The moment the deals were found stalled at."""

    @property
    def count(self) -> int:
        return sum(len(t) for t in self.touched.values())


def find_stalling(
    session: Reader, pipeline: PipelineLike, now: dt.datetime, before: dt.datetime, manager_id: int | None = None
) -> Stalling:
    usual = usual_stage_times(session, pipeline.id)  # read once: the condition and the limits use it
    condition = stalled_condition(session, pipeline, now, usual=usual)
    if condition is None:
        return Stalling()
    if manager_id is not None:
        condition = condition & (schema.deals.c.manager_id == manager_id)
    moved = (
        select(func.max(schema.stage_reaches.c.reached_at))
        .where(schema.stage_reaches.c.deal_id == schema.deals.c.id)
        .scalar_subquery()
    )
    called = (
        select(func.max(schema.call_attempts.c.at))
        .where(schema.call_attempts.c.deal_id == schema.deals.c.id)
        .scalar_subquery()
    )
    touched: dict[int, list[dt.datetime]] = defaultdict(list)
    rows = session.execute(
        select(schema.stages.c.position, schema.deals.c.created_at, moved, called)
        .select_from(schema.deals)
        .join(schema.stages, schema.stages.c.id == schema.deals.c.stage_id)
        .where(condition)
    )
    for position, created, last_move, last_call in rows:
        touched[int(position)].append(max(t for t in (created, last_move, last_call) if t is not None))
    limits = {p: STALL_FACTOR * time.total_seconds() for p, time in usual.items()}
    return Stalling(
        {p: tuple(sorted(t)) for p, t in touched.items()}, limits, _tails(session, pipeline, before, limits), now
    )


def _tails(session: Reader, pipeline: PipelineLike, before: dt.datetime, limits: dict[int, float]) -> dict[int, float]:
    """E[(time in stage − limit)⁺] per stage, from decided deals created before ``before`` (old
    enough that their slow ones have decided too; the stalled, still open, are not among them)."""
    stays = decided_stays(session, pipeline.id, sample=TAIL_SAMPLE, before=before)
    return {
        p: statistics.fmean(max(stay - limits[p], 0.0) for stay in v) for p, v in stays.items() if v and p in limits
    }
