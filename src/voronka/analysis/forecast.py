"""Revenue expected this month and next, with an interval, and how well the method held.

Two parts, each with its own 80 % interval:

- **Open deals.** Win probabilities per stage come from the account's own decided history as an
  absorbing chain (each stage either moves on or ends as lost), adjusted for how long a deal has
  already sat in its stage; the month a win lands in comes from how long wins took from that stage.
  The sum of the deals' chances × amounts is the forecast; its interval comes from their Bernoulli
  variance.
- **Leads not created yet.** The lead rate of the last 90 days × the share of leads won within a
  given time of their creation (from the year before) × the average check, summed day by day over
  the month; its interval treats the wins as Poisson.

The calibration makes the same two-part forecast at the start of each past month and compares it
with what that month brought: wins of the deals open at its start and of the leads created in it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from voronka.analysis.stats.periods import run_rate
from voronka.models import Account, Deal, DealStatus, Pipeline, StageReach
from voronka.timeutil import local_midnight_utc, to_local, utcnow, zone

Z80 = 1.2816
HISTORY_DAYS = 365
LEAD_RATE_DAYS = 90
PSEUDO = 10.0
"""Weight of the stage's overall chance when estimating the chance of deals of a given age."""


@dataclass(frozen=True)
class DealPath:
    """What the forecast needs of a deal: when it reached each stage, and how it ended (if it did)."""

    created: dt.datetime
    reached: dict[int, dt.datetime]
    status: str
    closed: dt.datetime | None
    amount: int | None

    def reached_at(self, position: int) -> dt.datetime | None:
        return self.created if position == 1 else self.reached.get(position)

    def stage_at(self, moment: dt.datetime) -> int:
        return max([1, *(p for p, at in self.reached.items() if at < moment)])

    def open_at(self, moment: dt.datetime) -> bool:
        return self.created < moment and (self.closed is None or self.closed >= moment)

    def won_by(self, moment: dt.datetime) -> bool:
        return self.status == DealStatus.WON.value and self.closed is not None and self.closed < moment


@dataclass(frozen=True)
class StageModel:
    """Per stage: the chance to win from it, and how long wins took from it (seconds, sorted)."""

    win: dict[int, float]
    time_to_win: dict[int, list[float]]
    age_win: dict[int, list[tuple[float, float]]]
    """(age in stage, chance to win for deals at least that old), for a few ages."""

    def chance(self, position: int, age: float) -> float:
        points = self.age_win.get(position, [])
        chance = self.win.get(position, 0.0)
        for threshold, value in points:
            if age >= threshold:
                chance = value
        return chance

    def lands_by(self, position: int, age: float, horizon: float) -> float:
        """P(the win comes within ``horizon`` seconds of reaching the stage | not yet after ``age``)."""
        times = self.time_to_win.get(position, [])
        later = times[bisect.bisect_left(times, age) :]
        if not later:
            return 1.0 if horizon >= age else 0.0
        return bisect.bisect_right(later, horizon) / len(later)


def fit(paths: Sequence[DealPath], last: int, as_of: dt.datetime) -> StageModel:
    """The stage model from deals decided before ``as_of`` (created in the year before it)."""
    start = as_of - dt.timedelta(days=HISTORY_DAYS)
    decided = [p for p in paths if start <= p.created < as_of and p.closed is not None and p.closed < as_of]
    advance: dict[int, float] = {}
    for position in range(1, last):
        reached = [p for p in decided if p.reached_at(position) is not None or _beyond(p, position)]
        passed = [p for p in reached if _beyond(p, position)]
        advance[position] = (len(passed) + 1) / (len(reached) + 2)
    win = {last: 1.0}
    for position in range(last - 1, 0, -1):
        win[position] = win[position + 1] * advance[position]
    time_to_win: dict[int, list[float]] = defaultdict(list)
    stays: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for path in decided:
        won = path.status == DealStatus.WON.value
        for position in range(1, last):
            entered = path.reached_at(position)
            if entered is None or path.closed is None:
                continue
            left = min([path.closed, *(at for p, at in path.reached.items() if p > position)])
            stays[position].append(((left - entered).total_seconds(), won))
            if won:
                time_to_win[position].append((path.closed - entered).total_seconds())
    age_win = {position: _age_curve(stays[position], win[position]) for position in stays}
    return StageModel(win, {p: sorted(v) for p, v in time_to_win.items()}, age_win)


def _beyond(path: DealPath, position: int) -> bool:
    return any(p > position for p in path.reached) or path.status == DealStatus.WON.value


