"""amoCRM (Kommo) API v4 (its developer documentation and the official PHP SDK amocrm/amocrm-api-php).

Leads are read 250 a page in order of their last change; each page's stage history comes from
``/api/v4/events`` (``lead_status_changed``, ten leads a request, 100 events a page). An empty page
is a 204 with no body. The closing stages are 142 (won) and 143 (lost) in every pipeline, so a stage
is keyed by pipeline and status id. An incremental run asks for leads changed since the last run
began (a minute of overlap: the CRM's clock and ours may differ).

Calls are the ``call_in``/``call_out`` notes of leads and of contacts (``/api/v4/leads/notes``,
``/api/v4/contacts/notes``, 250 a page), read by ``updated_at`` after the last run. Their ``params``
hold the client's ``phone``, the ``duration`` and the ``call_status`` the SDK lists (``CallInterface``:
4 a conversation, 2 and 3 reached with a follow-up, 1 a message left, 5 a wrong number, 6 not reached,
7 busy, 8 unknown). A contact's note belongs to that contact's leads (``/api/v4/contacts`` with
``with=leads``). The line a call went out on is not in a note: the spam check cannot see it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import httpx

from voronka.errors import ConnectorAuthFailed
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
    account_url,
    from_unix,
    minor_units,
)
from voronka.ingest.connectors.form import RATE, TOKEN, ConnectForm, Secret, Setting
from voronka.ingest.connectors.http import Endpoint, Http
from voronka.models import DealStatus

WON_STATUS, LOST_STATUS = 142, 143
LEADS_PER_PAGE = 250
EVENTS_PER_PAGE = 100
LEADS_PER_EVENTS_REQUEST = 10
OVERLAP = dt.timedelta(minutes=1)
NOTES_PER_PAGE = 250
CALL_OUTCOMES = {4: "answered", 2: "answered", 3: "answered", 1: "no_answer", 5: "rejected", 6: "no_answer", 7: "busy"}
"""The SDK's ``CallInterface`` statuses; 8 (unknown) is decided by the talk time."""


def stage_key(pipeline_id: Any, status_id: Any) -> str:
    return f"{pipeline_id}:{status_id}"


RENEW_BEFORE = 600
"""Seconds before an access token expires when it is renewed rather than used."""


def _now() -> float:
    """The clock renewals are timed by (tests set their own)."""
    return time.time()


def _pair(tokens: Mapping[str, Any]) -> dict[str, str]:
    """The secrets an OAuth answer gives: the pair, and when the access token expires."""
    expires_in = int(tokens.get("expires_in") or 86_400)
    return {
        "token": str(tokens["access_token"]),
        "refresh_token": str(tokens["refresh_token"]),
        "expires_at": str(int(_now()) + expires_in),
    }


class OAuth:
    """amoCRM's OAuth 2 (its "Authorization" docs): an access token for a day, renewed with a
    refresh token that is good for one use — each renewal brings a new pair, kept in the secrets
    file at once, so the next sync (or a crash right after) still has a valid one.

    A token is renewed shortly before it expires (``RENEW_BEFORE``), not only after a refusal, and
    under a lock held in the database (``ConnectionConfig.renewal_lock``): of two processes that
    both find it expiring, the second finds the first's new pair and uses it instead of spending
    the refresh token the first already spent."""

    def __init__(self, config: ConnectionConfig, http: Http) -> None:
        self.secrets = dict(config.secrets)
        self.save = config.save_secrets
        self.guard = config.renewal_lock
        self.http = http
        self.lock = threading.Lock()

    def header(self) -> str:
        return f"Bearer {self.secrets.get('token', '')}"

    def expiring(self) -> bool:
        expires = self.secrets.get("expires_at")
        return expires is not None and _now() >= int(expires) - RENEW_BEFORE

    def renew_if_expiring(self) -> None:
        if self.expiring():
            self.renew(self.header())

    def renew(self, used: str) -> bool:
        with self.lock, self.guard() if self.guard is not None else nullcontext(self.secrets) as stored:
            if stored.get("token") and f"Bearer {stored['token']}" != used:
                self._adopt(dict(stored))  # another process (or request) renewed it meanwhile
                return True
            if used != self.header():
                return True
            body = {
                "client_id": self.secrets.get("client_id", ""),
                "client_secret": self.secrets.get("client_secret", ""),
                "grant_type": "refresh_token",
                "refresh_token": stored.get("refresh_token") or self.secrets.get("refresh_token", ""),
                "redirect_uri": self.secrets.get("redirect_uri", ""),
            }
            answer = self.http.client.post("/oauth2/access_token", json=body)
            if answer.status_code != 200:
                return False  # the refresh token is spent or revoked: the 401 stands, "connect again"
            renewed = _pair(answer.json())
            if self.save is not None:
                self.save(renewed)  # inside the lock: the next holder reads this pair
            self._adopt(renewed)
            return True

    def _adopt(self, secrets: Mapping[str, str]) -> None:
        self.secrets.update(secrets)
        self.http.client.headers["Authorization"] = self.header()


