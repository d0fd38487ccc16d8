"""The demo business of the lesson: custom furniture, about a year of leads, built from a seed.

The data carry the problems the lesson teaches to find: a manager who calls back slowly, an outgoing
number that starts being treated as spam in the middle of the year, a source that brings non-target
leads, a source whose clients find the price too high, and a backlog of stalled deals.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from voronka.accounts import (
    create_pipeline,
    get_or_create_loss_reason,
    get_or_create_manager,
    get_or_create_source,
)
from voronka.catalog.templates import FURNITURE
from voronka.errors import VoronkaError
from voronka.models import (
    Account,
    AdSpend,
    CallAttempt,
    CallOutcome,
    Deal,
    DealStatus,
    Pipeline,
    Stage,
    StageChange,
)
from voronka.timeutil import to_utc, utcnow, zone

DEMO_TIMEZONE = "Europe/Moscow"


@dataclass(frozen=True)
class Manager:
    name: str
    response_minutes: float  # median delay before the first call
    to_estimate: float  # qualified → preliminary estimate
    to_precise: float  # preliminary → precise estimate
    to_contract: float  # precise estimate → contract


@dataclass(frozen=True)
class Channel:
    name: str
    weight: float
    non_target: float
    price_mismatch: float  # extra chance that the preliminary estimate is "too expensive"
    monthly_spend: int  # roubles


MANAGERS = (
    Manager("Анна Смирнова", 4, 0.80, 0.62, 0.55),
    Manager("Игорь Петров", 7, 0.76, 0.58, 0.50),
    Manager("Олег Кузнецов", 55, 0.74, 0.56, 0.48),
    Manager("Мария Волкова", 9, 0.52, 0.52, 0.46),
)
CHANNELS = (
    Channel("Яндекс.Директ", 0.32, 0.14, 0.00, 140_000),
    Channel("Авито", 0.25, 0.36, 0.22, 60_000),
    Channel("Сайт (SEO)", 0.18, 0.10, 0.00, 45_000),
    Channel("ВКонтакте", 0.15, 0.30, 0.05, 55_000),
    Channel("Рекомендации", 0.10, 0.04, 0.00, 0),
)
NUMBERS = ("+7 495 120-45-01", "+7 495 120-45-02", "+7 495 120-45-03")
SPAM_NUMBER = NUMBERS[2]
PRODUCTS = (
    ("Кухня", 0.40, 380_000),
    ("Шкаф-купе", 0.30, 120_000),
    ("Гардеробная", 0.18, 230_000),
    ("Детская", 0.12, 170_000),
)
REASONS = ("Нецелевой", "Дорого", "Сроки", "Ушёл к конкуренту", "Пропала потребность", "Не дозвонились")


@dataclass(frozen=True)
class DemoOptions:
    seed: int = 42
    leads: int = 3000
    days: int = 365
    today: dt.date | None = None


@dataclass
class _Lead:
    created: dt.datetime
    channel: Channel
    manager: Manager
    product: str
    amount: int
    phone: str
    entries: list[tuple[int, dt.datetime]] = field(default_factory=list)
    calls: list[tuple[dt.datetime, str, CallOutcome, int]] = field(default_factory=list)
    status: DealStatus = DealStatus.OPEN
    closed: dt.datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class DemoSummary:
    pipeline: str
    deals: int
    first_day: dt.date
    last_day: dt.date


class _Simulation:
    def __init__(self, options: DemoOptions, now: dt.datetime) -> None:
        self.rng = random.Random(options.seed)
        self.options = options
        self.now = now
        self.tz = zone(DEMO_TIMEZONE)
        self.first_day = (now.date() if options.today is None else options.today) - dt.timedelta(days=options.days)
        self.spam_from = self.first_day + dt.timedelta(days=options.days // 2)

    def leads(self) -> list[_Lead]:
        per_day = self.options.leads / self.options.days
        leads = []
        for offset in range(self.options.days):
            day = self.first_day + dt.timedelta(days=offset)
            season = 1 + 0.25 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 80) / 365)
            weekday = 0.6 if day.weekday() >= 5 else 1.1
            for _ in range(self._poisson(per_day * season * weekday)):
                lead = self._lead(day)
                if lead.created < self.now:
                    leads.append(lead)
        return leads

    def _poisson(self, mean: float) -> int:
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _lead(self, day: dt.date) -> _Lead:
        rng = self.rng
        local = dt.datetime.combine(day, dt.time(9)) + dt.timedelta(minutes=rng.triangular(0, 13 * 60, 4 * 60))
        channel = rng.choices(CHANNELS, weights=[c.weight for c in CHANNELS])[0]
        product, _, base = rng.choices(PRODUCTS, weights=[p[1] for p in PRODUCTS])[0]
        amount = int(base * rng.lognormvariate(0, 0.35) / 1000) * 1000
        phone = f"+7 9{rng.randint(10, 99)} {rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}"
        lead = _Lead(to_utc(local, self.tz), channel, rng.choice(MANAGERS), product, amount, phone)
        lead.entries.append((1, lead.created))
        self._play(lead)
        return lead

    def _answer_rate(self, number: str, at: dt.datetime, delay_minutes: float) -> float:
        base = 0.15 if number == SPAM_NUMBER and at.date() >= self.spam_from else 0.72
        if delay_minutes <= 5:
            freshness = 1.0
        elif delay_minutes <= 30:
            freshness = 0.8
        elif delay_minutes <= 60:
            freshness = 0.62
        elif delay_minutes <= 24 * 60:
            freshness = 0.5
        else:
            freshness = 0.35
        return base * freshness

    def _play(self, lead: _Lead) -> None:
        reached = self._call(lead)
        if reached is None:
            return
        at = reached
        manager, channel = lead.manager, lead.channel
        steps: tuple[tuple[int, float, tuple[float, float], tuple[str, ...]], ...] = (
            (3, manager.to_estimate, (0.5, 3), ("Пропала потребность", "Сроки", "Дорого")),
            (
                4,
                manager.to_precise - channel.price_mismatch,
                (2, 7),
                ("Дорого",) * 4 + ("Сроки",) * 2 + ("Пропала потребность",),
            ),
            (
                5,
                manager.to_contract,
                (3, 14),
                ("Ушёл к конкуренту",) * 5 + ("Пропала потребность",) * 3 + ("Дорого",) * 2,
            ),
        )
        if self.rng.random() < lead.channel.non_target:
            self._close(lead, at + dt.timedelta(minutes=15), "Нецелевой")
            return
        for position, chance, (low, high), reasons in steps:
            at = at + dt.timedelta(days=self.rng.uniform(low, high))
            if at >= self.now:
                return  # still being worked on
            if position >= 4 and self.rng.random() < 0.04:
                return  # stalled: nobody follows it up
            if self.rng.random() >= chance:
                self._close(lead, at, self.rng.choice(reasons))
                return
            lead.entries.append((position, at))
        lead.status, lead.closed = DealStatus.WON, lead.entries[-1][1]

    def _call(self, lead: _Lead) -> dt.datetime | None:
        """Call attempts until someone answers; the answer moves the lead to stage 2."""
        rng = self.rng
        delay = lead.manager.response_minutes * rng.lognormvariate(0, 0.9)
        at = lead.created + dt.timedelta(minutes=delay)
        for _ in range(rng.choice((1, 2, 2, 3, 4))):
            if at >= self.now:
                return None
            number = rng.choice(NUMBERS)
            minutes = (at - lead.created).total_seconds() / 60
            if rng.random() < self._answer_rate(number, at, minutes):
                lead.calls.append((at, number, CallOutcome.ANSWERED, rng.randint(60, 600)))
                lead.entries.append((2, at + dt.timedelta(minutes=rng.randint(3, 12))))
                return lead.entries[-1][1]
            outcome = rng.choice((CallOutcome.NO_ANSWER, CallOutcome.NO_ANSWER, CallOutcome.BUSY, CallOutcome.REJECTED))
            lead.calls.append((at, number, outcome, 0))
            at += dt.timedelta(hours=rng.uniform(1, 20))
        if at < self.now:
            self._close(lead, min(at, self.now - dt.timedelta(minutes=1)), "Не дозвонились")
        return None

    def _close(self, lead: _Lead, at: dt.datetime, reason: str) -> None:
        lead.status, lead.closed, lead.reason = DealStatus.LOST, at, reason


def build_demo(*, session: Session, account: Account, options: DemoOptions | None = None) -> DemoSummary:
    """Fill the account with the demo business. The account should hold no deals yet."""
    options = options or DemoOptions()
    now = (
        utcnow()
        if options.today is None
        else to_utc(dt.datetime.combine(options.today, dt.time(18)), zone(DEMO_TIMEZONE))
    )
    account.timezone = DEMO_TIMEZONE
    pipeline = create_pipeline(
        session=session,
        account=account,
        name=FURNITURE.pipeline_name("ru"),
        stages=FURNITURE.stage_names("ru"),
    )
    FURNITURE.add_defaults(session=session, account=account, lang="ru")
    simulation = _Simulation(options, now)
    leads = simulation.leads()
    stage_ids = {s.position: s.id for s in pipeline.stages}
    managers = {m.name: get_or_create_manager(session=session, account=account, name=m.name).id for m in MANAGERS}
    sources = {c.name: get_or_create_source(session=session, account=account, name=c.name).id for c in CHANNELS}
    reasons = {r: get_or_create_loss_reason(session=session, account=account, name=r).id for r in REASONS}
    rows = [
        _deal_row(lead, number, account, pipeline.id, stage_ids, managers, sources, reasons, now)
        for number, lead in enumerate(leads, 1)
    ]
    ids = session.execute(insert(Deal).returning(Deal.id, sort_by_parameter_order=True), rows).scalars().all()
    session.execute(
        insert(StageChange),
        [c for i, lead in zip(ids, leads, strict=True) for c in _change_rows(i, lead, account.id, stage_ids)],
    )
    calls = [
        {
            "account_id": account.id,
            "deal_id": i,
            "at": at,
            "outgoing_number": n,
            "outcome": o.value,
            "duration_seconds": d,
            "manager_id": managers[lead.manager.name],
        }
        for i, lead in zip(ids, leads, strict=True)
        for at, n, o, d in lead.calls
    ]
    if calls:
        session.execute(insert(CallAttempt), calls)
    session.execute(insert(AdSpend), _spend_rows(simulation, account, sources))
    session.flush()
    return DemoSummary(
        pipeline.name,
        len(leads),
        simulation.first_day,
        simulation.first_day + dt.timedelta(days=options.days - 1),
    )


def _deal_row(
    lead: _Lead,
    number: int,
    account: Account,
    pipeline_id: int,
    stage_ids: dict[int, int],
    managers: dict[str, int],
    sources: dict[str, int],
    reasons: dict[str, int],
    now: dt.datetime,
) -> dict[str, Any]:
    furthest = max(p for p, _ in lead.entries)
    return {
        "account_id": account.id,
        "pipeline_id": pipeline_id,
        "external_id": f"demo-{number:05d}",
        "title": f"{lead.product} — {lead.phone}",
        "phone": lead.phone,
        "source_id": sources[lead.channel.name],
        "manager_id": managers[lead.manager.name],
        "amount": lead.amount * 100 if furthest >= 3 else None,
        "currency": account.currency,
        "status": lead.status.value,
        "stage_id": stage_ids[lead.entries[-1][0]],
        "furthest_position": furthest,
        "history_known": True,
        "created_at": lead.created,
        "closed_at": lead.closed,
        "loss_reason_id": reasons[lead.reason] if lead.reason else None,
        "first_contact_at": lead.calls[0][0] if lead.calls else None,
        "custom": {"Изделие": lead.product},
        "updated_at": now,
    }


def _change_rows(deal_id: int, lead: _Lead, account_id: int, stage_ids: dict[int, int]) -> list[dict[str, Any]]:
    rows, previous = [], None
    for position, at in lead.entries:
        rows.append(
            {
                "account_id": account_id,
                "deal_id": deal_id,
                "from_stage_id": previous,
                "to_stage_id": stage_ids[position],
                "to_position": position,
                "at": at,
            }
        )
        previous = stage_ids[position]
    return rows


def _spend_rows(simulation: _Simulation, account: Account, sources: dict[str, int]) -> list[dict[str, Any]]:
    rows = []
    month = simulation.first_day.replace(day=1)
    last = simulation.first_day + dt.timedelta(days=simulation.options.days)
    while month <= last:
        for channel in CHANNELS:
            if channel.monthly_spend:
                amount = int(channel.monthly_spend * simulation.rng.uniform(0.85, 1.15))
                rows.append(
                    {
                        "account_id": account.id,
                        "source_id": sources[channel.name],
                        "period_start": month,
                        "period_kind": "month",
                        "amount": amount * 100,
                        "currency": account.currency,
                    }
                )
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return rows


class DemoNeedsEmptyDatabase(VoronkaError):
    """The demo would mix with real deals."""

    key = "error.demo_needs_empty_database"


def reset_demo(*, session: Session, account: Account) -> None:
    """Remove an earlier demo so the demo can be rebuilt; refuse if the database holds other deals."""
    demo_pipeline = session.scalars(
        select(Pipeline).where(Pipeline.account_id == account.id, Pipeline.name == FURNITURE.pipeline_name("ru"))
    ).first()
    other_deals = select(Deal.id).where(Deal.account_id == account.id)
    if demo_pipeline is not None:
        other_deals = other_deals.where(Deal.pipeline_id != demo_pipeline.id)
    if session.scalars(other_deals.limit(1)).first() is not None or (
        demo_pipeline is not None
        and session.scalars(
            select(Deal.id).where(Deal.pipeline_id == demo_pipeline.id, Deal.external_id.not_like("demo-%")).limit(1)
        ).first()
        is not None
    ):
        raise DemoNeedsEmptyDatabase()
    if demo_pipeline is None:
        return
    deal_ids = select(Deal.id).where(Deal.pipeline_id == demo_pipeline.id).scalar_subquery()
    session.execute(delete(StageChange).where(StageChange.deal_id.in_(deal_ids)))
    session.execute(delete(CallAttempt).where(CallAttempt.deal_id.in_(deal_ids)))
    session.execute(delete(Deal).where(Deal.pipeline_id == demo_pipeline.id))
    session.execute(delete(AdSpend).where(AdSpend.account_id == account.id))
    session.execute(delete(Stage).where(Stage.pipeline_id == demo_pipeline.id))
    session.execute(delete(Pipeline).where(Pipeline.id == demo_pipeline.id))
    session.expire_all()
