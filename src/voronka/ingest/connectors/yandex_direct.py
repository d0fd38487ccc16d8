"""Yandex Direct's Reports service (API v5, "Reports"): daily cost per campaign.

``POST /json/v5/reports`` with a ``CAMPAIGN_PERFORMANCE_REPORT`` of ``Date, CampaignId,
CampaignName, Cost`` for a ``CUSTOM_DATE`` range, as TSV. A report built online comes back at once
(200); a larger one is built offline: 201 (queued) or 202 (being built) with a ``retryIn`` header
saying when to ask again — with the same body, the same ``ReportName``. Money is in micro-units of
the client's currency (millionths) unless ``returnMoneyInMicros: false``. ``Client-Login`` names the
client for an agency's token. Errors come as ``{"error": {"error_code", "error_string",
"error_detail"}}``.

A report not ready within the wait the run allows (none in the background) is not a failure: the
sync stops there, remembers the report's days in the connection's state, and the next run asks for
exactly those days again — the same ``ReportName``, which Direct keeps built for hours — before going
on. The sync (``sync_spend``) asks for the days since the last run (three days back: Direct corrects
recent costs when clicks prove invalid), a month a request, and sets each day's spend of the source
each campaign is mapped to; cost of campaigns mapped to nothing is kept as spend without a source and
named in the report, never dropped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from voronka.crm.spend import record_spend
from voronka.errors import ConnectorFailed
from voronka.i18n import Message
from voronka.ingest.connectors.base import ConnectionConfig
from voronka.ingest.connectors.http import Endpoint, Http
from voronka.models import Account, Connection
from voronka.money import micros_to_minor
from voronka.timeutil import to_local, utcnow, zone

REPORTS = "/json/v5/reports"
FIELDS = ("Date", "CampaignId", "CampaignName", "Cost")
OVERLAP = dt.timedelta(days=3)
FIRST_RUN = dt.timedelta(days=90)
CHUNK = dt.timedelta(days=31)


class ReportPending(Exception):
    """Direct is still building the report (201/202) and the run may wait no longer for it."""

    def __init__(self, start: dt.date, end: dt.date, retry_in: float) -> None:
        super().__init__(f"report {start}..{end} is being built; ask again in {retry_in:g} s")
        self.start, self.end, self.retry_in = start, end, retry_in


@dataclass(frozen=True)
class CampaignCost:
    day: dt.date
    campaign_id: str
    campaign: str
    micros: int


class YandexDirectClient:
    def __init__(self, config: ConnectionConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        headers = {
            "Authorization": f"Bearer {config.secrets.get('token', '')}",
            "Accept-Language": "ru",
            "processingMode": "auto",
            "returnMoneyInMicros": "true",
            "skipReportHeader": "true",
            "skipReportSummary": "true",
        }
        if config.settings.get("client_login"):
            headers["Client-Login"] = str(config.settings["client_login"])
        self.http = Http(
            Endpoint("Yandex Direct", config.name, "yandex_direct", config.base_url),
            headers=headers,
            requests_per_second=config.requests_per_second,
            retry=config.retry,
        )
        self.sleep = sleep
        self.warnings: list[Message] = []

    def costs(self, start: dt.date, end: dt.date) -> list[CampaignCost]:
        """Cost per campaign per day in [start, end], both included."""
        name = f"voronka {start:%Y%m%d}-{end:%Y%m%d} " + hashlib.sha1(f"{start}{end}{FIELDS}".encode()).hexdigest()[:8]
        body = {
            "params": {
                "SelectionCriteria": {"DateFrom": start.isoformat(), "DateTo": end.isoformat()},
                "FieldNames": list(FIELDS),
                "ReportName": name,
                "ReportType": "CAMPAIGN_PERFORMANCE_REPORT",
                "DateRangeType": "CUSTOM_DATE",
                "Format": "TSV",
                "IncludeVAT": "YES",
            }
        }
        waited = 0.0
        while True:
            answer = self.http.raw("POST", REPORTS, json=body)
            if answer.status_code in (201, 202):  # queued or being built offline: ask again after retryIn
                wait = float(answer.headers.get("retryIn") or 10)
                waited += wait
                if waited > self.http.retry.max_blocked:
                    raise ReportPending(start, end, wait)
                if self.http.retry.on_wait is not None:
                    self.http.retry.on_wait(wait)
                self.sleep(wait)
                continue
            return _parse(answer.text)


def _parse(text: str) -> list[CampaignCost]:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split("\t")
    at = {name: header.index(name) for name in FIELDS if name in header}
    if len(at) != len(FIELDS):
        raise ConnectorFailed(crm="Yandex Direct", url="", reason=Message("connector.malformed", {"path": REPORTS}))
    found = []
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) < len(header) or cells[0].startswith("Total"):
            continue
        found.append(
            CampaignCost(
                dt.date.fromisoformat(cells[at["Date"]]),
                cells[at["CampaignId"]],
                cells[at["CampaignName"]],
                int(cells[at["Cost"]] or 0),
            )
        )
    return found


@dataclass
class SpendReport:
    days: int = 0
    amount: int = 0
    """Minor units of the account's currency."""
    unmapped: dict[str, int] = field(default_factory=dict)
    """Campaigns mapped to no source, with their cost (kept as spend without a source)."""
    pending: tuple[dt.date, dt.date] | None = None
    """The days of a report Direct was still building when the run stopped (collected next run)."""


