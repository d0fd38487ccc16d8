"""How well the funnel data is kept: each problem counted, with examples, why it spoils which
report and how to fix it in the CRM; and a score out of 100.

Each check is a small class with a stable code in an explicit registry. Counting runs in SQL where
it can; "usual time in stage" and duplicate contacts are reasoned about in Python.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from voronka.analysis.stalled import stalled_counts, stalled_deals
from voronka.models import Deal, DealStatus, Pipeline, StageEntry
from voronka.timeutil import utcnow

EXAMPLES = 5
NEW_LEAD_GRACE = dt.timedelta(hours=24)


@dataclass(frozen=True)
class AuditContext:
    session: Session
    pipeline: Pipeline
    now: dt.datetime
    duplicate_days: int = 30

    @property
    def deals(self) -> ColumnElement[bool]:
        return Deal.pipeline_id == self.pipeline.id


@dataclass(frozen=True)
class Finding:
    """One problem: how many deals (or stage changes) have it, out of how many, and a few of them."""

    code: str
    count: int
    out_of: int
    examples: tuple[str, ...]
    weight: float

    @property
    def share(self) -> float:
        return self.count / self.out_of if self.out_of else 0.0


class Check(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def weight(self) -> float:
        """Its part of the score; the weights add up to 1."""

    def run(self, context: AuditContext) -> Finding: ...


def _examples(context: AuditContext, condition: ColumnElement[bool]) -> tuple[str, ...]:
    rows = context.session.scalars(
        select(func.coalesce(Deal.external_id, func.cast(Deal.id, Deal.external_id.type)))
        .where(context.deals, condition)
        .order_by(Deal.id)
        .limit(EXAMPLES)
    )
    return tuple(str(r) for r in rows)


def _deal_finding(
    check: Check, context: AuditContext, condition: ColumnElement[bool], base: ColumnElement[bool] | None = None
) -> Finding:
    """Deals meeting ``condition`` among those meeting ``base`` (all deals of the pipeline by default)."""
    session = context.session
    scope = [context.deals] if base is None else [context.deals, base]
    out_of = int(session.scalar(select(func.count()).select_from(Deal).where(*scope)) or 0)
    count = int(session.scalar(select(func.count()).select_from(Deal).where(*scope, condition)) or 0)
    return Finding(check.code, count, out_of, _examples(context, condition) if count else (), check.weight)


class NoManager:
    code: ClassVar[str] = "no_manager"
    weight: ClassVar[float] = 0.12

    def run(self, context: AuditContext) -> Finding:
        return _deal_finding(self, context, Deal.manager_id.is_(None))


class NoSource:
    code: ClassVar[str] = "no_source"
    weight: ClassVar[float] = 0.15

    def run(self, context: AuditContext) -> Finding:
        return _deal_finding(self, context, Deal.source_id.is_(None))


class LostWithoutReason:
    code: ClassVar[str] = "lost_without_reason"
    weight: ClassVar[float] = 0.15

    def run(self, context: AuditContext) -> Finding:
        lost = Deal.status == DealStatus.LOST.value
        return _deal_finding(self, context, Deal.loss_reason_id.is_(None), base=lost)


class NoFirstContact:
    """Deals never contacted, except fresh open leads still in the first stage (not due yet)."""

    code: ClassVar[str] = "no_first_contact"
    weight: ClassVar[float] = 0.12

    def run(self, context: AuditContext) -> Finding:
        fresh = (
            (Deal.status == DealStatus.OPEN.value)
            & (Deal.furthest_position == 1)
            & (Deal.created_at > context.now - NEW_LEAD_GRACE)
        )
        return _deal_finding(self, context, Deal.first_contact_at.is_(None), base=~fresh)


class WonWithoutAmount:
    code: ClassVar[str] = "won_without_amount"
    weight: ClassVar[float] = 0.10

    def run(self, context: AuditContext) -> Finding:
        won = Deal.status == DealStatus.WON.value
        return _deal_finding(self, context, or_(Deal.amount.is_(None), Deal.amount == 0), base=won)


class SkippedStages:
    """Deals with a known history that went past a stage without entering it."""

    code: ClassVar[str] = "skipped_stages"
    weight: ClassVar[float] = 0.08

    def run(self, context: AuditContext) -> Finding:
        entered = (
            select(func.count(func.distinct(StageEntry.to_position)))
            .where(StageEntry.deal_id == Deal.id, StageEntry.to_position <= Deal.furthest_position)
            .scalar_subquery()
        )
        return _deal_finding(self, context, entered < Deal.furthest_position, base=Deal.history_known.is_(True))


class OutOfOrder:
    """Stage changes dated before the deal was created or before the change logged ahead of them."""

    code: ClassVar[str] = "out_of_order"
    weight: ClassVar[float] = 0.08

    def run(self, context: AuditContext) -> Finding:
        previous_at = func.lag(StageEntry.at, type_=StageEntry.at.type).over(
            partition_by=StageEntry.deal_id, order_by=StageEntry.id
        )
        ordered = (
            select(
                StageEntry.deal_id.label("deal_id"),
                StageEntry.at.label("at"),
                previous_at.label("previous_at"),
                Deal.created_at.label("created_at"),
                func.coalesce(Deal.external_id, func.cast(Deal.id, Deal.external_id.type)).label("name"),
            )
            .join(Deal, Deal.id == StageEntry.deal_id)
            .where(context.deals)
            .subquery()
        )
        wrong = or_(ordered.c.at < ordered.c.created_at, ordered.c.at < ordered.c.previous_at)
        session = context.session
        out_of = int(session.scalar(select(func.count()).select_from(ordered)) or 0)
        count = int(session.scalar(select(func.count()).select_from(ordered).where(wrong)) or 0)
        names = session.scalars(select(ordered.c.name).where(wrong).distinct().limit(EXAMPLES)).all()
        return Finding(self.code, count, out_of, tuple(str(n) for n in names), self.weight)


class Stalled:
    """Open deals untouched (no stage move, no call) for twice the usual time in their stage."""

    code: ClassVar[str] = "stalled"
    weight: ClassVar[float] = 0.12

    def run(self, context: AuditContext) -> Finding:
        found = sum(stalled_counts(context.session, context.pipeline, context.now).values())
        examples = stalled_deals(context.session, context.pipeline, context.now, limit=EXAMPLES)
        out_of = int(
            context.session.scalar(
                select(func.count()).select_from(Deal).where(context.deals, Deal.status == DealStatus.OPEN.value)
            )
            or 0
        )
        return Finding(self.code, found, out_of, tuple(name for name, _ in examples), self.weight)


class LikelyDuplicates:
    """Leads with the same phone or e-mail as an earlier lead created within ``duplicate_days``."""

    code: ClassVar[str] = "likely_duplicates"
    weight: ClassVar[float] = 0.08

    def run(self, context: AuditContext) -> Finding:
        rows = context.session.execute(
            select(
                func.coalesce(Deal.external_id, func.cast(Deal.id, Deal.external_id.type)),
                Deal.created_at,
                Deal.phone,
                Deal.email,
            )
            .where(context.deals)
            .order_by(Deal.created_at, Deal.id)
        ).all()
        window = dt.timedelta(days=context.duplicate_days)
        last_seen: dict[str, dt.datetime] = {}
        duplicates: list[str] = []
        for name, created, phone, email in rows:
            keys = [k for k in (_phone_key(phone), _email_key(email)) if k]
            if any(key in last_seen and created - last_seen[key] <= window for key in keys):
                duplicates.append(str(name))
            for key in keys:
                last_seen[key] = created
        return Finding(self.code, len(duplicates), len(rows), tuple(duplicates[:EXAMPLES]), self.weight)


def _phone_key(phone: str | None) -> str | None:
    digits = re.sub(r"\D", "", phone or "")
    return f"tel:{digits[-10:]}" if len(digits) >= 7 else None


def _email_key(email: str | None) -> str | None:
    cleaned = (email or "").strip().casefold()
    return f"mail:{cleaned}" if "@" in cleaned else None


CHECKS: tuple[Check, ...] = (
    NoManager(),
    NoSource(),
    LostWithoutReason(),
    NoFirstContact(),
    WonWithoutAmount(),
    SkippedStages(),
    OutOfOrder(),
    Stalled(),
    LikelyDuplicates(),
)


@dataclass(frozen=True)
class AuditReport:
    pipeline: str
    deals: int
    score: int
    findings: tuple[Finding, ...]


def score_of(findings: Sequence[Finding]) -> int:
    """100 minus each problem's share weighted by how much it spoils the reports."""
    penalty = sum(f.weight * f.share for f in findings)
    return max(0, round(100 * (1 - penalty)))


def run_audit(
    *, session: Session, pipeline: Pipeline, now: dt.datetime | None = None, duplicate_days: int = 30
) -> AuditReport:
    """Every check of the registry on one pipeline."""
    context = AuditContext(session, pipeline, now or utcnow(), duplicate_days)
    findings = tuple(check.run(context) for check in CHECKS)
    deals = int(session.scalar(select(func.count()).select_from(Deal).where(context.deals)) or 0)
    return AuditReport(pipeline.name, deals, score_of(findings), findings)


def audit_to_dict(report: AuditReport, lang: str) -> dict[str, Any]:
    from voronka.i18n import translate

    return {
        "pipeline": report.pipeline,
        "deals": report.deals,
        "score": report.score,
        "problems": [
            {
                "code": f.code,
                "count": f.count,
                "out_of": f.out_of,
                "share": f.share,
                "examples": list(f.examples),
                "why": translate(f"audit.{f.code}.why", lang),
                "fix": translate(f"audit.{f.code}.fix", lang),
            }
            for f in report.findings
        ],
    }
