"""``voronka user add``: people who log in to the web app (the first owner is made here)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from voronka.cli.state import state_of
from voronka.crm.accounts import default_account
from voronka.crm.auth import add_user
from voronka.db import session_scope
from voronka.errors import InvalidValue
from voronka.models import Role

user_app = typer.Typer(help="Users of the web app.", no_args_is_help=True)


def user_add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Their e-mail: the login.")],
    name: Annotated[str, typer.Option("--name", help="Their name (a manager's name as deals show it).")],
    role: Annotated[Role, typer.Option("--role", help="owner, head, manager or viewer.")] = Role.OWNER,
    password_env: Annotated[
        str | None, typer.Option("--password-env", help="Read the password from this environment variable.")
    ] = None,
) -> None:
    """Add a user who can log in. The password is asked for (hidden) or read from a variable; it is
    stored as an Argon2 hash."""
    state = state_of(ctx)
    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            raise InvalidValue(
                field="--password-env", value=password_env, hint="the name of a set environment variable"
            )
    else:
        password = str(typer.prompt(state.t("web.password"), hide_input=True, confirmation_prompt=True))
    with session_scope(state.engine) as session:
        user = add_user(
            session=session,
            account=default_account(session=session),
            name=name,
            email=email,
            password=password,
            role=role,
        )
        state.console.print(
            state.t("web.user_added", name=user.name, email=user.email, role=state.t(f"web.role_{user.role}"))
        )
