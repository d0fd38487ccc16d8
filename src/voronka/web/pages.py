"""Server-rendered pages: login, the dashboard and the reports (deals: ``deal_pages``; settings:
``settings_pages``).

Every route is a thin call into the library; what a user may see and do is decided by
``voronka.crm.auth`` (roles), and every form carries the session's CSRF token.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from voronka.crm import auth, logins
from voronka.crm.accounts import (
    find_pipeline,
)
from voronka.crm.auth import Action
from voronka.web import views
from voronka.web.deps import DB, Id
from voronka.web.queries import DashboardQuery
from voronka.web.render import back, local_path, render
from voronka.web.security import (
    SESSION_KEY,
    Csrf,
    DashboardChoice,
    PipelineChoice,
    Viewer,
    client_address,
    translator,
)

router = APIRouter(include_in_schema=False)


# --- logging in ---------------------------------------------------------------------------------
@router.get("/login")
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", {"next": next, "error": None})


@router.post("/login", dependencies=[Csrf])
def login(
    request: Request,
    session: DB,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    t = translator(request)
    address = client_address(request)
    attempt = logins.reserve_attempt(session=session, email=email, address=address)
    session.commit()  # the attempt counts for every process before the password is checked
    if not attempt.allowed:
        wait = (
            t("web.wait_seconds", n=attempt.wait)
            if attempt.wait < 60
            else t("web.wait_minutes", n=-(-attempt.wait // 60))
        )
        page = render(request, "login.html", {"next": next, "error": t("web.login_blocked", wait=wait)}, status=429)
        page.headers["Retry-After"] = str(attempt.wait)
        return page
    user = auth.authenticate(session=session, email=email, password=password)
    session.commit()  # ends the read: settling opens a write transaction of its own
    logins.settle_attempt(session=session, attempt=attempt, succeeded=user is not None)
    if user is None:
        return render(request, "login.html", {"next": next, "error": t("web.login_failed")}, status=401)
    request.session.clear()  # a new session on login: no fixation
    request.session[SESSION_KEY] = logins.start_session(session=session, user=user)
    return back(local_path(next))


@router.post("/logout", dependencies=[Csrf])
def logout(request: Request, session: DB) -> Response:
    token = request.session.get(SESSION_KEY)
    if isinstance(token, str):
        logins.end_session(session=session, token=token)
    request.session.clear()
    return back("/login")


@router.get("/lang/{lang}")
def choose_language(request: Request, session: DB, lang: str, next: str = "/") -> Response:
    """The pages' language; for a logged-in user also their own setting, which their alerts and
    digests are written in (a page visit alone never changes it: only this choice does)."""
    if lang in ("ru", "en"):
        request.session["lang"] = lang
        token = request.session.get(SESSION_KEY)
        user = logins.user_for_session(session=session, token=token) if isinstance(token, str) else None
        if user is not None:
            auth.remember_language(user=user, lang=lang)
    return back(local_path(next))


# --- dashboard -----------------------------------------------------------------------------------
@router.get("/")
def dashboard(
    request: Request,
    session: DB,
    user: Viewer,
    params: Annotated[DashboardQuery, Query()],
    pipeline: DashboardChoice = None,
) -> HTMLResponse:
    auth.require(user, Action.VIEW_REPORTS)
    account = auth.account_of(session=session, user=user)
    board = views.dashboard(
        session=session,
        account=account,
        user=user,
        t=translator(request),
        pipeline=pipeline,
        params=params,
    )
    return render(request, "dashboard.html", {"user": user, "board": board, "can": auth.can, "Action": Action})


# --- reports -------------------------------------------------------------------------------------
@router.get("/reports/stats")
def stats_page(
    request: Request,
    session: DB,
    user: Viewer,
    grain: str = "week",
    by: str | None = None,
    pipeline: PipelineChoice = None,
) -> HTMLResponse:
    auth.require(user, Action.VIEW_REPORTS)
    page = views.stats(
        session=session,
        account=auth.account_of(session=session, user=user),
        user=user,
        t=translator(request),
        grain=grain,
        by=by or None,
        pipeline=pipeline,
    )
    return render(request, "stats.html", {"user": user, "page": page, "grain": grain, "by": by or ""})


@router.get("/reports/stats.xlsx")
def stats_workbook(
    request: Request,
    session: DB,
    user: Viewer,
    grain: str = "week",
    by: str | None = None,
    pipeline: PipelineChoice = None,
) -> Response:
    auth.require(user, Action.VIEW_REPORTS)
    with tempfile.TemporaryDirectory(prefix="voronka-") as folder:  # nothing is left behind
        path = Path(folder) / "voronka-stats.xlsx"
        views.stats_workbook(
            session=session,
            account=auth.account_of(session=session, user=user),
            user=user,
            t=translator(request),
            grain=grain,
            by=by or None,
            pipeline=pipeline,
            path=path,
        )
        content = path.read_bytes()
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    disposition = {"Content-Disposition": 'attachment; filename="voronka-stats.xlsx"'}
    return Response(content, media_type=media, headers=disposition)


@router.get("/reports/diagnosis")
def diagnosis_page(request: Request, session: DB, user: Viewer, pipeline: PipelineChoice = None) -> HTMLResponse:
    auth.require(user, Action.SEE_ALL_DEALS)
    found = views.diagnosis(
        session=session, account=auth.account_of(session=session, user=user), t=translator(request), pipeline=pipeline
    )
    return render(request, "diagnosis.html", {"user": user, "diagnosis": found})


@router.get("/reports/whatif")
def whatif_page(request: Request, session: DB, user: Viewer, pipeline: PipelineChoice = None) -> HTMLResponse:
    auth.require(user, Action.SEE_ALL_DEALS)
    settings = {k: v for k, v in request.query_params.items() if k.startswith("step_") or k in ("check", "leads")}
    found = views.whatif(
        session=session, account=auth.account_of(session=session, user=user), pipeline=pipeline, settings=settings
    )
    return render(request, "whatif.html", {"user": user, "whatif": found})


@router.get("/reports/hypotheses")
def hypotheses_page(request: Request, session: DB, user: Viewer, pipeline: PipelineChoice = None) -> HTMLResponse:
    auth.require(user, Action.SEE_ALL_DEALS)
    account = auth.account_of(session=session, user=user)
    found = views.hypotheses(session=session, account=account)
    context = {
        "user": user,
        "hypotheses": found,
        "currency": account.currency,
        "can_start": auth.can(user, Action.SET_PLANS),
        "stages": find_pipeline(session=session, account=account, name=pipeline).stages,
    }
    return render(request, "hypotheses.html", context)


@router.post("/reports/hypotheses", dependencies=[Csrf])
def start_hypothesis(
    session: DB,
    user: Viewer,
    step: Annotated[int, Form(ge=2, le=100)],
    change: Annotated[str, Form(min_length=1, max_length=500)],
    starts_on: Annotated[str, Form(max_length=10)],
    assign: Annotated[str, Form(max_length=300)],
    ends_on: Annotated[str, Form(max_length=10)] = "",
    uplift: Annotated[float, Form(gt=0, le=100)] = 5.0,
    pipeline: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Start testing a change at one step (the same as ``voronka hypothesis add``)."""
    from voronka.analysis.hypotheses import add_hypothesis, parse_assignment
    from voronka.analysis.stats.inputs import parse_day

    auth.require(user, Action.SET_PLANS)
    account = auth.account_of(session=session, user=user)
    add_hypothesis(
        session=session,
        account=account,
        pipeline=find_pipeline(session=session, account=account, name=pipeline or None),
        position=step,
        change=change.strip(),
        starts_on=parse_day(starts_on, "starts_on"),
        ends_on=parse_day(ends_on, "ends_on") if ends_on else None,
        assignment=parse_assignment(assign),
        uplift=uplift / 100,
    )
    return back("/reports/hypotheses")


@router.post("/reports/hypotheses/{hypothesis_id}/close", dependencies=[Csrf])
def close_hypothesis_page(
    session: DB, user: Viewer, hypothesis_id: Id, verdict: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    from voronka.analysis.hypotheses import close_hypothesis, get_hypothesis

    auth.require(user, Action.SET_PLANS)
    account = auth.account_of(session=session, user=user)
    found = get_hypothesis(session=session, account=account, hypothesis_id=hypothesis_id)
    close_hypothesis(session=session, hypothesis=found, verdict=verdict.strip() or None)
    return back("/reports/hypotheses")


@router.get("/reports/forecast")
def forecast_page(request: Request, session: DB, user: Viewer, pipeline: PipelineChoice = None) -> HTMLResponse:
    auth.require(user, Action.SEE_ALL_DEALS)
    found = views.forecast(session=session, account=auth.account_of(session=session, user=user), pipeline=pipeline)
    return render(request, "forecast.html", {"user": user, "forecast": found})
