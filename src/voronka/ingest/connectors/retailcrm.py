"""RetailCRM API v5: orders as deals (the API v5 reference and the official client retailcrm/api-client-php).

Stages are the status groups (new → approval → assembling → delivery → complete; cancel is lost),
each order status belonging to one. The change log ``/api/v5/orders/history`` is read from
``filter[sinceId]`` — the official incremental algorithm — 100 entries a page; the orders a page
touches are then read in one request for their current state. The last history id is the cursor,
so a resumed or later run simply goes on from it. Times come as ``Y-m-d H:i:s`` in the account's
zone (UNCONFIRMED): the connection's ``timezone`` setting, the voronka account's zone by default.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from voronka.i18n import Message
from voronka.ingest.connectors.base import (
    ConnectionConfig,
    Page,
    People,
    RemoteDeal,
    RemotePipeline,
    RemoteStage,
    account_url,
    minor_units,
)
from voronka.ingest.connectors.form import RATE, TOKEN, ConnectForm, Setting
from voronka.ingest.connectors.http import Endpoint, Http
from voronka.models import DealStatus

HISTORY_PAGE = 100
PIPELINE_ID = "orders"
OUTCOMES = {"complete": DealStatus.WON, "cancel": DealStatus.LOST}


class RetailCrmClient:
    def __init__(self, config: ConnectionConfig) -> None:
        self.http = Http(
            Endpoint("RetailCRM", config.name, "retailcrm", config.base_url),
            headers={"X-API-KEY": config.secrets.get("api_key", "")},
            requests_per_second=config.requests_per_second,
            retry=config.retry,
        )
        self.zone = ZoneInfo(str(config.settings.get("timezone") or "UTC"))
        self.name = str(config.settings.get("pipeline") or "RetailCRM")
        self._group_of: dict[str, str] = {}
        self.warnings: list[Message] = []
        self.people = People("RetailCRM", "access to the users section for the API key")

    def pipelines(self) -> list[RemotePipeline]:
        groups = (self.http.get("/api/v5/reference/status-groups") or {}).get("statusGroups") or {}
        statuses = (self.http.get("/api/v5/reference/statuses") or {}).get("statuses") or {}
        self._group_of = {code: str(s.get("group")) for code, s in statuses.items()}
        ordered = sorted(groups.values(), key=lambda g: int(g.get("ordering", 0)))
        stages = tuple(RemoteStage(str(g["code"]), str(g["name"]), OUTCOMES.get(str(g["code"]))) for g in ordered)
        return [RemotePipeline(PIPELINE_ID, self.name, stages)]

    def _local(self, text: Any) -> dt.datetime | None:
        if not text:
            return None
        local = dt.datetime.fromisoformat(str(text)).replace(tzinfo=self.zone)
        return local.astimezone(dt.UTC).replace(tzinfo=None)

    def _manager_names(self) -> People:
        self.people.load(self._users, self.warnings)  # a key without the users section: ids, and a warning
        return self.people

    def _users(self) -> dict[Any, str]:
        found: dict[Any, str] = {}
        page = 1
        while True:
            body = self.http.get("/api/v5/users", params={"limit": 100, "page": page}) or {}
            for user in body.get("users") or []:
                name = " ".join(p for p in (user.get("firstName"), user.get("lastName")) if p)
                found[int(user["id"])] = name or str(user["id"])
            pagination = body.get("pagination") or {}
            if page >= int(pagination.get("totalPageCount", 1)):
                return found
            page += 1

    def pages(self, cursor: Mapping[str, Any]) -> Iterator[Page]:
        since_id = cursor.get("since_id")
        total: int | None = None
        while True:
            params: dict[str, Any] = {"limit": HISTORY_PAGE, "page": 1}
            if since_id is not None:
                params["filter[sinceId]"] = since_id
            body = self.http.get("/api/v5/orders/history", params=params) or {}
            history = body.get("history") or []
            if total is None:
                total = int((body.get("pagination") or {}).get("totalCount", len(history)))
            if not history:
                return
            since_id = max(int(entry["id"]) for entry in history)
            yield Page(self._deals(history), {"since_id": since_id}, total)
            if len(history) < HISTORY_PAGE:
                return

    def next_cursor(self, cursor: Mapping[str, Any], started: dt.datetime) -> dict[str, Any]:
        return dict(cursor)

    def deal(self, remote_id: str) -> RemoteDeal | None:
        """Not needed: these CRMs' live updates come through the incremental sync."""
        return None

    def _deals(self, history: list[dict[str, Any]]) -> list[RemoteDeal]:
        changes: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
        touched: set[int] = set()
        for entry in history:
            order = entry.get("order") or {}
            at = self._local(entry.get("createdAt"))
            if "id" not in order or at is None:
                continue
            touched.add(int(order["id"]))
            code = (entry.get("newValue") or {}).get("code") if entry.get("field") == "status" else None
            if entry.get("created") and not code:
                code = order.get("status")
            group = self._group_of.get(str(code)) if code else None
            if group is not None:
                changes[int(order["id"])].append((at, group))
        ids = sorted(touched)
        body = self.http.get("/api/v5/orders", params={"filter[ids][]": ids, "limit": 100}) if ids else {}
        managers = self._manager_names()
        deals = []
        for order in (body or {}).get("orders") or []:
            created = self._local(order.get("createdAt")) or dt.datetime(1970, 1, 1)
            source = order.get("source") or {}
            deals.append(
                RemoteDeal(
                    id=str(order["id"]),
                    pipeline_id=PIPELINE_ID,
                    stage_id=self._group_of.get(str(order.get("status")), "new"),
                    created_at=created,
                    amount=minor_units(order.get("totalSumm")),
                    currency=order.get("currency") or None,
                    manager=managers.name(int(order["managerId"])) if order.get("managerId") else None,
                    source=source.get("source") if isinstance(source, dict) else None,
                    title=f"№{order.get('number') or order['id']}",
                    changes=tuple(changes.get(int(order["id"]), ())),
                    history_known=True,
                )
            )
        return deals


class RetailCrmConnector:
    name = "retailcrm"
    crm = "RetailCRM"
    secret_names: tuple[str, ...] = ("api_key",)
    setting_names: tuple[str, ...] = ("timezone",)
    form = ConnectForm(
        help="connect.form.retailcrm.about",
        secrets=(replace(TOKEN, key="api_key", help="connect.form.retailcrm.key", prompt="connect.ask_key"),),
        settings=(Setting("address", "ADDRESS", "connect.form.retailcrm.address"), RATE),
    )
    requests_per_second = 8.0
    """The official client's examples pace themselves at 10 a second."""
    reads_calls = False

    def base_url(self, address: str) -> str:
        return account_url(address, "retailcrm.ru")

    def client(self, config: ConnectionConfig) -> RetailCrmClient:
        return RetailCrmClient(config)
