"""The data the diagnosis reasons over, counted in SQL for a recent window and the history before it."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voronka.analysis.diagnose import cube
from voronka.analysis.diagnose.cube import NOW, PAST, YEAR, Segment, Span
from voronka.analysis.diagnose.stalling import Stalling, find_stalling
from voronka.analysis.diagnose.unreached import Unreached, count_unreached
from voronka.analysis.funnel.compute import FunnelFigures
from voronka.analysis.stats.metrics import metric_by_key, metrics_for
from voronka.analysis.stats.plans import load_plans, plan_in_metric_units
from voronka.db import parallel_reads
from voronka.reading import AccountLike, PipelineLike, Reader
from voronka.timeutil import local_midnight_utc, zone

RECENT_DAYS = 90
HISTORY_DAYS = 365


@dataclass(frozen=True)
class Window:
    start: dt.date
    end: dt.date

    @property
    def months(self) -> float:
        return (self.end - self.start).days / 30.4


@dataclass(frozen=True)
class NumberCalls:
    number: str
    attempts: int
    answered: int


@dataclass(frozen=True)
class Evidence:
    pipeline: PipelineLike
    currency: str
    recent: Window
    history: Window
    year: Window
    """Managers and sources are compared over the last twelve months: their differences persist,
    and a longer window gives the shrunk estimates enough data."""
    total: FunnelFigures
    past: FunnelFigures
    year_total: FunnelFigures
    by_manager: dict[str, FunnelFigures]
    by_source: dict[str, FunnelFigures]
    speed_by_manager: dict[str, float | None]
    speed_team: float | None
    speed_team_year: float | None
    speed_past: float | None
    numbers: dict[str, NumberCalls]
    numbers_past: dict[str, NumberCalls]
    attempts: float | None
    """Call attempts per lead lost without being reached, recently (None when no calls are logged)."""
    attempts_past: float | None
    losses: dict[int, dict[str, int]]
    """Lost in the recent window at each stage, by cause family."""
    losses_past: dict[int, dict[str, int]]
    losses_by_source: dict[tuple[str | None, int], dict[str, int]]
    losses_by_manager: dict[tuple[str | None, int], dict[str, int]]
    stalled: dict[int, int]
    """Open deals untouched for twice the usual time, by the position of the stage they are in."""
    stalling: Stalling = field(default_factory=Stalling)
    """When each stalled deal was last touched, and the normal tail to compare their number with."""
    unreached: Unreached = field(default_factory=Unreached)
    """Recent leads that ended with attempts on each outgoing number, and those lost unreached."""
    targets: dict[int, float] = field(default_factory=dict)
    """The planned conversion into each stage over the recent window's months (``plan set conv_K``)."""
    benchmarks: dict[int, float] = field(default_factory=dict)
    """Conversions into stages that the user entered as a benchmark to compare with."""

    @property
    def average_check(self) -> float:
        won = self.total.won
        return self.total.revenue_in(self.currency) / won if won else 0.0


