"""The demo business: the lesson's custom-furniture maker by default, or any industry template.

About a year of leads, built deterministically from a seed. The data carry the problems the lesson
teaches to find: a manager who calls back slowly, an outgoing number that starts being treated as
spam in the middle of the year, a source that brings non-target leads, a source whose clients find
the price too high, and a backlog of stalled deals.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.orm import Session

from voronka import deal_days
from voronka.catalog.templates import PipelineTemplate, resolve_template
from voronka.crm import deal_state
from voronka.crm.accounts import create_pipeline, get_or_create_loss_reason, get_or_create_manager, get_or_create_source
from voronka.crm.phones import phone_key
from voronka.crm.reaches import DealFacts, insert_reaches, reach_rows
from voronka.crm.search import search_text
from voronka.errors import VoronkaError
from voronka.models import (
    Account,
    AdSpend,
    CallAttempt,
    CallOutcome,
    CauseFamily,
    DailyCount,
    Deal,
    DealDay,
    DealStatus,
    Pipeline,
    Plan,
    Stage,
    StageEntry,
    StageReach,
)
from voronka.timeutil import to_utc, utcnow, zone

DEMO_TIMEZONE = "Europe/Moscow"
DEMO_LANG = "ru"
DEMO_PIPELINE = {"manufacturing": "Мебель на заказ"}  # the lesson's own example keeps its name
DEMO_PREFIX = "demo-"


@dataclass(frozen=True)
class Manager:
    name: str
    response_minutes: float  # median delay before the first call
    first_step: float  # chance to pass the first step after contact
    middle_step: float  # … each step in between
    last_step: float  # … the step into the won stage


@dataclass(frozen=True)
class ChannelProfile:
    """How a source behaves; the template gives the sources' names in the same order."""

    weight: float
    non_target: float
    price_mismatch: float  # extra chance of "too expensive" in the middle steps
    monthly_spend: int  # roubles


MANAGERS = (
    Manager("Анна Смирнова", 4, 0.80, 0.62, 0.55),
    Manager("Игорь Петров", 7, 0.76, 0.58, 0.50),
    Manager("Олег Кузнецов", 55, 0.74, 0.56, 0.48),
    Manager("Мария Волкова", 9, 0.52, 0.52, 0.46),
)
PROFILES = (
    ChannelProfile(0.32, 0.14, 0.00, 140_000),
    ChannelProfile(0.25, 0.36, 0.22, 60_000),
    ChannelProfile(0.18, 0.10, 0.00, 45_000),
    ChannelProfile(0.15, 0.30, 0.05, 55_000),
    ChannelProfile(0.10, 0.04, 0.00, 0),
)
NUMBERS = ("+7 495 120-45-01", "+7 495 120-45-02", "+7 495 120-45-03")
SPAM_NUMBER = NUMBERS[2]
# Loss causes by where in the funnel a deal drops (the lesson's catalogue of causes).
FIRST_STEP_CAUSES = (CauseFamily.NEED_GONE, CauseFamily.TIMING, CauseFamily.PRICE)
MIDDLE_STEP_CAUSES = (CauseFamily.PRICE,) * 4 + (CauseFamily.TIMING,) * 2 + (CauseFamily.NEED_GONE,)
LAST_STEP_CAUSES = (CauseFamily.COMPETITOR,) * 5 + (CauseFamily.NEED_GONE,) * 3 + (CauseFamily.PRICE,) * 2


_Step = tuple[int, float, tuple[float, float], tuple[CauseFamily, ...]]


@dataclass(frozen=True)
class Problems:
    """Which of the lesson's problems the demo business has (all of them by default).

    Scenarios with one problem each let tests check that the diagnosis finds exactly that one.
    """

    slow_manager: bool = True  # Олег calls back in about an hour
    weak_manager: bool = True  # Мария loses leads at the first step after contact
    spam_number: bool = True  # one outgoing number is treated as spam from mid-year
    price_mismatch: bool = True  # Авито's clients find the price too high
    non_target_source: bool = True  # Авито and ВКонтакте bring many non-target leads
    stall_share: float = 0.04  # deals nobody follows up in the last steps


HEALTHY = Problems(False, False, False, False, False, 0.0)


@dataclass(frozen=True)
class DemoOptions:
    seed: int = 42
    leads: int = 3000
    days: int = 365
    today: dt.date | None = None
    template: str = "manufacturing"
    problems: Problems = Problems()
    seasonal: bool = True
    """Leads vary over the year (±25 %) as well as by weekday."""


