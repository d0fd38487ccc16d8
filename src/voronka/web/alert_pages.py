"""The alerts settings page: each user's own events and Telegram link; for the owner, thresholds and
quiet hours, what each role gets, the background jobs and the latest messages. Thin calls into
``voronka.alerts`` and ``voronka.jobs``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from voronka.alerts.config import (
    new_link_code,
    set_own_events,
    set_role_events,
    set_rules,
    set_smtp,
    set_telegram,
    set_working,
    unlink_chat,
)
from voronka.alerts.model import Event, event_named
from voronka.crm import auth
from voronka.errors import InvalidValue
from voronka.jobs.page import ROLES, alerts_page
from voronka.models import User
from voronka.roles import Role
from voronka.secretstore import SecretStore
from voronka.web.deps import DB, AppSettings
from voronka.web.render import back, render
from voronka.web.security import Csrf, Viewer, lang_of, seal_shown_once, unseal_shown_once

router = APIRouter(include_in_schema=False)
Picked = Annotated[list[str], Form(max_length=40)]


def _page(
    request: Request, session: Session, user: User, settings: AppSettings, code: str | None = None
) -> HTMLResponse:
    store = SecretStore(settings.secrets_file())
    shown = alerts_page(session=session, user=user, store=store, lang=lang_of(request))
    return render(
        request, "alerts.html", {"user": user, "page": shown, "code": code, "events": list(Event), "roles": ROLES}
    )


@router.get("/settings/alerts")
def alerts_settings(
    request: Request,
    session: DB,
    user: Viewer,
    settings: AppSettings,
    code: Annotated[str | None, Query(max_length=2000)] = None,
) -> HTMLResponse:
    """The page; ``code`` carries a new chat-link code sealed for this user (``seal_shown_once``)."""
    shown = unseal_shown_once(code, key=settings.session_key(), user_id=user.id)
    return _page(request, session, user, settings, code=shown)


@router.post("/settings/alerts/mine", dependencies=[Csrf])
def alerts_mine(session: DB, user: Viewer, event: Picked = []) -> Response:  # noqa: B006 — FastAPI copies defaults
    set_own_events(session=session, user=user, enabled={event_named(e) for e in event})
    return back("/settings/alerts")


@router.post("/settings/alerts/code", dependencies=[Csrf])
def alerts_code(session: DB, user: Viewer, settings: AppSettings) -> Response:
    code = new_link_code(session=session, user=user)
    # Post/redirect/get: a reload shows the page again and never makes another code.
    sealed = seal_shown_once(code, key=settings.session_key(), user_id=user.id)
    return back("/settings/alerts?" + urlencode({"code": sealed}))


@router.post("/settings/alerts/unlink", dependencies=[Csrf])
def alerts_unlink(session: DB, user: Viewer) -> Response:
    unlink_chat(session=session, user=user)
    return back("/settings/alerts")


@router.post("/settings/alerts/rules", dependencies=[Csrf])
def alerts_rules(
    session: DB,
    user: Viewer,
    lead_minutes: Annotated[int, Form(ge=1, le=1440)],
    stall_factor: Annotated[int, Form(ge=1, le=10)],
    quiet: Annotated[str, Form(max_length=20)] = "",
    working: Annotated[str, Form(max_length=20)] = "",
    calendar: Annotated[str, Form(max_length=8)] = "",
    handover: Annotated[bool, Form()] = False,
) -> Response:
    auth.require(user, auth.Action.MANAGE_SETTINGS)
    account = auth.account_of(session=session, user=user)
    set_rules(session=session, account=account, lead_minutes=lead_minutes, stall_factor=stall_factor, quiet=quiet)
    set_working(session=session, account=account, hours=working, calendar=calendar, handover=handover)
    return back("/settings/alerts")


@router.post("/settings/alerts/roles", dependencies=[Csrf])
def alerts_roles(session: DB, user: Viewer, on: Picked = []) -> Response:  # noqa: B006 — FastAPI copies defaults
    chosen = set()
    for pair in on:
        role, _, event = pair.partition(":")
        try:
            chosen.add((Role(role), event_named(event)))
        except ValueError:
            raise InvalidValue(field="role", value=role, hint="owner, head or manager") from None
    set_role_events(session=session, owner=user, enabled=chosen, roles=ROLES)
    return back("/settings/alerts")


@router.post("/settings/alerts/telegram", dependencies=[Csrf])
def alerts_telegram(
    session: DB, user: Viewer, settings: AppSettings, token: Annotated[str, Form(max_length=200)]
) -> Response:
    """The account's bot token, to the secrets file (the page never shows it back)."""
    auth.require(user, auth.Action.MANAGE_SETTINGS)
    store = SecretStore(settings.secrets_file())
    set_telegram(session=session, account=auth.account_of(session=session, user=user), store=store, token=token)
    return back("/settings/alerts")


@router.post("/settings/alerts/smtp", dependencies=[Csrf])
def alerts_smtp(
    session: DB,
    user: Viewer,
    settings: AppSettings,
    host: Annotated[str, Form(max_length=200)],
    port: Annotated[int, Form(ge=1, le=65535)],
    security: Annotated[str, Form(max_length=10)],
    sender: Annotated[str, Form(max_length=320)],
    login: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The e-mail server; an empty password keeps the one stored (the page never shows it back)."""
    auth.require(user, auth.Action.MANAGE_SETTINGS)
    set_smtp(
        session=session, account=auth.account_of(session=session, user=user),
        store=SecretStore(settings.secrets_file()), host=host, port=port, security=security, sender=sender,
        user=login.strip() or None, password=password or None,
    )  # fmt: skip
    return back("/settings/alerts")


@router.post("/settings/alerts/test", dependencies=[Csrf])
def alerts_test(request: Request, session: DB, user: Viewer, settings: AppSettings) -> Response:
    """A test message to oneself through every channel one has; how it went shows in the messages."""
    from voronka.alerts.service import send_test
    from voronka.timeutil import utcnow

    account = auth.account_of(session=session, user=user)
    session.commit()  # the test is sent from sessions of its own
    send_test(
        sessions=request.app.state.sessions, account_id=account.id, store=SecretStore(settings.secrets_file()),
        now=utcnow(), user_email=user.email,
    )  # fmt: skip
    return back("/settings/alerts#outbox")
