"""A fake RetailCRM API v5 (the API v5 reference and the official client retailcrm/api-client-php): ``X-API-KEY``,
``success`` flags and ``pagination{}``, status groups and statuses, ``orders/history`` with ``filter[sinceId]``,
orders by ``filter[ids][]``, 503 when over the limit, 403 ``Access denied.`` for a wrong key and for a
method the key was not given access to (an API key's access is set per method group in the admin)."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.fakes import Contract

KEY = "retail-api-key"
GROUPS = [
    ("new", "Новый", 10, False),
    ("approval", "Согласование", 20, True),
    ("assembling", "Комплектация", 30, True),
    ("delivery", "Доставка", 40, True),
    ("complete", "Выполнен", 50, False),
    ("cancel", "Отменен", 60, False),
]
STATUSES = {
    "new": "new",
    "availability-confirmed": "approval",
    "client-confirmed": "approval",
    "assembling": "assembling",
    "send-to-delivery": "delivery",
    "complete": "complete",
    "no-call": "cancel",
    "prices-did-not-suit": "cancel",
}
OPEN_STATUSES = ["new", "client-confirmed", "assembling", "send-to-delivery"]


@dataclass
class FakeRetailCrm:
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    rate_limit_every: int = 0
    requests: int = 0
    users_allowed: bool = True
    """Whether the API key may read /api/v5/users."""
    key: str = KEY
    """The API key it takes (another: the key was deleted)."""

    def create(self, order_id: int, at: dt.datetime, total: int) -> None:
        order = {
            "id": order_id,
            "number": f"{order_id}A",
            "createdAt": _t(at),
            "statusUpdatedAt": _t(at),
            "status": "new",
            "totalSumm": total,
            "summ": total,
            "currency": "RUB",
            "managerId": 28 if order_id % 2 else 29,
            "site": "shop",
            "orderMethod": "phone",
            "source": {"source": ("yandex", "avito")[order_id % 2]},
        }
        self.orders[order_id] = order
        self.history.append(
            {
                "id": len(self.history) + 7000,
                "createdAt": _t(at),
                "created": True,
                "source": "api",
                "field": "status",
                "apiKey": {"current": False},
                "oldValue": None,
                "newValue": {"code": "new"},
                "order": dict(order),
            }
        )

    def set_status(self, order_id: int, status: str, at: dt.datetime) -> None:
        order = self.orders[order_id]
        self.history.append(
            {
                "id": len(self.history) + 7000,
                "createdAt": _t(at),
                "source": "user",
                "user": {"id": 28},
                "field": "status",
                "oldValue": {"code": order["status"]},
                "newValue": {"code": status},
                "order": {"id": order_id, "externalId": None, "number": order["number"]},
            }
        )
        order["status"], order["statusUpdatedAt"] = status, _t(at)

    def install(self, server: HTTPServer) -> None:
        routes = {
            "/api/v5/reference/status-groups": self._groups,
            "/api/v5/reference/statuses": self._statuses,
            "/api/v5/orders/history": self._history,
            "/api/v5/orders": self._orders,
            "/api/v5/users": self._users,
        }
        for path, handler in routes.items():
            server.expect_request(path, method="GET").respond_with_handler(self._guarded(handler))

    def _guarded(self, handler: Any) -> Any:
        def respond(request: Request) -> Response:
            self.requests += 1
            if request.headers.get("X-API-KEY") != self.key and request.args.get("apiKey") != self.key:
                return _json({"success": False, "errorMsg": "Access denied."}, 403)
            if self.rate_limit_every and self.requests % self.rate_limit_every == 0:
                return Response(
                    "<html>503 Service Temporarily Unavailable</html>", status=503, content_type="text/html"
                )
            return handler(request)

        return respond

    def _groups(self, request: Request) -> Response:
        groups = {
            code: {
                "name": name,
                "code": code,
                "active": True,
                "ordering": order,
                "process": process,
                "statuses": [s for s, g in STATUSES.items() if g == code],
            }
            for code, name, order, process in GROUPS
        }
        return _json({"success": True, "statusGroups": groups})

    def _statuses(self, request: Request) -> Response:
        return _json(
            {
                "success": True,
                "statuses": {
                    s: {"name": s, "code": s, "active": True, "ordering": 10, "group": g} for s, g in STATUSES.items()
                },
            }
        )

    def _users(self, request: Request) -> Response:
        if not self.users_allowed:
            return _json({"success": False, "errorMsg": "Access denied."}, 403)
        users = [
            {"id": 28, "firstName": "Пётр", "lastName": "Сидоров"},
            {"id": 29, "firstName": "Анна", "lastName": "Белова"},
        ]
        return _json(
            {
                "success": True,
                "pagination": {"limit": 100, "totalCount": 2, "currentPage": 1, "totalPageCount": 1},
                "users": users,
            }
        )

    def _history(self, request: Request) -> Response:
        limit = int(request.args.get("limit", 20))
        if limit not in (20, 50, 100):
            return _json(
                {"success": False, "errorMsg": "Errors in the input parameters", "errors": {"limit": "not valid"}}, 400
            )
        since = int(request.args.get("filter[sinceId]", 0))
        page = int(request.args.get("page", 1))
        found = [h for h in self.history if h["id"] > since]
        chunk = found[(page - 1) * limit : page * limit]
        pages = max(1, -(-len(found) // limit))
        return _json(
            {
                "success": True,
                "generatedAt": "2026-11-27 10:00:00",
                "history": chunk,
                "pagination": {"limit": limit, "totalCount": len(found), "currentPage": page, "totalPageCount": pages},
            }
        )

    def _orders(self, request: Request) -> Response:
        ids = [int(i) for i in request.args.getlist("filter[ids][]")]
        orders = [self.orders[i] for i in ids if i in self.orders] if ids else list(self.orders.values())
        limit = int(request.args.get("limit", 20))
        return _json(
            {
                "success": True,
                "pagination": {"limit": limit, "totalCount": len(orders), "currentPage": 1, "totalPageCount": 1},
                "orders": orders[:limit],
            }
        )


def _t(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")


def shop(orders: int, seed: int = 5) -> FakeRetailCrm:
    fake = FakeRetailCrm()
    rng = random.Random(seed)
    base = dt.datetime(2026, 2, 1, 9, 0)
    for number in range(1, orders + 1):
        at = base + dt.timedelta(minutes=23 * number)
        fake.create(number, at, rng.choice((1990, 4500, 12000)))
    for number in range(1, orders + 1):  # the log interleaves orders, as a real shop's does
        at, position = base + dt.timedelta(days=3, minutes=number), 0
        for _ in range(rng.randrange(0, 4)):
            at += dt.timedelta(hours=rng.randrange(1, 30))
            roll = rng.random()
            if roll < 0.15:
                fake.set_status(number, rng.choice(("no-call", "prices-did-not-suit")), at)
                break
            if roll < 0.35 and position == len(OPEN_STATUSES) - 1:
                fake.set_status(number, "complete", at)
                break
            position = min(len(OPEN_STATUSES) - 1, position + 1)
            fake.set_status(number, OPEN_STATUSES[position], at)
    return fake


def contract(server: HTTPServer) -> Contract:
    """More than one page of the order history (100 a page); refused: the API key was deleted."""
    fake = shop(60)
    fake.install(server)

    def refuse() -> None:
        fake.key = "deleted"

    return Contract(address=server.url_for("").rstrip("/"), secrets={"api_key": KEY}, pipelines=["RetailCRM"],
                    deals=set(map(str, fake.orders)), refuse=refuse)  # fmt: skip