@dataclass(frozen=True)
class Channel:
    name: str
    profile: ChannelProfile


@dataclass
class SimulatedLead:
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
    reason: CauseFamily | None = None


@dataclass(frozen=True)
class DemoSummary:
    pipeline: str
    deals: int
    first_day: dt.date
    last_day: dt.date


class _Simulation:
    def __init__(self, options: DemoOptions, template: PipelineTemplate, now: dt.datetime) -> None:
        self.rng = random.Random(options.seed)
        self.options = options
        self.template = template
        self.stages = len(template.stages)
        self.channels = tuple(Channel(n, p) for n, p in zip(template.sources, PROFILES, strict=False))
        self.now = now
        self.tz = zone(DEMO_TIMEZONE)
        self.first_day = (now.date() if options.today is None else options.today) - dt.timedelta(days=options.days)
        self.spam_from = self.first_day + dt.timedelta(days=options.days // 2)
        self.problems = options.problems

    def leads(self) -> list[SimulatedLead]:
        per_day = self.options.leads / self.options.days
        leads = []
        for offset in range(self.options.days):
            day = self.first_day + dt.timedelta(days=offset)
            season = (
                1 + 0.25 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 80) / 365)
                if self.options.seasonal
                else 1.0
            )
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

    def _lead(self, day: dt.date) -> SimulatedLead:
        rng = self.rng
        local = dt.datetime.combine(day, dt.time(9)) + dt.timedelta(minutes=rng.triangular(0, 13 * 60, 4 * 60))
        channel = rng.choices(self.channels, weights=[c.profile.weight for c in self.channels])[0]
        products = self.template.products
        product = rng.choices(products, weights=[p.weight for p in products])[0]
        amount = max(int(product.typical_check * rng.lognormvariate(0, 0.35) / 100) * 100, 100)
        phone = f"+7 9{rng.randint(10, 99)} {rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}"
        manager = rng.choice(MANAGERS)
        lead = SimulatedLead(to_utc(local, self.tz), channel, manager, product.name.in_lang(DEMO_LANG), amount, phone)
        lead.entries.append((1, lead.created))
        self._play(lead)
        return lead

    def _answer_rate(self, number: str, at: dt.datetime, delay_minutes: float) -> float:
        spam = self.problems.spam_number and number == SPAM_NUMBER and at.date() >= self.spam_from
        base = 0.15 if spam else 0.72
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

    def _response_minutes(self, manager: Manager) -> float:
        """A manager's usual callback delay; without the slow-manager problem the team is alike."""
        return manager.response_minutes if self.problems.slow_manager else 6.0

    def _skill(self, manager: Manager, step: str) -> float:
        """A manager's chance at a step; without the weak-manager problem everyone is as good."""
        if not self.problems.weak_manager:
            return {"first": 0.76, "middle": 0.58, "last": 0.50}[step]
        return {"first": manager.first_step, "middle": manager.middle_step, "last": manager.last_step}[step]

    def _steps(self, lead: SimulatedLead) -> list[_Step]:
        """Each stage after contact: its chance, the days it takes, and why deals drop before it."""
        steps: list[_Step] = []
        for position in range(3, self.stages + 1):
            if position == 3:
                steps.append((position, self._skill(lead.manager, "first"), (0.5, 3.0), FIRST_STEP_CAUSES))
            elif position == self.stages:
                steps.append((position, self._skill(lead.manager, "last"), (3.0, 14.0), LAST_STEP_CAUSES))
            else:
                steps.append((position, self._skill(lead.manager, "middle"), (2.0, 7.0), MIDDLE_STEP_CAUSES))
        return steps

    def _play(self, lead: SimulatedLead) -> None:
        reached = self._call(lead)
        if reached is None:
            return
        at = reached
        steps = self._steps(lead)
        non_target = lead.channel.profile.non_target if self.problems.non_target_source else 0.12
        if self.rng.random() < non_target:
            self._close(lead, at + dt.timedelta(minutes=15), CauseFamily.NON_TARGET)
            return
        for position, chance, (low, high), causes in steps:
            at = at + dt.timedelta(days=self.rng.uniform(low, high))
            if at >= self.now:
                return  # still being worked on
            if position >= self.stages - 1 and self.rng.random() < self.problems.stall_share:
                return  # stalled: nobody follows it up
            draw = self.rng.random()
            mismatch = lead.channel.profile.price_mismatch if self.problems.price_mismatch else 0.0
            if causes is MIDDLE_STEP_CAUSES and chance - mismatch <= draw < chance:
                self._close(lead, at, CauseFamily.PRICE)  # the price the source's clients expected
                return
            if draw >= chance:
                self._close(lead, at, self.rng.choice(causes))
                return
            lead.entries.append((position, at))
        lead.status, lead.closed = DealStatus.WON, lead.entries[-1][1]

    def _call(self, lead: SimulatedLead) -> dt.datetime | None:
        """Call attempts until someone answers; the answer moves the lead to stage 2."""
        rng = self.rng
        delay = self._response_minutes(lead.manager) * rng.lognormvariate(0, 0.9)
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
            self._close(lead, min(at, self.now - dt.timedelta(minutes=1)), CauseFamily.UNREACHABLE)
        return None

    def _close(self, lead: SimulatedLead, at: dt.datetime, cause: CauseFamily) -> None:
        lead.status, lead.closed, lead.reason = DealStatus.LOST, at, cause


