# ruff: noqa: E501 - the fake answers are easier to compare with the docs on one line
"""A fake Bitrix24 REST portal behind an incoming webhook (the official REST reference, bitrix24/b24restdocs): POST
``/rest/1/CODE/METHOD.json``, fixed pages of 50 with ``next`` and ``total`` (``start=-1``: no total),
string values from ``crm.deal.list``, ``result.items`` with integers from ``crm.stagehistory.list``,
503 ``QUERY_LIMIT_EXCEEDED`` when over the limit, 401 ``NO_AUTH_FOUND`` for a wrong code, and 401
``insufficient_scope`` for a method outside the webhook's scopes (``_includes/system-errors.md``:
``user.get`` needs ``user``, ``user_brief`` or ``user_basic``; the CRM methods ``crm``), and 429
``OPERATION_TIME_LIMIT`` for a method blocked by its summed run time until ``time.operating_reset_at``
(``limits.md``: up to ten minutes). Calls: ``voximplant.statistic.get``
(``api-reference/telephony/voximplant/voximplant-statistic-get.md``): scope ``telephony``, 403
``ACCESS_DENIED`` for a user without the call statistics permission, ``FILTER`` with ``>ID``, ``SORT``
and ``ORDER``, pages of 50 by ``start`` with ``next`` and ``total``; each record names a CRM contact,
company or lead, never a deal."""

from __future__ import annotations

import bisect
import datetime as dt
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.fakes import Contract

CODE = "b24secretcode"
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=3)))
STAGES = [
    ("NEW", "Новая", 10, None), ("PREPARATION", "Подготовка документов", 20, None),
    ("PREPAYMENT_INVOICE", "Счёт на предоплату", 30, None), ("EXECUTING", "В работе", 40, None),
    ("WON", "Сделка успешна", 60, "S"), ("LOSE", "Сделка провалена", 70, "F"), ("APOLOGY", "Анализ причины провала", 80, "F"),
]  # fmt: skip
OPEN = [s[0] for s in STAGES if s[3] is None]
USER_SCOPES = {"user", "user_brief", "user_basic"}


