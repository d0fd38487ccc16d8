"""The ORM classes the services write through, mapped onto the tables of ``voronka.schema``.

The tables, their constraints and indexes are declared once, there; this module adds what only the
ORM needs: typed attributes, relationships, and the columns whose old value a flush must see
(``active_history``: they decide a deal's cell in ``deal_days``). Report commands read the tables
without importing this module, so they do not pay for the ORM's start-up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, relationship

from voronka import schema
from voronka.roles import Role as Role
from voronka.schema import LEGACY_ORIGIN as LEGACY_ORIGIN
from voronka.schema import OWN_ORIGIN as OWN_ORIGIN
from voronka.schema import AssignmentKind as AssignmentKind
from voronka.schema import AssignRule as AssignRule
from voronka.schema import CallDirection as CallDirection
from voronka.schema import CallOutcome as CallOutcome
from voronka.schema import CauseFamily as CauseFamily
from voronka.schema import DealStatus as DealStatus
from voronka.schema import TaskKind as TaskKind


class Base(DeclarativeBase):
    metadata = schema.metadata


class Account(Base):
    __table__ = schema.accounts

    id: Mapped[int]
    name: Mapped[str]
    currency: Mapped[str]
    timezone: Mapped[str] = column_property(schema.accounts.c.timezone, active_history=True)
    created_at: Mapped[dt.datetime]


class User(Base):
    """A person of the business: owner, head of sales, manager or viewer."""

    __table__ = schema.users

    id: Mapped[int]
    account_id: Mapped[int]
    name: Mapped[str]
    email: Mapped[str | None]
    role: Mapped[str]
    password_hash: Mapped[str | None]
    active: Mapped[bool]
    lang: Mapped[str | None]
    telegram_chat_id: Mapped[str | None]
    telegram_code_hash: Mapped[str | None]
    telegram_code_until: Mapped[dt.datetime | None]


class Pipeline(Base):
    __table__ = schema.pipelines

    id: Mapped[int]
    account_id: Mapped[int]
    name: Mapped[str]
    stages: Mapped[list[Stage]] = relationship(order_by="Stage.position", back_populates="pipeline")


class Stage(Base):
    """An ordered stage; the last position is the won stage. Lost is not a stage."""

    __table__ = schema.stages

    id: Mapped[int]
    account_id: Mapped[int]
    pipeline_id: Mapped[int]
    name: Mapped[str]
    position: Mapped[int]
    pipeline: Mapped[Pipeline] = relationship(back_populates="stages")


class Source(Base):
    """Where a lead came from (channel)."""

    __table__ = schema.sources

    id: Mapped[int]
    account_id: Mapped[int]
    name: Mapped[str]
    archived_at: Mapped[dt.datetime | None]


class LossReason(Base):
    __table__ = schema.loss_reasons

    id: Mapped[int]
    account_id: Mapped[int]
    name: Mapped[str]
    family: Mapped[str]
    archived_at: Mapped[dt.datetime | None]


class Deal(Base):
    __table__ = schema.deals

    # The columns marked ``active_history`` decide the deal's cell in ``deal_days``: a change loads
    # the old value first, so the flush can take the deal out of its old cell (voronka.deal_days).
    id: Mapped[int]
    account_id: Mapped[int] = column_property(schema.deals.c.account_id, active_history=True)
    pipeline_id: Mapped[int] = column_property(schema.deals.c.pipeline_id, active_history=True)
    external_id: Mapped[str | None]
    origin: Mapped[str]
    title: Mapped[str | None]
    contact_name: Mapped[str | None]
    phone: Mapped[str | None]
    phone_key: Mapped[str | None]
    email: Mapped[str | None]
    search_text: Mapped[str | None]
    source_id: Mapped[int | None] = column_property(schema.deals.c.source_id, active_history=True)
    manager_id: Mapped[int | None] = column_property(schema.deals.c.manager_id, active_history=True)
    amount: Mapped[int | None] = column_property(schema.deals.c.amount, active_history=True)
    currency: Mapped[str] = column_property(schema.deals.c.currency, active_history=True)
    status: Mapped[str] = column_property(schema.deals.c.status, active_history=True)
    stage_id: Mapped[int]
    furthest_position: Mapped[int] = column_property(schema.deals.c.furthest_position, active_history=True)
    history_known: Mapped[bool] = column_property(schema.deals.c.history_known, active_history=True)
    created_at: Mapped[dt.datetime] = column_property(schema.deals.c.created_at, active_history=True)
    closed_at: Mapped[dt.datetime | None]
    loss_reason_id: Mapped[int | None]
    first_contact_at: Mapped[dt.datetime | None]
    stated_contact_at: Mapped[dt.datetime | None]
    contact_minutes: Mapped[int | None]
    custom: Mapped[dict[str, Any]]
    updated_at: Mapped[dt.datetime]


class StageEntry(Base):
    """Append-only log of stage entries: the truth the funnel is counted from."""

    __table__ = schema.stage_changes

    id: Mapped[int]
    account_id: Mapped[int]
    deal_id: Mapped[int]
    from_stage_id: Mapped[int | None]
    to_stage_id: Mapped[int]
    to_position: Mapped[int]
    at: Mapped[dt.datetime]
    actor_id: Mapped[int | None]


class CallAttempt(Base):
    __table__ = schema.call_attempts

    id: Mapped[int]
    account_id: Mapped[int]
    deal_id: Mapped[int]
    at: Mapped[dt.datetime]
    outgoing_number: Mapped[str | None]
    outcome: Mapped[str]
    duration_seconds: Mapped[int]
    manager_id: Mapped[int | None]
    direction: Mapped[str]
    client_phone: Mapped[str | None]
    external_id: Mapped[str | None]


class WaitingCall(Base):
    """A call that matched no deal yet (its deal not imported or synced so far): kept, not dropped,
    and moved to ``call_attempts`` by ``ingest.importers.calls.match_waiting_calls`` once its deal
    arrives. What it was matched by is kept with it: the deal it names (a note on the lead itself),
    the deals it may belong to (a contact's), the client's number.
    """

    __table__ = schema.waiting_calls

    id: Mapped[int]
    account_id: Mapped[int]
    external_id: Mapped[str]
    origin: Mapped[str]
    at: Mapped[dt.datetime]
    direction: Mapped[str]
    outcome: Mapped[str]
    duration_seconds: Mapped[int]
    outgoing_number: Mapped[str | None]
    client_phone: Mapped[str | None]
    manager: Mapped[str | None]
    deal_ref: Mapped[str | None]
    refs: Mapped[list[str]]
    received_at: Mapped[dt.datetime]


class AdSpend(Base):
    """Money spent on a source over a day or a calendar month (``period_start`` is its first day)."""

    __table__ = schema.ad_spend

    id: Mapped[int]
    account_id: Mapped[int]
    source_id: Mapped[int | None]
    period_start: Mapped[dt.date]
    period_kind: Mapped[str]
    amount: Mapped[int]
    currency: Mapped[str]


class Plan(Base):
    """A monthly target for one statistics metric, for the team or one manager or source.

    ``value`` is in the metric's base unit: a count, minor units of money, or parts per million of
    a share (see ``voronka.analysis.stats.metrics``).
    """

    __table__ = schema.plans

    id: Mapped[int]
    account_id: Mapped[int]
    pipeline_id: Mapped[int]
    month: Mapped[dt.date]
    metric: Mapped[str]
    manager_id: Mapped[int | None]
    source_id: Mapped[int | None]
    value: Mapped[int]


class DailyCount(Base):
    """No-CRM mode: how many leads entered a stage on a day (optionally per source and manager).

    These are period-view numbers (docs/funnel.md, "Daily counts"): reports built on them say so.
    """

    __table__ = schema.daily_counts

    id: Mapped[int]
    account_id: Mapped[int]
    pipeline_id: Mapped[int]
    day: Mapped[dt.date]
    stage_position: Mapped[int]
    source_id: Mapped[int | None]
    manager_id: Mapped[int | None]
    count: Mapped[int]
    revenue: Mapped[int | None]


class StageReach(Base):
    """When a deal reached each stage after the first, under the cumulative rule: derived from the
    stage-change log (``voronka.crm.reaches``) so that period reports need no pass over the whole log.

    ``entered_at`` is the deal's first actual entry into the stage (passage rule); null if skipped.
    Manager and source are copied from the deal so that cuts need no join; they are refreshed with it.
    """

    __table__ = schema.stage_reaches

    id: Mapped[int]
    account_id: Mapped[int]
    pipeline_id: Mapped[int]
    deal_id: Mapped[int]
    position: Mapped[int]
    reached_at: Mapped[dt.datetime]
    entered_at: Mapped[dt.datetime | None]
    manager_id: Mapped[int | None]
    source_id: Mapped[int | None]


class Hypothesis(Base):
    """A change tried at one step of a pipeline, and how deals are split to test it."""

    __table__ = schema.hypotheses

    id: Mapped[int]
    account_id: Mapped[int]
    pipeline_id: Mapped[int]
    position: Mapped[int]
    change: Mapped[str]
    starts_on: Mapped[dt.date]
    ends_on: Mapped[dt.date | None]
    assignment: Mapped[str]
    field: Mapped[str | None]
    value_a: Mapped[str | None]
    value_b: Mapped[str | None]
    uplift_ppm: Mapped[int]
    created_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]
    verdict: Mapped[str | None]


class Connection(Base):
    """A CRM the account syncs from: what kind, where, and how far the last sync got.

    Secrets (tokens, keys) are not here: they live in the secrets file under ``secret_ref``
    (see ``voronka.ingest.connectors.store``), so a copy of the database gives no access to the CRM.
    """

    __table__ = schema.connections

    id: Mapped[int]
    account_id: Mapped[int]
    name: Mapped[str]
    kind: Mapped[str]
    base_url: Mapped[str]
    settings: Mapped[dict[str, Any]]
    state: Mapped[dict[str, Any]]
    secret_ref: Mapped[str]
    webhook_token_hash: Mapped[str | None]
    created_at: Mapped[dt.datetime]
    last_synced_at: Mapped[dt.datetime | None]


class ApiToken(Base):
    """A user's token for the REST API; only its SHA-256 hash is kept."""

    __table__ = schema.api_tokens

    id: Mapped[int]
    account_id: Mapped[int]
    user_id: Mapped[int]
    name: Mapped[str]
    token_hash: Mapped[str]
    created_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class LeadForm(Base):
    """A website form that posts leads into a pipeline through its own webhook token."""

    __table__ = schema.lead_forms

    id: Mapped[int]
    account_id: Mapped[int]
    pipeline_id: Mapped[int]
    name: Mapped[str]
    source: Mapped[str | None]
    token_hash: Mapped[str]
    created_at: Mapped[dt.datetime]
    assign_rule: Mapped[str]
    assign_user_id: Mapped[int | None]
    last_assigned_user_id: Mapped[int | None]


class LeadRequest(Base):
    """A lead request already turned into a deal: the same request again creates nothing."""

    __table__ = schema.lead_requests

    id: Mapped[int]
    form_id: Mapped[int]
    fingerprint: Mapped[str]
    deal_id: Mapped[int]
    created_at: Mapped[dt.datetime]


class Note(Base):
    """A note on a deal, by whom and when."""

    __table__ = schema.notes

    id: Mapped[int]
    account_id: Mapped[int]
    deal_id: Mapped[int]
    actor_id: Mapped[int | None]
    text: Mapped[str]
    created_at: Mapped[dt.datetime]


class Task(Base):
    """Something to do on a deal, by whom and by when: the control a sales team runs its day by."""

    __table__ = schema.tasks

    id: Mapped[int]
    account_id: Mapped[int]
    deal_id: Mapped[int]
    kind: Mapped[str]
    due_at: Mapped[dt.datetime]
    manager_id: Mapped[int]
    text: Mapped[str]
    created_at: Mapped[dt.datetime]
    created_by_id: Mapped[int | None]
    done_at: Mapped[dt.datetime | None]
    done_by_id: Mapped[int | None]


class DealEvent(Base):
    """What happened to a deal that no other table records — a loss, a reopening, a field changed,
    a task set or done — and who did it, for the card's history and for undo.
    """

    __table__ = schema.deal_events

    id: Mapped[int]
    account_id: Mapped[int]
    deal_id: Mapped[int]
    at: Mapped[dt.datetime]
    actor_id: Mapped[int | None]
    kind: Mapped[str]
    data: Mapped[dict[str, Any]]


class LoginSession(Base):
    """A logged-in browser: the cookie holds a random token, the database only its hash, so logging
    out, a new password or a deactivated user ends it on the server.
    """

    __table__ = schema.login_sessions

    id: Mapped[int]
    account_id: Mapped[int]
    user_id: Mapped[int]
    token_hash: Mapped[str]
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class LoginThrottle(Base):
    """Recent failed logins per key (an e-mail address or a client address), shared by every
    process: each attempt is reserved atomically before the password is checked.
    """

    __table__ = schema.login_throttle

    key: Mapped[str]
    attempts: Mapped[int]
    last_at: Mapped[dt.datetime]
    next_at: Mapped[dt.datetime]


class Job(Base):
    """Background work and where it stands: each row runs every ``every_seconds`` when due.

    A process takes a job by setting a lease with one conditional UPDATE (``lease_until`` in the past
    or empty), so two processes never run it at once; a process that dies leaves a lease that runs out,
    and the next worker takes the job again.
    """

    __table__ = schema.jobs

    id: Mapped[int]
    account_id: Mapped[int]
    kind: Mapped[str]
    target: Mapped[str]
    every_seconds: Mapped[int]
    enabled: Mapped[bool]
    next_run_at: Mapped[dt.datetime]
    lease_owner: Mapped[str | None]
    lease_until: Mapped[dt.datetime | None]
    last_started_at: Mapped[dt.datetime | None]
    last_finished_at: Mapped[dt.datetime | None]
    last_result: Mapped[str | None]
    last_error: Mapped[str | None]
    failures: Mapped[int]


class AlertSettings(Base):
    """An account's alert thresholds, quiet hours and channels (their secrets are in the secrets
    file under ``secret_ref``).
    """

    __table__ = schema.alert_settings

    account_id: Mapped[int]
    lead_minutes: Mapped[int]
    stall_factor: Mapped[int]
    quiet_from: Mapped[str | None]
    quiet_to: Mapped[str | None]
    telegram_api_url: Mapped[str | None]
    telegram_offset: Mapped[int]
    smtp_host: Mapped[str | None]
    smtp_port: Mapped[int | None]
    smtp_security: Mapped[str]
    smtp_user: Mapped[str | None]
    smtp_from: Mapped[str | None]
    webhook_url: Mapped[str | None]
    secret_ref: Mapped[str]
    started_at: Mapped[dt.datetime]
    work_hours: Mapped[str | None]
    work_calendar: Mapped[str | None]
    handover: Mapped[bool]


class AlertPref(Base):
    """An event switched on or off for a role (``role:head``) or a user (``user:12``); a user's own
    choice wins over the role's, the role's over the defaults (``voronka.alerts.model``).
    """

    __table__ = schema.alert_prefs

    id: Mapped[int]
    account_id: Mapped[int]
    subject: Mapped[str]
    event: Mapped[str]
    enabled: Mapped[bool]


class OutboxMessage(Base):
    """One alert or digest to one recipient on one channel. ``key`` is unique: the same event found
    again, by this process or another, after a restart or not, adds nothing, so each is sent once.
    """

    __table__ = schema.outbox

    id: Mapped[int]
    account_id: Mapped[int]
    key: Mapped[str]
    event: Mapped[str]
    channel: Mapped[str]
    recipient_id: Mapped[int | None]
    address: Mapped[str]
    subject: Mapped[str]
    body: Mapped[str]
    data: Mapped[dict[str, Any]]
    status: Mapped[str]
    attempts: Mapped[int]
    created_at: Mapped[dt.datetime]
    next_attempt_at: Mapped[dt.datetime]
    lease_until: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None]