def demo_pipeline_name(template: PipelineTemplate) -> str:
    return DEMO_PIPELINE.get(template.key, template.pipeline_name(DEMO_LANG))


def build_demo(*, session: Session, account: Account, options: DemoOptions | None = None) -> DemoSummary:
    """Fill the account with the demo business. The account should hold no deals yet."""
    options = options or DemoOptions()
    template = resolve_template(options.template)
    now = (
        utcnow()
        if options.today is None
        else to_utc(dt.datetime.combine(options.today, dt.time(18)), zone(DEMO_TIMEZONE))
    )
    account.timezone = DEMO_TIMEZONE
    pipeline = create_pipeline(
        session=session, account=account, name=demo_pipeline_name(template), stages=template.stage_names(DEMO_LANG)
    )
    template.add_defaults(session=session, account=account, lang=DEMO_LANG)
    simulation = _Simulation(options, template, now)
    leads = simulation.leads()
    stage_ids = {s.position: s.id for s in pipeline.stages}
    managers = {m.name: get_or_create_manager(session=session, account=account, name=m.name).id for m in MANAGERS}
    sources = {
        c.name: get_or_create_source(session=session, account=account, name=c.name).id for c in simulation.channels
    }
    reasons = {
        family: get_or_create_loss_reason(
            session=session, account=account, name=template.reason_for(family, DEMO_LANG), family=family
        ).id
        for family in CauseFamily
    }
    write_leads(session, WriteTargets(account, pipeline.id, stage_ids, managers, sources, reasons, now), leads)
    session.execute(insert(AdSpend), _spend_rows(simulation, account, sources))
    session.flush()
    last_day = simulation.first_day + dt.timedelta(days=options.days - 1)
    return DemoSummary(pipeline.name, len(leads), simulation.first_day, last_day)


@dataclass(frozen=True)
class WriteTargets:
    """What the demo's rows refer to: the account, pipeline and the ids of its named things."""

    account: Account
    pipeline_id: int
    stage_ids: dict[int, int]
    managers: dict[str, int]
    sources: dict[str, int]
    reasons: dict[CauseFamily, int]
    now: dt.datetime