@dataclass
class FakeBitrix24:
    deals: dict[int, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    users: dict[int, tuple[str, str]] = field(default_factory=lambda: {1: ("Сергей", "Иванов"), 6: ("Ирина", "Ким")})
    rate_limit_every: int = 0
    requests: int = 0
    scopes: frozenset[str] = frozenset({"crm", "user_brief", "telephony"})
    calls: list[dict[str, Any]] = field(default_factory=list)
    call_statistics_allowed: bool = True
    """The webhook's user has the "view call statistics" permission."""
    blocked: dict[str, float] = field(default_factory=dict)
    """Methods blocked for their run time, and the Unix time each block ends."""
    """What the incoming webhook was given (a webhook made "with the crm scope" alone lacks user_brief)."""

    def add(self, deal_id: int, created: dt.datetime, moves: list[tuple[dt.datetime, str]], amount: str) -> None:
        self.deals[deal_id] = {
            "ID": str(deal_id), "TITLE": f"Сделка {deal_id}", "CATEGORY_ID": "0", "STAGE_ID": "NEW",
            "OPPORTUNITY": amount, "CURRENCY_ID": "RUB", "ASSIGNED_BY_ID": str(1 if deal_id % 2 else 6),
            "SOURCE_ID": ("WEB", "CALL")[deal_id % 2], "DATE_CREATE": created.isoformat(),
            "DATE_MODIFY": created.isoformat(), "CLOSED": "N", "UTM_SOURCE": None, "CONTACT_ID": str(1000 + deal_id),
        }  # fmt: skip
        self._log(deal_id, created, "NEW", 1)
        for at, stage in moves:
            self.move(deal_id, stage, at)

    def call(
        self,
        deal_id: int | None,
        at: dt.datetime,
        *,
        outgoing: bool = True,
        code: str = "200",
        duration: int = 60,
        line: str = "+74951112233",
        phone: str = "+79990000000",
        user: int = 1,
    ) -> None:
        """A call in the telephony statistics, naming the deal's contact (or no one: deal_id None)."""
        self.calls.append(
            {"ID": str(len(self.calls) + 1), "PORTAL_USER_ID": str(user), "PORTAL_NUMBER": line, "PHONE_NUMBER": phone,
             "CALL_ID": f"call.{len(self.calls) + 1}", "CALL_CATEGORY": "external", "CALL_DURATION": str(duration),
             "CALL_START_DATE": at.isoformat(), "CALL_FAILED_CODE": code, "CALL_FAILED_REASON": "",
             "CRM_ENTITY_TYPE": "CONTACT" if deal_id else "", "CRM_ENTITY_ID": str(1000 + deal_id) if deal_id else "",
             "CALL_TYPE": "1" if outgoing else "2", "COST": "0.0000", "COST_CURRENCY": "RUB"}
        )  # fmt: skip

    def move(self, deal_id: int, stage: str, at: dt.datetime) -> None:
        deal = self.deals[deal_id]
        deal["STAGE_ID"], deal["DATE_MODIFY"] = stage, at.isoformat()
        deal["CLOSED"] = "Y" if stage in ("WON", "LOSE", "APOLOGY") else "N"
        self._log(deal_id, at, stage, 3 if deal["CLOSED"] == "Y" else 2)

    def _log(self, deal_id: int, at: dt.datetime, stage: str, kind: int) -> None:
        semantic = next(s[3] for s in STAGES if s[0] == stage) or "P"
        self.history.append(
            {"ID": len(self.history) + 1, "TYPE_ID": kind, "OWNER_ID": deal_id, "CREATED_TIME": at.isoformat(),
             "CATEGORY_ID": 0, "STAGE_SEMANTIC_ID": semantic, "STAGE_ID": stage}
        )  # fmt: skip

    def install(self, server: HTTPServer) -> None:
        for method in (
            "crm.category.list", "crm.status.list", "user.get", "crm.deal.list", "crm.stagehistory.list",
            "voximplant.statistic.get",
        ):  # fmt: skip
            server.expect_request(f"/rest/1/{CODE}/{method}.json", method="POST").respond_with_handler(self._respond)
        server.expect_request(
            re.compile(r"/rest/1/(?!" + CODE + r"/).*")  # any other webhook code
        ).respond_with_json({"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}, status=401)

    def _respond(self, request: Request) -> Response:
        self.requests += 1
        if self.rate_limit_every and self.requests % self.rate_limit_every == 0:
            return _json({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}, 503)
        method = request.path.rsplit("/", 1)[-1].removesuffix(".json")
        needed = USER_SCOPES if method == "user.get" else {"telephony"} if method.startswith("voximplant.") else {"crm"}
        if not needed & self.scopes:
            return _json(
                {
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the webhook token",
                },
                401,
            )
        until = self.blocked.get(method)
        if until is not None and time.time() < until:
            return _json({"error": "OPERATION_TIME_LIMIT", "error_description": "Method is blocked due to operation time limit.",
                          "time": {"start": time.time(), "finish": time.time(), "duration": 0.001, "processing": 0,
                                   "operating_reset_at": int(until) if until == int(until) else until, "operating": 480.2}}, 429)  # fmt: skip
        body = request.get_json(silent=True) or {}
        handler = getattr(self, "_" + method.replace(".", "_"))
        return handler(body)

    def _voximplant_statistic_get(self, body: dict[str, Any]) -> Response:
        if not self.call_statistics_allowed:
            return _json({"error": "ACCESS_DENIED", "error_description": "Access denied!"}, 403)
        where = body.get("FILTER") or {}
        calls = self.calls  # kept in id order as they are logged
        if ">ID" in where:
            calls = calls[bisect.bisect_right(calls, int(where[">ID"]), key=lambda c: int(c["ID"])) :]
        if body.get("ORDER") == "DESC":
            calls = calls[::-1]
        return self._page(calls, int(body.get("start", 0)))

    def _page(self, items: list[Any], start: int, *, items_key: bool = False) -> Response:
        chunk = items[max(start, 0) : max(start, 0) + 50]
        answer: dict[str, Any] = {
            "result": {"items": chunk} if items_key else chunk,
            "total": len(items) if start >= 0 else 0,
        }
        if start >= 0 and start + 50 < len(items):
            answer["next"] = start + 50
        answer["time"] = {"start": 0, "finish": 0, "duration": 0.01, "processing": 0.0}
        return _json(answer)

    def _crm_category_list(self, body: dict[str, Any]) -> Response:
        return _json(
            {
                "result": {
                    "categories": [{"id": 0, "name": "Общая", "sort": 300, "entityTypeId": 2, "isDefault": "Y"}]
                },
                "total": 1,
            }
        )

    def _crm_status_list(self, body: dict[str, Any]) -> Response:
        entity = body.get("filter", {}).get("ENTITY_ID")
        if entity == "SOURCE":
            items = [
                {"STATUS_ID": "WEB", "NAME": "Веб-сайт", "SORT": "10"},
                {"STATUS_ID": "CALL", "NAME": "Звонок", "SORT": "20"},
            ]
        elif entity == "DEAL_STAGE":
            items = [
                {"ID": str(n), "ENTITY_ID": "DEAL_STAGE", "STATUS_ID": s, "NAME": name, "SORT": str(sort), "SYSTEM": "Y",
                 "SEMANTICS": sem, "EXTRA": {"SEMANTICS": {"S": "success", "F": "failure"}.get(sem or "", "process")}}
                for n, (s, name, sort, sem) in enumerate(STAGES, start=1)
            ]  # fmt: skip
            random.Random(1).shuffle(items)
        else:
            items = []
        return self._page(items, int(body.get("start", 0)))

    def _user_get(self, body: dict[str, Any]) -> Response:
        users = [{"ID": str(i), "NAME": n, "LAST_NAME": last} for i, (n, last) in self.users.items()]
        return self._page(users, int(body.get("start", 0)))

    def _crm_deal_list(self, body: dict[str, Any]) -> Response:
        where = body.get("filter", {})
        if not isinstance(where, dict):
            return _json({"error": "", "error_description": "Parameter 'filter' must be array."}, 400)
        deals = sorted(self.deals.values(), key=lambda d: int(d["ID"]))
        if "ID" in where:
            deals = [d for d in deals if int(d["ID"]) == int(where["ID"])]
        if "CONTACT_ID" in where:
            contacts = {
                str(c)
                for c in (where["CONTACT_ID"] if isinstance(where["CONTACT_ID"], list) else [where["CONTACT_ID"]])
            }
            deals = [d for d in deals if d["CONTACT_ID"] in contacts]
        if ">ID" in where:
            deals = [d for d in deals if int(d["ID"]) > int(where[">ID"])]
        if ">=DATE_MODIFY" in where:
            since = dt.datetime.fromisoformat(where[">=DATE_MODIFY"])
            deals = [d for d in deals if dt.datetime.fromisoformat(d["DATE_MODIFY"]) >= since]
        return self._page(deals, int(body.get("start", 0)))

    def _crm_stagehistory_list(self, body: dict[str, Any]) -> Response:
        if body.get("entityTypeId") != 2:
            return _json(
                {"error": "ENTITY_TYPE_NOT_SUPPORTED", "error_description": "Entity type is not supported"}, 400
            )
        owners = body.get("filter", {}).get("OWNER_ID")
        wanted = set(owners) if isinstance(owners, list) else {owners} if owners is not None else None
        items = [h for h in self.history if wanted is None or h["OWNER_ID"] in wanted]
        return self._page(items, int(body.get("start", 0)), items_key=True)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")


def portal(deals: int, seed: int = 3) -> FakeBitrix24:
    fake = FakeBitrix24()
    rng = random.Random(seed)
    for number in range(1, deals + 1):
        created = START + dt.timedelta(minutes=17 * number)
        moves: list[tuple[dt.datetime, str]] = []
        at, position = created, 0
        for _ in range(rng.randrange(0, 5)):
            at += dt.timedelta(hours=rng.randrange(1, 60))
            roll = rng.random()
            if roll < 0.15:
                moves.append((at, rng.choice(("LOSE", "APOLOGY"))))
                break
            if roll < 0.3 and position == len(OPEN) - 1:
                moves.append((at, "WON"))
                break
            position = min(len(OPEN) - 1, position + rng.choice((1, 1, 2)))
            moves.append((at, OPEN[position]))
        fake.add(number, created, moves, rng.choice(("15000.00", "99999.50", "250000")))
    return fake


def contract(server: HTTPServer) -> Contract:
    """Two pages of deals (50 a page); refused: the webhook lost its crm scope (401 insufficient_scope)."""
    fake = portal(60)
    fake.install(server)

    def refuse() -> None:
        fake.scopes = frozenset()

    url = server.url_for(f"/rest/1/{CODE}/")
    return Contract(address=url, secrets={"webhook_url": url}, pipelines=["Общая"], deals=set(map(str, fake.deals)),
                    refuse=refuse)  # fmt: skip