def exchange_code(base_url: str, secrets: Mapping[str, str]) -> dict[str, str]:
    """The first pair of tokens for an integration's authorization code (valid 20 minutes)."""
    body = {
        "client_id": secrets.get("client_id", ""),
        "client_secret": secrets.get("client_secret", ""),
        "grant_type": "authorization_code",
        "code": secrets.get("code", ""),
        "redirect_uri": secrets.get("redirect_uri", ""),
    }
    answer = httpx.post(base_url.rstrip("/") + "/oauth2/access_token", json=body, timeout=60)
    if answer.status_code != 200:
        detail = (
            answer.json().get("hint") or answer.json().get("detail")
            if "json" in answer.headers.get("content-type", "")
            else answer.reason_phrase
        )
        raise ConnectorAuthFailed(crm="amoCRM", name="", kind="amocrm", detail=str(detail))
    kept = {k: v for k, v in secrets.items() if k != "code"}
    return {**kept, **_pair(answer.json())}


def _problem_text(answer: httpx.Response) -> str:
    """amoCRM's problem+json words for a refused code (its ``hint`` or ``detail``), else the status."""
    try:
        body = answer.json()
    except ValueError:
        return answer.reason_phrase
    found = body.get("hint") or body.get("detail") if isinstance(body, dict) else None
    return str(found or answer.reason_phrase)


