"""A fake Yandex Direct Reports service, after its API v5 documentation ("Reports"):

- ``POST /json/v5/reports`` with ``Authorization: Bearer <token>`` (and ``Client-Login`` for an
  agency's clients); a body ``{"params": {SelectionCriteria, FieldNames, ReportName, ReportType,
  DateRangeType, Format, IncludeVAT}}`` — a missing or wrong one is refused with 400;
- an online report answers 200 with the TSV; an offline one 201 (queued) then 202 (being built) with
  ``retryIn`` (seconds) and ``reportsInQueue`` headers, then 200 to the same request;
- ``Cost`` in micro-units unless ``returnMoneyInMicros: false``; a report-name line first unless
  ``skipReportHeader: true``, a "Total rows" line last unless ``skipReportSummary: true``;
- errors as ``{"error": {"request_id", "error_code", "error_string", "error_detail"}}``: 53 for a
  bad token (401), 8000 for a bad request (400);
- a built offline report is kept for 5 hours and a request under a name already built hands it back
  as it was ("Restrictions": https://yandex.ru/dev/direct/doc/ru/restrictions — «Сформированные
  офлайн-отчеты хранятся в течение 5 часов»; "Online and offline reports":
  https://yandex.com/dev/direct/doc/en/mode — ask again with the same parameters). The fake keeps
  every built report for the whole test (its clock does not pass 5 hours);
- ``POST /json/v5/changes`` (JSON API: ``{"method", "params"}``): ``checkDictionaries`` without a
  ``Timestamp`` gives the server's time; ``check`` with ``CampaignIds`` (1–3000), ``Timestamp`` and
  ``FieldNames: ["CampaignsStat"]`` answers ``{"result": {"Modified": {"CampaignsStat": [{"CampaignId",
  "BorderDate"}]}, "Timestamp"}}`` for campaigns whose statistics were corrected since then
  (https://yandex.com/dev/direct/doc/en/changes/check, https://yandex.ru/dev/direct/doc/en/actual
  "How to get updated statistics", https://yandex.ru/dev/direct/doc/en/best-practice/check-changes);
- ``POST /json/v5/clients`` ``get`` with ``FieldNames: ["Login", "Currency"]`` answers
  ``{"result": {"Clients": [{"Login", "Currency"}]}}`` (the Clients service; Live 4's
  ``ClientCurrencies`` became ``Currency``: https://yandex.ru/dev/direct/doc/en/concepts/clients).
  The JSON services' errors come as the same ``{"error": …}`` body; the fake sends them with 200.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TOKEN = "y0_AgAAAAB-direct-token"
REPORT_TYPES = {"CAMPAIGN_PERFORMANCE_REPORT", "ACCOUNT_PERFORMANCE_REPORT", "CUSTOM_REPORT"}
FIELDS = {"Date", "CampaignId", "CampaignName", "Cost", "Clicks", "Impressions"}


@dataclass
class FakeDirect:
    costs: list[tuple[dt.date, int, str, int]] = field(default_factory=list)
    """(day, campaign id, campaign name, cost in micro-units)."""
    offline_polls: int = 0
    """How many times a report answers "not ready" (201, then 202) before the data."""
    retry_in: str = "1"
    """The ``retryIn`` header of a "not ready" answer (seconds)."""
    polls: dict[str, int] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)
    """(DateFrom, DateTo) of each report asked for."""
    client_login: str | None = None
    """When set, requests must name this client (an agency's token)."""
    currency: str = "RUB"
    """The client's currency, as Clients.get gives it."""
    now: dt.datetime = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    """The fake server's clock: Changes' timestamps."""
    corrections: list[tuple[dt.datetime, int, dt.date]] = field(default_factory=list)
    """(when, campaign id, the first day corrected): what Changes.check reports as CampaignsStat."""
    built: dict[str, str] = field(default_factory=dict)
    """Reports built, by ReportName: asked for again under a name, one is handed back as it was."""
    checks: list[dict[str, Any]] = field(default_factory=list)
    """The params of each Changes.check."""

    def spend(self, day: dt.date, campaign_id: int, name: str, rubles: float) -> None:
        self.costs.append((day, campaign_id, name, round(rubles * 1_000_000)))

    def correct(self, day: dt.date, campaign_id: int, name: str, rubles: float) -> None:
        """Direct corrects a day's cost of a campaign (invalid clicks found): Changes.check tells."""
        self.costs = [c for c in self.costs if not (c[0] == day and c[1] == campaign_id)]
        self.spend(day, campaign_id, name, rubles)
        self.now += dt.timedelta(minutes=1)
        self.corrections.append((self.now, campaign_id, day))

    def install(self, server: HTTPServer) -> None:
        server.expect_request("/json/v5/reports", method="POST").respond_with_handler(self._reports)
        server.expect_request("/json/v5/changes", method="POST").respond_with_handler(self._changes)
        server.expect_request("/json/v5/clients", method="POST").respond_with_handler(self._clients)

    def _json(self, request: Request) -> tuple[str, dict[str, Any]] | Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(200, "53", "Authorization error", "Invalid OAuth token")
        body = request.get_json(silent=True) or {}
        return str(body.get("method") or ""), body.get("params") or {}

    def _changes(self, request: Request) -> Response:
        asked = self._json(request)
        if isinstance(asked, Response):
            return asked
        method, params = asked
        stamp = self.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        if method == "checkDictionaries":
            return _result({"Timestamp": stamp, "RegionsChanged": "NO", "TimeZonesChanged": "NO"})
        if method != "check":
            return _error(200, "55", "Operation not found", method)
        ids = params.get("CampaignIds") or []
        if not params.get("Timestamp") or not params.get("FieldNames") or not 1 <= len(ids) <= 3000:
            return _error(200, "8000", "Invalid request", "Timestamp, FieldNames and 1 to 3000 CampaignIds")
        self.checks.append(params)
        since = dt.datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        borders: dict[int, dt.date] = {}
        for at, campaign, day in self.corrections:
            if at > since and campaign in ids:
                borders[campaign] = min(borders.get(campaign, day), day)
        modified = {}
        if "CampaignsStat" in params["FieldNames"] and borders:
            modified["CampaignsStat"] = [{"CampaignId": c, "BorderDate": d.isoformat()} for c, d in borders.items()]
        return _result({"Modified": modified, "Timestamp": stamp})

    def _clients(self, request: Request) -> Response:
        asked = self._json(request)
        if isinstance(asked, Response):
            return asked
        method, params = asked
        if method != "get" or not params.get("FieldNames"):
            return _error(200, "8000", "Invalid request", "get with FieldNames")
        client = {"Login": self.client_login or "direct-client", "Currency": self.currency}
        return _result({"Clients": [{k: v for k, v in client.items() if k in params["FieldNames"]}]})

    def _reports(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(401, "53", "Authorization error", "Invalid OAuth token")
        if self.client_login and request.headers.get("Client-Login") != self.client_login:
            return _error(400, "8800", "Object not found", "Client-Login is not an agency client")
        params = (request.get_json(silent=True) or {}).get("params") or {}
        problem = _check(params)
        if problem:
            return _error(400, "8000", "Invalid request", problem)
        name = params["ReportName"]
        if name in self.built:  # a report built under this name is handed back as it was
            return Response(self.built[name], status=200, content_type="text/tab-separated-values")
        done = self.polls.get(name, 0)
        if done < self.offline_polls:
            self.polls[name] = done + 1
            headers = {"retryIn": self.retry_in, "reportsInQueue": "1"}
            return Response("", status=201 if done == 0 else 202, headers=headers)
        start = dt.date.fromisoformat(params["SelectionCriteria"]["DateFrom"])
        end = dt.date.fromisoformat(params["SelectionCriteria"]["DateTo"])
        self.asked.append((start.isoformat(), end.isoformat()))
        micros = request.headers.get("returnMoneyInMicros", "true") != "false"
        rows = [
            {
                "Date": d.isoformat(),
                "CampaignId": str(i),
                "CampaignName": n,
                "Cost": str(c) if micros else f"{c / 1e6:.2f}",
            }
            for d, i, n, c in sorted(self.costs)
            if start <= d <= end
        ]
        fields = params["FieldNames"]
        lines = ["\t".join(fields), *("\t".join(r.get(f, "0") for f in fields) for r in rows)]
        if request.headers.get("skipReportHeader") != "true":
            lines.insert(0, f'"{name} ({start} - {end})"')
        if request.headers.get("skipReportSummary") != "true":
            lines.append(f"Total rows: {len(rows)}")
        self.built[name] = "\n".join(lines) + "\n"
        return Response(self.built[name], status=200, content_type="text/tab-separated-values")


def _check(params: dict[str, Any]) -> str | None:
    criteria = params.get("SelectionCriteria") or {}
    if params.get("DateRangeType") == "CUSTOM_DATE" and not (criteria.get("DateFrom") and criteria.get("DateTo")):
        return "SelectionCriteria needs DateFrom and DateTo for CUSTOM_DATE"
    if params.get("ReportType") not in REPORT_TYPES:
        return "ReportType is not valid"
    if not params.get("FieldNames") or not set(params["FieldNames"]) <= FIELDS:
        return "FieldNames is not valid"
    if params.get("Format") != "TSV":
        return "Format must be TSV"
    if params.get("IncludeVAT") not in ("YES", "NO"):
        return "IncludeVAT is required"
    if not params.get("ReportName"):
        return "ReportName is required"
    return None


def _result(result: dict[str, Any]) -> Response:
    return Response(json.dumps({"result": result}, ensure_ascii=False), status=200, content_type="application/json")


def _error(status: int, code: str, text: str, detail: str) -> Response:
    body = {
        "error": {"request_id": "8695244274068608439", "error_code": code, "error_string": text, "error_detail": detail}
    }
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")
