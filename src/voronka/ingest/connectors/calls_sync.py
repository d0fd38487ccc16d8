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
    match_key,
    normalized_phone,
    refresh_first_contact,
    store_calls,
)
from voronka.models import Account, Connection
from voronka.tabular.report import ImportReport


def sync_calls(*, session: Session, account: Account, connection: Connection, client: CallSource) -> tuple[int, int]:
    """Bring the connection's calls up to date; (calls stored, calls that matched no deal)."""
    cursor: dict[str, Any] = dict((connection.state or {}).get("calls") or {})
    deals, managers, region = DealIndex(session, account), Managers(session, account), region_of(account.timezone)
    stored = unmatched = 0
    for page in client.calls(cursor):
        rows: list[StoredCall] = []
        for call in page.calls:
            row = _row(call, account, connection, deals, managers, region)
            if row is None:
                unmatched += 1
            else:
                rows.append(row)
        report = ImportReport(file=connection.name)
        refresh_first_contact(session=session, deal_ids=store_calls(session, account, rows, report))
        stored += report.created
        connection.state = {**(connection.state or {}), "calls": page.cursor}
        session.commit()
    return stored, unmatched


def _row(
    call: RemoteCall,
    account: Account,
    connection: Connection,
    deals: DealIndex,
    managers: Managers,
    region: str | None,
) -> StoredCall | None:
    phone = normalized_phone(call.client_phone, region)
    found = deals.among(call.deals, call.at) or deals.by_phone(match_key(phone), call.at)
    if found is None:
        return None
    deal_id, deal_manager = found
    ours = normalized_phone(call.our_number, region)
    return (
        account.id, deal_id, call.at, ours, call.outcome, call.duration, managers.id_of(call.manager) or deal_manager,
        call.direction, phone, f"sync{connection.id}:{call.id}",
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
