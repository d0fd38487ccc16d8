"""Calls in a sync: after the deals, the CRM's call log page by page, each call linked to a deal
(the deals the CRM names, else the client's number, by the rule of ``importers.calls``), stored once
under the connection's own id for it, and the page committed with its cursor. A token that may not
read the calls syncs the deals anyway and says which permission is missing."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from voronka.crm.phones import region_of
from voronka.errors import PermissionRefused
from voronka.i18n import Message
from voronka.ingest.connectors.base import CallSource, RemoteCall
from voronka.ingest.importers.calls import (
    DealIndex,
    Managers,
    StoredCall,
    keep_waiting,
    match_key,
    normalized_phone,
    refresh_first_contact,
    store_calls,
    waiting_row,
)
from voronka.models import Account, Connection
from voronka.tabular.report import ImportReport


def sync_calls(*, session: Session, account: Account, connection: Connection, client: CallSource) -> tuple[int, int]:
    """Bring the connection's calls up to date; (calls stored, calls kept waiting for their deal)."""
    cursor: dict[str, Any] = dict((connection.state or {}).get("calls") or {})
    stored = 0
    deals = DealIndex(session, account, connection.kind)
    managers, region = Managers(session, account), region_of(account.timezone)
    waiting = 0
    for page in client.calls(cursor):
        rows: list[StoredCall] = []
        unmatched: list[dict[str, Any]] = []
        for call in page.calls:
            row = _row(call, account, connection, deals, managers, region)
            if isinstance(row, dict):
                unmatched.append(row)
            else:
                rows.append(row)
        report = ImportReport(file=connection.name)
        refresh_first_contact(session=session, deal_ids=store_calls(session, account, rows, report))
        waiting += keep_waiting(session, unmatched)
        stored += report.created
        connection.state = {**(connection.state or {}), "calls": page.cursor}
        session.commit()
    return stored, waiting


def _row(
    call: RemoteCall,
    account: Account,
    connection: Connection,
    deals: DealIndex,
    managers: Managers,
    region: str | None,
) -> StoredCall | dict[str, Any]:
    """The call as stored, or as kept waiting when its deal has not arrived yet."""
    phone = normalized_phone(call.client_phone, region)
    ours = normalized_phone(call.our_number, region)
    external_id = f"sync{connection.id}:{call.id}"
    found = deals.named(call.deal) or deals.among(call.deals, call.at) or deals.by_phone(match_key(phone), call.at)
    if found is None:
        return waiting_row(
            account, external_id, connection.kind, call.at, call.direction, call.outcome, call.duration, ours,
            phone, call.manager, deal_ref=call.deal, refs=call.deals,
        )  # fmt: skip
    deal_id, deal_manager = found
    return (
        account.id, deal_id, call.at, ours, call.outcome, call.duration, managers.id_of(call.manager) or deal_manager,
        call.direction, phone, external_id,
    )  # fmt: skip


def sync_calls_or_warn(
    *, session: Session, account: Account, connection: Connection, client: CallSource, warnings: list[Message]
) -> tuple[int, int]:
    """``sync_calls``, but a refusal becomes a warning: the deals are synced all the same."""
    try:
        return sync_calls(session=session, account=account, connection=connection, client=client)
    except PermissionRefused as refused:
        session.rollback()
        facts = {"crm": refused.params.get("crm", ""), "reason": refused.params.get("reason", "")}
        warnings.append(Message("connector.calls_refused", facts))
        return 0, 0