def sync_spend(
    *,
    session: Session,
    account: Account,
    connection: Connection,
    client: YandexDirectClient,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> SpendReport:
    """Daily cost since the last run, a month a request, each chunk committed with the cursor after it.
    A report still being built ends the run without an error; the next run collects it first."""
    now = now or utcnow()
    today = today or to_local(now, zone(account.timezone)).date()
    state = connection.state or {}
    through = state.get("through")
    start = dt.date.fromisoformat(through) - OVERLAP if through else today - FIRST_RUN
    end = today - dt.timedelta(days=1)
    mapping: Mapping[str, str] = connection.settings.get("sources") or {}
    report = SpendReport()
    waiting = state.get("pending")  # asked for by an earlier run: the same days, so the same report
    while start <= end or waiting:
        if waiting:
            start, chunk_end = dt.date.fromisoformat(waiting["from"]), dt.date.fromisoformat(waiting["to"])
            waiting = None
        else:
            chunk_end = min(start + CHUNK - dt.timedelta(days=1), end)
        try:
            costs = client.costs(start, chunk_end)
        except ReportPending as pending:
            connection.state = {
                **(connection.state or {}), "pending": {"from": start.isoformat(), "to": chunk_end.isoformat()}
            }  # fmt: skip
            session.commit()
            report.pending = (pending.start, pending.end)
            return report
        totals: dict[tuple[dt.date, str | None], int] = defaultdict(int)
        for cost in costs:
            source = mapping.get(cost.campaign_id) or mapping.get(cost.campaign)
            minor = micros_to_minor(cost.micros, account.currency)
            totals[(cost.day, source)] += minor
            if source is None:
                report.unmapped[cost.campaign] = report.unmapped.get(cost.campaign, 0) + minor
        for (day, source), amount in sorted(totals.items(), key=lambda item: (item[0][0], item[0][1] or "")):
            record_spend(session=session, account=account, source=source, start=day, kind="day", amount=amount)
            report.amount += amount
        report.days += (chunk_end - start).days + 1
        kept = {k: v for k, v in (connection.state or {}).items() if k != "pending"}
        through = max(chunk_end.isoformat(), kept.get("through") or "")
        connection.state = {**kept, "through": through}
        session.commit()
        start = dt.date.fromisoformat(through) + dt.timedelta(days=1)
    connection.last_synced_at = now
    session.commit()
    return report


class YandexDirectConnector:
    name = "yandex_direct"
    crm = "Yandex Direct"
    secret_names: tuple[str, ...] = ("token",)
    setting_names: tuple[str, ...] = ("client_login", "sources")
    requests_per_second = 1.0
    reads_calls = False

    def base_url(self, address: str) -> str:
        return address.rstrip("/") or "https://api.direct.yandex.com"

    def client(self, config: ConnectionConfig) -> YandexDirectClient:
        return YandexDirectClient(config)
