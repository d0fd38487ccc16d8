"""A fake amoCRM API v4 on a local HTTP server, as documented (its developer documentation and the official PHP SDK
amocrm/amocrm-api-php):

HAL lists with ``_links.next``, a 204 with no body for an empty page, ``limit`` ≤ 250 (events ≤ 100, more is a 400),
leads filtered by ``filter[updated_at][from]`` and ordered by ``order[id]`` or ``order[updated_at]``
(the page offsets apply to the order as it is when each page is asked for, so a lead edited mid-way
moves in an ``updated_at`` listing), events filtered by type, entity and up
to ten entity ids, statuses 142/143 in every pipeline, Bearer tokens (401 problem+json when expired), 429 with a
non-JSON body when rate-limited, and 403 problem+json on ``/api/v4/users`` for a token of a user who is
not an account administrator (the users list is for administrators). OAuth 2 at ``/oauth2/access_token``
(its "Authorization" guide): an authorization code or a refresh token, with the integration's id,
secret and redirect URI, gives a new access token and a new refresh token; a refresh token is good
for one use, and a used or unknown one is a 400 problem+json."""

from __future__ import annotations

import json
import random
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.fakes import Contract

TOKEN = "amo-secret-token"
WON, LOST = 142, 143
BASE_TIME = 1_767_225_600  # 2026-01-01 00:00 UTC


@dataclass
class Lead:
    id: int
    pipeline_id: int
    status_id: int
    created_at: int
    updated_at: int
    price: int
    responsible_user_id: int
    loss_reason_id: int | None = None
    closed_at: int | None = None


