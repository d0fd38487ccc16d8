"""Syncing a connection: the CRM's pipelines, then its deals page by page, each page committed with
the cursor that follows it — so an interrupted sync resumes where it stopped, and a finished one
leaves the cursor the next (incremental) run starts from.

Deals are written through the importers' writer: new ones in bulk, known ones (same id) updated with
only the stage entries the log does not hold yet. Re-running a page therefore duplicates nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from voronka.crm.accounts import create_pipeline, list_pipelines
from voronka.crm.pipelines import is_unused, reshape
from voronka.i18n import Message
from voronka.ingest.connectors.base import (
    CallSource,
    Client,
    ConnectionConfig,
    Described,
    RemoteDeal,
    RemotePipeline,
)
from voronka.ingest.connectors.calls_sync import sync_calls_or_warn
from voronka.ingest.connectors.http import RetryPolicy
from voronka.ingest.connectors.store import connection_config, find_connection
from voronka.ingest.importers.base import DealRecord, ImportTarget
from voronka.ingest.importers.calls import match_waiting_calls
from voronka.ingest.importers.writer import DealWriter
from voronka.models import Account, Connection, DealStatus, Pipeline
from voronka.money import format_minor
from voronka.secretstore import SecretStore
from voronka.tabular.report import ImportReport, Progress
from voronka.timeutil import utcnow


@dataclass
class SyncReport:
    connection: str
    pipelines: list[str] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    """Deals of stages or pipelines voronka does not know (a stage added in the CRM mid-sync)."""
    requests: int = 0
    calls: int = 0
    """Calls stored from the CRM's call log."""
    calls_unmatched: int = 0
    """Calls that belong to no deal voronka has yet: kept, and matched when their deal arrives."""
    spend_days: int = 0
    spend_amount: int = 0
    """An ad cabinet's sync: the days brought and their spend (minor units of the account's currency)."""
    spend_currency: str = ""
    spend_unmapped: dict[str, int] = field(default_factory=dict)
    """Campaigns mapped to no source, with their cost (kept as spend without a source)."""
    spend_pending: tuple[dt.date, dt.date] | None = None
    """The days of a report the cabinet was still building: the next run collects it."""
    resumed: bool = False
    warnings: list[Message] = field(default_factory=list)
    """What was synced only in part (managers by id when the token may not read the users, say)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "pipelines": self.pipelines,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "requests": self.requests,
            "calls": self.calls,
            "calls_unmatched": self.calls_unmatched,
            "spend_days": self.spend_days,
            "spend": format_minor(self.spend_amount, self.spend_currency) if self.spend_currency else None,
            "spend_amount": self.spend_amount,
            "spend_currency": self.spend_currency or None,
            "spend_unmapped": self.spend_unmapped,
            "spend_pending": [day.isoformat() for day in self.spend_pending] if self.spend_pending else None,
            "resumed": self.resumed,
            "warnings": [w.render("en") for w in self.warnings],
        }


@dataclass(frozen=True)
class _Local:
    """A CRM pipeline as ours: the pipeline, each remote stage's position, the won position."""

    pipeline: Pipeline
    positions: dict[str, int]
    lost: frozenset[str]
    won: frozenset[str]

    @property
    def last(self) -> int:
        return len(self.pipeline.stages)


