"""What every answer gets, whatever the route: security headers, a Secure session cookie over
HTTPS, and a bound on the request body. Plain ASGI, so they cost nothing per route."""

from __future__ import annotations

import json
from typing import Any, Literal

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STRICT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""No inline script anywhere (the pages' scripts are files); styles may be inline, as the charts
set them. Nothing may frame a page: the kanban wins or loses a deal by a drag."""
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""The API documentation page starts Swagger UI with an inline script of FastAPI's."""
HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, docs_prefix: str = "/api/v1/docs") -> None:
        self.app, self.docs_prefix = app, docs_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_POLICY if scope["path"].startswith(self.docs_prefix) else STRICT_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"content-security-policy"]
                message["headers"] = [*headers, (b"content-security-policy", policy.encode()), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SessionsByScheme:
    """Signed session cookies, ``Secure`` when the request came over HTTPS — directly, or through
    a proxy the operator trusts (``voronka serve --forwarded-allow-ips`` makes the scheme that of
    X-Forwarded-Proto)."""

    def __init__(
        self, app: ASGIApp, secret_key: str, session_cookie: str, max_age: int, same_site: Literal["lax", "strict"]
    ) -> None:
        options: dict[str, Any] = {"secret_key": secret_key, "session_cookie": session_cookie, "max_age": max_age}
        self.plain = SessionMiddleware(app, https_only=False, same_site=same_site, **options)
        self.secure = SessionMiddleware(app, https_only=True, same_site=same_site, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self.secure if scope.get("scheme") in ("https", "wss") else self.plain
        await chosen(scope, receive, send)


class BodyLimit:
    """A request body over ``max_bytes`` is refused with 413 problem JSON before a route reads it,
    whether it says its length or streams it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    raise BodyTooLarge
            return message

        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.max_bytes)
        except Exception:
            if not refused:
                raise
            if not started:
                await _too_large(send, self.max_bytes)


class BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {"title": "Payload Too Large", "status": 413, "detail": f"the request body is over {limit} bytes"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
