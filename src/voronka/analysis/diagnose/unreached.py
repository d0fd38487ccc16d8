"""Leads an outgoing number failed to reach: what a number's low answer rate cost, counted in leads.

A lead missed on one line and reached from another lost nothing, so the cost is counted over the
leads that ended (closed in the recent window) unreached, and it can be no more than the gap in
reach between the leads the number called and the leads only other lines called.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, select

from voronka import schema
from voronka.analysis.diagnose.cube import Span
from voronka.reading import Reader
from voronka.schema import CallDirection, DealStatus


@dataclass(frozen=True)
class Ended:
    """Leads that ended in the recent window, and how many of them ended unreached."""

    leads: int = 0
    unreached: int = 0

    @property
    def unreached_share(self) -> float:
        return self.unreached / self.leads if self.leads else 0.0


@dataclass(frozen=True)
class Unreached:
    attempts: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    """Per number, the leads that ended unreached by the number of attempts on it: {k: leads}."""
    ended: Mapping[str, Ended] = field(default_factory=dict)
    """Per number, the leads that ended with at least one attempt on it."""
    ended_called: Ended = Ended()
    """Every lead that ended with an attempt on some known number."""

    def rescued(self, number: str, rate: float, other_rate: float) -> float:
        """Leads the number would have reached, answered as often as the others: each lead that
        ended unreached is saved unless every one of its k attempts on the number failed again (an
        attempt that failed at the number's rate would have been answered with g = (others − rate)
        / (1 − rate)); capped by the reach gap."""
        gain = (other_rate - rate) / (1 - rate) if rate < 1 else 0.0
        saved = sum(leads * (1 - (1 - gain) ** k) for k, leads in self.attempts.get(number, {}).items())
        return min(saved, self.reach_gap(number))

    def reach_gap(self, number: str) -> float:
        """The leads the number called that ended unreached beyond what the leads only other lines
        called did: however its attempts went, fixing the number cannot reach more leads than that.
        Call-backs from other lines that reached its leads close the gap. Without leads to compare
        with, no cap."""
        own = self.ended.get(number, Ended())
        others = Ended(self.ended_called.leads - own.leads, self.ended_called.unreached - own.unreached)
        if not others.leads:
            return float(own.unreached)
        return max(own.unreached - own.leads * others.unreached_share, 0.0)


def count_unreached(session: Reader, pipeline_id: int, span: Span) -> Unreached:
    """Per outgoing number, the leads that ended in the recent window with attempts on it: all of
    them and those lost without ever being reached, by the number of attempts."""
    ended_unreached = and_(schema.deals.c.status == DealStatus.LOST.value, schema.deals.c.furthest_position == 1)
    per_lead = (
        select(
            schema.deals.c.id.label("deal_id"),
            schema.call_attempts.c.outgoing_number.label("number"),
            func.count().label("attempts"),
            func.max(case((ended_unreached, 1), else_=0)).label("unreached"),
        )
        .join(schema.deals, schema.deals.c.id == schema.call_attempts.c.deal_id)
        .where(
            schema.deals.c.pipeline_id == pipeline_id,
            span.owned(schema.deals),
            schema.deals.c.status != DealStatus.OPEN.value,
            schema.deals.c.closed_at >= span.recent,
            schema.deals.c.closed_at < span.end,
            schema.call_attempts.c.outgoing_number.is_not(None),
            schema.call_attempts.c.direction == CallDirection.OUTGOING.value,
        )
        .group_by(schema.deals.c.id, schema.call_attempts.c.outgoing_number)
        .subquery()
    )
    attempts: dict[str, dict[int, int]] = defaultdict(dict)
    ended: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    grouped = select(per_lead.c.number, per_lead.c.attempts, per_lead.c.unreached, func.count()).group_by(
        per_lead.c.number, per_lead.c.attempts, per_lead.c.unreached
    )
    for number, tries, unreached, leads in session.execute(grouped):
        key = str(number)
        ended[key][0] += int(leads)
        if unreached:
            attempts[key][int(tries)] = int(leads)
            ended[key][1] += int(leads)
    per_deal = select(func.max(per_lead.c.unreached).label("unreached")).group_by(per_lead.c.deal_id).subquery()
    leads, unreached_leads = session.execute(select(func.count(), func.sum(per_deal.c.unreached))).one()
    return Unreached(
        attempts=dict(attempts),
        ended={number: Ended(*counts) for number, counts in ended.items()},
        ended_called=Ended(int(leads or 0), int(unreached_leads or 0)),
    )
