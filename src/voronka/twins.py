"""Twin simulated businesses: one with a planted cause, its twin identical without it.

The calibration of the diagnosis's money at stake (``bench/bench_calibration.py`` and its seeded
small version in the tests) compares the money of the finding that names the planted cause with
what the cause really costs: the twins' revenue difference over the diagnosis's recent 90 days, a
month. Twins share every random draw — each lead has its own generator seeded by the business's seed
and the lead's number, and draws the same numbers in the same order whatever the cause — so their
difference is the cause's doing, not chance.

The business: five stages (lead, qualified, estimate, contract, won), four managers, four sources,
three outgoing numbers, up to three call attempts a lead (one in the single-attempt world), the
chance of an answer falling as the lead waits, about 8,000 leads a year over 480 days, and times in
a stage drawn from a log-normal spread, so a healthy business has its normal long tail of slow deals.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from voronka.analysis.diagnose import Diagnosis
from voronka.analysis.diagnose.model import Finding
from voronka.crm.accounts import create_pipeline, get_or_create_loss_reason, get_or_create_manager, get_or_create_source
from voronka.demo import Channel, ChannelProfile, Manager, SimulatedLead, WriteTargets, write_leads
from voronka.models import Account, CallOutcome, CauseFamily, DealStatus
from voronka.timeutil import to_utc, zone

STAGES = ("Lead", "Qualified", "Estimate", "Contract", "Won")
MANAGERS = ("Anna", "Boris", "Vera", "Gleb")
SOURCES = ("Search", "Avito", "Social", "Referral")
NUMBERS = ("+7 495 000-00-01", "+7 495 000-00-02", "+7 495 000-00-03")
TIMEZONE = "Europe/Moscow"
RECENT_DAYS = 90
STEP_CHANCE = {3: 0.60, 4: 0.55, 5: 0.50}
"""The chance of passing each step after the lead is reached (into estimate, contract, won)."""
STEP_DAYS = {3: 2.0, 4: 5.0, 5: 8.0}
"""Median days a step takes; log-normal with ``STEP_SPREAD``."""
STEP_SPREAD = 0.6
NON_TARGET = 0.12
ANSWER = 0.72
SPAM_ANSWER = 0.15
STALL = 0.15
"""The share of deals in the last two stages nobody follows up, where stalling is planted."""


class Cause(enum.Enum):
    SLOW_MANAGER = "slow manager"
    BAD_SOURCE = "bad source (price)"
    NON_TARGET_SOURCE = "non-target source"
    WEAK_STEP = "weak step vs own history"
    STALLED_90 = "stalled deals, stalling began 90 days ago"
    STALLED_ALL = "stalled deals, since the first day of data"
    SPAM_ONE = "spam number, one call attempt per lead"
    SPAM_CALLBACKS = "spam number, up to 3 attempts"

    @property
    def attempts(self) -> tuple[int, ...]:
        """How many call attempts a lead may get in this cause's world (its twin's too)."""
        if self is Cause.SPAM_ONE:
            return (1,)
        # Call-backs: a lead missed on the flagged line is called again, mostly from another one.
        return (3,) if self is Cause.SPAM_CALLBACKS else (1, 2, 3)


@dataclass(frozen=True)
class Expected:
    """The finding that names the cause: its code, step (None: any) and subject (None: none)."""

    code: str
    step: tuple[int, int] | None
    subject: str | None


EXPECTED = {
    Cause.SLOW_MANAGER: Expected("manager_below_team", None, MANAGERS[0]),
    Cause.BAD_SOURCE: Expected("source_below_team", None, SOURCES[1]),
    Cause.NON_TARGET_SOURCE: Expected("source_below_team", None, SOURCES[2]),
    Cause.WEAK_STEP: Expected("step_below_history", (3, 4), None),
    Cause.STALLED_90: Expected("stalled_deals", None, None),
    Cause.STALLED_ALL: Expected("stalled_deals", None, None),
    Cause.SPAM_ONE: Expected("outgoing_number_answer_rate", None, NUMBERS[2]),
    Cause.SPAM_CALLBACKS: Expected("outgoing_number_answer_rate", None, NUMBERS[2]),
}


@dataclass(frozen=True)
class World:
    """One business: its seed, size, the day the data end, the cause planted (None: healthy) and
    the call attempts its leads may get."""

    seed: int
    today: dt.date
    cause: Cause | None
    attempts: tuple[int, ...] = (1, 2, 3)
    leads_per_year: int = 8000
    days: int = 480

    @property
    def recent_start(self) -> dt.date:
        """The first day of the diagnosis's recent 90 days (``today`` is a whole day)."""
        return self.today + dt.timedelta(days=1 - RECENT_DAYS)