class DiagnosisCache(Base):
    """The dashboard's top findings as the last diagnosis left them, in both languages: the page
    reads them instead of diagnosing on a request, and a job keeps them fresh.
    """

    __table__ = schema.diagnosis_cache

    pipeline_id: Mapped[int]
    account_id: Mapped[int]
    computed_at: Mapped[dt.datetime]
    findings: Mapped[dict[str, Any]]


class DealDay(Base):
    """Deals counted per local day of creation and per cell (manager × source × furthest stage ×
    status × currency × known history), with their amounts: the cohort funnel, its months, sources
    and managers read these cells instead of every deal. Kept on every write of a deal
    (``voronka.deal_days``) and rebuildable from the deals. A manager or source id of 0 stands for
    none and -1 for all (each deal is counted with its own, and under "all" for either and both),
    so that every cell has one key and a report of the whole team reads the fewest cells.
    """

    __table__ = schema.deal_days

    account_id: Mapped[int]
    pipeline_id: Mapped[int]
    manager_id: Mapped[int]
    source_id: Mapped[int]
    day: Mapped[dt.date]
    furthest_position: Mapped[int]
    status: Mapped[str]
    currency: Mapped[str]
    history_known: Mapped[bool]
    deals: Mapped[int]
    amount: Mapped[int]
