"""The rows of the statistics template (docs/stats.md), from ad spend to ROMI.

A row is either counted (a base metric the database gives per period) or derived by a formula over
other rows. The same formula computes the value here and becomes a live formula in the workbook.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Number = int | float


class Unit(enum.StrEnum):
    COUNT = "count"
    MONEY = "money"  # minor units
    SHARE = "share"  # a fraction; shown as a percentage
    SECONDS = "seconds"


class Block(enum.StrEnum):
    TRAFFIC = "traffic"
    PROCESSING = "processing"
    STAGES = "stages"
    MONEY = "money"


@dataclass(frozen=True)
class Formula:
    """``(numerator - subtract) / denominator``; no value when the denominator is zero or missing."""

    numerator: str
    denominator: str
    subtract: str | None = None

    def evaluate(self, values: Mapping[str, Number | None]) -> float | None:
        numerator, denominator = values.get(self.numerator), values.get(self.denominator)
        subtract = values.get(self.subtract) if self.subtract else 0
        if numerator is None or subtract is None or not denominator:
            return None
        return (numerator - subtract) / denominator


@dataclass(frozen=True)
class Metric:
    key: str
    unit: Unit
    block: Block
    formula: Formula | None = None
    higher_is_better: bool = True
    stage: str | None = None
    """The stage a stage row is about (its name is part of the label)."""

    @property
    def additive(self) -> bool:
        """Counted sums (counts, money) add over days and cuts; ratios and medians do not."""
        return self.formula is None and self.unit in (Unit.COUNT, Unit.MONEY)


def metrics_for(stage_names: Sequence[str]) -> tuple[Metric, ...]:
    """The template's rows for a pipeline: stage rows come from its own stages."""
    rows = [
        Metric("spend", Unit.MONEY, Block.TRAFFIC, higher_is_better=False),
        Metric("leads", Unit.COUNT, Block.TRAFFIC, stage=stage_names[0]),
        Metric("non_target", Unit.COUNT, Block.TRAFFIC, higher_is_better=False),
        Metric("cpl", Unit.MONEY, Block.TRAFFIC, Formula("spend", "leads"), higher_is_better=False),
        Metric("reached", Unit.COUNT, Block.PROCESSING),
        Metric("reached_share", Unit.SHARE, Block.PROCESSING, Formula("reached", "leads")),
        Metric("speed_median", Unit.SECONDS, Block.PROCESSING, higher_is_better=False),
        Metric("within_5min", Unit.COUNT, Block.PROCESSING),
        Metric("within_5min_share", Unit.SHARE, Block.PROCESSING, Formula("within_5min", "leads")),
    ]
    previous = "leads"
    for position in range(2, len(stage_names)):
        key = stage_key(position)
        name = stage_names[position - 1]
        rows += [
            Metric(key, Unit.COUNT, Block.STAGES, stage=name),
            Metric(f"conv_{position}", Unit.SHARE, Block.STAGES, Formula(key, previous), stage=name),
            Metric(f"from_lead_{position}", Unit.SHARE, Block.STAGES, Formula(key, "leads"), stage=name),
        ]
        previous = key
    rows += [
        Metric("sales", Unit.COUNT, Block.MONEY, stage=stage_names[-1]),
        Metric("sales_conv", Unit.SHARE, Block.MONEY, Formula("sales", previous), stage=stage_names[-1]),
        Metric("revenue", Unit.MONEY, Block.MONEY),
        Metric("average_check", Unit.MONEY, Block.MONEY, Formula("revenue", "sales")),
        Metric("cac", Unit.MONEY, Block.MONEY, Formula("spend", "sales"), higher_is_better=False),
        Metric("drr", Unit.SHARE, Block.MONEY, Formula("spend", "revenue"), higher_is_better=False),
        Metric("romi", Unit.SHARE, Block.MONEY, Formula("revenue", "spend", subtract="spend")),
    ]
    return tuple(rows)


def stage_key(position: int) -> str:
    """The row of entries into a middle stage (the first is ``leads``, the last ``sales``)."""
    return f"stage_{position}"


def derive(metrics: Sequence[Metric], base: Mapping[str, Number | None]) -> dict[str, Number | None]:
    """Every row's value: counted rows as given, derived rows by their formula."""
    values: dict[str, Number | None] = {m.key: base.get(m.key) for m in metrics if m.formula is None}
    for metric in metrics:
        if metric.formula is not None:
            values[metric.key] = metric.formula.evaluate(values)
    return values


def metric_by_key(metrics: Sequence[Metric], key: str) -> Metric:
    from voronka.errors import InvalidValue

    for metric in metrics:
        if metric.key == key:
            return metric
    raise InvalidValue(field="--metric", value=key, hint="one of " + ", ".join(m.key for m in metrics))


SPEND_AHEAD = "spend_ahead"
"""Spend entered for the days of a period after today: not fact yet, but the rest of its budget."""
