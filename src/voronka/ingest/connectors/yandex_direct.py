"""Yandex Direct's Reports service (API v5, "Reports"): daily cost per campaign.

``POST /json/v5/reports`` with a ``CAMPAIGN_PERFORMANCE_REPORT`` of ``Date, CampaignId,
CampaignName, Cost`` for a ``CUSTOM_DATE`` range, as TSV. A report built online comes back at once
(200); a larger one is built offline: 201 (queued) or 202 (being built) with a ``retryIn`` header
saying when to ask again — with the same body, the same ``ReportName``. Money is in micro-units of
the client's currency (millionths) unless ``returnMoneyInMicros: false``. ``Client-Login`` names the
client for an agency's token. Errors come as ``{"error": {"error_code", "error_string",
"error_detail"}}``.

A report not ready within the wait the run allows (none in the background) is not a failure: the
sync stops there, remembers the report's days and name in the connection's state, and the next run
asks for exactly that report again — Direct keeps a built report for 5 hours under its name — before
going on. Every other request gets a name of its own: a name asked for again within those hours
would hand back the stored report and hide a correction made since.

The sync (``sync_spend``) asks for the days since the last run, three days back (Direct's statistics
settle within three days), a month a request. Older days Direct corrected are found as its "How to
get updated statistics" page says: ``Changes.check`` with ``CampaignsStat`` for the campaigns seen,
from the ``Timestamp`` of the previous check, names a ``BorderDate`` per corrected campaign, and the
days from the earliest one are pulled again. Each pulled day replaces everything this connection
wrote for it: a source the day's cost no longer goes to (a campaign mapped since, or moved to another
source) is set to zero, so nothing is counted twice. Cost of campaigns mapped to nothing is kept as
spend without a source and named in the report, never dropped. The client's currency is asked
(``Clients.get``); cost in another currency than the account's is refused unless the connection
states the rate to convert it at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from voronka.crm.spend import campaign_sources, record_spend
from voronka.errors import ConnectorAuthFailed, ConnectorFailed, InvalidValue
from voronka.i18n import Message
from voronka.ingest.connectors.base import ConnectionConfig, Described
from voronka.ingest.connectors.form import TOKEN, ConnectForm, Setting
from voronka.ingest.connectors.http import Endpoint, Http
from voronka.ingest.connectors.store import add_connection
from voronka.models import Account, Connection
from voronka.money import micros_to_minor
from voronka.secretstore import SecretStore
from voronka.timeutil import to_local, utcnow, zone

REPORTS = "/json/v5/reports"
CHANGES = "/json/v5/changes"
CLIENTS = "/json/v5/clients"
FIELDS = ("Date", "CampaignId", "CampaignName", "Cost")
OVERLAP = dt.timedelta(days=3)
"""Direct's statistics normally settle within three days ("How to get updated statistics")."""
FIRST_RUN = dt.timedelta(days=90)
CHUNK = dt.timedelta(days=31)
KEPT = dt.timedelta(days=3 * 366)
"""How long what the connection wrote is remembered: Direct keeps statistics for three years."""
CHECKED_AT_ONCE = 3000
"""Campaign ids in one ``Changes.check`` (the method takes 1 to 3000)."""


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


def report_name(start: dt.date, end: dt.date) -> str:
    """A name of its own for each new request: Direct hands back a report stored under a name it
    knows (for 5 hours), so a reused name would hide a correction made since."""
    return f"voronka {start:%Y%m%d}-{end:%Y%m%d} {uuid.uuid4().hex[:12]}"


