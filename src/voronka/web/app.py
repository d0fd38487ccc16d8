"""The FastAPI application: settings and database in, routes over the library, one error handler."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.middleware.sessions import SessionMiddleware

from voronka.config import Settings
from voronka.db import open_database, session_factory
from voronka.errors import DealExists, NotFound, VoronkaError

HERE = Path(__file__).parent
SESSION_DAYS = 14


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The app for ``settings``; ``engine`` if the caller already opened the database."""
    from voronka.web import api, pages, security, webhooks

    app = FastAPI(
        title="voronka",
        version="1",
        summary="Sales funnel you can read: deals, stages, funnel and statistics.",
        docs_url="/api/v1/docs",
        openapi_url="/api/v1/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine or open_database(settings.database_url)
    app.state.sessions = session_factory(app.state.engine)
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.state.login_limiter = security.LoginLimiter()
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_key(),
        session_cookie="voronka_session",
        max_age=SESSION_DAYS * 86400,
        same_site="lax",
        https_only=False,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_api_route("/vendor/plotly.min.js", _plotly, include_in_schema=False)
    app.add_api_route("/vendor/htmx.min.js", _htmx, include_in_schema=False)
    app.include_router(webhooks.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.add_exception_handler(VoronkaError, _library_error)  # type: ignore[arg-type]
    app.add_exception_handler(security.LoginRequired, _to_login)
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    return app


def _plotly() -> Response:
    """Plotly's JavaScript from the installed plotly package: no CDN, no build step."""
    path = resources.files("plotly").joinpath("package_data", "plotly.min.js")
    return FileResponse(str(path), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


def _htmx() -> Response:
    """htmx from the installed package that ships it (django-js-lib-htmx; no Django is imported)."""
    path = resources.files("js_lib_htmx").joinpath("static", "htmx", "htmx.min.js")
    return FileResponse(str(path), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


def db_session(request: Request) -> Iterator[Session]:
    """A session per request, committed when the route returns and rolled back when it fails."""
    with request.app.state.sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def settings_of(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/webhooks/")) or "json" in request.headers.get("accept", "")


async def _library_error(request: Request, error: VoronkaError) -> Response:
    """Every library error in the asker's language: 404 for what is not there, 403 for what the role
    forbids, 422 for what cannot be done — problem JSON for the API, a page for people."""
    from voronka.auth import Forbidden
    from voronka.web.security import lang_of

    lang = lang_of(request) if "session" in request.scope else "en"
    status = (
        404 if isinstance(error, NotFound)
        else 403 if isinstance(error, Forbidden)
        else 409 if isinstance(error, DealExists)
        else 422
    )  # fmt: skip
    return _problem(request, status, type(error).__name__, error.message(lang))


async def _http_error(request: Request, error: HTTPException) -> Response:
    headers = dict(error.headers) if error.headers else None
    return _problem(request, error.status_code, "HTTPException", str(error.detail), headers)


def _problem(request: Request, status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    if _wants_json(request):
        body = {"title": title, "status": status, "detail": detail}
        return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)
    from voronka.web.pages import render

    return render(request, "error.html", {"status": status, "detail": detail}, status=status)


async def _to_login(request: Request, _error: Exception) -> Response:
    if _wants_json(request):
        return JSONResponse({"title": "Unauthorized", "status": 401, "detail": "log in first"}, status_code=401)
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
