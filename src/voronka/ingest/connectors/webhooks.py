"""Live updates: a CRM tells us a deal changed; we read that deal afresh and store it.

amoCRM posts ``leads[add]`` / ``leads[status]`` (form-encoded, ``leads[status][0][id]=…``); Bitrix24
posts ``ONCRMDEALUPDATE`` / ``ONCRMDEALADD`` with only the deal's id. Either way the deal is re-read
through the API with its history and written like a synced page, so a webhook delivered twice
changes nothing the second time. The URL's token (stored hashed) says which connection it is.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from voronka.crm.auth import Forbidden
from voronka.ingest.connectors.store import connection_config
from voronka.ingest.connectors.sync import SyncReport, local_pipelines, store_deals
from voronka.models import Account, Connection
from voronka.secretstore import SecretStore

_AMO_ID = re.compile(r"^leads\[(add|status|update|restore)\]\[\d+\]\[id\]$")
_BITRIX_EVENTS = frozenset({"ONCRMDEALUPDATE", "ONCRMDEALADD"})


@dataclass(frozen=True)
class WebhookResult:
    deals: tuple[str, ...]
    report: SyncReport


def amocrm_lead_ids(form: Mapping[str, Any]) -> list[str]:
    """The lead ids an amoCRM webhook names, in order, once each."""
    ids = [str(value) for key, value in form.items() if _AMO_ID.match(key)]
    return list(dict.fromkeys(ids))


def bitrix24_deal_ids(payload: Mapping[str, Any]) -> list[str]:
    """The deal id of a Bitrix24 outbound event, form-encoded (``data[FIELDS][ID]``) or JSON."""
    if str(payload.get("event", "")).upper() not in _BITRIX_EVENTS:
        return []
    found = payload.get("data[FIELDS][ID]")
    data = payload.get("data")
    if found is None and isinstance(data, Mapping):
        found = (data.get("FIELDS") or {}).get("ID")
    return [str(found)] if found not in (None, "") else []


class WebhookRefused(Forbidden):
    """An event that does not prove it comes from the CRM."""

    key = "error.webhook_refused"


def check_application_token(payload: Mapping[str, Any], expected: str | None) -> None:
    """Bitrix24 sends every event with ``auth[application_token]``, the token its outgoing webhook
    shows; its documentation requires a handler to compare it with the stored one. Without a stored
    token no event is believed."""
    auth = payload.get("auth")
    given = payload.get("auth[application_token]") or (
        auth.get("application_token") if isinstance(auth, Mapping) else None
    )
    if not expected or not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookRefused()


IDS_OF = {"amocrm": amocrm_lead_ids, "bitrix24": bitrix24_deal_ids}
"""The connectors whose CRMs push webhooks, and how each names the changed deals."""


def apply_webhook(
    *, session: Session, account: Account, connection: Connection, payload: Mapping[str, Any], store: SecretStore
) -> WebhookResult:
    """Re-read and store the deals a webhook names. The caller commits."""
    from voronka.ingest.connectors import CONNECTORS

    if connection.kind == "bitrix24":
        check_application_token(payload, store.get(connection.secret_ref).get("application_token"))
    ids = IDS_OF[connection.kind](payload)
    report = SyncReport(connection.name)
    if not ids:
        return WebhookResult((), report)
    connector = CONNECTORS[connection.kind]
    client = connector.client(connection_config(connection, store, connector))
    try:
        pipelines = local_pipelines(session, account, client)
        deals = [deal for remote_id in ids if (deal := client.deal(remote_id)) is not None]
        store_deals(session, account, pipelines, deals, report, origin=connection.kind)
    finally:
        client.http.close()
    return WebhookResult(tuple(ids), report)
