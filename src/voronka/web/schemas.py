"""The report payloads of the API as typed models, so the OpenAPI document describes them field by
field. They mirror the JSON of ``voronka funnel/stats --format json`` (docs/json.md); ``extra="forbid"``
makes a field added to the report and not here fail the API's tests instead of vanishing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

Money = str
"""Money as a decimal string of major units, e.g. ``"12500.00"`` (never a float)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StageFiguresOut(Strict):
    position: int
    name: str
    reached: int
    conversion: float | None = Field(description="reached ÷ reached at the stage before")
    conversion_from_start: float | None
    lost: int | None
    open: int | None
    dropped: int | None = Field(description="reached here − reached at the next stage")


class FiguresOut(Strict):
    deals: int
    won: int
    lost: int | None
    open: int | None
    revenue: Money
    currency: str
    revenue_by_currency: dict[str, Money]
    average_check: Money | None
    open_share: float | None
    immature: bool
    stages: list[StageFiguresOut]


class GroupOut(FiguresOut):
    by: str
    value: str | None


class DurationOut(Strict):
    count: int
    median_seconds: float | None
    p90_seconds: float | None


class SpeedOut(DurationOut):
    buckets: dict[str, float] = Field(description="share of leads first contacted within each bucket")


class StageTimeOut(DurationOut):
    position: int


class TimingOut(Strict):
    speed_to_lead: SpeedOut
    time_to_stage: list[StageTimeOut]


class FunnelOut(FiguresOut):
    pipeline: str
    view: str
    rule: str
    date_from: str | None = Field(alias="from")
    date_to: str | None = Field(alias="to", description="exclusive")
    timezone: str
    aggregated: bool
    groups: list[GroupOut] | None = None
    timing: TimingOut | None = None
    explanation: str | None = None


Value = Money | float | int | None
"""A statistics value: money as a decimal string, counts and shares as numbers."""


class PeriodOut(Strict):
    label: str
    date_from: str = Field(alias="from")
    date_to: str = Field(alias="to", description="exclusive")


class CellOut(Strict):
    period: str
    fact: Value
    plan: Value
    of_plan: float | None
    change: float | None


class RowOut(Strict):
    metric: str
    label: str
    unit: str
    trend: str | None
    forecast: Value
    forecast_of_plan: float | None
    cells: list[CellOut]


class TableOut(Strict):
    kind: str
    """``team`` for the team's table, else what the tables are cut by (``source``, ``manager``)."""
    cut: str | None
    """The source's or manager's name; null for the team, and for the deals without one."""
    rows: list[RowOut]


class StatsOut(Strict):
    pipeline: str
    grain: str
    mode: str
    currency: str
    today: str
    by: str | None
    periods: list[PeriodOut]
    tables: list[TableOut]
    explanation: str
    notes: list[str]


class MonthOut(Strict):
    month: str = Field(description="the month's first day")
    expected: Money
    low: Money = Field(description="the 80 % interval's lower end")
    high: Money


class ThisMonthOut(MonthOut):
    won_so_far: Money
    open_deals: MonthOut = Field(description="from the deals open now")
    new_leads: MonthOut = Field(description="from leads not created yet")


class NextMonthOut(MonthOut):
    open_deals: MonthOut
    new_leads: MonthOut


class CalibrationOut(MonthOut):
    actual: Money = Field(description="what came that month")
    inside: bool = Field(description="whether it fell inside the interval forecast at the month's start")


class ForecastOut(Strict):
    """As ``voronka forecast --format json`` prints it."""

    pipeline: str
    currency: str
    this_month: ThisMonthOut
    next_month: NextMonthOut
    run_rate: Money | None
    open_deals: int
    leads_per_day: float
    money_known: bool = Field(description="whether any won deal has an amount in the account's currency")
    calibration: list[CalibrationOut]
    calibrated_share: float | None = Field(description="share of past months inside their interval")
    notes: list[str]
