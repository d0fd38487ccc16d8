"""``voronka user``: people who log in to the web app (the first owner is made here), their
passwords, and taking a login away."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from voronka.cli.state import state_of
from voronka.errors import InvalidValue
from voronka.roles import Role

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from voronka.models import User


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
    from voronka.crm.accounts import default_account
    from voronka.crm.auth import add_user
    from voronka.db import session_scope

    state = state_of(ctx)
    password = _password(state.t("web.password"), password_env)
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


def _password(prompt: str, password_env: str | None) -> str:
    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            raise InvalidValue(
                field="--password-env", value=password_env, hint="the name of a set environment variable"
            )
        return password
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))


def _user(session: Session, email: str) -> User:
    from voronka.crm.auth import user_by_email

    return user_by_email(session=session, email=email)


def user_password(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user's e-mail.")],
    password_env: Annotated[
        str | None, typer.Option("--password-env", help="Read the new password from this environment variable.")
    ] = None,
) -> None:
    """Set a new password; every session of the user ends (they log in again everywhere)."""
    from voronka.crm.auth import set_password
    from voronka.db import session_scope

    state = state_of(ctx)
    password = _password(state.t("web.password"), password_env)
    with session_scope(state.engine) as session:
        user = _user(session, email)
        set_password(session=session, user=user, password=password)
        state.console.print(state.t("web.password_set", email=user.email))


def user_deactivate(
    ctx: typer.Context,
    who: Annotated[str, typer.Argument(help="The user's e-mail, or the name of a manager from imported history.")],
) -> None:
    """Stop a user from logging in: their sessions end at once and their API tokens stop working.
    A name-only manager (imported history, no login) is deactivated by name: no list offers them again."""
    from voronka.crm.accounts import default_account
    from voronka.crm.auth import deactivate_user, user_by_email_or_name
    from voronka.db import session_scope

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        user = user_by_email_or_name(session=session, account=default_account(session=session), who=who)
        deactivate_user(session=session, user=user)
        if user.email:
            state.console.print(state.t("web.user_deactivated", email=user.email))
        else:
            state.console.print(state.t("web.name_deactivated", name=user.name))
