"""What every command shares: the settings, the language and an open database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import typer

from voronka.i18n import Translator, detect_lang

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Connection, Engine
    from sqlalchemy.orm import Session

    from voronka.config import Settings
    from voronka.models import Account, Pipeline
    from voronka.reading import AccountRow

# Nothing heavy loads here: `voronka --help` must not pay for SQLAlchemy, pydantic or Rich.


@dataclass
class State:
    settings: Settings
    t: Translator
    _engine: Engine | None = None
    only_read: bool = False
    """Set when the command read the database and wrote nothing: it may end without the
    interpreter's teardown (``voronka.cli.app.main``)."""

    # Made on first use: a command that prints JSON, or nothing, does not load Rich (0.02 s).
    @cached_property
    def console(self) -> Console:
        return _console(stderr=False)

    @cached_property
    def err(self) -> Console:
        return _console(stderr=True)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from voronka.db import open_database

            self._engine = open_database(self.settings.database_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _console(*, stderr: bool) -> Console:
    """A console that is wide enough for a funnel table even when output goes to a file or pipe."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=160)
    return console


def make_state(db: str | None, lang: str | None) -> State:
    from voronka.config import Settings

    settings = Settings(database_url=db) if db else Settings()
    return State(settings=settings, t=Translator(detect_lang(lang or settings.lang)))


def state_of(ctx: typer.Context) -> State:
    state = ctx.obj
    assert isinstance(state, State)
    return state


@contextmanager
def report_scope(state: State) -> Iterator[tuple[Connection, AccountRow]]:
    """A read-only connection (one transaction, rolled back at the end) with the account to report
    on: report commands read through Core tables and never load the ORM."""
    from voronka.reading import report_account

    with state.engine.connect() as connection:
        yield connection, report_account(connection)
    state.only_read = True


@contextmanager
def pipeline_scope(state: State, name: str | None) -> Iterator[tuple[Session, Account, Pipeline]]:
    """A committed-on-success session with the account and the chosen (or only) pipeline."""
    from voronka.crm.accounts import default_account, find_pipeline
    from voronka.db import session_scope

    with session_scope(state.engine) as session:
        account = default_account(session=session)
        yield session, account, find_pipeline(session=session, account=account, name=name)
