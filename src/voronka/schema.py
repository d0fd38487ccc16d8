"""The storage schema: every table, declared once as SQLAlchemy Core.

Report commands read these tables directly, without loading the ORM; ``voronka.models`` maps its
classes onto the same tables for the services that write, and Alembic compares the database with
this ``metadata``. Every business table carries ``account_id`` so that a server installation can
hold many businesses (and shard by account later). Times are naive UTC; money is integer minor
units plus a currency code. The stage-entry log (``stage_changes``) is the truth; a deal's stage,
furthest position and first contact are kept in step with it for speed and can be rebuilt from it.
"""

from __future__ import annotations

import enum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    false,
)

from voronka.roles import Role

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


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


class TaskKind(enum.StrEnum):
    CALL = "call"
    MEETING = "meeting"
    ESTIMATE = "estimate"
    OTHER = "other"


def _enum_check(name: str, column: str, values: type[enum.StrEnum]) -> CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


OWN_ORIGIN = "own"
"""The origin of the ids a business gives itself: its deals files, history files, calls files, the API."""
LEGACY_ORIGIN = ""
"""The origin of a deal stored before origins were kept."""


accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), default="RUB", nullable=False),
    Column("timezone", String(64), default="UTC", nullable=False),
    Column("created_at", DateTime(), nullable=False),
)


# A person of the business: owner, head of sales, manager or viewer.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), index=True, nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=True),
    Column("role", String(16), default=Role.MANAGER.value, nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("active", Boolean, default=True, nullable=False),
    # The language of the user's alerts and digests (the last one chosen on the web; Russian if none).
    Column("lang", String(2), nullable=True),
    # The Telegram chat the user linked by sending the account's bot a one-time code.
    Column("telegram_chat_id", String(32), nullable=True),
    Column("telegram_code_hash", String(64), nullable=True),
    Column("telegram_code_until", DateTime(), nullable=True),
    UniqueConstraint("account_id", "name"),
    _enum_check("role", "role", Role),
)


pipelines = Table(
    "pipelines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), index=True, nullable=False),
    Column("name", String(200), nullable=False),
    UniqueConstraint("account_id", "name"),
)


# An ordered stage; the last position is the won stage. Lost is not a stage.
stages = Table(
    "stages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), index=True, nullable=False),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    UniqueConstraint("pipeline_id", "position", name="uq_stages_pipeline_id_position"),
    UniqueConstraint("pipeline_id", "name", name="uq_stages_pipeline_id_name"),
    # What a deal's (stage, pipeline) refers to: a deal stands only in a stage of its own pipeline.
    UniqueConstraint("id", "pipeline_id", name="uq_stages_id_pipeline_id"),
    CheckConstraint("position >= 1", name="position_positive"),
)


# Where a lead came from (channel).
sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), index=True, nullable=False),
    Column("name", String(200), nullable=False),
    # Archived: no longer offered for new deals and spend, still counted where it was used.
    Column("archived_at", DateTime(), nullable=True),
    UniqueConstraint("account_id", "name"),
)


loss_reasons = Table(
    "loss_reasons",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), index=True, nullable=False),
    Column("name", String(200), nullable=False),
    Column("family", String(16), default=CauseFamily.OTHER.value, nullable=False),
    # Archived: no longer offered when a deal is lost, still counted where it was used.
    Column("archived_at", DateTime(), nullable=True),
    UniqueConstraint("account_id", "name"),
    _enum_check("family", "family", CauseFamily),
)


