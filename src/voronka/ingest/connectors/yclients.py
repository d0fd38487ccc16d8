"""YCLIENTS (its REST API documentation): a booking is a deal.

There is no stage history; a record's ``attendance`` is its stage: 0 booked (waiting), 2 confirmed,
1 came (the visit happened: won), −1 did not come (lost). Records come ``count`` a page until a
short page; an incremental run asks for ``changed_after`` the last run began. Deleted records are
left out. The record's field list is UNCONFIRMED in the vendor's docs: missing fields are tolerated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from voronka.i18n import Message
from voronka.ingest.connectors.base import (
    ConnectionConfig,
    Page,
    RemoteDeal,
    RemotePipeline,
    RemoteStage,
    from_iso,
    minor_units,
)
from voronka.ingest.connectors.form import RATE, TOKEN, ConnectForm, Secret, Setting
from voronka.ingest.connectors.http import Endpoint, Http
from voronka.models import DealStatus

PAGE = 200
PIPELINE_ID = "records"
OVERLAP = dt.timedelta(minutes=1)
STAGES = (
    RemoteStage("0", "Запись"),
    RemoteStage("2", "Подтверждена"),
    RemoteStage("1", "Визит", DealStatus.WON),
    RemoteStage("-1", "Не пришёл", DealStatus.LOST),
)


class YclientsClient:
    def __init__(self, config: ConnectionConfig) -> None:
        partner, user = config.secrets.get("partner_token", ""), config.secrets.get("user_token", "")
        self.http = Http(
            Endpoint("YCLIENTS", config.name, "yclients", config.base_url),
            headers={
                "Authorization": f"Bearer {partner}, User {user}",
                "Accept": "application/vnd.yclients.v2+json",
                "Content-Type": "application/json",
            },
            requests_per_second=config.requests_per_second,
            retry=config.retry,
        )
        self.warnings: list[Message] = []
        self.company = str(config.settings.get("company_id", ""))
        self.name = str(config.settings.get("pipeline") or "YCLIENTS")

    def pipelines(self) -> list[RemotePipeline]:
        return [RemotePipeline(PIPELINE_ID, self.name, STAGES)]

    def pages(self, cursor: Mapping[str, Any]) -> Iterator[Page]:
        page = int(cursor.get("page", 1))
        since = cursor.get("changed_after")
        while True:
            params: dict[str, Any] = {"page": page, "count": PAGE}
            if since:  # a cursor an older version kept in another ISO form is sent in the API's
                params["changed_after"] = changed_after(dt.datetime.fromisoformat(since).astimezone(dt.UTC))
            body = self.http.get(f"/api/v1/records/{self.company}", params=params) or {}
            records = body.get("data") or []
            total = (body.get("meta") or {}).get("total_count")
            deals = [self._deal(r) for r in records if not r.get("deleted")]
            yield Page(deals, {"page": page + 1, "changed_after": since}, int(total) if total else None)
            if len(records) < PAGE:
                return
            page += 1

    def next_cursor(self, cursor: Mapping[str, Any], started: dt.datetime) -> dict[str, Any]:
        return {"changed_after": changed_after(started - OVERLAP)}

    def deal(self, remote_id: str) -> RemoteDeal | None:
        """Not needed: these CRMs' live updates come through the incremental sync."""
        return None

    def _deal(self, record: dict[str, Any]) -> RemoteDeal:
        created = from_iso(record.get("create_date")) or from_iso(record.get("datetime")) or dt.datetime(1970, 1, 1)
        visit = from_iso(record.get("datetime"))
        attendance = str(record.get("attendance", 0))
        staff = record.get("staff") or {}
        client = record.get("client") or {}
        services = record.get("services") or []
        cost = sum(float(s.get("cost") or 0) for s in services if isinstance(s, dict))
        return RemoteDeal(
            id=str(record["id"]),
            pipeline_id=PIPELINE_ID,
            stage_id=attendance if attendance in ("0", "1", "2", "-1") else "0",
            created_at=created,
            closed_at=visit if attendance in ("1", "-1") else None,
            amount=minor_units(cost),
            manager=staff.get("name") if isinstance(staff, dict) else None,
            title=", ".join(str(s.get("title")) for s in services if isinstance(s, dict) and s.get("title")) or None,
            contact=client.get("name") if isinstance(client, dict) else None,
            phone=client.get("phone") if isinstance(client, dict) else None,
            custom={"visit_at": visit.isoformat()} if visit else {},
        )


class YclientsConnector:
    name = "yclients"
    crm = "YCLIENTS"
    secret_names: tuple[str, ...] = ("partner_token", "user_token")
    setting_names: tuple[str, ...] = ("company_id",)
    form = ConnectForm(
        help="connect.form.yclients.about",
        secrets=(
            replace(TOKEN, key="partner_token", help="connect.form.yclients.partner_token"),
            Secret("user_token", "--user-token-env", "connect.form.yclients.user_token",
                   prompt="connect.ask_user_token"),
        ),
        settings=(
            Setting("company_id", "COMPANY", "connect.form.yclients.company"),
            Setting("address", "--url", "connect.form.url", default="https://api.yclients.com"),
            RATE,
        ),
    )  # fmt: skip
    requests_per_second = 3.0
    """The documented limit is 200 a minute or 5 a second per IP."""
    reads_calls = False

    def base_url(self, address: str) -> str:
        return address.strip().rstrip("/") or "https://api.yclients.com"

    def client(self, config: ConnectionConfig) -> YclientsClient:
        return YclientsClient(config)


def changed_after(moment: dt.datetime) -> str:
    """``changed_after`` as the API takes it: PHP's ISO 8601 form, ``2026-03-01T07:00:00+0000`` (the
    offset without a colon), as the client library the API's docs point to sends it."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S%z")
