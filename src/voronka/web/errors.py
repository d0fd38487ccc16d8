"""One place turns errors into answers: problem JSON for the API and webhooks, a page for people."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voronka.crm.auth import Forbidden
from voronka.errors import DealClosed, DealExists, NotFound, VoronkaError
from voronka.web.render import render
from voronka.web.security import LoginRequired, lang_of

RETRY_SECONDS = 30
log = logging.getLogger("voronka.web")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VoronkaError, _library_error)  # type: ignore[arg-type]
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(UnicodeError, _unstorable)
    app.add_exception_handler(RecursionError, _too_deep)


async def _database_down(request: Request, _error: Exception) -> Response:
    """The database does not answer (or is busy): 503 with Retry-After; the next request that finds
    it back is served as usual (the pool reconnects)."""
    headers = {"Retry-After": str(RETRY_SECONDS)}
    detail = f"the database does not answer right now; try again in {RETRY_SECONDS} seconds"
    return problem(request, 503, "Service Unavailable", detail, headers)


async def _unstorable(request: Request, _error: Exception) -> Response:
    """A value no database can keep (a NUL character, a lone surrogate, a number out of range)."""
    return problem(request, 422, "Unprocessable Content", "a value cannot be stored: remove control characters "
                   "and broken characters, and keep numbers within range")  # fmt: skip


async def _too_deep(request: Request, _error: Exception) -> Response:
    return problem(request, 400, "Bad Request", "the JSON is nested too deeply")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/webhooks/")) or "json" in request.headers.get("accept", "")


async def _library_error(request: Request, error: VoronkaError) -> Response:
    """Every library error in the asker's language: 404 for what is not there, 403 for what the role
    forbids, 409 for a duplicate or a deal another write has just closed, 422 for what cannot be done."""
    lang = lang_of(request) if "session" in request.scope else "en"
    status = (
        404 if isinstance(error, NotFound)
        else 403 if isinstance(error, Forbidden)
        else 409 if isinstance(error, DealExists | DealClosed)
        else 422
    )  # fmt: skip
    return problem(request, status, type(error).__name__, error.message(lang))


def _page_above(request: Request) -> str:
    """The nearest address above ``request``'s that a browser may open (``/settings/forms`` →
    ``/settings``, ``/deals/7/win`` → ``/deals/7``); ``/`` at the top."""
    parts = request.url.path.rstrip("/").split("/")
    while len(parts) > 1:
        parts.pop()
        candidate = "/".join(parts) or "/"
        scope = {"type": "http", "path": candidate, "method": "GET", "root_path": ""}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            return candidate
    return "/"


async def _http_error(request: Request, error: HTTPException) -> Response:
    if error.status_code == 405 and request.method in ("GET", "HEAD") and not _wants_json(request):
        # A form's address opened by hand, from the history or by a reload after a redirect:
        # its page, not a bare "Method Not Allowed".
        return RedirectResponse(_page_above(request), status_code=303)
    headers = dict(error.headers) if error.headers else None
    return problem(request, error.status_code, "HTTPException", str(error.detail), headers)


def problem(request: Request, status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    """Problem JSON (RFC 9457) for machines, the error page for people."""
    if _wants_json(request):
        body = {"title": title, "status": status, "detail": detail}
        return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)
    page = render(request, "error.html", {"status": status, "detail": detail}, status=status)
    page.headers.update(headers or {})
    return page


async def _to_login(request: Request, _error: Exception) -> Response:
    if _wants_json(request):
        return JSONResponse({"title": "Unauthorized", "status": 401, "detail": "log in first"}, status_code=401)
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


class Crashes:
    """What no handler expected (a bug) still answers as every error does: problem JSON or the error
    page, inside the security headers, and the connection kept. The traceback goes to the log,
    never to the asker.

    Installed inside ``SecurityHeaders`` and outside the sessions, whose ``scope`` it shares, so the
    page is still in the asker's language. Starlette's own last resort sits outside every
    middleware: its plain-text 500 had no security headers, and uvicorn closed the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception:
            if started:  # half an answer is out: nothing better than ending it
                raise
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            request = Request(scope)
            detail = "something went wrong on our side; it was logged"
            try:
                response = problem(request, 500, "Internal Server Error", detail)
            except Exception:  # the error page itself failed: the plain problem JSON
                body = {"title": "Internal Server Error", "status": 500, "detail": detail}
                response = JSONResponse(body, status_code=500, media_type="application/problem+json")
            await response(scope, receive, send)