@dataclass
class FakeAmoCrm:
    """The CRM's state, and switches for its bad days."""

    pipelines: list[dict[str, Any]]
    users: dict[int, str]
    loss_reasons: dict[int, str]
    leads: dict[int, Lead] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    token: str = TOKEN
    admin: bool = True
    """Whether the token's user is an account administrator."""
    client: tuple[str, str, str] = ("integration-id", "integration-secret", "https://example.ru/amo")
    """The integration's id, secret key and redirect URI."""
    codes: set[str] = field(default_factory=lambda: {"auth-code"})
    refresh_tokens: set[str] = field(default_factory=set)
    renewals: int = 0
    rate_limit_every: int = 0
    """Answer every n-th request with a 429 (0: never)."""
    throttled: set[str] = field(default_factory=set)
    malformed_every: int = 0
    drop_every: int = 0
    """Cut the connection of every n-th request without answering (0: never)."""
    requests: int = 0
    clock: int = BASE_TIME + 400 * 86400
    on_leads_page: Callable[[int], None] | None = None
    """Called with the page number each time a page of leads is served: edits made during a sync."""
    notes: list[dict[str, Any]] = field(default_factory=list)
    """Call notes (``call_in``/``call_out``) on leads and contacts, as ``/api/v4/{entity}/notes`` lists them."""
    contact_leads: dict[int, list[int]] = field(default_factory=dict)
    _events_by_lead: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    _listing: tuple[Any, list[Lead]] = (None, [])

    # --- changing the CRM's data -------------------------------------------------------------
    def add_lead(self, lead: Lead, history: list[tuple[int, int]]) -> None:
        """``history``: (time, status id) moves after creation, in this lead's pipeline."""
        self.leads[lead.id] = lead
        previous = lead.status_id
        for at, status in history:
            self._event(lead, previous, status, at)
            previous = status
        lead.status_id = previous

    def move(self, lead_id: int, status: int, at: int) -> None:
        lead = self.leads[lead_id]
        self._event(lead, lead.status_id, status, at)
        lead.status_id = status
        lead.updated_at = at
        if status in (WON, LOST):
            lead.closed_at = at

    def _event(self, lead: Lead, before: int, after: int, at: int) -> None:
        event = {
            "id": f"01ev{len(self.events):020d}",
            "type": "lead_status_changed",
            "entity_id": lead.id,
            "entity_type": "lead",
            "created_by": lead.responsible_user_id,
            "created_at": at,
            "value_before": [{"lead_status": {"id": before, "pipeline_id": lead.pipeline_id}}],
            "value_after": [{"lead_status": {"id": after, "pipeline_id": lead.pipeline_id}}],
            "account_id": 1,
        }
        self.events.append(event)
        self._events_by_lead.setdefault(lead.id, []).append(event)
        lead.updated_at = max(lead.updated_at, at)
        if after in (WON, LOST):
            lead.closed_at = at

    def call_note(
        self,
        entity: str,
        entity_id: int,
        at: int,
        *,
        outgoing: bool = True,
        status: int = 4,
        duration: int = 60,
        phone: str = "+79990000000",
        user: int | None = None,
    ) -> None:
        """A call note as the SDK's CallNote model holds it (``params``: uniq, duration, source,
        link, phone, call_result, call_status)."""
        self.notes.append(
            {"id": len(self.notes) + 1, "entity_id": entity_id, "entity": entity, "created_by": user or 0,
             "updated_by": user or 0, "created_at": at, "updated_at": at, "responsible_user_id": user or 0,
             "group_id": 0, "note_type": "call_out" if outgoing else "call_in", "account_id": 1,
             "params": {"uniq": f"uniq-{len(self.notes) + 1}", "duration": duration, "source": "telephony",
                        "link": "https://example.test/record.mp3", "phone": phone, "call_result": "",
                        "call_status": status}}
        )  # fmt: skip

    # --- the HTTP side -------------------------------------------------------------------------
    def install(self, server: HTTPServer) -> None:
        routes: dict[str, Callable[[Request], Response]] = {
            "/api/v4/leads/pipelines": lambda r: self._hal(r, "pipelines", self.pipelines, 250),
            "/api/v4/users": self._users,
            "/api/v4/leads/loss_reasons": lambda r: self._hal(
                r, "loss_reasons", [{"id": i, "name": n, "sort": i} for i, n in self.loss_reasons.items()], 250
            ),
            "/api/v4/leads": self._leads,
            "/api/v4/events": self._events,
            "/api/v4/leads/notes": lambda r: self._notes(r, "leads"),
            "/api/v4/contacts/notes": lambda r: self._notes(r, "contacts"),
            "/api/v4/contacts": self._contacts,
        }
        for path, handler in routes.items():
            server.expect_request(path).respond_with_handler(self._guarded(handler))
        server.expect_request("/oauth2/access_token", method="POST").respond_with_handler(self._oauth)
        server.expect_request(re.compile(r"/api/v4/leads/\d+")).respond_with_handler(self._guarded(self._one_lead))

    def expire(self) -> None:
        """The access token's day is over: it answers 401 from now on."""
        self.token = f"expired-{self.token}"

    def _oauth(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        if (body.get("client_id"), body.get("client_secret"), body.get("redirect_uri")) != self.client:
            return _problem(400, "Bad Request", "Client authentication failed")
        grant = body.get("grant_type")
        spent = self.codes if grant == "authorization_code" else self.refresh_tokens
        given = body.get("code") if grant == "authorization_code" else body.get("refresh_token")
        if grant not in ("authorization_code", "refresh_token") or given not in spent:
            return _problem(
                400, "Bad Request", "Token has been revoked" if grant == "refresh_token" else "Code expired"
            )
        spent.discard(given)  # one use each
        self.renewals += 1
        self.token = f"access-{self.renewals}"
        refresh = f"refresh-{self.renewals}"
        self.refresh_tokens.add(refresh)
        answer = {"token_type": "Bearer", "expires_in": 86400, "access_token": self.token, "refresh_token": refresh}
        return Response(json.dumps(answer), status=200, content_type="application/json")

    def _users(self, request: Request) -> Response:
        if not self.admin:
            return _problem(403, "Forbidden", "Access denied")
        return self._hal(request, "users", [{"id": i, "name": n} for i, n in self.users.items()], 250)

    def _guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def respond(request: Request) -> Response:
            self.requests += 1
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return _problem(401, "Unauthorized", "Token has expired")
            if self.rate_limit_every and self.requests % self.rate_limit_every == 0:
                # A request answered 429 gets through when asked again after waiting, as on the real
                # API; counting requests alone would let parallel requests throttle one retry after
                # another on a loaded machine.
                key = request.full_path
                if key not in self.throttled:
                    self.throttled.add(key)
                    return Response("Too many requests", status=429, content_type="text/html")
            if self.drop_every and self.requests % self.drop_every == 0:
                request.environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
                return Response(status=500)
            if self.malformed_every and self.requests % self.malformed_every == 0:
                return Response('{"_embedded": {"leads": [', status=200, content_type="application/hal+json")
            return handler(request)

        return respond

    def _hal(
        self,
        request: Request,
        key: str,
        items: list[Any],
        max_limit: int,
        render: Callable[[Any], Any] = lambda item: item,
    ) -> Response:
        limit = int(request.args.get("limit", 50))
        page = int(request.args.get("page", 1))
        if limit > max_limit:
            return _problem(400, "Bad Request", f"limit must not exceed {max_limit}")
        chunk = [render(item) for item in items[(page - 1) * limit : page * limit]]
        if not chunk:
            return Response(status=204)
        links: dict[str, Any] = {"self": {"href": f"{request.base_url}?page={page}"}}
        if page * limit < len(items):
            links["next"] = {"href": f"{request.base_url}?page={page + 1}"}
        body = {"_page": page, "_links": links, "_embedded": {key: chunk}}
        return Response(json.dumps(body, ensure_ascii=False), content_type="application/hal+json")

    def _leads(self, request: Request) -> Response:
        since = request.args.get("filter[updated_at][from]")
        by_id = "order[id]" in request.args
        key = (since, by_id, len(self.events), len(self.leads))  # the listing changes only when the data do
        if self._listing[0] != key:
            leads = [lead for lead in self.leads.values() if since is None or lead.updated_at >= int(since)]
            leads.sort(key=(lambda lead: lead.id) if by_id else (lambda lead: (lead.updated_at, lead.id)))
            self._listing = (key, leads)
        answer = self._hal(request, "leads", self._listing[1], 250, self._lead_json)
        if self.on_leads_page is not None:
            self.on_leads_page(int(request.args.get("page", 1)))
        return answer

    def _lead_json(self, lead: Lead) -> dict[str, Any]:
        reason = self.loss_reasons.get(lead.loss_reason_id or 0)
        return {
            "id": lead.id,
            "name": f"Сделка {lead.id}",
            "price": lead.price,
            "responsible_user_id": lead.responsible_user_id,
            "group_id": 0,
            "status_id": lead.status_id,
            "pipeline_id": lead.pipeline_id,
            "loss_reason_id": lead.loss_reason_id if lead.status_id == LOST else None,
            "created_by": lead.responsible_user_id,
            "updated_by": lead.responsible_user_id,
            "created_at": lead.created_at,
            "updated_at": lead.updated_at,
            "closed_at": lead.closed_at if lead.status_id in (WON, LOST) else None,
            "closest_task_at": None,
            "is_deleted": False,
            "custom_fields_values": [_source_field(("Сайт", "Авито", "Звонок")[lead.id % 3])],
            "score": None,
            "account_id": 1,
            "_links": {"self": {"href": f"/api/v4/leads/{lead.id}"}},
            "_embedded": {
                "tags": [],
                "companies": [],
                **({"loss_reason": [{"id": lead.loss_reason_id, "name": reason}]} if reason else {}),
            },
        }

    def _one_lead(self, request: Request) -> Response:
        lead = self.leads.get(int(request.path.rsplit("/", 1)[-1]))
        if lead is None:
            return Response(status=204)
        return Response(json.dumps(self._lead_json(lead), ensure_ascii=False), content_type="application/hal+json")

    def _events(self, request: Request) -> Response:
        if request.args.get("filter[type]") not in (None, "lead_status_changed"):
            return Response(status=204)
        ids = [int(i) for i in request.args.getlist("filter[entity_id][]")]
        if len(ids) > 10:
            return _problem(400, "Bad Request", "filter[entity_id] takes up to 10 ids")
        if ids and request.args.get("filter[entity]") != "lead":
            return _problem(400, "Bad Request", "filter[entity_id] needs exactly one filter[entity]")
        found = [e for i in ids for e in self._events_by_lead.get(i, [])] if ids else self.events
        return self._hal(request, "events", found, 100)

    def _notes(self, request: Request, entity: str) -> Response:
        kinds = set(request.args.getlist("filter[note_type][]")) or {"call_in", "call_out"}
        since = int(request.args.get("filter[updated_at][from]") or 0)
        found = [
            {k: v for k, v in n.items() if k != "entity"}
            for n in sorted(self.notes, key=lambda n: n["id"])
            if n["entity"] == entity and n["note_type"] in kinds and n["updated_at"] >= since
        ]
        return self._hal(request, "notes", found, 250)

    def _contacts(self, request: Request) -> Response:
        ids = [int(i) for i in request.args.getlist("filter[id][]")] or sorted(self.contact_leads)
        with_leads = "leads" in (request.args.get("with") or "").split(",")
        contacts = [
            {"id": i, "name": f"Контакт {i}", "_embedded": {"leads": [{"id": lead} for lead in self.contact_leads[i]]}
             if with_leads else {}}
            for i in ids if i in self.contact_leads
        ]  # fmt: skip
        return self._hal(request, "contacts", contacts, 250)


def _source_field(value: str) -> dict[str, Any]:
    return {
        "field_id": 1,
        "field_name": "Источник",
        "field_code": None,
        "field_type": "text",
        "values": [{"value": value}],
    }


def _problem(status: int, title: str, detail: str) -> Response:
    body = {"title": title, "type": f"https://httpstatus.es/{status}", "status": status, "detail": detail}
    return Response(json.dumps(body), status=status, content_type="application/problem+json")


PIPELINE_ID = 3177727
STATUSES = [(32392156, "Неразобранное", 10), (32392159, "Первичный контакт", 20),
            (32392162, "Переговоры", 30), (32392165, "Принимают решение", 40)]  # fmt: skip


def world(leads: int, seed: int = 7, changes_per_lead: float = 3.0) -> FakeAmoCrm:
    """A CRM with one pipeline and ``leads`` leads whose histories walk it (some back, some skipping)."""
    statuses = [
        {"id": i, "name": n, "sort": s, "is_editable": True, "pipeline_id": PIPELINE_ID, "color": "#99ccff",
         "type": 1 if s == 10 else 0, "account_id": 1}
        for i, n, s in STATUSES
    ] + [
        {"id": WON, "name": "Успешно реализовано", "sort": 10000, "is_editable": False, "pipeline_id": PIPELINE_ID,
         "type": 0, "account_id": 1},
        {"id": LOST, "name": "Закрыто и не реализовано", "sort": 11000, "is_editable": False,
         "pipeline_id": PIPELINE_ID, "type": 0, "account_id": 1},
    ]  # fmt: skip
    random.Random(seed).shuffle(statuses)  # the API does not promise an order: sort decides
    crm = FakeAmoCrm(
        pipelines=[{"id": PIPELINE_ID, "name": "Воронка", "sort": 1, "is_main": True, "is_unsorted_on": True,
                    "is_archive": False, "account_id": 1, "_embedded": {"statuses": statuses}}],
        users={504141: "Анна Петрова", 504142: "Олег Кузнецов", 504143: "Ирина Смирнова"},
        loss_reasons={4203748: "Пропала потребность", 4203749: "Дорого", 4203750: "Не дозвонились"},
    )  # fmt: skip
    rng = random.Random(seed)
    open_ids = [s[0] for s in STATUSES]
    for number in range(leads):
        created = BASE_TIME + number * 60 + rng.randrange(60)
        lead = Lead(
            id=20_000_000 + number,
            pipeline_id=PIPELINE_ID,
            status_id=open_ids[0] if rng.random() < 0.7 else open_ids[1],
            created_at=created,
            updated_at=created,
            price=rng.choice((15_000, 40_000, 120_000)),
            responsible_user_id=rng.choice(list(crm.users)),
        )
        history: list[tuple[int, int]] = []
        at, position = created, open_ids.index(lead.status_id)
        for _ in range(max(0, int(rng.expovariate(1 / changes_per_lead)))):
            at += rng.randrange(600, 86400 * 3)
            roll = rng.random()
            if roll < 0.12:
                history.append((at, LOST))
                lead.loss_reason_id = rng.choice(list(crm.loss_reasons))
                break
            if roll < 0.2 and position == len(open_ids) - 1:
                history.append((at, WON))
                break
            position = max(0, position - 1) if roll < 0.28 else min(len(open_ids) - 1, position + rng.choice((1, 1, 2)))
            history.append((at, open_ids[position]))
        crm.add_lead(lead, history)
    return crm


def contract(server: HTTPServer) -> Contract:
    """Two pages of leads (250 a page); refused: the token expired."""
    crm = world(260)
    crm.install(server)
    return Contract(
        address=server.url_for("").rstrip("/"),
        secrets={"token": TOKEN},
        pipelines=[p["name"] for p in crm.pipelines],
        deals={str(lead_id) for lead_id in crm.leads},
        refuse=crm.expire,
    )