class _Twin:
    """One business's leads, drawn so that its twin draws the same numbers."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.tz = zone(TIMEZONE)
        self.now = to_utc(dt.datetime.combine(world.today + dt.timedelta(days=1), dt.time()), self.tz)
        self.first_day = world.today - dt.timedelta(days=world.days - 1)
        local_recent = dt.datetime.combine(world.recent_start, dt.time())
        self.recent = to_utc(local_recent, self.tz)
        self.spam_from = to_utc(local_recent - dt.timedelta(days=110), self.tz)
        self.stall_from = self.recent if world.cause is Cause.STALLED_90 else to_utc(dt.datetime(1970, 1, 1), self.tz)
        self.channels = tuple(Channel(name, ChannelProfile(1.0, 0.0, 0.0, 0)) for name in SOURCES)
        self.managers = tuple(Manager(name, 6.0, 0.0, 0.0, 0.0) for name in MANAGERS)

    def leads(self) -> list[SimulatedLead]:
        days = random.Random(f"{self.world.seed}:days")
        per_day = self.world.leads_per_year / 365
        leads: list[SimulatedLead] = []
        for offset in range(self.world.days):
            day = self.first_day + dt.timedelta(days=offset)
            weekday = 0.6 if day.weekday() >= 5 else 1.16
            for _ in range(_poisson(days, per_day * weekday)):
                lead = self._lead(day, random.Random(f"{self.world.seed}:{len(leads)}"))
                if lead.created < self.now:
                    leads.append(lead)
        return leads

    def _lead(self, day: dt.date, rng: random.Random) -> SimulatedLead:
        local = dt.datetime.combine(day, dt.time(9)) + dt.timedelta(minutes=rng.uniform(0, 10 * 60))
        channel = self.channels[min(int(rng.random() * len(SOURCES)), len(SOURCES) - 1)]
        manager = self.managers[min(int(rng.random() * len(MANAGERS)), len(MANAGERS) - 1)]
        amount = max(int(100_000 * rng.lognormvariate(0, 0.35) / 100) * 100, 100)
        phone = f"+7 9{rng.randint(10, 99)} {rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}"
        lead = SimulatedLead(to_utc(local, self.tz), channel, manager, "Order", amount, phone)
        lead.entries.append((1, lead.created))
        draws = [rng.random() for _ in range(32)]
        self._play(lead, draws)
        return lead

    def _play(self, lead: SimulatedLead, u: list[float]) -> None:
        cause = self.world.cause
        reached = self._call(lead, u)
        if reached is None:
            return
        non_target = 0.40 if cause is Cause.NON_TARGET_SOURCE and lead.channel.name == SOURCES[2] else NON_TARGET
        if u[20] < non_target:
            self._close(lead, reached + dt.timedelta(minutes=15), CauseFamily.NON_TARGET)
            return
        at = reached
        for index, position in enumerate((3, 4, 5)):
            draw, length, stall = u[21 + 3 * index], u[22 + 3 * index], u[23 + 3 * index]
            if (
                position >= 4
                and cause in (Cause.STALLED_90, Cause.STALLED_ALL)
                and stall < STALL
                and at >= self.stall_from
            ):
                return  # nobody follows it up: open, untouched since it entered its stage
            at = at + dt.timedelta(days=STEP_DAYS[position] * math.exp(STEP_SPREAD * _normal(length)))
            if at >= self.now:
                return  # still being worked on
            chance = STEP_CHANCE[position]
            if position == 4 and cause is Cause.WEAK_STEP and at >= self.recent:
                chance -= 0.15
            if position == 4 and cause is Cause.BAD_SOURCE and lead.channel.name == SOURCES[1]:
                chance -= 0.15
            if draw >= chance:
                family = (CauseFamily.PRICE, CauseFamily.TIMING, CauseFamily.COMPETITOR)[position - 3]
                self._close(lead, at, family)
                return
            lead.entries.append((position, at))
        lead.status, lead.closed = DealStatus.WON, lead.entries[-1][1]

    def _call(self, lead: SimulatedLead, u: list[float]) -> dt.datetime | None:
        """Call attempts until one is answered (the lead is then reached), each from a random line."""
        slow = self.world.cause is Cause.SLOW_MANAGER and lead.manager.name == MANAGERS[0]
        at = lead.created + dt.timedelta(minutes=(60.0 if slow else 6.0) * math.exp(0.9 * _normal(u[0])))
        choices = self.world.attempts
        attempts = choices[min(int(u[1] * len(choices)), len(choices) - 1)]
        for attempt in range(attempts):
            if at >= self.now:
                return None
            number = NUMBERS[min(int(u[2 + 4 * attempt] * len(NUMBERS)), len(NUMBERS) - 1)]
            spam = self.world.cause in (Cause.SPAM_ONE, Cause.SPAM_CALLBACKS) and number == NUMBERS[2]
            rate = (SPAM_ANSWER if spam and at >= self.spam_from else ANSWER) * _freshness(at - lead.created)
            if u[3 + 4 * attempt] < rate:
                lead.calls.append((at, number, CallOutcome.ANSWERED, 120))
                lead.entries.append((2, at + dt.timedelta(minutes=5)))
                return lead.entries[-1][1]
            lead.calls.append((at, number, CallOutcome.NO_ANSWER, 0))
            at += dt.timedelta(hours=1 + 19 * u[4 + 4 * attempt])
        if at < self.now:
            self._close(lead, at, CauseFamily.UNREACHABLE)
        return None

    @staticmethod
    def _close(lead: SimulatedLead, at: dt.datetime, cause: CauseFamily) -> None:
        lead.status, lead.closed, lead.reason = DealStatus.LOST, at, cause


def _freshness(waited: dt.timedelta) -> float:
    minutes = waited.total_seconds() / 60
    if minutes <= 5:
        return 1.0
    if minutes <= 30:
        return 0.8
    if minutes <= 60:
        return 0.62
    return 0.5 if minutes <= 24 * 60 else 0.35


def _normal(u: float) -> float:
    """The standard normal quantile of ``u`` (one uniform draw, so twins stay in step)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(min(max(u, 1e-9), 1 - 1e-9))


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def build_world(*, session: Session, account: Account, world: World) -> float:
    """Fill the (empty) account with the world's business; return its revenue won over the recent
    90 days, a month (minor units) — what the twins' difference is measured on."""
    account.timezone = TIMEZONE
    pipeline = create_pipeline(session=session, account=account, name="Sales", stages=STAGES)
    twin = _Twin(world)
    leads = twin.leads()
    managers = {m: get_or_create_manager(session=session, account=account, name=m).id for m in MANAGERS}
    sources = {s: get_or_create_source(session=session, account=account, name=s).id for s in SOURCES}
    reasons = {
        family: get_or_create_loss_reason(session=session, account=account, name=family.value, family=family).id
        for family in CauseFamily
    }
    stage_ids = {s.position: s.id for s in pipeline.stages}
    write_leads(session, WriteTargets(account, pipeline.id, stage_ids, managers, sources, reasons, twin.now), leads)
    session.flush()
    return _recent_revenue(twin, leads)