def gather(
    *,
    session: Reader,
    account: AccountLike,
    pipeline: PipelineLike,
    today: dt.date,
    benchmarks: Mapping[int, float] | None = None,
    manager_id: int | None = None,
) -> Evidence:
    # ``today`` is a whole day that has happened (docs/stats.md): the windows end after it.
    end_day = today + dt.timedelta(days=1)
    recent = Window(end_day - dt.timedelta(days=RECENT_DAYS), end_day)
    history = Window(recent.start - dt.timedelta(days=HISTORY_DAYS), recent.start)
    year = Window(end_day - dt.timedelta(days=HISTORY_DAYS), end_day)
    tz = zone(account.timezone)
    days = (history.start, year.start, recent.start, end_day)
    start, middle, recent_start, end = (local_midnight_utc(day, tz) for day in days)
    span = Span(start, middle, recent_start, end, manager_id, days=days, account_id=account.id)
    names = tuple(s.name for s in pipeline.stages)
    tasks: dict[str, Callable[[Reader], Any]] = {
        "entries": lambda own: cube.count_entries(own, pipeline.id, span),
        "closures": lambda own: cube.count_closures(own, pipeline.id, span),
        "stalling": lambda own: find_stalling(own, pipeline, span.end, span.recent, manager_id),
        "unreached": lambda own: count_unreached(own, pipeline.id, span),
        "speeds": lambda own: cube.count_speeds(own, pipeline.id, span),
        "numbers": lambda own: cube.count_numbers(own, pipeline.id, span),
        "attempts": lambda own: cube.count_attempts_on_unreached(own, pipeline.id, span),
        "targets": lambda own: _targets(own, pipeline, recent),
    }
    found = dict(zip(tasks, parallel_reads(session, list(tasks.values())), strict=True))
    speeds: cube.SpeedHistogram = found["speeds"]
    closures: cube.Closures = found["closures"]
    counted = cube.make_cube(session, names, found["entries"], closures.outcomes)
    losses = closures.losses
    numbers: dict[cube.NumberKey, tuple[int, int]] = found["numbers"]
    calls_logged = bool(numbers)
    return Evidence(
        pipeline=pipeline,
        currency=account.currency,
        recent=recent,
        history=history,
        year=year,
        total=counted.figures(NOW),
        past=counted.figures(PAST),
        year_total=counted.figures(YEAR),
        by_manager=counted.by_manager(YEAR),
        by_source=counted.by_source(YEAR),
        speed_by_manager={name: speeds.median_seconds(YEAR, i) for i, name in counted.manager_names.items()},
        speed_team=speeds.median_seconds(NOW),
        speed_team_year=speeds.median_seconds(YEAR),
        speed_past=speeds.median_seconds(PAST),
        numbers=_numbers(numbers, NOW),
        numbers_past=_numbers(numbers, PAST),
        attempts=_attempts(found["attempts"], NOW) if calls_logged else None,
        attempts_past=_attempts(found["attempts"], PAST) if calls_logged else None,
        losses=_losses(losses, NOW),
        losses_past=_losses(losses, PAST),
        losses_by_source=_losses_by(losses, YEAR, counted.source_names, by_manager=False),
        losses_by_manager=_losses_by(losses, YEAR, counted.manager_names, by_manager=True),
        stalled={p: len(t) for p, t in found["stalling"].touched.items()},
        stalling=found["stalling"],
        unreached=found["unreached"],
        targets=found["targets"],
        benchmarks=dict(benchmarks or {}),
    )


def _numbers(counts: Mapping[cube.NumberKey, tuple[int, int]], segments: frozenset[Segment]) -> dict[str, NumberCalls]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (segment, number), (attempts, answered) in counts.items():
        if segment in segments:
            totals[number][0] += attempts
            totals[number][1] += answered
    return {number: NumberCalls(number, a, ok) for number, (a, ok) in totals.items()}


def _attempts(counts: Mapping[int, tuple[int, int]], segments: frozenset[Segment]) -> float | None:
    leads = sum(counts[s][0] for s in segments if s in counts)
    attempts = sum(counts[s][1] for s in segments if s in counts)
    return attempts / leads if leads else None


def _losses(counts: Mapping[cube.LossKey, int], segments: frozenset[Segment]) -> dict[int, dict[str, int]]:
    found: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (segment, _, _, position, family), n in counts.items():
        if segment in segments:
            found[position][family] += n
    return {position: dict(mix) for position, mix in found.items()}


def _losses_by(
    counts: Mapping[cube.LossKey, int], segments: frozenset[Segment], names: Mapping[int, str], by_manager: bool
) -> dict[tuple[str | None, int], dict[str, int]]:
    """Loss-reason mixes per (manager or source name, stage lost at)."""
    found: dict[tuple[str | None, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (segment, manager_id, source_id, position, family), n in counts.items():
        if segment in segments:
            key = manager_id if by_manager else source_id
            found[(names.get(key) if key is not None else None, position)][family] += n
    return {key: dict(mix) for key, mix in found.items()}


def _targets(session: Reader, pipeline: PipelineLike, window: Window) -> dict[int, float]:
    """The team's planned conversion into each stage, averaged over the window's months."""
    metrics = metrics_for([s.name for s in pipeline.stages])
    positions = {f"conv_{p}": p for p in range(2, len(pipeline.stages))} | {"sales_conv": len(pipeline.stages)}
    planned: dict[int, list[float]] = defaultdict(list)
    for plan in load_plans(session, pipeline.id, _months(window)):
        position = positions.get(plan.metric)
        if position is not None and plan.manager_id is None and plan.source_id is None:
            planned[position].append(plan_in_metric_units(metric_by_key(metrics, plan.metric), plan.value))
    return {position: sum(values) / len(values) for position, values in planned.items()}


def _months(window: Window) -> list[dt.date]:
    months, day = [], dt.date(window.start.year, window.start.month, 1)
    while day < window.end:
        months.append(day)
        day = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return months
