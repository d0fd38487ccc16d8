"""HTTP for connectors: one place that paces requests, backs off and retries, and turns what a CRM
answers into data or a named error."""

from __future__ import annotations

import functools
import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from voronka.errors import ConnectorAuthFailed, ConnectorFailed, PermissionRefused
from voronka.i18n import Message

T = TypeVar("T")
R = TypeVar("R")
IN_FLIGHT = 4
"""Requests a client may have in flight at once (its pacing still holds)."""
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Rate limits (amoCRM 429, Bitrix24 503 QUERY_LIMIT_EXCEEDED, RetailCRM 503) and passing failures."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    first_wait: float = 0.5
    max_wait: float = 30.0
    max_blocked: float = 900.0
    """The longest wait for a method the CRM blocked until a stated time (Bitrix24's 429
    OPERATION_TIME_LIMIT lasts up to ten minutes); longer, and the sync stops saying until when."""
    on_wait: Callable[[float], None] | None = None
    """Told how many seconds such a wait will take, before it starts (a command shows it)."""

    def wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before retry ``attempt`` (from 1): the server's Retry-After if it gives one."""
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self.max_wait)
            except ValueError:
                pass
        return float(min(self.first_wait * 2 ** (attempt - 1), self.max_wait))


@dataclass(frozen=True)
class Endpoint:
    """Who the client talks to, for messages: the CRM's name, the connection's name and kind."""

    crm: str
    connection: str
    kind: str
    base_url: str


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS settings httpx would make (its trusted authorities, ``SSL_CERT_FILE`` honoured), made
    once a process: reading the authorities takes tens of milliseconds, and a worker makes a client
    for every connection on every sync."""
    return httpx.create_ssl_context()


class Http:
    """A paced, retrying JSON client for one CRM connection."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        address: str | None = None,
        headers: Mapping[str, str] | None = None,
        requests_per_second: float | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60.0,
    ) -> None:
        self.endpoint = endpoint
        # ``address`` may hold a secret (Bitrix24's webhook URL): messages only ever show the endpoint's.
        self.client = httpx.Client(
            base_url=address or endpoint.base_url, headers=dict(headers or {}), timeout=timeout, verify=_tls()
        )
        self.interval = 1 / requests_per_second if requests_per_second else 0.0
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.renew: Callable[[str], bool] | None = None
        """Called once on a 401 (an expired OAuth access token) with the Authorization header the
        refused request carried: True when a new token is in place, and the request is sent again."""
        self._last = 0.0
        self._lock = threading.Lock()
        self.requests = 0

    def close(self) -> None:
        self.client.close()

    def get(self, path: str, params: Any = None) -> Any | None:
        """The decoded JSON body; ``None`` for an empty answer (amoCRM's 204 on an empty page)."""
        return self._send("GET", path, params=params)

    def post(self, path: str, body: Any = None, params: Any = None) -> Any | None:
        return self._send("POST", path, params=params, json=body)

    def _send(self, method: str, path: str, **options: Any) -> Any | None:
        return self._decoded(self._response(method, path, **options), path)

    def raw(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The answer itself when it is a success (a TSV report, a 201 "being built"); a refusal
        raises the same named errors as a JSON call."""
        response = self._response(method, path, **options)
        if response.status_code >= 300:
            self._decoded(response, path)
        return response

    def _response(self, method: str, path: str, _renewed: bool = False, **options: Any) -> httpx.Response:
        for attempt in range(1, self.retry.attempts + 1):
            self._pace()
            try:
                response = self.client.request(method, path, **options)
            except httpx.TransportError as exc:
                if attempt == self.retry.attempts:
                    raise self._failed("connector.unreachable", detail=type(exc).__name__, attempts=attempt) from None
                self.sleep(self.retry.wait(attempt, None))
                continue
            with self._lock:
                self.requests += 1
            used = response.request.headers.get("Authorization", "")
            if response.status_code == 401 and self.renew is not None and not _renewed and self.renew(used):
                return self._response(method, path, _renewed=True, **options)
            blocked = _blocked_until(response)
            if blocked is not None:
                self._wait_out(blocked, path)
                continue
            if response.status_code in RETRIED_STATUSES and attempt < self.retry.attempts:
                self.sleep(self.retry.wait(attempt, response.headers.get("Retry-After")))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _wait_out(self, until: float, path: str) -> None:
        """Wait until the CRM lifts its block on the method, if that is within the policy's limit."""
        seconds = max(until - time.time(), 0.0) + 1.0
        if seconds > self.retry.max_blocked:
            stamp = time.strftime("%H:%M:%S", time.localtime(until))
            raise self._failed("connector.blocked", path=path, until=stamp, seconds=round(seconds))
        if self.retry.on_wait is not None:
            self.retry.on_wait(seconds)
        self.sleep(seconds)

    def _pace(self) -> None:
        """Keep ``interval`` between request starts, across the threads that share this client."""
        if not self.interval:
            return
        with self._lock:
            start = max(time.monotonic(), self._last + self.interval)
            self._last = start
        wait = start - time.monotonic()
        if wait > 0:
            self.sleep(wait)

    def map(self, fetch: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fetch`` over ``items`` with a few requests in flight at once (still paced): the CRM's
        answer time, not our work, is what a sync mostly waits for."""
        if len(items) < 2:
            return [fetch(item) for item in items]
        with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
            return list(pool.map(fetch, items))

    def _decoded(self, response: httpx.Response, path: str) -> Any | None:
        status = response.status_code
        if status == 204 or (status < 300 and not response.content.strip()):
            return None
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
            if status < 300:
                raise self._failed("connector.malformed", path=path) from None
        if (status == 403 or (status == 401 and _says_scope(body))) and not _says_token(body):
            endpoint, detail = self.endpoint, _detail(body) or str(status)
            reason = Message("connector.permission_refused", {"path": path, "detail": detail})
            raise PermissionRefused(crm=endpoint.crm, url=endpoint.base_url, reason=reason)
        if status == 401 or (status == 403 and _says_token(body)):
            endpoint = self.endpoint
            raise ConnectorAuthFailed(
                crm=endpoint.crm, name=endpoint.connection, kind=endpoint.kind, detail=_detail(body) or str(status)
            )
        if status >= 300:
            key = "connector.rate_limited" if status in (429, 503) else "connector.http_status"
            raise self._failed(key, status=status, path=path, detail=_detail(body) or response.reason_phrase)
        return body

    def _failed(self, key: str, **params: Any) -> ConnectorFailed:
        endpoint = self.endpoint
        return ConnectorFailed(crm=endpoint.crm, url=endpoint.base_url, reason=Message(key, params))


def _blocked_until(response: httpx.Response) -> float | None:
    """When Bitrix24 lifts a 429 ``OPERATION_TIME_LIMIT`` (the method's summed run time passed its
    limit; ``time.operating_reset_at`` is the Unix time it ends — the REST API's limits page)."""
    if response.status_code != 429:
        return None
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("error") != "OPERATION_TIME_LIMIT":
        return None
    reset = (body.get("time") or {}).get("operating_reset_at") if isinstance(body.get("time"), dict) else None
    try:
        return float(reset) if reset is not None else time.time() + 600.0  # the documented worst case
    except (TypeError, ValueError):
        return time.time() + 600.0


def _detail(body: Any) -> str | None:
    """The error text of amoCRM (problem+json), Bitrix24, RetailCRM or YCLIENTS (``meta.message``) answers."""
    if not isinstance(body, dict):
        return None
    meta = body.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("message"), str) and meta["message"].strip():
        return str(meta["message"]).strip()
    for key in ("error_description", "errorMsg", "detail", "title", "error"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    error = body.get("error")
    if isinstance(error, dict):  # Yandex Direct: {"error": {"error_code", "error_string", "error_detail"}}
        parts = [str(error.get(k) or "").strip() for k in ("error_string", "error_detail")]
        return ": ".join(p for p in parts if p) or None
    return None


def _says_scope(body: Any) -> bool:
    """Bitrix24's 401 for a method outside the webhook's scopes (not a bad token)."""
    return isinstance(body, dict) and str(body.get("error", "")).lower() == "insufficient_scope"


def _says_token(body: Any) -> bool:
    return isinstance(body, dict) and str(body.get("error", "")).lower() in {"expired_token", "invalid_token"}