def _age_curve(stays: list[tuple[float, bool]], overall: float) -> list[tuple[float, float]]:
    """The chance to win of deals that stayed at least 1, 2 and 4 median stays, shrunk to ``overall``."""
    if not stays:
        return []
    durations = sorted(d for d, _ in stays)
    median = durations[len(durations) // 2] or 1.0
    curve = []
    for factor in (1, 2, 4):
        older = [won for d, won in stays if d >= factor * median]
        chance = (sum(older) + PSEUDO * overall) / (len(older) + PSEUDO)
        curve.append((factor * median, chance))
    return curve


@dataclass(frozen=True)
class MonthForecast:
    month: dt.date
    expected: float
    low: float
    high: float
    """The 80 % interval (minor units)."""

    def holds(self, actual: float) -> bool:
        """Whether what came is inside the 80 % interval (the calibration's test)."""
        return self.low <= actual <= self.high

    @property
    def spread(self) -> float:
        return self.high - self.expected

    def plus(self, other: MonthForecast, base: float = 0.0) -> MonthForecast:
        """Two independent parts (and ``base``, already certain) as one forecast."""
        mean = base + self.expected + other.expected
        spread = math.hypot(self.spread, other.spread)
        return MonthForecast(self.month, mean, max(mean - spread, base), mean + spread)


@dataclass(frozen=True)
class Forecast:
    this_month: MonthForecast
    """Still to be won this month from the deals open now."""
    next_month: MonthForecast
    """To be won next month from the deals open now."""
    won_so_far: float
    """Revenue already won this month."""
    run_rate: float | None
    """Revenue won so far this month by the one run-rate rule (working days, docs/stats.md)."""
    open_deals: int
    calibration: tuple[tuple[dt.date, MonthForecast, float], ...]
    """(month, the two-part forecast made at its start, the revenue the month actually brought from
    the deals open at its start and the leads created in it)."""
    new_this_month: MonthForecast = MonthForecast(dt.date.min, 0.0, 0.0, 0.0)
    """To be won this month from leads not created yet."""
    new_next_month: MonthForecast = MonthForecast(dt.date.min, 0.0, 0.0, 0.0)
    """To be won next month from leads not created yet (this month's remaining days and next's)."""
    leads_per_day: float = 0.0
    money_known: bool = True
    """Whether any won deal has an amount in the account's currency: without one there is no money
    to forecast, and the calibration does not pass on zeros."""

    @property
    def this_month_total(self) -> MonthForecast:
        return self.this_month.plus(self.new_this_month, base=self.won_so_far)

    @property
    def next_month_total(self) -> MonthForecast:
        return self.next_month.plus(self.new_next_month)

    @property
    def calibrated_share(self) -> float | None:
        if not self.calibration or not self.money_known:
            return None
        inside = sum(1 for _, f, actual in self.calibration if f.holds(actual))
        return inside / len(self.calibration)


def month_forecast(
    paths: Sequence[DealPath],
    model: StageModel,
    as_of: dt.datetime,
    start: dt.datetime,
    end: dt.datetime,
    month: dt.date,
    average_check: float,
) -> MonthForecast:
    """Revenue from the deals open at ``as_of`` that should be won within [start, end)."""
    mean = variance = 0.0
    for path in paths:
        if not path.open_at(as_of):
            continue
        position = path.stage_at(as_of)
        entered = path.reached_at(position) or path.created
        age = (as_of - entered).total_seconds()
        chance = model.chance(position, age)
        share = model.lands_by(position, age, (end - entered).total_seconds()) - model.lands_by(
            position, age, (start - entered).total_seconds()
        )
        p = min(max(chance * max(share, 0.0), 0.0), 1.0)
        amount = float(path.amount if path.amount else average_check)
        mean += p * amount
        variance += p * (1 - p) * amount * amount
    spread = Z80 * math.sqrt(variance)
    return MonthForecast(month, mean, max(mean - spread, 0.0), mean + spread)


@dataclass(frozen=True)
class LeadModel:
    """How many leads arrive, and how soon after creation leads are won."""

    per_second: float
    created: list[dt.datetime]
    """Creation times of the deals of the history window, sorted."""
    won_after: list[tuple[dt.datetime, float]]
    """(created, seconds from creation to the win) of the won ones."""
    window_start: dt.datetime

    def won_within(self, seconds: float, as_of: dt.datetime) -> float:
        """Share of leads won within ``seconds`` of creation, among those old enough to tell."""
        if seconds <= 0:
            return 0.0
        cutoff = as_of - dt.timedelta(seconds=seconds)
        old_enough = bisect.bisect_left(self.created, cutoff)
        if not old_enough:
            return 0.0
        wins = sum(1 for created, after in self.won_after if created < cutoff and after <= seconds)
        return wins / old_enough


def fit_leads(paths: Sequence[DealPath], as_of: dt.datetime) -> LeadModel:
    start = as_of - dt.timedelta(days=HISTORY_DAYS)
    recent = as_of - dt.timedelta(days=LEAD_RATE_DAYS)
    window = sorted(p.created for p in paths if start <= p.created < as_of)
    rate = sum(1 for c in window if c >= recent) / (LEAD_RATE_DAYS * 86400)
    won_after = [
        (p.created, (p.closed - p.created).total_seconds())
        for p in paths
        if start <= p.created < as_of and p.won_by(as_of) and p.closed is not None
    ]
    return LeadModel(rate, window, won_after, start)


def new_leads_forecast(
    model: LeadModel, as_of: dt.datetime, start: dt.datetime, end: dt.datetime, month: dt.date, average_check: float
) -> MonthForecast:
    """Revenue won within [start, end) from leads created after ``as_of``, day by day."""
    wins = 0.0
    day = dt.timedelta(days=1)
    moment = as_of
    while moment < end:
        step = min(day, end - moment)
        middle = moment + step / 2
        share = model.won_within((end - middle).total_seconds(), as_of) - model.won_within(
            (start - middle).total_seconds(), as_of
        )
        wins += model.per_second * step.total_seconds() * max(share, 0.0)
        moment += step
    spread = Z80 * math.sqrt(wins) * average_check
    mean = wins * average_check
    return MonthForecast(month, mean, max(mean - spread, 0.0), mean + spread)


def _month(day: dt.date, offset: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + offset
    return dt.date(index // 12, index % 12 + 1, 1)


def load_paths(session: Session, pipeline: Pipeline, currency: str, manager_id: int | None = None) -> list[DealPath]:
    reached: dict[int, dict[int, dt.datetime]] = defaultdict(dict)
    for deal_id, position, at in session.execute(
        select(StageReach.deal_id, StageReach.position, StageReach.reached_at).where(
            StageReach.pipeline_id == pipeline.id,
            true() if manager_id is None else StageReach.manager_id == manager_id,
        )
    ):
        reached[deal_id][int(position)] = at
    rows = session.execute(
        select(Deal.id, Deal.created_at, Deal.status, Deal.closed_at, Deal.amount, Deal.currency).where(
            Deal.pipeline_id == pipeline.id, true() if manager_id is None else Deal.manager_id == manager_id
        )
    )
    paths = []
    for deal_id, created, status, closed, amount, deal_currency in rows:
        stages = reached.get(deal_id, {})
        if closed is None and status != DealStatus.OPEN.value:
            # Lost (or won) without a date: closed, not open, last seen at its latest move.
            closed = max([created, *stages.values()])
        paths.append(DealPath(created, stages, status, closed, amount if deal_currency == currency else None))
    return paths


def run_forecast(
    *,
    session: Session,
    account: Account,
    pipeline: Pipeline,
    today: dt.date | None = None,
    calibration_months: int = 6,
    manager_id: int | None = None,
) -> Forecast:
    """The forecast of ``pipeline`` (of one manager's deals with ``manager_id``)."""
    tz = zone(account.timezone)
    # ``today`` is a whole day that has happened (docs/stats.md): as of its end, like every report.
    now = utcnow() if today is None else local_midnight_utc(today + dt.timedelta(days=1), tz)
    today = today or to_local(now, tz).date()
    paths = load_paths(session, pipeline, account.currency, manager_id)
    last = len(pipeline.stages)
    won = [p for p in paths if p.status == DealStatus.WON.value and p.amount]
    average_check = sum(p.amount or 0 for p in won) / len(won) if won else 0.0

    def utc(day: dt.date) -> dt.datetime:
        return local_midnight_utc(day, tz)

    model = fit(paths, last, now)
    leads = fit_leads(paths, now)
    this, following, after = _month(today, 0), _month(today, 1), _month(today, 2)
    this_month = month_forecast(paths, model, now, now, utc(following), this, average_check)
    next_month = month_forecast(paths, model, now, utc(following), utc(after), following, average_check)
    new_this = new_leads_forecast(leads, now, now, utc(following), this, average_check)
    new_next = new_leads_forecast(leads, now, utc(following), utc(after), following, average_check)
    so_far = sum(p.amount or 0 for p in paths if p.won_by(now) and p.closed is not None and p.closed >= utc(this))
    calibration = []
    for back in range(calibration_months, 0, -1):
        month = _month(today, -back)
        start, end = utc(month), utc(_month(month, 1))
        past_model = fit(paths, last, start)
        from_open = month_forecast(paths, past_model, start, start, end, month, average_check)
        from_new = new_leads_forecast(fit_leads(paths, start), start, start, end, month, average_check)
        made = from_open.plus(from_new)
        actual = sum(
            p.amount or average_check
            for p in paths
            if (p.open_at(start) or start <= p.created < end) and p.won_by(end) and p.closed and p.closed >= start
        )
        calibration.append((month, made, float(actual)))
    return Forecast(
        this_month=this_month,
        next_month=next_month,
        won_so_far=float(so_far),
        run_rate=run_rate(float(so_far), this, following, today),
        open_deals=sum(1 for p in paths if p.open_at(now)),
        calibration=tuple(calibration),
        new_this_month=new_this,
        new_next_month=new_next,
        leads_per_day=leads.per_second * 86400,
        money_known=average_check > 0,
    )
