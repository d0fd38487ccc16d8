"""Who is asking: the session's user for pages, the API token's user for the API; CSRF on forms;
a limit on failed logins."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from voronka.analysis.overview import ALL_PIPELINES
from voronka.crm.accounts import list_pipelines
from voronka.crm.auth import Action, account_of, can, user_for_token
from voronka.crm.logins import user_for_session
from voronka.i18n import LANGUAGES, Translator, detect_lang
from voronka.models import User
from voronka.web.deps import DB

CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(Exception):
    """A page asked for without a session: the app redirects to the login page."""


def lang_of(request: Request) -> str:
    chosen = request.session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    header = request.headers.get("Accept-Language", "")
    return detect_lang(header[:2] if header[:2] in LANGUAGES else None)


def translator(request: Request) -> Translator:
    return Translator(lang_of(request))


SESSION_KEY = "sid"
PIPELINE_KEY = "pipeline"
ALL_PIPELINES_KEY = "all_pipelines"
"""The dashboard shows every pipeline: remembered apart, as no other page can."""


@dataclass(frozen=True)
class Who:
    """The logged-in person as the layout shows them: their name and what the menu offers."""

    name: str
    reports: bool
    deals: bool
    settings: bool
    team_reports: bool
    """The whole team's analysis (diagnosis, what-if, hypotheses, forecast, the statistics
    workbook): the menu offers it only to those the pages answer, never a 403."""

    @classmethod
    def of(cls, user: User) -> Who:
        return cls(
            user.name,
            reports=can(user, Action.VIEW_REPORTS),
            deals=can(user, Action.WORK_DEALS),
            settings=can(user, Action.MANAGE_SETTINGS),
            team_reports=can(user, Action.SEE_ALL_DEALS) and can(user, Action.VIEW_REPORTS),
        )


def page_user(request: Request, session: DB) -> User:
    """The user of the cookie's login session, if the server still holds it open."""
    token = request.session.get(SESSION_KEY)
    user = user_for_session(session=session, token=token) if isinstance(token, str) else None
    if user is None:
        request.session.pop(SESSION_KEY, None)
        raise LoginRequired
    request.state.timezone = account_of(session=session, user=user).timezone  # pages show local time
    request.state.who = Who.of(user)  # read now: an error page renders after the session is gone
    # The header's pipeline picker, shown once an account has two (connecting a CRM adds one).
    names = [p.name for p in list_pipelines(session=session, account=account_of(session=session, user=user))]
    request.state.pipelines = names
    remembered = request.session.get(PIPELINE_KEY)
    request.state.pipeline = remembered if remembered in names else (names[0] if names else None)
    return user


def chosen_pipeline(
    request: Request,
    user: Annotated[User, Depends(page_user)],  # noqa: ARG001 - logged in first, and the list read
    pipeline: Annotated[str | None, Query(max_length=200)] = None,
) -> str | None:
    """The pipeline a page shows: the one asked for (remembered for the next pages), else the one
    remembered in this login's session, else the account's first — never "choose one" (422) once
    an account has two pipelines."""
    names: list[str] = getattr(request.state, "pipelines", [])
    if pipeline:
        known = next((n for n in names if n.casefold() == pipeline.strip().casefold()), None)
        if known is not None:
            request.session[PIPELINE_KEY] = known
            request.session.pop(ALL_PIPELINES_KEY, None)
            request.state.pipeline = known
            return pipeline
        if pipeline != ALL_PIPELINES:
            return pipeline  # an unknown name is the library's "no such pipeline"
        # All pipelines: the dashboard shows them (``dashboard_pipeline``); a page of one pipeline
        # shows the remembered one, as if no pipeline had been asked for.
        request.session[ALL_PIPELINES_KEY] = True
    remembered = request.session.get(PIPELINE_KEY)
    chosen = remembered if remembered in names else (names[0] if names else None)
    request.state.pipeline = chosen
    return chosen


PipelineChoice = Annotated[str | None, Depends(chosen_pipeline)]


def dashboard_pipeline(
    request: Request,
    chosen: PipelineChoice,
    pipeline: Annotated[str | None, Query(max_length=200)] = None,
) -> str | None:
    """The dashboard's pipeline: as every page's, or all pipelines when that was the last choice made
    on the dashboard (other pages keep showing the pipeline chosen before it)."""
    names: list[str] = getattr(request.state, "pipelines", [])
    if (pipeline and pipeline != ALL_PIPELINES) or ALL_PIPELINES in names or len(names) < 2:
        return chosen
    if pipeline == ALL_PIPELINES or request.session.get(ALL_PIPELINES_KEY):
        request.state.pipeline = ALL_PIPELINES
        return ALL_PIPELINES
    return chosen


DashboardChoice = Annotated[str | None, Depends(dashboard_pipeline)]


def client_address(request: Request) -> str | None:
    """The client's address as the server saw it: X-Forwarded-For counts only when ``voronka serve
    --forwarded-allow-ips`` names the proxy it came through (uvicorn applies it)."""
    return request.client.host if request.client else None


def api_user(request: Request, session: DB) -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = user_for_token(session=session, plain=token.strip()) if scheme.lower() == "bearer" and token else None
    if user is None:
        raise HTTPException(
            status_code=401,
            detail="an API token is needed: Authorization: Bearer <token> (Settings → API tokens)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Every state-changing page request carries the session's token, as a form field or header."""
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER)
    if given is None and "form" in request.headers.get("content-type", ""):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
        raise HTTPException(status_code=403, detail="the form is out of date or not ours (CSRF): reload the page")


Viewer = Annotated[User, Depends(page_user)]
"""The logged-in user of a page (else a redirect to the login page)."""
Csrf = Depends(check_csrf)
"""Every state-changing page route carries this dependency."""


SHOWN_ONCE_SECONDS = 600
"""How long the page a new secret was redirected to can still show it (a reload within it)."""


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (hmac.new(key, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(length // 32 + 1))
    return b"".join(blocks)[:length]


def seal_shown_once(secret: str, *, key: str, user_id: int) -> str:
    """A new secret (an API token, a form's address) for the address the form redirects to
    (post/redirect/get): enciphered with the server's key (HMAC-SHA256 as a keystream under a
    random nonce), signed with the user and the time, so only this server shows it, only to this
    user, and only for ``SHOWN_ONCE_SECONDS``. Neither the cookie nor the database holds it."""
    nonce = secrets.token_bytes(16)
    raw = secret.encode()
    cipher = bytes(a ^ b for a, b in zip(raw, _keystream(key.encode(), nonce, len(raw)), strict=True))
    serializer = URLSafeTimedSerializer(key, salt="shown-once")
    return serializer.dumps([user_id, base64.urlsafe_b64encode(nonce + cipher).decode()])


def unseal_shown_once(sealed: str | None, *, key: str, user_id: int) -> str | None:
    """The secret ``seal_shown_once`` made for this user, or ``None`` (expired, another user's, forged)."""
    if not sealed:
        return None
    serializer = URLSafeTimedSerializer(key, salt="shown-once")
    try:
        owner, packed = serializer.loads(sealed[:2000], max_age=SHOWN_ONCE_SECONDS)
        data = base64.urlsafe_b64decode(str(packed))
    except (BadSignature, ValueError, TypeError):
        return None
    if owner != user_id or len(data) < 17:
        return None
    nonce, cipher = data[:16], data[16:]
    plain = bytes(a ^ b for a, b in zip(cipher, _keystream(key.encode(), nonce, len(cipher)), strict=True))
    return plain.decode(errors="replace")
