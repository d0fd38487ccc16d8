"""The Python side of the funnel: pure functions from counted rows to figures (docs/funnel.md).

Nothing here touches a database; tests feed rows by hand.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from voronka.analysis.funnel.counts import OutcomeRow, ReachRow
from voronka.schema import DealStatus


@dataclass(frozen=True)
class StageFigures:
    position: int
    name: str
    reached: int
    conversion: float | None
    """reached[k] / reached[k-1]; None for the first stage or when reached[k-1] is 0."""
    conversion_from_start: float | None
    lost: int | None
    open: int | None
    dropped: int | None
    """reached[k] - reached[k+1]; None for the last (won) stage."""


@dataclass(frozen=True)
class FunnelFigures:
    deals: int
    won: int
    lost: int | None
    """None where losses are not known (daily counts)."""
    open: int | None
    revenue: Mapping[str, int]
    """Minor units per currency of the won deals; never added across currencies."""
    stages: tuple[StageFigures, ...]
    open_share: float | None = None
    immature: bool = False

    def revenue_in(self, currency: str) -> int:
        return self.revenue.get(currency, 0)


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def reached_cumulative(outcomes: Iterable[OutcomeRow], positions: int) -> list[int]:
    """reached[k] = deals whose furthest stage is k or beyond (index 0 is stage 1)."""
    at_furthest = [0] * (positions + 1)
    for row in outcomes:
        at_furthest[min(max(row.furthest, 1), positions)] += row.count
    reached = [0] * positions
    running = 0
    for position in range(positions, 0, -1):
        running += at_furthest[position]
        reached[position - 1] = running
    return reached


def reached_by_passage(passages: Iterable[ReachRow], positions: int) -> list[int]:
    reached = [0] * positions
    for row in passages:
        if 1 <= row.position <= positions:
            reached[row.position - 1] += row.count
    return reached


def stage_figures(
    names: Sequence[str],
    reached: Sequence[int],
    lost: Sequence[int] | None,
    open_: Sequence[int] | None,
) -> tuple[StageFigures, ...]:
    start = reached[0] if reached else 0
    stages = []
    for index, name in enumerate(names):
        previous = reached[index - 1] if index else None
        stages.append(
            StageFigures(
                position=index + 1,
                name=name,
                reached=reached[index],
                conversion=None if previous is None else ratio(reached[index], previous),
                conversion_from_start=ratio(reached[index], start),
                lost=lost[index] if lost is not None else None,
                open=open_[index] if open_ is not None else None,
                dropped=reached[index] - reached[index + 1] if index + 1 < len(names) else None,
            )
        )
    return tuple(stages)


def _per_stage(outcomes: Iterable[OutcomeRow], status: DealStatus, positions: int) -> list[int]:
    counts = [0] * positions
    for row in outcomes:
        if row.status == status.value:
            counts[min(max(row.furthest, 1), positions) - 1] += row.count
    return counts


def _revenue(outcomes: Iterable[OutcomeRow]) -> Mapping[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for row in outcomes:
        if row.status == DealStatus.WON.value:
            totals[row.currency] += row.amount
    return MappingProxyType(dict(totals))


def cohort_figures(
    names: Sequence[str],
    outcomes: Sequence[OutcomeRow],
    *,
    passage_reached: Sequence[int] | None = None,
    immature_share: float = 0.2,
) -> FunnelFigures:
    """Figures of a cohort: ``outcomes`` are its deals by furthest stage and status.

    With ``passage_reached`` (the passage rule) reached counts come from actual entries; lost and
    open stay attributed to the furthest stage either way.
    """
    positions = len(names)
    reached = list(passage_reached) if passage_reached is not None else reached_cumulative(outcomes, positions)
    lost = _per_stage(outcomes, DealStatus.LOST, positions)
    open_ = _per_stage(outcomes, DealStatus.OPEN, positions)
    deals = sum(row.count for row in outcomes)
    won = sum(row.count for row in outcomes if row.status == DealStatus.WON.value)
    open_total = sum(open_)
    share = ratio(open_total, deals)
    return FunnelFigures(
        deals=deals,
        won=won,
        lost=sum(lost),
        open=open_total,
        revenue=_revenue(outcomes),
        stages=stage_figures(names, reached, lost, open_),
        open_share=share,
        immature=share is not None and share > immature_share,
    )


def period_figures(names: Sequence[str], reaches: Sequence[ReachRow], closures: Sequence[OutcomeRow]) -> FunnelFigures:
    """Flow figures of a period: entries into each stage and closures within it.

    ``deals`` is the leads that arrived, ``won`` the entries into the won stage, ``lost`` the deals
    lost in the period (at their furthest stage). Open counts belong to cohorts and are not given.
    """
    positions = len(names)
    reached = reached_by_passage(reaches, positions)
    lost = _per_stage(closures, DealStatus.LOST, positions)
    return FunnelFigures(
        deals=reached[0] if reached else 0,
        won=reached[-1] if reached else 0,
        lost=sum(lost),
        open=None,
        revenue=_revenue(closures),
        stages=stage_figures(names, reached, lost, None),
    )


def split_by_group(rows: Iterable[Any]) -> dict[Any, list[Any]]:
    """Rows (anything with a ``group`` attribute) keyed by their group."""
    groups: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        groups[row.group].append(row)
    return dict(groups)
