"""Speed to lead and time to each stage: durations counted in SQL, summarised here."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from voronka import schema
from voronka.analysis.funnel.counts import Scope
from voronka.reading import Reader
from voronka.sqlfuncs import seconds_between

# Upper bounds (seconds, inclusive) of the speed-to-lead buckets of docs/funnel.md.
SPEED_BUCKETS: tuple[tuple[str, float], ...] = (
    ("le_5m", 5 * 60),
    ("m5_30", 30 * 60),
    ("m30_60", 60 * 60),
    ("h1_24", 24 * 3600),
    ("gt_24h", float("inf")),
)


@dataclass(frozen=True)
class DurationSummary:
    count: int
    median_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True)
class SpeedToLead(DurationSummary):
    buckets: tuple[tuple[str, float], ...]
    """(bucket name, share of the deals with a first contact)."""


@dataclass(frozen=True)
class StageTiming(DurationSummary):
    position: int


@dataclass(frozen=True)
class Timing:
    speed_to_lead: SpeedToLead
    time_to_stage: tuple[StageTiming, ...]


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (the 'inclusive' method)."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = fraction * (len(sorted_values) - 1)
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low))


def summarise(values: Sequence[float]) -> DurationSummary:
    ordered = sorted(max(v, 0.0) for v in values)
    return DurationSummary(
        count=len(ordered),
        median_seconds=float(statistics.median(ordered)) if ordered else None,
        p90_seconds=percentile(ordered, 0.9),
    )


def speed_to_lead(values: Sequence[float]) -> SpeedToLead:
    """Summary and bucket shares of first-contact delays (negative delays count as zero)."""
    summary = summarise(values)
    counts = dict.fromkeys((name for name, _ in SPEED_BUCKETS), 0)
    for value in values:
        for name, upper in SPEED_BUCKETS:
            if max(value, 0.0) <= upper:
                counts[name] += 1
                break
    total = len(values)
    shares = tuple((name, counts[name] / total if total else 0.0) for name, _ in SPEED_BUCKETS)
    return SpeedToLead(summary.count, summary.median_seconds, summary.p90_seconds, buckets=shares)


def load_timing(session: Reader, scope: Scope, positions: int) -> Timing:
    """Speed to lead and time to each stage for deals created in the scope."""
    delays = session.scalars(
        select(seconds_between(schema.deals.c.first_contact_at, schema.deals.c.created_at)).where(
            scope.of(schema.deals),
            scope.within(schema.deals.c.created_at),
            schema.deals.c.first_contact_at.is_not(None),
        )
    ).all()
    first_entry = (
        select(
            schema.stage_reaches.c.position,
            seconds_between(schema.stage_reaches.c.entered_at, schema.deals.c.created_at),
        )
        .join(schema.deals, schema.deals.c.id == schema.stage_reaches.c.deal_id)
        .where(
            scope.of(schema.stage_reaches),
            scope.within(schema.deals.c.created_at),
            schema.deals.c.history_known.is_(True),
            schema.stage_reaches.c.entered_at.is_not(None),
        )
    )
    per_stage: dict[int, list[float]] = defaultdict(list)
    for position, seconds in session.execute(first_entry):
        per_stage[int(position)].append(float(seconds))
    stages = tuple(
        StageTiming(s.count, s.median_seconds, s.p90_seconds, position=position)
        for position in range(2, positions + 1)
        for s in [summarise(per_stage.get(position, []))]
    )
    return Timing(speed_to_lead([float(v) for v in delays]), stages)
