"""The storage schema (SQLAlchemy 2 declarative models).

Every business table carries ``account_id`` so that a server installation can hold many businesses
(and shard by account later). Times are naive UTC; money is integer minor units plus a currency code.
The stage-change log is the truth; ``Deal.stage_id``, ``Deal.furthest_position`` and
``Deal.first_contact_at`` are kept in step with it for speed and can be rebuilt from it.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from voronka.roles import Role as Role

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        dt.datetime: DateTime(),
        dt.date: Date(),
    }


class DealStatus(enum.StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class CallOutcome(enum.StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"


class CallDirection(enum.StrEnum):
    OUTGOING = "out"
    INCOMING = "in"


class CauseFamily(enum.StrEnum):
    """What a loss reason says about the cause (docs/diagnose.md)."""

    NON_TARGET = "non_target"
    PRICE = "price"
    TIMING = "timing"
    COMPETITOR = "competitor"
    UNREACHABLE = "unreachable"
    NEED_GONE = "need_gone"
    OTHER = "other"


def _enum_check(name: str, column: str, values: type[enum.StrEnum]) -> CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", active_history=True)
    created_at: Mapped[dt.datetime]


class User(Base):
    """A person of the business: owner, head of sales, manager or viewer."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        _enum_check("role", "role", Role),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default=Role.MANAGER.value)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    lang: Mapped[str | None] = mapped_column(String(2))
    """The language of the user's alerts and digests (the last one chosen on the web; Russian if none)."""
    telegram_chat_id: Mapped[str | None] = mapped_column(String(32))
    """The Telegram chat the user linked by sending the account's bot a one-time code."""
    telegram_code_hash: Mapped[str | None] = mapped_column(String(64))
    telegram_code_until: Mapped[dt.datetime | None]


class Pipeline(Base):
    __tablename__ = "pipelines"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    stages: Mapped[list[Stage]] = relationship(order_by="Stage.position", back_populates="pipeline")


