"""What each kind of job does (an explicit registry): sync a CRM connection, pass over the alerts,
refresh the stored diagnosis, send a digest. Each returns a one-line result for the jobs list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from voronka.alerts import service
from voronka.crm.accounts import account_by_id
from voronka.db import committed
from voronka.i18n import Message
from voronka.secretstore import SecretStore


@dataclass(frozen=True)
class JobContext:
    sessions: sessionmaker[Session]
    store: SecretStore
    now: dt.datetime
    base_url: str | None = None
    """The web app's address, for links in alerts (``VORONKA_PUBLIC_URL``)."""


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
    if report.spend_days and not report.pipelines:  # an ad cabinet brings spend only
        return Message("jobs.synced_spend", {"days": report.spend_days})
    counts = {"created": report.created, "updated": report.updated, "unchanged": report.unchanged}
    return Message("jobs.synced", {**counts, "calls": report.calls})


def run_alerts(context: JobContext, account_id: int, _target: str) -> Message:
    return service.run_alerts(
        sessions=context.sessions,
        account_id=account_id,
        store=context.store,
        now=context.now,
        base_url=context.base_url,
    )


def run_diagnosis(context: JobContext, account_id: int, _target: str) -> Message:
    return service.refresh_diagnosis(
        sessions=context.sessions, account_id=account_id, store=context.store, now=context.now
    )


def run_digest(context: JobContext, account_id: int, target: str) -> Message:
    return service.send_digest(
        sessions=context.sessions, account_id=account_id, store=context.store, kind=target, now=context.now
    )


JOBS: Mapping[str, Runner] = {
    "sync": run_sync,
    "alerts": run_alerts,
    "diagnosis": run_diagnosis,
    "digest": run_digest,
}