deals = Table(
    "deals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id"), nullable=False),
    Column("external_id", String(100), nullable=True),
    # Where ``external_id`` comes from: ``own`` (the business's files, the API), a CRM's kind for its
    # syncs and exports (``bitrix24``), or empty for a deal stored before origins were kept (it is
    # claimed by the first import or sync that names its id).
    Column("origin", String(100), default=OWN_ORIGIN, server_default=LEGACY_ORIGIN, nullable=False),
    Column("title", String(300), nullable=True),
    Column("contact_name", String(200), nullable=True),
    Column("phone", String(50), nullable=True),
    # The phone's digits, last first (``voronka.crm.phones.phone_key``): search by phone reads an index.
    Column("phone_key", String(20), nullable=True),
    Column("email", String(320), nullable=True),
    # Title, contact and e-mail case-folded (``voronka.crm.search.search_text``): what a search by name reads.
    Column("search_text", String(600), nullable=True),
    # No single-column indexes here: breakdowns scan the pipeline's deals anyway, and every index
    # costs each imported row.
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=True),
    Column("manager_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("amount", BigInteger, nullable=True),
    Column("currency", String(3), nullable=False),
    Column("status", String(8), default=DealStatus.OPEN.value, nullable=False),
    Column("stage_id", Integer, nullable=False),
    Column("furthest_position", Integer, default=1, nullable=False),
    # False when the deal was imported without stage entry times: the passage rule then falls
    # back to the cumulative rule for it.
    Column("history_known", Boolean, default=True, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("closed_at", DateTime(), nullable=True),
    Column("loss_reason_id", Integer, ForeignKey("loss_reasons.id"), nullable=True),
    # Derived (``crm.deal_state.first_contact``) from the calls, ``stated_contact_at`` and the log.
    Column("first_contact_at", DateTime(), nullable=True),
    # A first contact an imported file or a CRM stated; kept so that a recount from the log keeps it.
    Column("stated_contact_at", DateTime(), nullable=True),
    # Speed to lead in minutes begun (first contact − creation), kept with ``first_contact_at`` so
    # that reports count it from the index instead of doing date arithmetic on every deal.
    Column("contact_minutes", Integer, nullable=True),
    Column("custom", JSON, default=dict, nullable=False),
    Column("updated_at", DateTime(), nullable=False),
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


# Append-only log of stage entries: the truth the funnel is counted from.
stage_changes = Table(
    "stage_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("deal_id", Integer, ForeignKey("deals.id", ondelete="CASCADE"), nullable=False),
    Column("from_stage_id", Integer, ForeignKey("stages.id"), nullable=True),
    Column("to_stage_id", Integer, ForeignKey("stages.id"), nullable=False),
    Column("to_position", Integer, nullable=False),
    Column("at", DateTime(), nullable=False),
    # Who entered the deal into the stage (none: an import or a sync).
    Column("actor_id", Integer, ForeignKey("users.id"), nullable=True),
    # Only per-deal lookups read the log (reports read stage_reaches), so one narrow index will do.
    Index("ix_stage_changes_deal", "deal_id"),
)


call_attempts = Table(
    "call_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("deal_id", Integer, ForeignKey("deals.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(), nullable=False),
    Column("outgoing_number", String(50), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("duration_seconds", Integer, default=0, nullable=False),
    Column("manager_id", Integer, ForeignKey("users.id"), nullable=True),
    # Outgoing (we called) or incoming (the client called): a missed incoming call is no contact.
    Column("direction", String(3), default=CallDirection.OUTGOING.value, server_default="out", nullable=False),
    Column("client_phone", String(50), nullable=True),
    # Where the call came from and its id there (``bitrix24:123``, ``file:<digest>``).
    Column("external_id", String(120), nullable=True),
    _enum_check("outcome", "outcome", CallOutcome),
    _enum_check("direction", "direction", CallDirection),
    CheckConstraint("duration_seconds >= 0", name="duration_not_negative"),
    Index("ix_call_attempts_deal", "deal_id", "at"),
    # A call that came from a telephony export or a CRM is stored once, however often it comes.
    Index("ix_call_attempts_source", "account_id", "external_id", unique=True),
)


# A call that matched no deal yet (its deal not imported or synced so far): kept, not dropped,
# and moved to ``call_attempts`` by ``ingest.importers.calls.match_waiting_calls`` once its deal
# arrives. What it was matched by is kept with it: the deal it names (a note on the lead itself),
# the deals it may belong to (a contact's), the client's number.
waiting_calls = Table(
    "waiting_calls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("external_id", String(120), nullable=False),
    # Whose ids ``deal_ref`` and ``refs`` are (``Deal.origin``).
    Column("origin", String(100), nullable=False),
    Column("at", DateTime(), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("duration_seconds", Integer, default=0, nullable=False),
    Column("outgoing_number", String(50), nullable=True),
    Column("client_phone", String(50), nullable=True),
    Column("manager", String(200), nullable=True),
    Column("deal_ref", String(100), nullable=True),
    Column("refs", JSON, default=list, nullable=False),
    Column("received_at", DateTime(), nullable=False),
    Index("ix_waiting_calls_source", "account_id", "external_id", unique=True),
)


# Money spent on a source over a day or a calendar month (``period_start`` is its first day).
ad_spend = Table(
    "ad_spend",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    # None: spend typed without its source (it counts in the team's total only).
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=True),
    Column("period_start", Date(), nullable=False),
    Column("period_kind", String(5), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    UniqueConstraint("account_id", "source_id", "period_start", "period_kind"),
    CheckConstraint("period_kind IN ('day', 'month')", name="period_kind"),
    CheckConstraint("amount >= 0", name="amount_not_negative"),
)


# A monthly target for one statistics metric, for the team or one manager or source.
#
# ``value`` is in the metric's base unit: a count, minor units of money, or parts per million of
# a share (see ``voronka.analysis.stats.metrics``).
plans = Table(
    "plans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id"), nullable=False),
    Column("month", Date(), nullable=False),
    Column("metric", String(40), nullable=False),
    Column("manager_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=True),
    Column("value", BigInteger, nullable=False),
    Index("ix_plans_lookup", "pipeline_id", "month", "metric"),
    CheckConstraint("NOT (manager_id IS NOT NULL AND source_id IS NOT NULL)", name="one_cut"),
)


# No-CRM mode: how many leads entered a stage on a day (optionally per source and manager).
#
# These are period-view numbers (docs/funnel.md, "Daily counts"): reports built on them say so.
daily_counts = Table(
    "daily_counts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id"), nullable=False),
    Column("day", Date(), nullable=False),
    Column("stage_position", Integer, nullable=False),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=True),
    Column("manager_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("count", Integer, nullable=False),
    # Money of the day's sales (minor units), kept on the won stage's row.
    Column("revenue", BigInteger, nullable=True),
    Index("ix_daily_counts_lookup", "pipeline_id", "day", "stage_position"),
    CheckConstraint("count >= 0", name="count_not_negative"),
)


