"""Server-rendered pages: login, dashboard, kanban, deal card, reports, settings.

Every route is a thin call into the library; what a user may see and do is decided by
``voronka.crm.auth`` (roles), and every form carries the session's CSRF token.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from voronka.crm import auth, logins
from voronka.crm.accounts import (
    find_pipeline,
    get_or_create_loss_reason,
    get_or_create_source,
    list_pipelines,
    update_account,
)
from voronka.crm.auth import Action
from voronka.crm.deals import get_deal, log_call, lose_deal, move_deal, reopen_deal, win_deal
from voronka.crm.pipelines import add_stage, move_stage, rename_stage
from voronka.errors import InvalidValue
from voronka.models import (
    Account,
    CallAttempt,
    CallOutcome,
    Deal,
    LossReason,
    Note,
    Pipeline,
    Role,
    Source,
    Stage,
    StageChange,
    User,
)
from voronka.money import parse_amount
from voronka.timeutil import utcnow
from voronka.web import views
from voronka.web.deps import DB, Id
from voronka.web.render import back, local_path, render
from voronka.web.security import SESSION_KEY, check_csrf, client_address, page_user, translator

router = APIRouter(include_in_schema=False)
Viewer = Annotated[User, Depends(page_user)]
Csrf = Depends(check_csrf)
CARDS_PER_STAGE = 60


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
    allowed = logins.reserve_attempt(session=session, email=email, address=address)
    session.commit()  # the attempt counts for every process before the password is checked
    if not allowed:
        return render(request, "login.html", {"next": next, "error": t("web.login_blocked")}, status=429)
    user = auth.authenticate(session=session, email=email, password=password)
    if user is None:
        return render(request, "login.html", {"next": next, "error": t("web.login_failed")}, status=401)
    logins.forget_attempts(session=session, email=email, address=address)
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
def choose_language(request: Request, lang: str, next: str = "/") -> Response:
    if lang in ("ru", "en"):
        request.session["lang"] = lang
    return back(local_path(next))


# --- dashboard -----------------------------------------------------------------------------------
@router.get("/")
def dashboard(
    request: Request,
    session: DB,
    user: Viewer,
    pipeline: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    view: str = "cohort",
    rule: str = "cumulative",
    by: str | None = None,
) -> HTMLResponse:
    auth.require(user, Action.VIEW_REPORTS)
    account = auth.account_of(session=session, user=user)
    board = views.dashboard(
        session=session,
        account=account,
        user=user,
        t=translator(request),
        pipeline=pipeline,
        date_from=date_from,
        date_to=date_to,
        view=view,
        rule=rule,
        by=by or None,
    )
    return render(request, "dashboard.html", {"user": user, "board": board, "can": auth.can, "Action": Action})


# --- deals ---------------------------------------------------------------------------------------
@router.get("/deals")
def deal_list(
    request: Request, session: DB, user: Viewer, pipeline: str | None = None, stage: int | None = None
) -> HTMLResponse:
    auth.require(user, Action.WORK_DEALS)
    chosen = find_pipeline(session=session, account=auth.account_of(session=session, user=user), name=pipeline)
    query = select(Deal).where(auth.visible_deals(user), Deal.pipeline_id == chosen.id)
    if stage is not None:
        query = query.where(Deal.furthest_position >= stage)
    deals = list(session.scalars(query.order_by(Deal.created_at.desc()).limit(200)))
    return render(request, "deals.html", {"user": user, "pipeline": chosen, "deals": deals, "stage": stage})


@router.get("/kanban")
def kanban(
    request: Request,
    session: DB,
    user: Viewer,
    pipeline: str | None = None,
    manager: str | None = None,
    source: str | None = None,
) -> HTMLResponse:
    auth.require(user, Action.WORK_DEALS)
    account = auth.account_of(session=session, user=user)
    board = views.kanban(
        session=session,
        account=account,
        user=user,
        pipeline=pipeline,
        manager=manager or None,
        source=source or None,
        per_stage=CARDS_PER_STAGE,
    )
    reasons = list(
        session.scalars(select(LossReason).where(LossReason.account_id == account.id).order_by(LossReason.name))
    )
    return render(request, "kanban.html", {"user": user, "board": board, "reasons": reasons})


def _deal_for(session: Session, user: User, deal_id: int) -> Deal:
    deal = get_deal(session=session, deal_id=deal_id)
    auth.require_deal(user, deal)
    return deal


def _stage_of(session: Session, deal: Deal, stage_id: int) -> Stage:
    stage = session.get(Stage, stage_id)
    if stage is None or stage.pipeline_id != deal.pipeline_id:
        raise InvalidValue(field="stage", value=str(stage_id), hint="a stage of the deal's pipeline")
    return stage


@router.post("/deals/{deal_id}/move", dependencies=[Csrf])
def move(
    request: Request, session: DB, user: Viewer, deal_id: Id, stage_id: Annotated[int, Form(ge=1, le=2**63 - 1)]
) -> Response:
    deal = _deal_for(session, user, deal_id)
    move_deal(session=session, deal=deal, stage=_stage_of(session, deal, stage_id), by=user)
    return _done(request, f"/deals/{deal_id}")


@router.post("/deals/{deal_id}/lose", dependencies=[Csrf])
def lose(request: Request, session: DB, user: Viewer, deal_id: Id, reason: Annotated[str, Form()] = "") -> Response:
    deal = _deal_for(session, user, deal_id)
    found = (
        get_or_create_loss_reason(session=session, account=auth.account_of(session=session, user=user), name=reason)
        if reason.strip()
        else None
    )
    lose_deal(session=session, deal=deal, reason=found)
    return _done(request, f"/deals/{deal_id}")


@router.post("/deals/{deal_id}/win", dependencies=[Csrf])
def win(request: Request, session: DB, user: Viewer, deal_id: Id) -> Response:
    win_deal(session=session, deal=_deal_for(session, user, deal_id), by=user)
    return _done(request, f"/deals/{deal_id}")


@router.post("/deals/{deal_id}/reopen", dependencies=[Csrf])
def reopen(request: Request, session: DB, user: Viewer, deal_id: Id) -> Response:
    reopen_deal(session=session, deal=_deal_for(session, user, deal_id))
    return _done(request, f"/deals/{deal_id}")


def _done(request: Request, url: str) -> Response:
    """A script asks for JSON (the kanban's drag and drop); a form gets the page back."""
    if "json" in request.headers.get("accept", ""):
        return Response('{"ok": true}', media_type="application/json")
    return back(url)  # never the Referer header: only our own path


@router.get("/deals/{deal_id}")
def deal_card(request: Request, session: DB, user: Viewer, deal_id: Id) -> HTMLResponse:
    deal = _deal_for(session, user, deal_id)
    stages = {s.id: s for s in session.scalars(select(Stage).where(Stage.pipeline_id == deal.pipeline_id))}
    history = list(
        session.scalars(
            select(StageChange).where(StageChange.deal_id == deal.id).order_by(StageChange.at, StageChange.id)
        )
    )
    calls = list(session.scalars(select(CallAttempt).where(CallAttempt.deal_id == deal.id).order_by(CallAttempt.at)))
    notes = list(session.scalars(select(Note).where(Note.deal_id == deal.id).order_by(Note.created_at)))
    names = {u.id: u.name for u in session.scalars(select(User).where(User.account_id == deal.account_id))}
    source = session.get(Source, deal.source_id) if deal.source_id else None
    reason = session.get(LossReason, deal.loss_reason_id) if deal.loss_reason_id else None
    reasons = list(
        session.scalars(select(LossReason).where(LossReason.account_id == deal.account_id).order_by(LossReason.name))
    )
    context = {
        "user": user,
        "deal": deal,
        "stages": stages,
        "history": history,
        "calls": calls,
        "notes": notes,
        "names": names,
        "source": source,
        "reason": reason,
        "reasons": reasons,
        "outcomes": list(CallOutcome),
        "ordered": sorted(stages.values(), key=lambda s: s.position),
    }
    return render(request, "deal.html", context)


@router.post("/deals/{deal_id}/calls", dependencies=[Csrf])
def add_call(
    session: DB,
    user: Viewer,
    deal_id: Id,
    outcome: Annotated[str, Form()],
    outgoing_number: Annotated[str, Form()] = "",
) -> Response:
    deal = _deal_for(session, user, deal_id)
    try:
        chosen = CallOutcome(outcome)
    except ValueError:
        raise InvalidValue(field="outcome", value=outcome, hint=", ".join(o.value for o in CallOutcome)) from None
    log_call(session=session, deal=deal, outcome=chosen, outgoing_number=outgoing_number.strip() or None, manager=user)
    return back(f"/deals/{deal_id}")


@router.post("/deals/{deal_id}/notes", dependencies=[Csrf])
def add_note(session: DB, user: Viewer, deal_id: Id, text: Annotated[str, Form()]) -> Response:
    deal = _deal_for(session, user, deal_id)
    if text.strip():
        session.add(
            Note(
                account_id=deal.account_id,
                deal_id=deal.id,
                user_id=user.id,
                text=text.strip()[:4000],
                created_at=utcnow(),
            )
        )
    return back(f"/deals/{deal_id}")


# --- reports -------------------------------------------------------------------------------------
@router.get("/reports/stats")
def stats_page(
    request: Request, session: DB, user: Viewer, grain: str = "week", by: str | None = None, pipeline: str | None = None
) -> HTMLResponse:
    auth.require(user, Action.VIEW_REPORTS)
    report = views.stats(
        session=session,
        account=auth.account_of(session=session, user=user),
        user=user,
        t=translator(request),
        grain=grain,
        by=by or None,
        pipeline=pipeline,
    )
    return render(request, "stats.html", {"user": user, "report": report, "grain": grain, "by": by or ""})


@router.get("/reports/stats.xlsx")
def stats_workbook(
    request: Request, session: DB, user: Viewer, grain: str = "week", by: str | None = None, pipeline: str | None = None
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
def diagnosis_page(request: Request, session: DB, user: Viewer, pipeline: str | None = None) -> HTMLResponse:
    auth.require(user, Action.SEE_ALL_DEALS)
    found = views.diagnosis(
        session=session, account=auth.account_of(session=session, user=user), t=translator(request), pipeline=pipeline
    )
    return render(request, "diagnosis.html", {"user": user, "diagnosis": found})


@router.get("/reports/whatif")
def whatif_page(request: Request, session: DB, user: Viewer, pipeline: str | None = None) -> HTMLResponse:
    auth.require(user, Action.SEE_ALL_DEALS)
    settings = {k: v for k, v in request.query_params.items() if k.startswith("step_") or k in ("check", "leads")}
    found = views.whatif(
        session=session, account=auth.account_of(session=session, user=user), pipeline=pipeline, settings=settings
    )
    return render(request, "whatif.html", {"user": user, "whatif": found})


@router.get("/reports/hypotheses")
def hypotheses_page(request: Request, session: DB, user: Viewer) -> HTMLResponse:
    auth.require(user, Action.SEE_ALL_DEALS)
    account = auth.account_of(session=session, user=user)
    found = views.hypotheses(session=session, account=account)
    return render(request, "hypotheses.html", {"user": user, "hypotheses": found, "currency": account.currency})


@router.get("/reports/forecast")
def forecast_page(request: Request, session: DB, user: Viewer, pipeline: str | None = None) -> HTMLResponse:
    auth.require(user, Action.SEE_ALL_DEALS)
    found = views.forecast(session=session, account=auth.account_of(session=session, user=user), pipeline=pipeline)
    return render(request, "forecast.html", {"user": user, "forecast": found})


# --- settings ------------------------------------------------------------------------------------
@router.get("/settings")
def settings_page(request: Request, session: DB, user: Viewer) -> HTMLResponse:
    return _settings(request, session, user)


def _settings(request: Request, session: Session, user: User, **shown_once: str) -> HTMLResponse:
    """The settings page; ``shown_once`` holds a new secret (an API token, a form's address),
    shown in this answer only — never put in the cookie."""
    account = auth.account_of(session=session, user=user)
    admin = auth.can(user, Action.MANAGE_SETTINGS)
    context: dict[str, Any] = {
        "user": user,
        "admin": admin,
        "tokens": auth.tokens_of(session=session, user=user),
        "new_token": shown_once.get("new_token"),
        "new_form": shown_once.get("new_form"),
        "roles": list(Role),
    }
    if admin:
        context.update(
            account=account,
            pipelines=list_pipelines(session=session, account=account),
            users=list(session.scalars(select(User).where(User.account_id == account.id).order_by(User.name))),
            reasons=list(
                session.scalars(select(LossReason).where(LossReason.account_id == account.id).order_by(LossReason.name))
            ),
            sources=list(session.scalars(select(Source).where(Source.account_id == account.id).order_by(Source.name))),
            forms=views.lead_forms(session=session, account=account),
        )
    return render(request, "settings.html", context)


def _admin(session: Session, user: User) -> Account:
    auth.require(user, Action.MANAGE_SETTINGS)
    return auth.account_of(session=session, user=user)


@router.post("/settings/account", dependencies=[Csrf])
def settings_account(
    session: DB,
    user: Viewer,
    currency: Annotated[str, Form(max_length=3)],
    timezone: Annotated[str, Form(max_length=64)],
) -> Response:
    update_account(session=session, account=_admin(session, user), currency=currency, timezone=timezone)
    return back("/settings")


@router.post("/settings/users", dependencies=[Csrf])
def settings_add_user(
    session: DB,
    user: Viewer,
    name: Annotated[str, Form()],
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()],
) -> Response:
    try:
        chosen = Role(role)
    except ValueError:
        raise InvalidValue(field="role", value=role, hint=", ".join(r.value for r in Role)) from None
    auth.add_user(
        session=session, account=_admin(session, user), name=name, email=email, password=password, role=chosen
    )
    return back("/settings")


@router.post("/settings/tokens", dependencies=[Csrf])
def settings_add_token(request: Request, session: DB, user: Viewer, name: Annotated[str, Form()] = "API") -> Response:
    made = auth.create_api_token(session=session, user=user, name=name)
    return _settings(request, session, user, new_token=made.plain)


@router.post("/settings/tokens/{token_id}/revoke", dependencies=[Csrf])
def settings_revoke_token(session: DB, user: Viewer, token_id: Id) -> Response:
    auth.revoke_api_token(session=session, user=user, token_id=token_id)
    return back("/settings")


@router.post("/settings/forms", dependencies=[Csrf])
def settings_add_form(
    request: Request,
    session: DB,
    user: Viewer,
    name: Annotated[str, Form()],
    pipeline_id: Annotated[int, Form()],
    source: Annotated[str, Form()] = "",
) -> Response:
    account = _admin(session, user)
    pipeline = _pipeline_of_account(session, account, pipeline_id)
    from voronka.crm.leads import add_lead_form

    _, token = add_lead_form(
        session=session, account=account, pipeline=pipeline, name=name, source=source.strip() or None
    )
    return _settings(request, session, user, new_form=f"/api/v1/webhooks/leads/{token}")


def _pipeline_of_account(session: Session, account: Account, pipeline_id: int) -> Pipeline:
    pipeline = session.get(Pipeline, pipeline_id)
    if pipeline is None or pipeline.account_id != account.id:
        raise InvalidValue(field="pipeline", value=str(pipeline_id), hint="one of your pipelines")
    return pipeline


def _stage_of_account(session: Session, account: Account, stage_id: int) -> Stage:
    stage = session.get(Stage, stage_id)
    pipeline = session.get(Pipeline, stage.pipeline_id) if stage else None
    if stage is None or pipeline is None or pipeline.account_id != account.id:
        raise InvalidValue(field="stage", value=str(stage_id), hint="a stage of your pipelines")
    return stage


@router.post("/settings/stages/{stage_id}/rename", dependencies=[Csrf])
def settings_rename_stage(session: DB, user: Viewer, stage_id: Id, name: Annotated[str, Form()]) -> Response:
    stage = _stage_of_account(session, _admin(session, user), stage_id)
    rename_stage(session=session, stage=stage, name=name)
    return back("/settings")


@router.post("/settings/stages/{stage_id}/move", dependencies=[Csrf])
def settings_move_stage(session: DB, user: Viewer, stage_id: Id, by: Annotated[int, Form(ge=-1, le=1)]) -> Response:
    move_stage(session=session, stage=_stage_of_account(session, _admin(session, user), stage_id), by=by)
    return back("/settings")


@router.post("/settings/pipelines/{pipeline_id}/stages", dependencies=[Csrf])
def settings_add_stage(
    session: DB, user: Viewer, pipeline_id: Id, name: Annotated[str, Form()], before: Annotated[int, Form()] = 0
) -> Response:
    account = _admin(session, user)
    pipeline = _pipeline_of_account(session, account, pipeline_id)
    ahead = _stage_of_account(session, account, before) if before else None
    add_stage(session=session, pipeline=pipeline, name=name, before=ahead)
    return back("/settings")


@router.post("/settings/plans", dependencies=[Csrf])
def settings_plan(
    session: DB,
    user: Viewer,
    pipeline_id: Annotated[int, Form()],
    month: Annotated[str, Form()],
    metric: Annotated[str, Form()],
    value: Annotated[str, Form()],
) -> Response:
    from voronka.analysis.stats.inputs import parse_month, set_plan
    from voronka.analysis.stats.metrics import metrics_for

    account = _admin(session, user)
    pipeline = _pipeline_of_account(session, account, pipeline_id)
    metrics = metrics_for([s.name for s in pipeline.stages])
    set_plan(
        session=session, account=account, pipeline=pipeline, metrics=metrics, month=parse_month(month),
        metric=metric, value=value,
    )  # fmt: skip
    return back("/settings")


@router.post("/settings/spend", dependencies=[Csrf])
def settings_spend(
    session: DB,
    user: Viewer,
    source: Annotated[str, Form()],
    month: Annotated[str, Form()],
    amount: Annotated[str, Form()],
) -> Response:
    from voronka.analysis.stats.inputs import parse_month, set_spend

    account = _admin(session, user)
    spent = parse_amount(amount, account.currency)
    if spent is None:
        raise InvalidValue(field="amount", value=amount, hint="a sum such as 50 000")
    set_spend(
        session=session, account=account, source=source.strip(), start=parse_month(month), kind="month",
        amount=spent,
    )  # fmt: skip
    return back("/settings")


@router.post("/settings/reasons", dependencies=[Csrf])
def settings_add_reason(session: DB, user: Viewer, name: Annotated[str, Form()]) -> Response:
    get_or_create_loss_reason(session=session, account=_admin(session, user), name=name.strip())
    return back("/settings")


@router.post("/settings/sources", dependencies=[Csrf])
def settings_add_source(session: DB, user: Viewer, name: Annotated[str, Form()]) -> Response:
    get_or_create_source(session=session, account=_admin(session, user), name=name.strip())
    return back("/settings")
