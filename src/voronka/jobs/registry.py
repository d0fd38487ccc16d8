"""The kinds of job, declared once: what each does (sync a CRM connection, pass over the alerts,
refresh the stored diagnosis, send a digest), which rows of it an account has, how often it runs,
and whether the leaders hear when it fails. The job rows (``jobs.store``) and the worker read this
table and nothing else, so a kind added here is made, scheduled and run. Each runner returns a
one-line result for the jobs list."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from voronka.crm.accounts import account_by_id
from voronka.db import committed
from voronka.i18n import Message
from voronka.models import Account, Connection
from voronka.secretstore import SecretStore

if TYPE_CHECKING:
    from voronka.alerts.channels import Pacer  # loaded with the alerts, when a job runs


class JobKind(enum.StrEnum):
    SYNC = "sync"
    ALERTS = "alerts"
    STALLED = "stalled"
    DIAGNOSIS = "diagnosis"
    DIGEST = "digest"


@dataclass(frozen=True)
class JobContext:
    sessions: sessionmaker[Session]
    store: SecretStore
    now: dt.datetime
    base_url: str | None = None
    """The web app's address, for links in alerts (``VORONKA_PUBLIC_URL``)."""
    pacer: Pacer | None = None
    """Telegram's pace, kept across passes (a test gives one with its own clock)."""


Runner = Callable[[JobContext, int, str], Message]
"""(context, account id, target) → result."""


def run_sync(context: JobContext, account_id: int, target: str) -> Message:
    """A connector commits each page with the cursor after it (an interrupted sync resumes), so it gets
    a session of its own, not one transaction: what it stored stays even when a later page fails."""
    from voronka.ingest.connectors.sync import sync_connection  # connectors load only when a sync runs

    with committed(context.sessions()) as session:
        account = account_by_id(session=session, account_id=account_id)
        report = sync_connection(
            session=session, account=account, store=context.store, name=target, max_blocked=0, now=context.now
        )
    if not report.pipelines:  # an ad cabinet brings spend only; a report still being built is no failure
        if report.spend_pending:
            days = {"start": report.spend_pending[0].isoformat(), "end": report.spend_pending[1].isoformat()}
            return Message("jobs.synced_spend_pending", {"days": report.spend_days, **days})
        return Message("jobs.synced_spend", {"days": report.spend_days})
    counts = {"created": report.created, "updated": report.updated, "unchanged": report.unchanged}
    return Message("jobs.synced", {**counts, "calls": report.calls})


def run_alerts(context: JobContext, account_id: int, _target: str) -> Message:
    from voronka.alerts import service  # the alerts (and the analysis they use) load only when a job runs

    return service.run_alerts(
        sessions=context.sessions,
        account_id=account_id,
        store=context.store,
        now=context.now,
        base_url=context.base_url,
        pacer=context.pacer,
        stalled=False,
    )


def run_stalled(context: JobContext, account_id: int, _target: str) -> Message:
    from voronka.alerts import service

    return service.run_stalled(
        sessions=context.sessions, account_id=account_id, store=context.store, now=context.now,
        base_url=context.base_url,
    )  # fmt: skip


def run_diagnosis(context: JobContext, account_id: int, _target: str) -> Message:
    from voronka.alerts import service

    return service.refresh_diagnosis(
        sessions=context.sessions, account_id=account_id, store=context.store, now=context.now
    )


def run_digest(context: JobContext, account_id: int, target: str) -> Message:
    from voronka.alerts import service

    return service.send_digest(
        sessions=context.sessions, account_id=account_id, store=context.store, kind=target, now=context.now
    )


DIGEST_HOUR = 9
"""Digests go out at nine in the morning, the account's time."""


@dataclass(frozen=True)
class Schedule:
    every: dt.timedelta
    lease: dt.timedelta
    at_local: Callable[[dt.datetime], dt.datetime] | None = None
    """For calendar jobs: the next local run after a local time (a digest at nine)."""


def next_morning(local: dt.datetime) -> dt.datetime:
    run = local.replace(hour=DIGEST_HOUR, minute=0, second=0, microsecond=0)
    return run if run > local else run + dt.timedelta(days=1)


def next_monday_morning(local: dt.datetime) -> dt.datetime:
    run = next_morning(local)
    return run + dt.timedelta(days=(7 - run.weekday()) % 7)


Targets = Callable[[Session, Account], Sequence[str]]
"""The rows of a kind an account has, by target (a connection's name, a digest's period, "")."""


def _one(_session: Session, _account: Account) -> Sequence[str]:
    return ("",)


def _connections(session: Session, account: Account) -> Sequence[str]:
    return list(session.scalars(select(Connection.name).where(Connection.account_id == account.id)))


def _periods(_session: Session, _account: Account) -> Sequence[str]:
    return ("daily", "weekly")


@dataclass(frozen=True)
class JobType:
    kind: JobKind
    run: Runner
    targets: Targets
    schedules: Mapping[str, Schedule]
    """By target; ``ANY`` for every target not named."""
    alert_on_failure: bool
    """The leaders hear when a run fails (once a failure streak) and when it works again."""

    def schedule(self, target: str) -> Schedule:
        return self.schedules.get(target) or self.schedules[ANY]


ANY = "*"

JOB_TYPES: Mapping[JobKind, JobType] = {
    JobKind.SYNC: JobType(
        JobKind.SYNC, run_sync, _connections, {ANY: Schedule(dt.timedelta(minutes=15), dt.timedelta(hours=1))}, True
    ),
    JobKind.ALERTS: JobType(
        JobKind.ALERTS, run_alerts, _one, {ANY: Schedule(dt.timedelta(minutes=1), dt.timedelta(minutes=10))}, False
    ),
    JobKind.STALLED: JobType(
        JobKind.STALLED, run_stalled, _one, {ANY: Schedule(dt.timedelta(hours=1), dt.timedelta(minutes=30))}, False
    ),
    JobKind.DIAGNOSIS: JobType(
        JobKind.DIAGNOSIS, run_diagnosis, _one, {ANY: Schedule(dt.timedelta(hours=1), dt.timedelta(minutes=30))}, False
    ),
    JobKind.DIGEST: JobType(
        JobKind.DIGEST,
        run_digest,
        _periods,
        {
            "daily": Schedule(dt.timedelta(days=1), dt.timedelta(minutes=30), next_morning),
            "weekly": Schedule(dt.timedelta(days=7), dt.timedelta(minutes=30), next_monday_morning),
        },
        True,
    ),
}
"""Every kind of job: the one table the job rows and the worker read."""


def job_type(kind: str) -> JobType:
    return JOB_TYPES[JobKind(kind)]
