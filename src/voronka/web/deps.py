"""What routes depend on: the request's database session and the app's settings.

Every router imports these from here, never from ``app``, so the app can import its routers
without a cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Form, Path, Query, Request
from sqlalchemy.orm import Session

from voronka.config import Settings
from voronka.crm.search import MAX_PAGE
from voronka.db import committed


def db_session(request: Request) -> Iterator[Session]:
    """A session per request, committed when the route returns and rolled back when it fails.

    Used as ``DB`` (scope "function"): the commit happens before the response leaves, so a browser
    that follows a redirect at once (login, a saved form) always reads what the POST wrote.
    FastAPI's default for ``yield`` dependencies commits after the response is sent, which lost
    that race now and then.
    """
    with committed(request.app.state.sessions()) as session:
        yield session


def settings_of(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


DB = Annotated[Session, Depends(db_session, scope="function")]
AppSettings = Annotated[Settings, Depends(settings_of)]
MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="An id")]
"""Ids beyond the database's 64-bit integers are not ids: 422, not a crash."""
FormId = Annotated[int, Form(ge=1, le=MAX_ID)]
"""An id a form sends (a pipeline, a stage): bounded as ``Id``."""
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
"""An id a page's filter sends (``/deals?stage=``), or none."""
Page = Annotated[int, Query(ge=-MAX_PAGE, le=MAX_PAGE)]
"""A page number: the library treats those below 1 as the first."""