def _recent_revenue(twin: _Twin, leads: list[SimulatedLead]) -> float:
    won = sum(
        lead.amount * 100
        for lead in leads
        if lead.status is DealStatus.WON and lead.closed is not None and twin.recent <= lead.closed < twin.now
    )
    return won / (RECENT_DAYS / 30.4)


@functools.lru_cache(maxsize=256)
def _simulated_revenue(world: World) -> float:
    """The world's recent revenue a month, simulated only (a healthy twin serves every cause)."""
    twin = _Twin(world)
    return _recent_revenue(twin, twin.leads())


def expected_truth(cause: Cause, *, today: dt.date, leads_per_year: int, replicates: int) -> float:
    """What the cause costs a month in expectation: the twins' recent revenue difference averaged
    over ``replicates`` simulated twin pairs (no database needed). One pair's difference is noisy —
    the realized wins of the couple of hundred leads a cause touches in 90 days — so the money at
    stake is compared with this instead."""
    total = 0.0
    for replicate in range(replicates):
        seed = 1_000_000 + replicate
        healthy = _simulated_revenue(World(seed, today, None, cause.attempts, leads_per_year=leads_per_year))
        total += healthy - _simulated_revenue(World(seed, today, cause, cause.attempts, leads_per_year=leads_per_year))
    return total / replicates


def matching(findings: Sequence[Finding], cause: Cause) -> list[Finding]:
    """The findings that name ``cause``: its rule, at its step if it has one, about its subject."""
    expected = EXPECTED[cause]
    return [
        f
        for f in findings
        if f.code == expected.code
        and (expected.step is None or f.step == expected.step)
        and (expected.subject is None or (f.subject is not None and f.subject.value == expected.subject))
    ]


@dataclass(frozen=True)
class Pair:
    """One twin pair's measurement."""

    cause: Cause
    seed: int
    truth: float
    """Monthly revenue the cause costs: the healthy twin's minus the planted one's, recent 90 days."""
    money: float
    """The money at stake of the findings that name the cause (0 when none does)."""
    first: bool
    """Whether the first finding of the ranking names the cause."""
    confident: bool

    @property
    def ratio(self) -> float:
        return self.money / self.truth if self.truth else math.nan


def judge(diagnosis: Diagnosis, cause: Cause, seed: int, truth: float) -> Pair:
    found = matching(diagnosis.findings, cause)
    first = bool(diagnosis.findings) and diagnosis.findings[0] in found
    return Pair(
        cause, seed, truth, sum(f.money_at_stake_per_month for f in found), first, any(f.confident for f in found)
    )
