"""A fake YCLIENTS API (its REST API documentation): ``Authorization: Bearer PARTNER, User USER``,
records of a company ``page``/``count`` until a short page, ``changed_after`` in PHP's ISO 8601 form
(``2026-03-01T07:00:00+0000``, as the client library andrey-tech/yclients-api-php sends a DateTime;
anything else is refused with ``meta.message``), 429 over the limit."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.fakes import Contract

PARTNER, USER, COMPANY = "partner-token", "user-token", "4564"
MSK = dt.timezone(dt.timedelta(hours=3))


@dataclass
class FakeYclients:
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    rate_limit_every: int = 0
    requests: int = 0
    user: str = USER
    """The user token it takes (another: the user's token was revoked)."""

    def book(self, record_id: int, created: dt.datetime, visit: dt.datetime, attendance: int, cost: float) -> None:
        self.records[record_id] = {
            "id": record_id,
            "company_id": int(COMPANY),
            "staff_id": 10 + record_id % 3,
            "staff": {"id": 10 + record_id % 3, "name": ("Алина", "Марина", "Олеся")[record_id % 3]},
            "services": [{"id": 1, "title": "Стрижка", "cost": cost}],
            "client": {"id": record_id, "name": f"Клиент {record_id}", "phone": "+79990000000"},
            "datetime": visit.isoformat(),
            "create_date": created.isoformat(),
            "attendance": attendance,
            "visit_attendance": attendance,
            "deleted": False,
            "last_change_date": created.isoformat(),
        }

    def change(self, record_id: int, attendance: int, at: dt.datetime) -> None:
        self.records[record_id]["attendance"] = attendance
        self.records[record_id]["last_change_date"] = at.isoformat()

    def install(self, server: HTTPServer) -> None:
        server.expect_request(f"/api/v1/records/{COMPANY}", method="GET").respond_with_handler(self._records)

    def _records(self, request: Request) -> Response:
        self.requests += 1
        if request.headers.get("Authorization") != f"Bearer {PARTNER}, User {self.user}":
            return _json({"success": False, "data": None, "meta": {"message": "Не авторизован"}}, 401)
        if self.rate_limit_every and self.requests % self.rate_limit_every == 0:
            return _json({"success": False, "data": None, "meta": {"message": "Too many requests"}}, 429)
        page, count = int(request.args.get("page", 1)), int(request.args.get("count", 50))
        found = sorted(self.records.values(), key=lambda r: r["id"])
        if since := request.args.get("changed_after"):
            if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", since):  # PHP's DateTime::ISO8601
                return _json(
                    {"success": False, "data": None, "meta": {"message": "Неверный формат changed_after"}}, 422
                )
            moment = dt.datetime.strptime(since, "%Y-%m-%dT%H:%M:%S%z")
            found = [r for r in found if dt.datetime.fromisoformat(r["last_change_date"]) >= moment]
        chunk = found[(page - 1) * count : page * count]
        return _json({"success": True, "data": chunk, "meta": {"page": page, "total_count": len(found)}})


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")


def salon(records: int, seed: int = 11) -> FakeYclients:
    fake = FakeYclients()
    rng = random.Random(seed)
    for number in range(1, records + 1):
        created = dt.datetime(2026, 3, 1, 10, tzinfo=MSK) + dt.timedelta(minutes=41 * number)
        visit = created + dt.timedelta(days=rng.randrange(1, 9))
        fake.book(number, created, visit, rng.choice((0, 2, 1, 1, 1, -1)), rng.choice((1500.0, 2500.0, 0.0)))
    fake.records[records]["deleted"] = True
    return fake


def contract(server: HTTPServer) -> Contract:
    """Two pages of records (200 a page), the last one deleted (left out); refused: the user token revoked."""
    fake = salon(260)
    fake.install(server)

    def refuse() -> None:
        fake.user = "revoked"

    deals = {str(record_id) for record_id, record in fake.records.items() if not record["deleted"]}
    return Contract(address=server.url_for("").rstrip("/"), secrets={"partner_token": PARTNER, "user_token": USER},
                    pipelines=["YCLIENTS"], deals=deals, refuse=refuse, settings={"company_id": COMPANY})  # fmt: skip