def sync(
    *,
    session: Session,
    account: Account,
    connection: Connection,
    client: Client,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> SyncReport:
    """Bring the account up to date with the CRM behind ``connection``. Commits as it goes."""
    report = SyncReport(connection.name)
    locals_ = local_pipelines(session, account, client)
    session.commit()
    report.pipelines = [p.pipeline.name for p in locals_.values()]
    state: dict[str, Any] = dict(connection.state or {})
    report.resumed = bool(state.get("running"))
    if not report.resumed:
        state = {
            "running": True,
            "started": (now or utcnow()).isoformat(),
            "cursor": state.get("next", {}),
            "calls": state.get("calls"),  # the call log's own cursor: calls never change, so it only goes on
        }
        connection.state = state
        session.commit()
    started = dt.datetime.fromisoformat(state["started"])
    announced = False
    for page in client.pages(state["cursor"]):
        if progress is not None and not announced:
            progress.start(page.total or 0)
            announced = True
        store_deals(session, account, locals_, page.deals, report, origin=connection.kind)
        connection.state = {**state, "cursor": page.cursor}
        state = dict(connection.state)
        session.commit()
        if progress is not None:
            progress.advance(len(page.deals))
    # Deals that arrived may be what calls kept waiting (from a calls file, or this CRM's log) wanted.
    report.calls = match_waiting_calls(session=session, account=account)
    session.commit()
    if isinstance(client, CallSource):
        calls, report.calls_unmatched = sync_calls_or_warn(
            session=session, account=account, connection=connection, client=client, warnings=client.warnings
        )
        report.calls += calls
    calls_cursor = (connection.state or {}).get("calls")
    connection.state = {"next": client.next_cursor(state["cursor"], started), "calls": calls_cursor}
    connection.last_synced_at = now or utcnow()
    session.commit()
    report.requests = client.http.requests
    report.warnings = list(client.warnings)
    return report


def local_pipelines(session: Session, account: Account, client: Client) -> dict[str, _Local]:
    """Each of the CRM's pipelines as ours (created the first time), by the CRM's pipeline id."""
    remote = client.pipelines()
    spare = _spare_pipeline(session, account, remote)
    return {p.id: _local_pipeline(session, account, p, spare if p is remote[0] else None) for p in remote}


def _spare_pipeline(session: Session, account: Account, remote: list[RemotePipeline]) -> Pipeline | None:
    """The account's only pipeline, when nothing was put in it and the CRM has none of its name: the
    one ``voronka init`` made before the CRM was connected, which the CRM's first pipeline takes over
    (else it would stay beside them empty, and every command would ask which pipeline)."""
    ours = list_pipelines(session=session, account=account)
    if len(ours) != 1 or not remote or any(p.name.casefold() == ours[0].name.casefold() for p in remote):
        return None
    return ours[0] if is_unused(session=session, pipeline=ours[0]) else None


def _local_pipeline(
    session: Session, account: Account, remote: RemotePipeline, spare: Pipeline | None = None
) -> _Local:
    """Our pipeline for a CRM pipeline: the one of its name (reshaped to the CRM's stages while it is
    unused), the spare one ``init`` made, or a new one. A pipeline of that name that already holds
    other stages' deals is left alone: the CRM's gets a name of its own."""
    names = [s.name for s in remote.funnel]
    existing = {p.name.casefold(): p for p in list_pipelines(session=session, account=account)}
    pipeline = existing.get(remote.name.casefold()) or spare
    if pipeline is not None and not _fits(pipeline, names):
        if is_unused(session=session, pipeline=pipeline):
            reshape(session=session, pipeline=pipeline, name=remote.name, stages=names)
        else:
            own_name = f"{remote.name} (CRM)"
            pipeline = existing.get(own_name.casefold())
            if pipeline is None or not _fits(pipeline, names):
                pipeline = create_pipeline(session=session, account=account, name=own_name, stages=names)
    if pipeline is None:
        pipeline = create_pipeline(session=session, account=account, name=remote.name, stages=names)
    ours = {s.name.casefold(): s.position for s in pipeline.stages}
    positions = {s.id: ours[s.name.casefold()] for s in remote.funnel if s.name.casefold() in ours}
    return _Local(
        pipeline,
        positions,
        frozenset(s.id for s in remote.stages if s.outcome is DealStatus.LOST),
        frozenset(s.id for s in remote.stages if s.outcome is DealStatus.WON),
    )


def _fits(pipeline: Pipeline, names: list[str]) -> bool:
    """Whether the pipeline holds the CRM's stages (enough of them to count a funnel)."""
    ours = {s.name.casefold() for s in pipeline.stages}
    return sum(name.casefold() in ours for name in names) >= min(2, len(names))


def store_deals(
    session: Session,
    account: Account,
    pipelines: dict[str, _Local],
    deals: list[RemoteDeal],
    report: SyncReport,
    *,
    origin: str,
) -> None:
    """Write CRM deals through the importers' writer, pipeline by pipeline; count what happened.
    ``origin``: the CRM's kind, whose ids the deals carry (an export of the same CRM matches them)."""
    by_pipeline: dict[str, list[DealRecord]] = defaultdict(list)
    for number, deal in enumerate(deals):
        local = pipelines.get(deal.pipeline_id)
        record = to_record(deal, local, account.currency, number) if local is not None else None
        if record is None:
            report.skipped += 1
            continue
        by_pipeline[deal.pipeline_id].append(record)
    for pipeline_id, records in by_pipeline.items():
        imported = ImportReport(file=report.connection)
        writer = DealWriter(ImportTarget(session, account, pipelines[pipeline_id].pipeline, origin), imported)
        for record in records:
            writer.add(record)
        writer.flush()
        report.created += imported.created
        report.updated += imported.updated
        report.unchanged += imported.unchanged


def to_record(deal: RemoteDeal, local: _Local, currency: str, line: int = 0) -> DealRecord | None:
    """A CRM deal in our terms: status from its stage's meaning, stage entries from its log.

    A lost deal stands in the last funnel stage it entered before it was lost (the CRM moves it to
    a «lost» stage, which is an outcome for us, not a step).
    """
    entries: list[tuple[int, dt.datetime]] = []
    for at, stage_id in sorted(deal.changes):
        position = local.positions.get(stage_id)
        if position is not None and stage_id not in local.won:
            entries.append((position, at))
    status = (
        DealStatus.WON
        if deal.stage_id in local.won
        else DealStatus.LOST
        if deal.stage_id in local.lost
        else DealStatus.OPEN
    )
    if status is DealStatus.OPEN:
        position = local.positions.get(deal.stage_id)
        if position is None:
            return None
    elif status is DealStatus.LOST:
        position = entries[-1][0] if entries else 1
    else:
        position = local.last
    won_at = next((at for at, stage_id in sorted(deal.changes) if stage_id in local.won), None)
    lost_at = next((at for at, stage_id in sorted(deal.changes) if stage_id in local.lost), None)
    outcome_at = won_at if status is DealStatus.WON else lost_at
    closed_at = deal.closed_at or outcome_at
    entries = [(p, at) for p, at in entries if at >= deal.created_at and p != 1]
    return DealRecord(
        line=line,
        external_id=deal.id,
        created_at=deal.created_at,
        stage_position=position,
        status=status,
        closed_at=closed_at if status is not DealStatus.OPEN else None,
        loss_reason=deal.loss_reason if status is DealStatus.LOST else None,
        amount=deal.amount,
        currency=deal.currency or currency,
        source=deal.source,
        manager=deal.manager,
        title=deal.title,
        contact_name=deal.contact,
        phone=deal.phone,
        entries=tuple(entries),
        custom=dict(deal.custom),
    )


def sync_connection(
    *,
    session: Session,
    account: Account,
    store: SecretStore,
    name: str | None = None,
    progress: Progress | None = None,
    retry: RetryPolicy | None = None,
    max_blocked: float | None = None,
    on_wait: Callable[[float], None] | None = None,
    now: dt.datetime | None = None,
) -> SyncReport:
    """Sync the stored connection called ``name`` (the only one when not given). ``max_blocked``
    and ``on_wait``: how long to wait for a method the CRM paused, and who is told of the wait;
    ``now``: the job's clock (a background run), else the wall clock."""
    from voronka.ingest.connectors import CONNECTORS, SPEND_CONNECTORS

    connection = find_connection(session=session, account=account, name=name)
    if connection.kind in SPEND_CONNECTORS:
        return _sync_spend(session, account, connection, store, retry, max_blocked, on_wait, now)
    connector = CONNECTORS[connection.kind]
    client = connector.client(_configured(connection, store, connector, retry, max_blocked, on_wait))
    try:
        return sync(session=session, account=account, connection=connection, client=client, progress=progress, now=now)
    finally:
        client.http.close()


def _configured(
    connection: Connection,
    store: SecretStore,
    connector: Described,
    retry: RetryPolicy | None,
    max_blocked: float | None,
    on_wait: Callable[[float], None] | None,
) -> ConnectionConfig:
    """The connection's settings and secrets with the retry policy this run asks for."""
    config = connection_config(connection, store, connector)
    policy = retry or config.retry
    if max_blocked is not None:
        policy = replace(policy, max_blocked=max_blocked)
    if on_wait is not None:
        policy = replace(policy, on_wait=on_wait)
    return replace(config, retry=policy)


def _sync_spend(
    session: Session,
    account: Account,
    connection: Connection,
    store: SecretStore,
    retry: RetryPolicy | None,
    max_blocked: float | None,
    on_wait: Callable[[float], None] | None,
    now: dt.datetime | None,
) -> SyncReport:
    from voronka.ingest.connectors import SPEND_CONNECTORS
    from voronka.ingest.connectors.yandex_direct import YandexDirectClient, sync_spend

    client = YandexDirectClient(
        _configured(connection, store, SPEND_CONNECTORS[connection.kind], retry, max_blocked, on_wait)
    )
    try:
        spent = sync_spend(session=session, account=account, connection=connection, client=client, now=now)
    finally:
        client.http.close()
    report = SyncReport(
        connection.name,
        spend_days=spent.days,
        spend_amount=spent.amount,
        spend_currency=account.currency,
        requests=client.http.requests,
    )
    report.spend_unmapped = dict(spent.unmapped)
    report.spend_pending = spent.pending
    if spent.pending:
        days = {"start": spent.pending[0].isoformat(), "end": spent.pending[1].isoformat()}
        report.warnings.append(Message("connector.report_pending", days))
    if spent.corrected_from:
        report.warnings.append(Message("connector.spend_corrected", {"day": spent.corrected_from.isoformat()}))
    if spent.converted:
        currency, rate = spent.converted
        converted = {"direct": currency, "rate": rate, "account": account.currency}
        report.warnings.append(Message("connector.spend_converted", converted))
    if spent.unmapped:
        report.warnings.append(Message("connector.spend_unmapped", {"campaigns": ", ".join(sorted(spent.unmapped))}))
    return report