# When a deal reached each stage after the first, under the cumulative rule: derived from the
# stage-change log (``voronka.crm.reaches``) so that period reports need no pass over the whole log.
#
# ``entered_at`` is the deal's first actual entry into the stage (passage rule); null if skipped.
# Manager and source are copied from the deal so that cuts need no join; they are refreshed with it.
stage_reaches = Table(
    "stage_reaches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id"), nullable=False),
    Column("deal_id", Integer, ForeignKey("deals.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("reached_at", DateTime(), nullable=False),
    Column("entered_at", DateTime(), nullable=True),
    Column("manager_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=True),
    # Period reports; and the stalled check's recent moves, which need the deal id (INCLUDEd on
    # PostgreSQL, as for ix_deals_board above).
    Index("ix_stage_reaches_period", "pipeline_id", "reached_at", "position", "manager_id", "source_id"),
    Index("ix_stage_reaches_deal", "deal_id"),
)


# A change tried at one step of a pipeline, and how deals are split to test it.
hypotheses = Table(
    "hypotheses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id"), nullable=False),
    # The step into this stage (from the one before it).
    Column("position", Integer, nullable=False),
    Column("change", String(500), nullable=False),
    Column("starts_on", Date(), nullable=False),
    Column("ends_on", Date(), nullable=True),
    Column("assignment", String(16), nullable=False),
    Column("field", String(200), nullable=True),
    Column("value_a", String(200), nullable=True),
    Column("value_b", String(200), nullable=True),
    # The smallest gain worth detecting (parts per million of conversion): sets the sample size.
    Column("uplift_ppm", Integer, default=50_000, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("closed_at", DateTime(), nullable=True),
    Column("verdict", String(500), nullable=True),
    _enum_check("assignment", "assignment", AssignmentKind),
)


# A CRM the account syncs from: what kind, where, and how far the last sync got.
#
# Secrets (tokens, keys) are not here: they live in the secrets file under ``secret_ref``
# (see ``voronka.ingest.connectors.store``), so a copy of the database gives no access to the CRM.
connections = Table(
    "connections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), index=True, nullable=False),
    Column("name", String(100), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("base_url", String(500), nullable=False),
    # What is not secret: a company id, which pipelines to take.
    Column("settings", JSON, default=dict, nullable=False),
    # The sync's cursor: where an interrupted sync resumes and an incremental one starts.
    Column("state", JSON, default=dict, nullable=False),
    Column("secret_ref", String(64), nullable=False),
    Column("webhook_token_hash", String(128), nullable=True),
    Column("created_at", DateTime(), nullable=False),
    Column("last_synced_at", DateTime(), nullable=True),
    UniqueConstraint("account_id", "name"),
)


# A user's token for the REST API; only its SHA-256 hash is kept.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), index=True, nullable=False),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), unique=True, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("last_used_at", DateTime(), nullable=True),
    Column("revoked_at", DateTime(), nullable=True),
)


# A website form that posts leads into a pipeline through its own webhook token.
lead_forms = Table(
    "lead_forms",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id"), nullable=False),
    Column("name", String(100), nullable=False),
    # The source of its leads when the request names none (no utm_source).
    Column("source", String(200), nullable=True),
    Column("token_hash", String(64), unique=True, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    # Who gets its leads: nobody (the head's "unassigned" queue), one named manager, or the
    # active managers in turn.
    Column("assign_rule", String(12), default="none", server_default="none", nullable=False),
    Column("assign_user_id", Integer, ForeignKey("users.id"), nullable=True),
    # Round robin: the manager who got the form's previous lead.
    Column("last_assigned_user_id", Integer, ForeignKey("users.id"), nullable=True),
    _enum_check("assign_rule", "assign_rule", AssignRule),
)


# A lead request already turned into a deal: the same request again creates nothing.
lead_requests = Table(
    "lead_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("form_id", Integer, ForeignKey("lead_forms.id"), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("deal_id", Integer, ForeignKey("deals.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(), nullable=False),
    UniqueConstraint("form_id", "fingerprint"),
)


# A note on a deal, by whom and when.
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("deal_id", Integer, ForeignKey("deals.id", ondelete="CASCADE"), index=True, nullable=False),
    # Who wrote it.
    Column("actor_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("text", String(4000), nullable=False),
    Column("created_at", DateTime(), nullable=False),
)


# Something to do on a deal, by whom and by when: the control a sales team runs its day by.
tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("deal_id", Integer, ForeignKey("deals.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("due_at", DateTime(), nullable=False),
    # Who is to do it: the responsible manager.
    Column("manager_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("text", String(2000), default="", nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("created_by_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("done_at", DateTime(), nullable=True),
    Column("done_by_id", Integer, ForeignKey("users.id"), nullable=True),
    _enum_check("kind", "kind", TaskKind),
    # "My tasks" and "the team's overdue tasks": open tasks of an account by due time.
    Index("ix_tasks_open", "account_id", "done_at", "due_at"),
    Index("ix_tasks_deal", "deal_id", "done_at"),
)


# What happened to a deal that no other table records — a loss, a reopening, a field changed,
# a task set or done — and who did it, for the card's history and for undo.
deal_events = Table(
    "deal_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("deal_id", Integer, ForeignKey("deals.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(), nullable=False),
    # Who did it.
    Column("actor_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("kind", String(24), nullable=False),
    Column("data", JSON, default=dict, nullable=False),
    Index("ix_deal_events_deal", "deal_id", "at"),
)


# A logged-in browser: the cookie holds a random token, the database only its hash, so logging
# out, a new password or a deactivated user ends it on the server.
login_sessions = Table(
    "login_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), index=True, nullable=False),
    Column("token_hash", String(64), unique=True, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("expires_at", DateTime(), nullable=False),
    Column("revoked_at", DateTime(), nullable=True),
)


# Recent failed logins per key (an e-mail address or a client address), shared by every
# process: each attempt is reserved atomically before the password is checked.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("attempts", Integer, default=0, nullable=False),
    Column("last_at", DateTime(), nullable=False),
    Column("next_at", DateTime(), nullable=False),
)


# Background work and where it stands: each row runs every ``every_seconds`` when due.
#
# A process takes a job by setting a lease with one conditional UPDATE (``lease_until`` in the past
# or empty), so two processes never run it at once; a process that dies leaves a lease that runs out,
# and the next worker takes the job again.
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    # What the job works on: a connection's name for a sync, the period for a digest.
    Column("target", String(100), default="", nullable=False),
    Column("every_seconds", Integer, nullable=False),
    Column("enabled", Boolean, default=True, nullable=False),
    Column("next_run_at", DateTime(), nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(), nullable=True),
    Column("last_started_at", DateTime(), nullable=True),
    Column("last_finished_at", DateTime(), nullable=True),
    Column("last_result", String(500), nullable=True),
    Column("last_error", String(500), nullable=True),
    # Failures in a row: the retry waits longer after each.
    Column("failures", Integer, default=0, nullable=False),
    UniqueConstraint("account_id", "kind", "target"),
    Index("ix_jobs_due", "next_run_at"),
)


# An account's alert thresholds, quiet hours and channels (their secrets are in the secrets
# file under ``secret_ref``).
alert_settings = Table(
    "alert_settings",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    # A new account's thresholds are ``voronka.alerts.model.DEFAULT_LEAD_MINUTES`` and ``…STALL_FACTOR``.
    Column("lead_minutes", Integer, nullable=False),
    Column("stall_factor", Integer, nullable=False),
    Column("quiet_from", String(5), nullable=True),
    # Quiet hours as local "HH:MM" (from 21:00 to 09:00 spans midnight); none when either is empty.
    Column("quiet_to", String(5), nullable=True),
    Column("telegram_api_url", String(300), nullable=True),
    # The next Telegram update to read (chat links arrive as updates).
    Column("telegram_offset", Integer, default=0, nullable=False),
    Column("smtp_host", String(255), nullable=True),
    Column("smtp_port", Integer, nullable=True),
    Column("smtp_security", String(8), default="starttls", nullable=False),
    Column("smtp_user", String(320), nullable=True),
    Column("smtp_from", String(320), nullable=True),
    Column("webhook_url", String(500), nullable=True),
    Column("secret_ref", String(64), nullable=False),
    # Alerts look at nothing older: a first run does not page the team about last year's leads.
    Column("started_at", DateTime(), nullable=False),
    # Working hours as local "HH:MM-HH:MM": a lead's clock runs only then; none, around the clock.
    Column("work_hours", String(11), nullable=True),
    # Whose production calendar names the working days ("RU"); none, Monday to Friday.
    Column("work_calendar", String(8), nullable=True),
    # A lead still uncalled at the escalation goes to the next manager in turn.
    Column("handover", Boolean, default=False, server_default=false(), nullable=False),
)


# An event switched on or off for a role (``role:head``) or a user (``user:12``); a user's own
# choice wins over the role's, the role's over the defaults (``voronka.alerts.model``).
alert_prefs = Table(
    "alert_prefs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("subject", String(40), nullable=False),
    Column("event", String(32), nullable=False),
    Column("enabled", Boolean, nullable=False),
    UniqueConstraint("account_id", "subject", "event"),
)


# One alert or digest to one recipient on one channel. ``key`` is unique: the same event found
# again, by this process or another, after a restart or not, adds nothing, so each is sent once.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("event", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    # Whom it is for; none for the webhook.
    Column("recipient_id", Integer, ForeignKey("users.id"), nullable=True),
    # A chat id, an e-mail address or a URL.
    Column("address", String(320), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", String(20000), nullable=False),
    # What the webhook receives and what the e-mail needs beyond its text (an HTML body, a chart).
    Column("data", JSON, default=dict, nullable=False),
    # pending, sending (leased), sent or failed (refused for good).
    Column("status", String(8), default="pending", nullable=False),
    Column("attempts", Integer, default=0, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("next_attempt_at", DateTime(), nullable=False),
    Column("lease_until", DateTime(), nullable=True),
    Column("sent_at", DateTime(), nullable=True),
    Column("last_error", String(500), nullable=True),
    UniqueConstraint("account_id", "key"),
    Index("ix_outbox_due", "status", "next_attempt_at"),
)


# The dashboard's top findings as the last diagnosis left them, in both languages: the page
# reads them instead of diagnosing on a request, and a job keeps them fresh.
diagnosis_cache = Table(
    "diagnosis_cache",
    metadata,
    Column("pipeline_id", Integer, ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("computed_at", DateTime(), nullable=False),
    Column("findings", JSON, default=dict, nullable=False),
)


# Deals counted per local day of creation and per cell (manager × source × furthest stage ×
# status × currency × known history), with their amounts: the cohort funnel, its months, sources
# and managers read these cells instead of every deal. Kept on every write of a deal
# (``voronka.deal_days``) and rebuildable from the deals. A manager or source id of 0 stands for
# none and -1 for all (each deal is counted with its own, and under "all" for either and both),
# so that every cell has one key and a report of the whole team reads the fewest cells.
deal_days = Table(
    "deal_days",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True),
    Column("manager_id", Integer, primary_key=True),
    Column("source_id", Integer, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("furthest_position", Integer, primary_key=True),
    Column("status", String(8), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("history_known", Boolean, primary_key=True),
    Column("deals", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    sqlite_with_rowid=False,  # SQLite stores the cells in key order
)
