"""Webhook routes: CRMs tell us a deal changed (``/webhooks/{kind}/{token}``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from voronka.crm.accounts import account_by_id
from voronka.errors import InvalidValue
from voronka.ingest.connectors.store import connection_by_webhook_token
from voronka.ingest.connectors.webhooks import IDS_OF, apply_webhook
from voronka.secretstore import SecretStore
from voronka.web.deps import DB, settings_of

router = APIRouter(tags=["webhooks"])


async def _payload(request: Request) -> dict[str, Any]:
    """Form fields (amoCRM, Bitrix24) or a JSON object."""
    if "json" in request.headers.get("content-type", ""):
        try:
            body = await request.json()
        except ValueError:  # not JSON, or not UTF-8: the sender's mistake, told as the lead webhook tells it
            raise InvalidValue(field="body", value="…", hint="a JSON object or form fields") from None
        return body if isinstance(body, dict) else {}
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


@router.post("/webhooks/{kind}/{token}", summary="A CRM says deals changed")
async def crm_webhook(kind: str, token: str, request: Request, session: DB) -> dict[str, Any]:
    connection = connection_by_webhook_token(session=session, token=token)
    if connection is None or connection.kind != kind or kind not in IDS_OF:
        raise HTTPException(status_code=404, detail="no such webhook")
    payload = await _payload(request)
    account = account_by_id(session=session, account_id=connection.account_id)
    store = SecretStore(settings_of(request).secrets_file())
    # The CRM is asked for the deals: blocking HTTP, so off the event loop.
    result = await run_in_threadpool(
        apply_webhook, session=session, account=account, connection=connection, payload=payload, store=store
    )
    report = result.report
    return {"deals": list(result.deals), "created": report.created, "updated": report.updated}