def _earlier_name(start: dt.date, end: dt.date) -> str:
    """The name a report remembered before names were unique was asked for under (one per range)."""
    return f"voronka {start:%Y%m%d}-{end:%Y%m%d} " + hashlib.sha1(f"{start}{end}{FIELDS}".encode()).hexdigest()[:8]


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

    def costs(self, start: dt.date, end: dt.date, name: str | None = None) -> list[CampaignCost]:
        """Cost per campaign per day in [start, end], both included. ``name``: the report's name —
        a remembered one to collect a report asked for earlier, else a new one."""
        body = {
            "params": {
                "SelectionCriteria": {"DateFrom": start.isoformat(), "DateTo": end.isoformat()},
                "FieldNames": list(FIELDS),
                "ReportName": name or report_name(start, end),
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

    def currency(self) -> str:
        """The client's currency (``Clients.get`` → ``Currency``): what Direct's money is in."""
        result = self._call(CLIENTS, "get", {"FieldNames": ["Login", "Currency"]})
        clients = result.get("Clients") or []
        if not clients or not clients[0].get("Currency"):
            raise self._malformed(CLIENTS)
        return str(clients[0]["Currency"])

    def server_time(self) -> str:
        """Direct's own time, the first ``Timestamp`` to check changes from (``checkDictionaries``
        without one, as the "Tracking changes" page advises)."""
        stamp = self._call(CHANGES, "checkDictionaries", {}).get("Timestamp")
        if not stamp:
            raise self._malformed(CHANGES)
        return str(stamp)

    def corrected_since(self, campaigns: Iterable[str], timestamp: str) -> tuple[dt.date | None, str]:
        """The earliest ``BorderDate`` of the campaigns whose statistics Direct corrected since
        ``timestamp`` (``Changes.check`` with ``CampaignsStat``), and the ``Timestamp`` to check from next."""
        ids = sorted({int(c) for c in campaigns if str(c).isdigit()})
        border: dt.date | None = None
        stamp = timestamp
        for at in range(0, len(ids), CHECKED_AT_ONCE):
            params = {
                "CampaignIds": ids[at : at + CHECKED_AT_ONCE],
                "Timestamp": timestamp,
                "FieldNames": ["CampaignsStat"],
            }
            result = self._call(CHANGES, "check", params)
            for item in (result.get("Modified") or {}).get("CampaignsStat") or []:
                day = dt.date.fromisoformat(str(item["BorderDate"])[:10])
                border = day if border is None else min(border, day)
            stamp = str(result.get("Timestamp") or stamp)
        return border, stamp

    def _call(self, path: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """A JSON service's method; an ``{"error": …}`` answer (which may come with 200) is one named error."""
        body = self.http.post(path, {"method": method, "params": params})
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            detail = ": ".join(str(error.get(k) or "").strip() for k in ("error_string", "error_detail")).strip(": ")
            endpoint = self.http.endpoint
            if str(error.get("error_code")) == "53":  # authorization error
                raise ConnectorAuthFailed(crm=endpoint.crm, name=endpoint.connection, kind=endpoint.kind, detail=detail)
            reason = Message(
                "connector.http_status", {"status": error.get("error_code"), "path": path, "detail": detail}
            )
            raise ConnectorFailed(crm=endpoint.crm, url=endpoint.base_url, reason=reason)
        if not isinstance(body, dict) or not isinstance(body.get("result"), dict):
            raise self._malformed(path)
        return dict(body["result"])

    def _malformed(self, path: str) -> ConnectorFailed:
        return ConnectorFailed(
            crm="Yandex Direct", url=self.http.endpoint.base_url, reason=Message("connector.malformed", {"path": path})
        )


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
    corrected_from: dt.date | None = None
    """The earliest day Direct said it corrected since the last run (pulled again from there)."""
    converted: tuple[str, str] | None = None
    """Direct's currency and the stated rate its cost was converted at, when it is not the account's."""


def exchange_rate(*, account: Account, connection: Connection, currency: str) -> Decimal | None:
    """The rate Direct's ``currency`` is converted at into the account's: None when they are the
    same; the connection's stated rate for that currency; refused (one line) when none is stated."""
    if currency == account.currency:
        return None
    stated = (connection.settings.get("exchange_rate") or {}).get(currency)
    if stated is None:
        reason = Message("connector.currency_differs", {"direct": currency, "account": account.currency})
        raise ConnectorFailed(crm="Yandex Direct", url=connection.base_url, reason=reason)
    return Decimal(str(stated))


def parse_exchange_rate(value: str) -> dict[str, str]:
    """``CUR=RATE`` (how many of the account's currency one unit of Direct's is worth), as
    ``voronka connect yandex-direct --exchange-rate`` takes it."""
    currency, _, rate = value.partition("=")
    try:
        number = Decimal(rate.strip().replace(",", "."))
    except InvalidOperation:
        number = Decimal(0)
    if len(currency.strip()) != 3 or not number.is_finite() or number <= 0:
        raise InvalidValue(field="--exchange-rate", value=value, hint="Direct's currency = its rate, e.g. KZT=0.19")
    return {currency.strip().upper(): str(number)}


def exchange_rates(pairs: list[str] | None) -> dict[str, str] | None:
    """Every ``CUR=RATE`` given, or None (the client's money is the account's)."""
    return {k: v for pair in pairs for k, v in parse_exchange_rate(pair).items()} if pairs else None


def sync_spend(
    *,
    session: Session,
    account: Account,
    connection: Connection,
    client: YandexDirectClient,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> SpendReport:
    """Daily cost since the last run (and from the earliest day Direct corrected since), a month a
    request, each chunk committed with the cursor after it. A report still being built ends the run
    without an error; the next run collects it first."""
    now = now or utcnow()
    today = today or to_local(now, zone(account.timezone)).date()
    report = SpendReport()
    currency = client.currency()
    rate = exchange_rate(account=account, connection=connection, currency=currency)
    if rate is not None:
        report.converted = (currency, str(rate))
    state: dict[str, Any] = dict(connection.state or {})
    campaigns = state.get("campaigns") or []
    if state.get("changes_at") and campaigns:
        border, state["changes_at"] = client.corrected_since(campaigns, state["changes_at"])
        if border is not None:
            report.corrected_from = border
            state["redo"] = min(state.get("redo") or border.isoformat(), border.isoformat())
    else:
        state["changes_at"] = client.server_time()
    connection.state = state  # the check's timestamp is kept only with the days it found to redo
    session.commit()
    end = today - dt.timedelta(days=1)
    mapping: Mapping[str, str] = connection.settings.get("sources") or {}
    waiting = state.get("pending")  # asked for by an earlier run: collected under its name first
    if waiting:
        first, last = dt.date.fromisoformat(waiting["from"]), dt.date.fromisoformat(waiting["to"])
        name = waiting.get("name") or _earlier_name(first, last)
        if not _pull(session, account, connection, client, first, last, name, mapping, rate, report, today):
            return report
        start = last + dt.timedelta(days=1)  # the sweep it belonged to goes on after it
    else:
        through = state.get("through")
        start = dt.date.fromisoformat(through) - OVERLAP if through else today - FIRST_RUN
    redo = (connection.state or {}).get("redo")
    if redo:
        start = min(start, dt.date.fromisoformat(redo))
    while start <= end:
        last = min(start + CHUNK - dt.timedelta(days=1), end)
        if not _pull(session, account, connection, client, start, last, None, mapping, rate, report, today):
            return report
        start = last + dt.timedelta(days=1)
    kept = {k: v for k, v in (connection.state or {}).items() if k != "redo"}
    connection.state = kept
    connection.last_synced_at = now
    session.commit()
    return report


def _pull(
    session: Session,
    account: Account,
    connection: Connection,
    client: YandexDirectClient,
    first: dt.date,
    last: dt.date,
    name: str | None,
    mapping: Mapping[str, str],
    rate: Decimal | None,
    report: SpendReport,
    today: dt.date,
) -> bool:
    """Ask for the days [first, last] (under ``name`` when collecting a remembered report) and store
    them; False when Direct is still building the report, which is then remembered with its name."""
    name = name or report_name(first, last)
    try:
        costs = client.costs(first, last, name)
    except ReportPending as pending:
        held = {"from": first.isoformat(), "to": last.isoformat(), "name": name}
        connection.state = {**(connection.state or {}), "pending": held}
        session.commit()
        report.pending = (pending.start, pending.end)
        return False
    _store(session, account, connection, first, last, costs, mapping, rate, report, today)
    return True


def _store(
    session: Session,
    account: Account,
    connection: Connection,
    first: dt.date,
    last: dt.date,
    costs: list[CampaignCost],
    mapping: Mapping[str, str],
    rate: Decimal | None,
    report: SpendReport,
    today: dt.date,
) -> None:
    """Set the days [first, last] to what Direct said of them, replacing everything this connection
    wrote for them before, and move the cursor past them — in one commit."""
    totals: dict[tuple[dt.date, str | None], int] = defaultdict(int)
    seen = set((connection.state or {}).get("campaigns") or [])
    for cost in costs:
        source = mapping.get(cost.campaign_id) or mapping.get(cost.campaign)
        micros = cost.micros if rate is None else int((Decimal(cost.micros) * rate).to_integral_value())
        minor = micros_to_minor(micros, account.currency)
        totals[(cost.day, source)] += minor
        seen.add(cost.campaign_id)
        if source is None:
            report.unmapped[cost.campaign] = report.unmapped.get(cost.campaign, 0) + minor
    state: dict[str, Any] = dict(connection.state or {})
    written: dict[str, list[str]] = dict(state.get("written") or {})
    now_written: dict[str, list[str]] = defaultdict(list)
    for (day, source), amount in sorted(totals.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        record_spend(session=session, account=account, source=source, start=day, kind="day", amount=amount)
        now_written[day.isoformat()].append(source or "")
        report.amount += amount
    day = first
    while day <= last:
        key = day.isoformat()
        for stale in set(written.get(key) or ()) - set(now_written.get(key) or ()):
            # Written by this connection before and no longer where the day's cost goes: a campaign
            # mapped since, or moved to another source. Zero, so it is not counted twice.
            record_spend(session=session, account=account, source=stale or None, start=day, kind="day", amount=0)
        if now_written.get(key):
            written[key] = sorted(now_written[key])
        else:
            written.pop(key, None)
        day += dt.timedelta(days=1)
    oldest = (today - KEPT).isoformat()
    state["written"] = {k: v for k, v in sorted(written.items()) if k >= oldest}
    state["campaigns"] = sorted(seen)
    state.pop("pending", None)
    state["through"] = max(last.isoformat(), state.get("through") or "")
    if first.isoformat() <= (state.get("redo") or "") <= last.isoformat():  # the sweep went past them
        state["redo"] = (last + dt.timedelta(days=1)).isoformat()
    connection.state = state
    report.days += (last - first).days + 1
    session.commit()


def add_spend_connection(
    *,
    session: Session,
    account: Account,
    connector: Described,
    name: str,
    address: str,
    settings: Mapping[str, Any],
    secret_values: Mapping[str, str],
    store: SecretStore,
) -> tuple[Connection, str]:
    """Store a Yandex Direct connection like any other, but when it replaces one of the same name
    (to map campaigns anew, say) keep what the old one wrote, and pull those days again: each then
    replaces the old connection's rows, so cost that moved to another source is not counted twice."""
    old = session.scalars(
        select(Connection).where(Connection.account_id == account.id, Connection.name == name)
    ).first()
    written = dict((old.state or {}).get("written") or {}) if old is not None and old.kind == connector.name else {}
    connection, token = add_connection(
        session=session, account=account, connector=connector, name=name, address=address,
        settings=settings, secret_values=secret_values, store=store,
    )  # fmt: skip
    if written:
        connection.state = {"written": written, "redo": min(written)}
        session.flush()
    return connection, token


class YandexDirectConnector:
    name = "yandex_direct"
    crm = "Yandex Direct"
    secret_names: tuple[str, ...] = ("token",)
    setting_names: tuple[str, ...] = ("client_login", "sources")
    form = ConnectForm(
        help="connect.form.yandex_direct.about",
        secrets=(replace(TOKEN, help="connect.form.yandex_direct.token"),),
        settings=(
            Setting("client_login", "--client-login", "connect.form.yandex_direct.client_login"),
            Setting("sources", "--source", "connect.form.yandex_direct.source", kind="list",
                    parse=lambda pairs: campaign_sources(pairs or [])),  # none given: none mapped yet
            Setting("address", "--url", "connect.form.url", default="https://api.direct.yandex.com"),
            Setting("exchange_rate", "--exchange-rate", "connect.form.yandex_direct.exchange_rate", kind="list",
                    parse=exchange_rates),
        ),
    )  # fmt: skip
    requests_per_second = 1.0
    reads_calls = False

    def base_url(self, address: str) -> str:
        return address.rstrip("/") or "https://api.direct.yandex.com"

    def client(self, config: ConnectionConfig) -> YandexDirectClient:
        return YandexDirectClient(config)