class Stage(Base):
    """An ordered stage; the last position is the won stage. Lost is not a stage."""

    __tablename__ = "stages"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "position", name="uq_stages_pipeline_id_position"),
        UniqueConstraint("pipeline_id", "name", name="uq_stages_pipeline_id_name"),
        # What a deal's (stage, pipeline) refers to: a deal stands only in a stage of its own pipeline.
        UniqueConstraint("id", "pipeline_id", name="uq_stages_id_pipeline_id"),
        CheckConstraint("position >= 1", name="position_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    pipeline: Mapped[Pipeline] = relationship(back_populates="stages")


class Source(Base):
    """Where a lead came from (channel)."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    archived_at: Mapped[dt.datetime | None]
    """Archived: no longer offered for new deals and spend, still counted where it was used."""


class LossReason(Base):
    __tablename__ = "loss_reasons"
    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        _enum_check("family", "family", CauseFamily),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    family: Mapped[str] = mapped_column(String(16), default=CauseFamily.OTHER.value)
    archived_at: Mapped[dt.datetime | None]
    """Archived: no longer offered when a deal is lost, still counted where it was used."""


OWN_ORIGIN = "own"
"""The origin of the ids a business gives itself: its deals files, history files, calls files, the API."""
LEGACY_ORIGIN = ""
"""The origin of a deal stored before origins were kept."""


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        # An id is the CRM's or the file's own: unique where it came from (``origin``), since two
        # CRMs, or a CRM and an old spreadsheet, both number their deals from 1.
        UniqueConstraint("account_id", "origin", "external_id", name="uq_deals_account_id_origin"),
        # A deal stands in a stage of its own pipeline (``crm.deal_state`` keeps the rest of its state).
        ForeignKeyConstraint(
            ["stage_id", "pipeline_id"], ["stages.id", "stages.pipeline_id"], name="fk_deals_stage_in_pipeline"
        ),
        _enum_check("status", "status", DealStatus),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount_not_negative"),
        # Covers the cohort funnel: led by what it groups by, so SQLite aggregates in index order
        # without sorting, and any creation-time range is filtered inside the index (a million deals:
        # ~0.1 s whatever the range). Source, manager and closing time ride along for the common
        # breakdowns and the period view's closures.
        Index(
            "ix_deals_funnel",
            "pipeline_id",
            "furthest_position",
            "status",
            "currency",
            "created_at",
            "amount",
            "source_id",
            "manager_id",
            "closed_at",
            "loss_reason_id",
            "contact_minutes",
        ),
        Index("ix_deals_phone", "account_id", "phone_key"),
        # Arrivals by period (the statistics template's leads, first contacts and speed medians): a
        # time range read in order. SQLite could skip-scan the funnel index for it; PostgreSQL read
        # the whole table once per period (36 s for a year by week on a million deals).
        Index(
            "ix_deals_arrivals",
            "pipeline_id",
            "created_at",
            "manager_id",
            "source_id",
            "contact_minutes",
            "furthest_position",
        ),
        # The kanban: a column's open deals, oldest first, a page at a time; and the stalled check,
        # which needs each open deal's id. SQLite's entries hold the rowid; PostgreSQL's INCLUDE the
        # id (db.POSTGRESQL_INCLUDES says why that is not declared here).
        Index("ix_deals_board", "pipeline_id", "status", "stage_id", "created_at"),
        # Closures by period (the statistics template's sales money and non-target losses).
        Index(
            "ix_deals_closed",
            "pipeline_id",
            "closed_at",
            "status",
            "furthest_position",
            "currency",
            "amount",
            "loss_reason_id",
            "manager_id",
            "source_id",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Columns marked ``active_history`` decide the deal's cell in ``deal_days``: a change loads the
    # old value first, so the flush can take the deal out of its old cell (voronka.deal_days).
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), active_history=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"), active_history=True)
    external_id: Mapped[str | None] = mapped_column(String(100))
    origin: Mapped[str] = mapped_column(String(100), default=OWN_ORIGIN, server_default=LEGACY_ORIGIN)
    """Where ``external_id`` comes from: ``own`` (the business's files, the API), a CRM's kind for its
    syncs and exports (``bitrix24``), or empty for a deal stored before origins were kept (it is
    claimed by the first import or sync that names its id)."""
    title: Mapped[str | None] = mapped_column(String(300))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    phone_key: Mapped[str | None] = mapped_column(String(20))
    """The phone's digits, last first (``voronka.crm.phones.phone_key``): search by phone reads an index."""
    email: Mapped[str | None] = mapped_column(String(320))
    search_text: Mapped[str | None] = mapped_column(String(600))
    """Title, contact and e-mail case-folded (``voronka.crm.search.search_text``): what a search by name reads."""
    # No single-column indexes here: breakdowns scan the pipeline's deals anyway, and every index
    # costs each imported row.
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"), active_history=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), active_history=True)
    amount: Mapped[int | None] = mapped_column(BigInteger, active_history=True)
    currency: Mapped[str] = mapped_column(String(3), active_history=True)
    status: Mapped[str] = mapped_column(String(8), default=DealStatus.OPEN.value, active_history=True)
    stage_id: Mapped[int] = mapped_column(Integer)
    furthest_position: Mapped[int] = mapped_column(Integer, default=1, active_history=True)
    history_known: Mapped[bool] = mapped_column(Boolean, default=True, active_history=True)
    """False when the deal was imported without stage entry times: the passage rule then falls
    back to the cumulative rule for it."""
    created_at: Mapped[dt.datetime] = mapped_column(active_history=True)
    closed_at: Mapped[dt.datetime | None]
    loss_reason_id: Mapped[int | None] = mapped_column(ForeignKey("loss_reasons.id"))
    first_contact_at: Mapped[dt.datetime | None]
    """Derived (``crm.deal_state.first_contact``) from the calls, ``stated_contact_at`` and the log."""
    stated_contact_at: Mapped[dt.datetime | None]
    """A first contact an imported file or a CRM stated; kept so that a recount from the log keeps it."""
    contact_minutes: Mapped[int | None]
    """Speed to lead in minutes begun (first contact − creation), kept with ``first_contact_at`` so
    that reports count it from the index instead of doing date arithmetic on every deal."""
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime]


class StageEntry(Base):
    """Append-only log of stage entries: the truth the funnel is counted from."""

    __tablename__ = "stage_changes"
    # Only per-deal lookups read the log (reports read stage_reaches), so one narrow index will do.
    __table_args__ = (Index("ix_stage_changes_deal", "deal_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    from_stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    to_position: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime]
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CallAttempt(Base):
    __tablename__ = "call_attempts"
    __table_args__ = (
        _enum_check("outcome", "outcome", CallOutcome),
        _enum_check("direction", "direction", CallDirection),
        CheckConstraint("duration_seconds >= 0", name="duration_not_negative"),
        Index("ix_call_attempts_deal", "deal_id", "at"),
        # A call that came from a telephony export or a CRM is stored once, however often it comes.
        Index("ix_call_attempts_source", "account_id", "external_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime]
    outgoing_number: Mapped[str | None] = mapped_column(String(50))
    outcome: Mapped[str] = mapped_column(String(16))
    duration_seconds: Mapped[int] = mapped_column(Integer, default=0)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    direction: Mapped[str] = mapped_column(String(3), default=CallDirection.OUTGOING.value, server_default="out")
    """Outgoing (we called) or incoming (the client called): a missed incoming call is no contact."""
    client_phone: Mapped[str | None] = mapped_column(String(50))
    external_id: Mapped[str | None] = mapped_column(String(120))
    """Where the call came from and its id there (``bitrix24:123``, ``file:<digest>``)."""


class WaitingCall(Base):
    """A call that matched no deal yet (its deal not imported or synced so far): kept, not dropped,
    and moved to ``call_attempts`` by ``ingest.importers.calls.match_waiting_calls`` once its deal
    arrives. What it was matched by is kept with it: the deal it names (a note on the lead itself),
    the deals it may belong to (a contact's), the client's number."""

    __tablename__ = "waiting_calls"
    __table_args__ = (Index("ix_waiting_calls_source", "account_id", "external_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    external_id: Mapped[str] = mapped_column(String(120))
    origin: Mapped[str] = mapped_column(String(100))
    """Whose ids ``deal_ref`` and ``refs`` are (``Deal.origin``)."""
    at: Mapped[dt.datetime]
    direction: Mapped[str] = mapped_column(String(3))
    outcome: Mapped[str] = mapped_column(String(16))
    duration_seconds: Mapped[int] = mapped_column(Integer, default=0)
    outgoing_number: Mapped[str | None] = mapped_column(String(50))
    client_phone: Mapped[str | None] = mapped_column(String(50))
    manager: Mapped[str | None] = mapped_column(String(200))
    deal_ref: Mapped[str | None] = mapped_column(String(100))
    refs: Mapped[list[str]] = mapped_column(JSON, default=list)
    received_at: Mapped[dt.datetime]


class AdSpend(Base):
    """Money spent on a source over a day or a calendar month (``period_start`` is its first day)."""

    __tablename__ = "ad_spend"
    __table_args__ = (
        UniqueConstraint("account_id", "source_id", "period_start", "period_kind"),
        CheckConstraint("period_kind IN ('day', 'month')", name="period_kind"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    """None: spend typed without its source (it counts in the team's total only)."""
    period_start: Mapped[dt.date]
    period_kind: Mapped[str] = mapped_column(String(5))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class Plan(Base):
    """A monthly target for one statistics metric, for the team or one manager or source.

    ``value`` is in the metric's base unit: a count, minor units of money, or parts per million of
    a share (see ``voronka.analysis.stats.metrics``).
    """

    __tablename__ = "plans"
    __table_args__ = (
        Index("ix_plans_lookup", "pipeline_id", "month", "metric"),
        CheckConstraint("NOT (manager_id IS NOT NULL AND source_id IS NOT NULL)", name="one_cut"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    month: Mapped[dt.date]
    metric: Mapped[str] = mapped_column(String(40))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    value: Mapped[int] = mapped_column(BigInteger)


class DailyCount(Base):
    """No-CRM mode: how many leads entered a stage on a day (optionally per source and manager).

    These are period-view numbers (docs/funnel.md, "Daily counts"): reports built on them say so.
    """

    __tablename__ = "daily_counts"
    __table_args__ = (
        Index("ix_daily_counts_lookup", "pipeline_id", "day", "stage_position"),
        CheckConstraint("count >= 0", name="count_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    day: Mapped[dt.date]
    stage_position: Mapped[int] = mapped_column(Integer)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    count: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int | None] = mapped_column(BigInteger)
    """Money of the day's sales (minor units), kept on the won stage's row."""


class StageReach(Base):
    """When a deal reached each stage after the first, under the cumulative rule: derived from the
    stage-change log (``voronka.crm.reaches``) so that period reports need no pass over the whole log.

    ``entered_at`` is the deal's first actual entry into the stage (passage rule); null if skipped.
    Manager and source are copied from the deal so that cuts need no join; they are refreshed with it.
    """

    __tablename__ = "stage_reaches"
    __table_args__ = (
        # Period reports; and the stalled check's recent moves, which need the deal id (INCLUDEd on
        # PostgreSQL, as for ix_deals_board above).
        Index("ix_stage_reaches_period", "pipeline_id", "reached_at", "position", "manager_id", "source_id"),
        Index("ix_stage_reaches_deal", "deal_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    reached_at: Mapped[dt.datetime]
    entered_at: Mapped[dt.datetime | None]
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))


class AssignRule(enum.StrEnum):
    """Who gets a website form's leads."""

    NONE = "none"
    MANAGER = "manager"
    ROUND_ROBIN = "round_robin"


class AssignmentKind(enum.StrEnum):
    """How deals are split into arm A (control) and arm B (the change)."""

    ALTERNATING = "alternating"
    RANDOM = "random"
    FIELD = "field"
    BEFORE_AFTER = "before_after"


class Hypothesis(Base):
    """A change tried at one step of a pipeline, and how deals are split to test it."""

    __tablename__ = "hypotheses"
    __table_args__ = (_enum_check("assignment", "assignment", AssignmentKind),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    position: Mapped[int] = mapped_column(Integer)
    """The step into this stage (from the one before it)."""
    change: Mapped[str] = mapped_column(String(500))
    starts_on: Mapped[dt.date]
    ends_on: Mapped[dt.date | None]
    assignment: Mapped[str] = mapped_column(String(16))
    field: Mapped[str | None] = mapped_column(String(200))
    value_a: Mapped[str | None] = mapped_column(String(200))
    value_b: Mapped[str | None] = mapped_column(String(200))
    uplift_ppm: Mapped[int] = mapped_column(Integer, default=50_000)
    """The smallest gain worth detecting (parts per million of conversion): sets the sample size."""
    created_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]
    verdict: Mapped[str | None] = mapped_column(String(500))


class Connection(Base):
    """A CRM the account syncs from: what kind, where, and how far the last sync got.

    Secrets (tokens, keys) are not here: they live in the secrets file under ``secret_ref``
    (see ``voronka.ingest.connectors.store``), so a copy of the database gives no access to the CRM.
    """

    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    base_url: Mapped[str] = mapped_column(String(500))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What is not secret: a company id, which pipelines to take."""
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The sync's cursor: where an interrupted sync resumes and an incremental one starts."""
    secret_ref: Mapped[str] = mapped_column(String(64))
    webhook_token_hash: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime]
    last_synced_at: Mapped[dt.datetime | None]


class ApiToken(Base):
    """A user's token for the REST API; only its SHA-256 hash is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class LeadForm(Base):
    """A website form that posts leads into a pipeline through its own webhook token."""

    __tablename__ = "lead_forms"
    __table_args__ = (_enum_check("assign_rule", "assign_rule", AssignRule),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    name: Mapped[str] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(200))
    """The source of its leads when the request names none (no utm_source)."""
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    assign_rule: Mapped[str] = mapped_column(String(12), default="none", server_default="none")
    """Who gets its leads: nobody (the head's "unassigned" queue), one named manager, or the
    active managers in turn."""
    assign_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    """Round robin: the manager who got the form's previous lead."""


class LeadRequest(Base):
    """A lead request already turned into a deal: the same request again creates nothing."""

    __tablename__ = "lead_requests"
    __table_args__ = (UniqueConstraint("form_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("lead_forms.id"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime]


class Note(Base):
    """A note on a deal, by whom and when."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(String(4000))
    created_at: Mapped[dt.datetime]


class TaskKind(enum.StrEnum):
    CALL = "call"
    MEETING = "meeting"
    ESTIMATE = "estimate"
    OTHER = "other"


class Task(Base):
    """Something to do on a deal, by whom and by when: the control a sales team runs its day by."""

    __tablename__ = "tasks"
    __table_args__ = (
        _enum_check("kind", "kind", TaskKind),
        # "My tasks" and "the team's overdue tasks": open tasks of an account by due time.
        Index("ix_tasks_open", "account_id", "done_at", "due_at"),
        Index("ix_tasks_deal", "deal_id", "done_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))
    due_at: Mapped[dt.datetime]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    """Who is to do it."""
    text: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[dt.datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    done_at: Mapped[dt.datetime | None]
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class DealEvent(Base):
    """What happened to a deal that no other table records — a loss, a reopening, a field changed,
    a task set or done — and who did it, for the card's history and for undo."""

    __tablename__ = "deal_events"
    __table_args__ = (Index("ix_deal_events_deal", "deal_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(24))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LoginSession(Base):
    """A logged-in browser: the cookie holds a random token, the database only its hash, so logging
    out, a new password or a deactivated user ends it on the server."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class LoginThrottle(Base):
    """Recent failed logins per key (an e-mail address or a client address), shared by every
    process: each attempt is reserved atomically before the password is checked."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[dt.datetime]
    next_at: Mapped[dt.datetime]


class Job(Base):
    """Background work and where it stands: each row runs every ``every_seconds`` when due.

    A process takes a job by setting a lease with one conditional UPDATE (``lease_until`` in the past
    or empty), so two processes never run it at once; a process that dies leaves a lease that runs out,
    and the next worker takes the job again.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("account_id", "kind", "target"),
        Index("ix_jobs_due", "next_run_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(100), default="")
    """What the job works on: a connection's name for a sync, the period for a digest."""
    every_seconds: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[dt.datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None]
    last_started_at: Mapped[dt.datetime | None]
    last_finished_at: Mapped[dt.datetime | None]
    last_result: Mapped[str | None] = mapped_column(String(500))
    last_error: Mapped[str | None] = mapped_column(String(500))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    """Failures in a row: the retry waits longer after each."""


class AlertSettings(Base):
    """An account's alert thresholds, quiet hours and channels (their secrets are in the secrets
    file under ``secret_ref``)."""

    __tablename__ = "alert_settings"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    lead_minutes: Mapped[int] = mapped_column(Integer, default=5)
    stall_factor: Mapped[int] = mapped_column(Integer, default=2)
    quiet_from: Mapped[str | None] = mapped_column(String(5))
    quiet_to: Mapped[str | None] = mapped_column(String(5))
    """Quiet hours as local "HH:MM" (from 21:00 to 09:00 spans midnight); none when either is empty."""
    telegram_api_url: Mapped[str | None] = mapped_column(String(300))
    telegram_offset: Mapped[int] = mapped_column(Integer, default=0)
    """The next Telegram update to read (chat links arrive as updates)."""
    smtp_host: Mapped[str | None] = mapped_column(String(255))
    smtp_port: Mapped[int | None] = mapped_column(Integer)
    smtp_security: Mapped[str] = mapped_column(String(8), default="starttls")
    smtp_user: Mapped[str | None] = mapped_column(String(320))
    smtp_from: Mapped[str | None] = mapped_column(String(320))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    secret_ref: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime]
    """Alerts look at nothing older: a first run does not page the team about last year's leads."""
    work_hours: Mapped[str | None] = mapped_column(String(11))
    """Working hours as local "HH:MM-HH:MM": a lead's clock runs only then; none, around the clock."""
    work_calendar: Mapped[str | None] = mapped_column(String(8))
    """Whose production calendar names the working days ("RU"); none, Monday to Friday."""
    handover: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """A lead still uncalled at the escalation goes to the next manager in turn."""


class AlertPref(Base):
    """An event switched on or off for a role (``role:head``) or a user (``user:12``); a user's own
    choice wins over the role's, the role's over the defaults (``voronka.alerts.model``)."""

    __tablename__ = "alert_prefs"
    __table_args__ = (UniqueConstraint("account_id", "subject", "event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    subject: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean)


class OutboxMessage(Base):
    """One alert or digest to one recipient on one channel. ``key`` is unique: the same event found
    again, by this process or another, after a restart or not, adds nothing, so each is sent once."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("account_id", "key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    key: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    address: Mapped[str] = mapped_column(String(320))
    """A chat id, an e-mail address or a URL."""
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(String(20000))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What the webhook receives and what the e-mail needs beyond its text (an HTML body, a chart)."""
    status: Mapped[str] = mapped_column(String(8), default="pending")
    """pending, sending (leased), sent or failed (refused for good)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime]
    next_attempt_at: Mapped[dt.datetime]
    lease_until: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))


class DiagnosisCache(Base):
    """The dashboard's top findings as the last diagnosis left them, in both languages: the page
    reads them instead of diagnosing on a request, and a job keeps them fresh."""

    __tablename__ = "diagnosis_cache"

    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    computed_at: Mapped[dt.datetime]
    findings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DealDay(Base):
    """Deals counted per local day of creation and per cell (manager × source × furthest stage ×
    status × currency × known history), with their amounts: the cohort funnel, its months, sources
    and managers read these cells instead of every deal. Kept on every write of a deal
    (``voronka.deal_days``) and rebuildable from the deals. A manager or source id of 0 stands for
    none and -1 for all (each deal is counted with its own, and under "all" for either and both),
    so that every cell has one key and a report of the whole team reads the fewest cells."""

    __tablename__ = "deal_days"
    __table_args__ = ({"sqlite_with_rowid": False},)  # SQLite stores the cells in key order

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True)
    manager_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    furthest_position: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(8), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    history_known: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    deals: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
