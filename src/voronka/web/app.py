"""The FastAPI application: settings and database in, routes over the library, one error handler."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from voronka.config import Settings
from voronka.db import open_database, session_factory
from voronka.errors import NotFound, VoronkaError
from voronka.i18n import DEFAULT_LANG


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The app for ``settings``; ``engine`` if the caller already opened the database."""
    from voronka.web import webhooks

    app = FastAPI(title="voronka", version="1", docs_url="/api/v1/docs", openapi_url="/api/v1/openapi.json")
    app.state.settings = settings
    app.state.engine = engine or open_database(settings.database_url)
    app.state.sessions = session_factory(app.state.engine)
    app.include_router(webhooks.router)
    app.add_exception_handler(VoronkaError, _library_error)  # type: ignore[arg-type]
    return app


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


async def _library_error(request: Request, error: VoronkaError) -> JSONResponse:
    """Every library error as problem JSON in the asker's language: 404 for what is not there,
    422 for what cannot be done."""
    lang = request.headers.get("Accept-Language", DEFAULT_LANG)[:2]
    status = 404 if isinstance(error, NotFound) else 422
    body = {"title": type(error).__name__, "status": status, "detail": error.message(lang)}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")
