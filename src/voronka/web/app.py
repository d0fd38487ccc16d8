"""The FastAPI application: settings and database in, routes over the library, one error handler."""

from __future__ import annotations

import gc
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from swagger_ui_bundle import swagger_ui_path

from voronka.config import Settings
from voronka.db import open_database, session_factory
from voronka.web import alert_pages, api, deal_pages, pages, settings_pages, webhooks
from voronka.web.errors import Crashes, install_error_handlers
from voronka.web.middleware import BodyLimit, SecurityHeaders, SessionsByScheme

HERE = Path(__file__).parent
SESSION_DAYS = 14


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The app for ``settings``; ``engine`` if the caller already opened the database."""
    app = FastAPI(
        title="voronka",
        version="1",
        summary="Sales funnel you can read: deals, stages, funnel and statistics.",
        docs_url=None,  # served below from the installed swagger-ui-bundle: no CDN
        openapi_url="/api/v1/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine or open_database(settings.database_url)
    app.state.sessions = session_factory(app.state.engine)
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.add_middleware(
        SessionsByScheme,
        secret_key=settings.session_key(),
        session_cookie="voronka_session",
        max_age=SESSION_DAYS * 86400,
        same_site="lax",
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Crashes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_api_route("/vendor/htmx.min.js", _htmx, include_in_schema=False)
    app.mount("/vendor/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")
    app.add_api_route("/api/v1/docs", _api_docs, include_in_schema=False)
    app.include_router(webhooks.router)
    app.include_router(api.router)
    app.include_router(deal_pages.router)
    app.include_router(pages.router)
    app.include_router(settings_pages.router)
    app.include_router(alert_pages.router)
    install_error_handlers(app)
    return app


def _api_docs() -> HTMLResponse:
    """Swagger UI for the API, its script and styles from the installed swagger-ui-bundle package:
    the page works offline and loads nothing from another host."""
    return get_swagger_ui_html(
        openapi_url="/api/v1/openapi.json",
        title="voronka API",
        swagger_js_url="/vendor/swagger/swagger-ui-bundle.js",
        swagger_css_url="/vendor/swagger/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
    )


def _htmx() -> Response:
    """htmx from the installed package that ships it (django-js-lib-htmx; no Django is imported)."""
    path = resources.files("js_lib_htmx").joinpath("static", "htmx", "htmx.min.js")
    return FileResponse(str(path), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


GC_YOUNG_THRESHOLD = 50_000
"""Objects allocated before a young-generation collection (Python's default is 700)."""


def tune_for_serving() -> None:
    """Garbage collection for a server process, called once before it serves: a report page
    allocates tens of thousands of short-lived rows, and at the default threshold the collector
    kept walking the whole heap mid-request (a fifth of the pages' time at 100,000 deals, most
    of their slowest responses). Objects made while starting up are frozen out of its scans."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)


def app_from_environment() -> FastAPI:
    """The app of one ``voronka serve --workers N`` process: settings from ``VORONKA_*``."""
    app = create_app(Settings())
    tune_for_serving()
    return app
