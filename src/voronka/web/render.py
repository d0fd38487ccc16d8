"""Pages rendered in the asker's language, with the CSRF token and ``fmt`` — figures, money and
local times formatted for the reader (``voronka.formats``) — at hand."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from voronka.formats import Formats
from voronka.timeutil import zone
from voronka.web.security import csrf_token, translator


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    t = translator(request)
    fmt = Formats(t.lang, zone(getattr(request.state, "timezone", "UTC")))
    who = getattr(request.state, "who", None)
    base = {"request": request, "t": t, "lang": t.lang, "csrf": csrf_token(request), "fmt": fmt, "who": who}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status
    )
    return response


def back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def local_path(url: str) -> str:
    """``url`` if it is a path on this site, else ``/``: a redirect never leaves for another host
    (``//evil``, ``/\\evil``, ``https://…`` and control characters are refused)."""
    if not url.startswith("/") or url.startswith(("//", "/\\")) or any(ord(c) < 32 or c == "\\" for c in url):
        return "/"
    return url