def write_leads(session: Session, targets: WriteTargets, leads: list[SimulatedLead]) -> None:
    """Write simulated leads — deals, their moves, reaches, days and calls — by the rules every write
    follows (the calibration bench's twin businesses are written this way too)."""
    account, stage_ids, managers = targets.account, targets.stage_ids, targets.managers
    ids, rows = _insert_deals(session, leads, targets)
    deal_days.add_deals(session.connection(), rows, account.timezone)
    changes = [c for i, lead in zip(ids, leads, strict=True) for c in _change_rows(i, lead, account.id, stage_ids)]
    session.execute(insert(StageEntry), changes)
    last = len(stage_ids)
    facts = [DealFacts.of_row(i, row) for i, row in zip(ids, rows, strict=True)]
    insert_reaches(
        session, [r for f, lead in zip(facts, leads, strict=True) for r in reach_rows(f, lead.entries, last)]
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


def _insert_deals(
    session: Session, leads: list[SimulatedLead], ids: WriteTargets
) -> tuple[list[int], list[dict[str, Any]]]:
    rows = [_deal_row(lead, number, ids) for number, lead in enumerate(leads, 1)]
    session.execute(insert(Deal), rows)
    found = session.execute(
        select(Deal.external_id, Deal.id).where(
            Deal.pipeline_id == ids.pipeline_id, Deal.external_id.like(f"{DEMO_PREFIX}%")
        )
    )
    id_of = {row[0]: row[1] for row in found}
    return [id_of[row["external_id"]] for row in rows], rows


def _deal_row(lead: SimulatedLead, number: int, ids: WriteTargets) -> dict[str, Any]:
    furthest = max(p for p, _ in lead.entries)
    # What the stored columns derive from the lead's history follows the rules every write follows.
    state = deal_state.derive(
        entries=[deal_state.LoggedEntry(p, at, moved=i > 0) for i, (p, at) in enumerate(lead.entries)],
        won=lead.status is DealStatus.WON,
        last_position=len(ids.stage_ids),
        created_at=lead.created,
        history_known=True,
        first_call=min((at for at, *_ in lead.calls), default=None),
        stated_contact=None,
        position=lead.entries[-1][0],
    )
    title = f"{lead.product} — {lead.phone}"
    return {
        "account_id": ids.account.id,
        "pipeline_id": ids.pipeline_id,
        "external_id": f"{DEMO_PREFIX}{number:05d}",
        "title": title,
        "phone": lead.phone,
        "phone_key": phone_key(lead.phone),
        "search_text": search_text(title, None, None),
        "source_id": ids.sources[lead.channel.name],
        "manager_id": ids.managers[lead.manager.name],
        "amount": lead.amount * 100 if furthest >= 3 else None,
        "currency": ids.account.currency,
        "status": lead.status.value,
        "stage_id": ids.stage_ids[state.position],
        "furthest_position": state.furthest_position,
        "history_known": True,
        "created_at": lead.created,
        "closed_at": lead.closed,
        "loss_reason_id": ids.reasons[lead.reason] if lead.reason else None,
        "first_contact_at": state.first_contact_at,
        "contact_minutes": state.contact_minutes,
        "custom": {"Изделие": lead.product},
        "updated_at": ids.now,
    }


def _change_rows(deal_id: int, lead: SimulatedLead, account_id: int, stage_ids: dict[int, int]) -> list[dict[str, Any]]:
    rows, previous = [], None
    for position, at in lead.entries:
        stage_id = stage_ids[position]
        rows.append(
            {
                "account_id": account_id,
                "deal_id": deal_id,
                "from_stage_id": previous,
                "to_stage_id": stage_id,
                "to_position": position,
                "at": at,
            }
        )
        previous = stage_id
    return rows


def _spend_rows(simulation: _Simulation, account: Account, sources: dict[str, int]) -> list[dict[str, Any]]:
    rows = []
    month = simulation.first_day.replace(day=1)
    last = simulation.first_day + dt.timedelta(days=simulation.options.days)
    while month <= last:
        for channel in simulation.channels:
            if channel.profile.monthly_spend:
                amount = int(channel.profile.monthly_spend * simulation.rng.uniform(0.85, 1.15))
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
    """Remove an earlier demo (whatever its template) so the demo can be rebuilt; refuse if the
    database holds any deal that the demo did not make."""
    foreign = select(Deal.id).where(
        Deal.account_id == account.id,
        or_(Deal.external_id.is_(None), Deal.external_id.not_like(f"{DEMO_PREFIX}%")),
    )
    if session.scalars(foreign.limit(1)).first() is not None:
        raise DemoNeedsEmptyDatabase()
    pipeline_ids = select(Deal.pipeline_id).where(Deal.account_id == account.id).distinct().scalar_subquery()
    demo_pipelines = list(session.scalars(select(Pipeline.id).where(Pipeline.id.in_(pipeline_ids))))
    deal_ids = select(Deal.id).where(Deal.account_id == account.id).scalar_subquery()
    session.execute(delete(StageReach).where(StageReach.deal_id.in_(deal_ids)))
    session.execute(delete(StageEntry).where(StageEntry.deal_id.in_(deal_ids)))
    session.execute(delete(CallAttempt).where(CallAttempt.deal_id.in_(deal_ids)))
    session.execute(delete(DealDay).where(DealDay.account_id == account.id))
    session.execute(delete(Deal).where(Deal.account_id == account.id))
    session.execute(delete(AdSpend).where(AdSpend.account_id == account.id))
    session.execute(delete(Plan).where(Plan.pipeline_id.in_(demo_pipelines)))
    session.execute(delete(DailyCount).where(DailyCount.pipeline_id.in_(demo_pipelines)))
    session.execute(delete(Stage).where(Stage.pipeline_id.in_(demo_pipelines)))
    session.execute(delete(Pipeline).where(Pipeline.id.in_(demo_pipelines)))
    session.expire_all()
