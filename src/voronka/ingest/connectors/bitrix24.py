"""Bitrix24 REST through an incoming webhook (the official REST reference, bitrix24/b24restdocs).

Funnels are deal categories (``crm.category.list``), their stages ``crm.status.list`` with the
semantics S (won) and F (lost). Deals are read in id order with ``>ID`` and ``start=-1`` (the bulk
read the docs recommend: no total counted), 50 a page, their stage history from
``crm.stagehistory.list`` for the page's ids. ``crm.deal.list`` answers every value as a string;
``crm.stagehistory.list`` puts its items under ``result.items`` with integer ids. An incremental run
filters on ``DATE_MODIFY``.

Calls come from ``voximplant.statistic.get`` (scope ``telephony``, the user needs the "view call
statistics" permission; 50 a page, read by ``>ID``): ``CALL_TYPE`` 1 outgoing, 2 and 3 incoming, 4
callback, 5 informational; ``CALL_FAILED_CODE`` 200 answered, 486 busy, 603/603-S declined, the rest
(304 missed …) not answered; ``PORTAL_NUMBER`` the line, ``PHONE_NUMBER`` the client. A call names a
contact, company or lead (``CRM_ENTITY_TYPE``/``CRM_ENTITY_ID``), not a deal: a contact's deals are
found with ``crm.deal.list`` filtered on ``CONTACT_ID``, and otherwise the client's number decides.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from voronka.i18n import Message
from voronka.ingest.connectors.base import (
    CallPage,
    ConnectionConfig,
    Page,
    People,
    RemoteCall,
    RemoteDeal,
    RemotePipeline,
    RemoteStage,
    from_iso,
    minor_units,
)
from voronka.ingest.connectors.form import RATE, ConnectForm, Secret
from voronka.ingest.connectors.http import Endpoint, Http
from voronka.models import DealStatus

PAGE = 50
OVERLAP = dt.timedelta(minutes=1)
DEAL_FIELDS = [
    "ID", "TITLE", "CATEGORY_ID", "STAGE_ID", "OPPORTUNITY", "CURRENCY_ID", "ASSIGNED_BY_ID",
    "SOURCE_ID", "DATE_CREATE", "DATE_MODIFY", "CLOSED", "UTM_SOURCE",
]  # fmt: skip


class Bitrix24Client:
    def __init__(self, config: ConnectionConfig) -> None:
        self.http = Http(
            Endpoint("Bitrix24", config.name, "bitrix24", config.base_url),
            address=config.secrets.get("webhook_url", "").rstrip("/") + "/",
            requests_per_second=config.requests_per_second,
            retry=config.retry,
        )
        self.warnings: list[Message] = []
        self.people = People("Bitrix24", "user_brief")
        self._sources: dict[str, str] | None = None

    def _call(self, method: str, body: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.http.post(f"{method}.json", dict(body))
        return answer if isinstance(answer, dict) else {}

    def _list(self, method: str, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a list method, following ``next`` (``result`` a list or ``{items: […]}``)."""
        start: int | None = 0
        while start is not None:
            answer = self._call(method, {**body, "start": start})
            result = answer.get("result")
            items = result.get("items", []) if isinstance(result, dict) else result or []
            yield from items
            next_start = answer.get("next")
            start = int(next_start) if next_start not in (None, "") and items else None

    def pipelines(self) -> list[RemotePipeline]:
        answer = self._call("crm.category.list", {"entityTypeId": 2})
        categories = (answer.get("result") or {}).get("categories") or [{"id": 0, "name": "Общая", "sort": 0}]
        found = []
        for category in sorted(categories, key=lambda c: (int(c.get("sort", 0)), int(c["id"]))):
            entity = "DEAL_STAGE" if int(category["id"]) == 0 else f"DEAL_STAGE_{category['id']}"
            statuses = self._list("crm.status.list", {"filter": {"ENTITY_ID": entity}, "order": {"SORT": "ASC"}})
            stages = tuple(
                RemoteStage(str(s["STATUS_ID"]), str(s["NAME"]), _semantics(s))
                for s in sorted(statuses, key=lambda s: int(s.get("SORT") or 0))
            )
            found.append(RemotePipeline(str(category["id"]), str(category["name"]), stages))
        return found

    def _names(self) -> tuple[People, dict[str, str]]:
        self.people.load(self._user_names, self.warnings)  # user.get needs a user scope: else ids, and a warning
        if self._sources is None:
            sources = self._list("crm.status.list", {"filter": {"ENTITY_ID": "SOURCE"}})
            self._sources = {str(s["STATUS_ID"]): str(s["NAME"]) for s in sources}
        return self.people, self._sources

    def _user_names(self) -> dict[Any, str]:
        return {
            str(u["ID"]): " ".join(p for p in (u.get("NAME"), u.get("LAST_NAME")) if p) or str(u["ID"])
            for u in self._list("user.get", {})
        }

    def pages(self, cursor: Mapping[str, Any]) -> Iterator[Page]:
        last_id = int(cursor.get("last_id", 0))
        since = cursor.get("since")
        while True:
            where: dict[str, Any] = {">ID": last_id}
            if since:
                where[">=DATE_MODIFY"] = since
            body = {"order": {"ID": "ASC"}, "filter": where, "select": DEAL_FIELDS, "start": -1}
            deals = self._call("crm.deal.list", body).get("result") or []
            if not deals:
                return
            history = self._history([int(d["ID"]) for d in deals])
            last_id = max(int(d["ID"]) for d in deals)
            yield Page(
                [self._deal(d, history.get(int(d["ID"]), [])) for d in deals], {"last_id": last_id, "since": since}
            )
            if len(deals) < PAGE:
                return

    def next_cursor(self, cursor: Mapping[str, Any], started: dt.datetime) -> dict[str, Any]:
        return {"last_id": 0, "since": (started - OVERLAP).replace(tzinfo=dt.UTC).isoformat(timespec="seconds")}

    def deal(self, remote_id: str) -> RemoteDeal | None:
        if not remote_id.isdigit():
            return None
        body = {"filter": {"ID": int(remote_id)}, "select": DEAL_FIELDS, "start": -1}
        found = self._call("crm.deal.list", body).get("result") or []
        if not found:
            return None
        return self._deal(found[0], self._history([int(remote_id)]).get(int(remote_id), []))

    def calls(self, cursor: Mapping[str, Any]) -> Iterator[CallPage]:
        last_id = int(cursor.get("last_id", 0))
        while True:
            body = {"FILTER": {">ID": last_id}, "SORT": "ID", "ORDER": "ASC", "start": 0}
            items = self._call("voximplant.statistic.get", body).get("result") or []
            if not items:
                return
            people, _ = self._names()
            contacts = {str(c["CRM_ENTITY_ID"]) for c in items if c.get("CRM_ENTITY_TYPE") == "CONTACT"}
            deals = self._deals_of_contacts(sorted(contacts))
            last_id = max(int(c["ID"]) for c in items)
            yield CallPage([_call(c, people, deals) for c in items], {"last_id": last_id})
            if len(items) < PAGE:
                return

    def _deals_of_contacts(self, contacts: list[str]) -> dict[str, tuple[str, ...]]:
        """Each contact's deals (``CONTACT_ID`` is the deal's main contact)."""
        if not contacts:
            return {}
        found: dict[str, list[str]] = defaultdict(list)
        body = {"filter": {"CONTACT_ID": contacts}, "select": ["ID", "CONTACT_ID"], "order": {"ID": "ASC"}}
        for deal in self._list("crm.deal.list", body):
            found[str(deal.get("CONTACT_ID"))].append(str(deal["ID"]))
        return {contact: tuple(ids) for contact, ids in found.items()}

    def _history(self, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        body = {"entityTypeId": 2, "filter": {"OWNER_ID": ids}, "order": {"ID": "ASC"}}
        found: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for item in self._list("crm.stagehistory.list", body):
            found[int(item["OWNER_ID"])].append(item)
        return found

    def _deal(self, deal: dict[str, Any], history: list[dict[str, Any]]) -> RemoteDeal:
        users, sources = self._names()
        created = from_iso(deal.get("DATE_CREATE")) or dt.datetime(1970, 1, 1)
        changes = tuple(
            (at, str(item["STAGE_ID"])) for item in history if (at := from_iso(item.get("CREATED_TIME"))) is not None
        )
        source = deal.get("SOURCE_ID")
        return RemoteDeal(
            id=str(deal["ID"]),
            pipeline_id=str(deal.get("CATEGORY_ID") or 0),
            stage_id=str(deal.get("STAGE_ID")),
            created_at=created,
            amount=minor_units(deal.get("OPPORTUNITY")),
            currency=deal.get("CURRENCY_ID") or None,
            manager=users.name(str(deal.get("ASSIGNED_BY_ID") or "")),
            source=sources.get(str(source), str(source)) if source else deal.get("UTM_SOURCE") or None,
            title=deal.get("TITLE"),
            changes=changes,
            history_known=bool(changes),
        )


INCOMING_TYPES = frozenset({"2", "3"})
OUTCOMES = {"200": "answered", "486": "busy", "603": "rejected", "603-S": "rejected"}


def _call(item: Mapping[str, Any], people: People, deals: Mapping[str, tuple[str, ...]]) -> RemoteCall:
    contact = str(item.get("CRM_ENTITY_ID") or "") if item.get("CRM_ENTITY_TYPE") == "CONTACT" else ""
    return RemoteCall(
        id=str(item["ID"]),
        at=from_iso(item.get("CALL_START_DATE")) or dt.datetime(1970, 1, 1),
        direction="in" if str(item.get("CALL_TYPE")) in INCOMING_TYPES else "out",
        outcome=OUTCOMES.get(str(item.get("CALL_FAILED_CODE") or ""), "no_answer"),
        duration=int(item.get("CALL_DURATION") or 0),
        our_number=str(item["PORTAL_NUMBER"]) if item.get("PORTAL_NUMBER") else None,
        client_phone=str(item["PHONE_NUMBER"]) if item.get("PHONE_NUMBER") else None,
        manager=people.name(str(item.get("PORTAL_USER_ID") or "")),
        deals=deals.get(contact, ()),
    )


def _semantics(status: Mapping[str, Any]) -> DealStatus | None:
    extra = status.get("EXTRA") or {}
    meaning = str(extra.get("SEMANTICS") or status.get("SEMANTICS") or "").lower()
    if meaning in ("s", "success"):
        return DealStatus.WON
    if meaning in ("f", "failure", "apology"):
        return DealStatus.LOST
    return None


class Bitrix24Connector:
    name = "bitrix24"
    crm = "Bitrix24"
    secret_names: tuple[str, ...] = ("webhook_url",)
    setting_names: tuple[str, ...] = ()
    form = ConnectForm(
        help="connect.form.bitrix24.about",
        secrets=(
            Secret("webhook_url", "--webhook-url-env", "connect.form.bitrix24.webhook_url",
                   prompt="connect.ask_webhook_url"),
            Secret("application_token", "--application-token-env", "connect.form.bitrix24.application_token"),
        ),
        settings=(RATE,),
        address_secret="webhook_url",  # its URL is the portal's address and the secret
    )  # fmt: skip
    requests_per_second = 1.8
    """The leaky bucket drains 2 requests a second (5 on Enterprise)."""
    reads_calls = True

    def base_url(self, address: str) -> str:
        """The portal alone: the webhook URL's path holds its secret code."""
        parts = urlsplit(address.strip() if "://" in address else f"https://{address.strip()}")
        return f"{parts.scheme}://{parts.netloc}"

    def client(self, config: ConnectionConfig) -> Bitrix24Client:
        return Bitrix24Client(config)