class AmoCrmClient:
    def __init__(self, config: ConnectionConfig) -> None:
        self.http = Http(
            Endpoint("amoCRM", config.name, "amocrm", config.base_url),
            headers={"Authorization": f"Bearer {config.secrets.get('token', '')}"},
            requests_per_second=config.requests_per_second,
            retry=config.retry,
        )
        if config.secrets.get("refresh_token"):  # OAuth 2: the token is an access token renewed as it expires
            oauth = OAuth(config, self.http)
            self.http.renew = oauth.renew
            oauth.renew_if_expiring()
        self.warnings: list[Message] = []
        self.people = People("amoCRM", "an administrator's token")
        self._reasons: dict[int, str] | None = None

    def _list(self, path: str, key: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a HAL list: pages until a 204, an empty page or no ``next`` link."""
        page = 1
        while True:
            body = self.http.get(path, params={**(params or {}), "page": page})
            items = (body or {}).get("_embedded", {}).get(key, [])
            yield from items
            if not items or "next" not in (body or {}).get("_links", {}):
                return
            page += 1

    def pipelines(self) -> list[RemotePipeline]:
        found = []
        for pipeline in self._list("/api/v4/leads/pipelines", "pipelines"):
            statuses = sorted(
                pipeline.get("_embedded", {}).get("statuses", []), key=lambda s: (s.get("sort", 0), s["id"])
            )
            stages = tuple(
                RemoteStage(
                    stage_key(pipeline["id"], s["id"]),
                    str(s["name"]),
                    DealStatus.WON if s["id"] == WON_STATUS else DealStatus.LOST if s["id"] == LOST_STATUS else None,
                )
                for s in statuses
            )
            found.append(RemotePipeline(str(pipeline["id"]), str(pipeline["name"]), stages))
        return found

    def _names(self) -> tuple[People, dict[int, str]]:
        # /api/v4/users is for account administrators: another user's token syncs with ids and a warning.
        self.people.load(
            lambda: {u["id"]: str(u.get("name") or u["id"]) for u in self._list("/api/v4/users", "users")},
            self.warnings,
        )
        if self._reasons is None:
            self._reasons = {r["id"]: str(r["name"]) for r in self._list("/api/v4/leads/loss_reasons", "loss_reasons")}
        return self.people, self._reasons

    def pages(self, cursor: Mapping[str, Any]) -> Iterator[Page]:
        page = int(cursor.get("page", 1))
        since = cursor.get("updated_from")
        while True:
            params: dict[str, Any] = {
                "limit": LEADS_PER_PAGE,
                "page": page,
                "with": "loss_reason,contacts",
                # By id, not by updated_at: pages are offsets, and a lead edited during the pass
                # would move to the end of an updated_at order and shift the rest, so one unchanged
                # lead per edit was skipped — and the incremental cursor never brought it back.
                "order[id]": "asc",
            }
            if since is not None:
                params["filter[updated_at][from]"] = since
            body = self.http.get("/api/v4/leads", params=params)
            leads = (body or {}).get("_embedded", {}).get("leads", [])
            if not leads:
                return
            history = self._history([lead["id"] for lead in leads])
            deals = [self._deal(lead, history.get(lead["id"], [])) for lead in leads]
            last = "next" not in (body or {}).get("_links", {})
            yield Page(deals, {"updated_from": since, "page": page + 1})
            if last:
                return
            page += 1

    def next_cursor(self, cursor: Mapping[str, Any], started: dt.datetime) -> dict[str, Any]:
        return {"updated_from": int((started - OVERLAP).replace(tzinfo=dt.UTC).timestamp())}

    def calls(self, cursor: Mapping[str, Any]) -> Iterator[CallPage]:
        since = cursor.get("updated_from")
        newest = int(since or 0)
        for entity in ("leads", "contacts"):
            params: dict[str, Any] = {"filter[note_type][]": ["call_in", "call_out"], "limit": NOTES_PER_PAGE}
            if since is not None:
                params["filter[updated_at][from]"] = since
            page: list[dict[str, Any]] = []
            for note in self._list(f"/api/v4/{entity}/notes", "notes", params):
                newest = max(newest, int(note.get("updated_at") or 0))
                page.append(note)
                if len(page) == NOTES_PER_PAGE:
                    yield CallPage(self._calls(entity, page), {"updated_from": since})
                    page = []
            if page:
                yield CallPage(self._calls(entity, page), {"updated_from": since})
        overlap = int(OVERLAP.total_seconds())
        yield CallPage([], {"updated_from": max(newest - overlap, 0) if newest else since})

    def _calls(self, entity: str, notes: list[dict[str, Any]]) -> list[RemoteCall]:
        people, _ = self._names()
        leads_of: dict[int, tuple[str, ...]] = {}
        if entity == "contacts":
            leads_of = self._leads_of_contacts(sorted({int(n["entity_id"]) for n in notes}))
        found = []
        for note in notes:
            params = note.get("params") or {}
            duration = int(params.get("duration") or 0)
            entity_id = int(note["entity_id"])
            found.append(
                RemoteCall(
                    id=str(note["id"]),
                    at=from_unix(note.get("created_at")) or dt.datetime(1970, 1, 1),
                    direction="in" if note.get("note_type") == "call_in" else "out",
                    outcome=CALL_OUTCOMES.get(int(params.get("call_status") or 8))
                    or ("answered" if duration else "no_answer"),
                    duration=duration,
                    client_phone=str(params["phone"]) if params.get("phone") else None,
                    manager=people.name(note.get("responsible_user_id") or note.get("created_by")),
                    deals=(str(entity_id),) if entity == "leads" else leads_of.get(entity_id, ()),
                    deal=str(entity_id) if entity == "leads" else None,
                )
            )
        return found

    def _leads_of_contacts(self, contact_ids: list[int]) -> dict[int, tuple[str, ...]]:
        found: dict[int, tuple[str, ...]] = {}
        for start in range(0, len(contact_ids), NOTES_PER_PAGE):
            params = {"filter[id][]": contact_ids[start : start + NOTES_PER_PAGE], "with": "leads", "limit": 250}
            for contact in self._list("/api/v4/contacts", "contacts", params):
                leads = (contact.get("_embedded") or {}).get("leads") or []
                found[int(contact["id"])] = tuple(str(lead["id"]) for lead in leads)
        return found

    def deal(self, remote_id: str) -> RemoteDeal | None:
        if not remote_id.isdigit():
            return None
        lead = self.http.get(f"/api/v4/leads/{remote_id}", params={"with": "loss_reason,contacts"})
        if not isinstance(lead, dict) or "id" not in lead:
            return None
        return self._deal(lead, self._history([int(remote_id)]).get(int(remote_id), []))

    def _history(self, lead_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """The ``lead_status_changed`` events of these leads, oldest first (ten leads a request,
        a few requests in flight)."""
        chunks = [
            lead_ids[start : start + LEADS_PER_EVENTS_REQUEST]
            for start in range(0, len(lead_ids), LEADS_PER_EVENTS_REQUEST)
        ]
        events: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for found in self.http.map(self._events_of, chunks):
            for event in found:
                events[int(event["entity_id"])].append(event)
        for found in events.values():
            found.sort(key=lambda e: (e.get("created_at", 0), str(e.get("id"))))
        return events

    def _events_of(self, lead_ids: list[int]) -> list[dict[str, Any]]:
        params = {
            "filter[type]": "lead_status_changed",
            "filter[entity]": "lead",
            "filter[entity_id][]": lead_ids,
            "limit": EVENTS_PER_PAGE,
        }
        return list(self._list("/api/v4/events", "events", params))

    def _deal(self, lead: dict[str, Any], events: list[dict[str, Any]]) -> RemoteDeal:
        users, reasons = self._names()
        created = from_unix(lead.get("created_at")) or dt.datetime(1970, 1, 1)
        changes: list[tuple[dt.datetime, str]] = []
        for event in events:
            before, after = _status(event.get("value_before")), _status(event.get("value_after"))
            at = from_unix(event.get("created_at"))
            if at is None or after is None:
                continue
            if not changes and before is not None:
                changes.append((created, stage_key(*before)))  # the stage it was created in
            changes.append((at, stage_key(*after)))
        if not changes:
            changes.append((created, stage_key(lead.get("pipeline_id"), lead.get("status_id"))))
        embedded = lead.get("_embedded") or {}
        reason = next((r.get("name") for r in embedded.get("loss_reason") or [] if r.get("name")), None)
        reason = reason or reasons.get(lead.get("loss_reason_id") or 0)
        return RemoteDeal(
            id=str(lead["id"]),
            pipeline_id=str(lead.get("pipeline_id")),
            stage_id=stage_key(lead.get("pipeline_id"), lead.get("status_id")),
            created_at=created,
            closed_at=from_unix(lead.get("closed_at")),
            amount=minor_units(lead.get("price")),
            manager=users.name(lead.get("responsible_user_id")),
            source=_custom_value(lead, ("UTM_SOURCE",), ("Источник", "Source", "utm_source")),
            title=lead.get("name"),
            loss_reason=reason,
            changes=tuple(changes),
            history_known=True,
            custom={"tags": ", ".join(t.get("name", "") for t in embedded.get("tags") or [])}
            if embedded.get("tags")
            else {},
        )


def _by_sort(status: dict[str, Any]) -> tuple[int, int]:
    return int(status.get("sort", 0)), int(status["id"])


def _status(value: Any) -> tuple[Any, Any] | None:
    """``[{"lead_status": {"id": …, "pipeline_id": …}}]`` → (pipeline id, status id)."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        status = value[0].get("lead_status")
        if isinstance(status, dict) and "id" in status:
            return status.get("pipeline_id"), status["id"]
    return None


def _custom_value(lead: dict[str, Any], codes: tuple[str, ...], names: tuple[str, ...]) -> str | None:
    """A custom field's first value by code or name (UTM fields' codes are UNCONFIRMED)."""
    for field in lead.get("custom_fields_values") or []:
        if field.get("field_code") in codes or field.get("field_name") in names:
            values = field.get("values") or []
            if values and values[0].get("value") not in (None, ""):
                return str(values[0]["value"])
    return None


def oauth_tokens(
    base_url: str, secrets: dict[str, str], settings: dict[str, Any]
) -> tuple[dict[str, str], dict[str, Any]]:
    """With OAuth 2 (a client id given), the code exchanged for the first pair of tokens now: the
    id, the redirect URI, the secret key and the code are secrets, not settings."""
    if "client_id" not in settings:
        return secrets, settings
    kept = {k: v for k, v in settings.items() if k not in ("client_id", "redirect_uri")}
    oauth = {
        "client_id": str(settings["client_id"]),
        "client_secret": secrets.get("client_secret", ""),
        "code": secrets.get("code", ""),
        "redirect_uri": str(settings.get("redirect_uri") or ""),
    }
    return exchange_code(base_url, oauth), kept


class AmoCrmConnector:
    name = "amocrm"
    crm = "amoCRM"
    secret_names: tuple[str, ...] = ("token",)
    setting_names: tuple[str, ...] = ()
    form = ConnectForm(
        help="connect.form.amocrm.about",
        secrets=(
            replace(TOKEN, unless="client_id"),
            Secret("client_secret", "--client-secret-env", "connect.form.amocrm.client_secret",
                   prompt="connect.ask_secret", only_with="client_id"),
            Secret("code", "--code-env", "connect.form.amocrm.code", prompt="connect.ask_code", only_with="client_id"),
        ),
        settings=(
            Setting("address", "ADDRESS", "connect.form.amocrm.address"),
            Setting("client_id", "--client-id", "connect.form.amocrm.client_id"),
            Setting("redirect_uri", "--redirect-uri", "connect.form.amocrm.redirect_uri"),
            RATE,
        ),
        finish=oauth_tokens,
    )  # fmt: skip
    requests_per_second = 6.0
    """The documented limit is 7 a second."""
    reads_calls = True

    def base_url(self, address: str) -> str:
        """``mycompany``, ``mycompany.amocrm.ru`` or a full URL (Kommo's ``*.kommo.com`` too)."""
        return account_url(address, "amocrm.ru")

    def client(self, config: ConnectionConfig) -> AmoCrmClient:
        return AmoCrmClient(config)
