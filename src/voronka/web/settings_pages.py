"""The settings pages: the account, its people, API tokens, lead forms, stages, plans and spend,
sources and loss reasons.

Every route is a thin call into the library; what a user may see and do is decided by
``voronka.crm.auth`` (roles), and every form carries the session's CSRF token.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from voronka.crm import auth
from voronka.crm.accounts import (
    get_or_create_loss_reason,
    get_or_create_source,
    list_loss_reasons,
    list_pipelines,
    list_sources,
    list_users,
    update_account,
    user_named,
)
from voronka.crm.auth import Action
from voronka.crm.cards import pipeline_of
from voronka.crm.catalogues import archive, reason_of, rename_reason, rename_source, source_of
from voronka.crm.leads import add_lead_form, lead_form_of, set_form_assignment
from voronka.crm.pipelines import add_stage, move_stage, remove_stage, rename_stage, stage_of
from voronka.errors import InvalidValue
from voronka.models import (
    Account,
    AssignRule,
    LeadForm,
    LossReason,
    Pipeline,
    Role,
    Source,
    Stage,
    User,
)
from voronka.money import parse_amount
from voronka.web import views
from voronka.web.deps import DB, MAX_ID, AppSettings, FormId, Id
from voronka.web.render import back, render
from voronka.web.security import Csrf, Viewer, seal_shown_once, translator, unseal_shown_once

router = APIRouter(include_in_schema=False)
Name = Annotated[str, Form(max_length=200)]


# --- settings ------------------------------------------------------------------------------------
@router.get("/settings")
def settings_page(
    request: Request,
    session: DB,
    user: Viewer,
    settings: AppSettings,
    token: Annotated[str | None, Query(max_length=2000)] = None,
    form: Annotated[str | None, Query(max_length=2000)] = None,
) -> HTMLResponse:
    """The page; ``token``/``form`` carry a new secret sealed for this user (see ``seal_shown_once``)."""
    key = settings.session_key()
    return _settings(
        request,
        session,
        user,
        new_token=unseal_shown_once(token, key=key, user_id=user.id) or "",
        new_form=unseal_shown_once(form, key=key, user_id=user.id) or "",
    )


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
    if auth.can(user, Action.SET_PLANS):
        context.update(views.planning(session=session, account=account, t=translator(request)))
    if admin:
        context.update(
            account=account,
            pipelines=list_pipelines(session=session, account=account),
            users=list_users(session=session, account=account),
            reasons=list_loss_reasons(session=session, account=account),
            sources=list_sources(session=session, account=account),
            forms=views.lead_forms(session=session, account=account),
        )
    return render(request, "settings.html", context)


def _planner(session: Session, user: User) -> Account:
    auth.require(user, Action.SET_PLANS)
    return auth.account_of(session=session, user=user)


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
    role: Annotated[str, Form()] = Role.MANAGER.value,
) -> Response:
    chosen = _role(role)
    auth.add_user(
        session=session, account=_admin(session, user), name=name, email=email, password=password, role=chosen
    )
    return back("/settings")


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidValue(field="role", value=role, hint=", ".join(r.value for r in Role)) from None


@router.post("/settings/users/{user_id}/role", dependencies=[Csrf])
def settings_user_role(session: DB, user: Viewer, user_id: Id, role: Annotated[str, Form(max_length=16)]) -> Response:
    target = auth.user_of_account(session=session, account=_admin(session, user), user_id=user_id)
    auth.set_role(session=session, user=target, role=_role(role))
    return back("/settings")


@router.post("/settings/users/{user_id}/password", dependencies=[Csrf])
def settings_user_password(
    session: DB, user: Viewer, user_id: Id, password: Annotated[str, Form(max_length=200)]
) -> Response:
    target = auth.user_of_account(session=session, account=_admin(session, user), user_id=user_id)
    auth.set_password(session=session, user=target, password=password)
    return back("/settings")


@router.post("/settings/users/{user_id}/deactivate", dependencies=[Csrf])
def settings_user_deactivate(session: DB, user: Viewer, user_id: Id) -> Response:
    target = auth.user_of_account(session=session, account=_admin(session, user), user_id=user_id)
    if target.id == user.id:
        raise InvalidValue(field="user", value=target.name, hint="another owner deactivates you, not yourself")
    auth.deactivate_user(session=session, user=target)
    return back("/settings")


@router.post("/settings/tokens", dependencies=[Csrf])
def settings_add_token(
    session: DB, user: Viewer, settings: AppSettings, name: Annotated[str, Form()] = "API"
) -> Response:
    made = auth.create_api_token(session=session, user=user, name=name)
    # Post/redirect/get: a reload shows the page again, never makes a second token.
    sealed = seal_shown_once(made.plain, key=settings.session_key(), user_id=user.id)
    return back("/settings?" + urlencode({"token": sealed}) + "#shown-once")


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
    pipeline_id: FormId,
    settings: AppSettings,
    source: Annotated[str, Form()] = "",
    assign: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    account = _admin(session, user)
    pipeline = _pipeline_of_account(session, account, pipeline_id)
    form, token = add_lead_form(
        session=session, account=account, pipeline=pipeline, name=name, source=source.strip() or None
    )
    _assign(session, account, form, assign)
    address = str(request.base_url).rstrip("/") + f"/api/v1/webhooks/leads/{token}"
    sealed = seal_shown_once(address, key=settings.session_key(), user_id=user.id)
    return back("/settings?" + urlencode({"form": sealed}) + "#shown-once")


def _assign(session: Session, account: Account, form: LeadForm, choice: str) -> None:
    """``choice`` as the settings form sends it: "" (nobody), "round_robin", or a user's name."""
    if choice in ("", AssignRule.NONE.value):
        set_form_assignment(session=session, form=form, rule=AssignRule.NONE)
    elif choice == AssignRule.ROUND_ROBIN.value:
        set_form_assignment(session=session, form=form, rule=AssignRule.ROUND_ROBIN)
    else:
        manager = user_named(session=session, account=account, name=choice)
        set_form_assignment(session=session, form=form, rule=AssignRule.MANAGER, manager=manager)


@router.post("/settings/forms/{form_id}/assign", dependencies=[Csrf])
def settings_form_assign(
    session: DB, user: Viewer, form_id: Id, assign: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    account = _admin(session, user)
    _assign(session, account, lead_form_of(session=session, account=account, form_id=form_id), assign)
    return back("/settings")


def _pipeline_of_account(session: Session, account: Account, pipeline_id: int) -> Pipeline:
    return pipeline_of(session=session, account_id=account.id, pipeline_id=pipeline_id)


def _stage_of_account(session: Session, account: Account, stage_id: int) -> Stage:
    return stage_of(session=session, account_id=account.id, stage_id=stage_id)


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
    session: DB,
    user: Viewer,
    pipeline_id: Id,
    name: Annotated[str, Form()],
    before: Annotated[int, Form(ge=0, le=MAX_ID)] = 0,
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
    pipeline_id: FormId,
    month: Annotated[str, Form()],
    metric: Annotated[str, Form()],
    value: Annotated[str, Form()],
    cut: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    from voronka.analysis.stats.inputs import parse_month, set_plan
    from voronka.analysis.stats.metrics import metrics_for

    account = _planner(session, user)
    pipeline = _pipeline_of_account(session, account, pipeline_id)
    metrics = metrics_for([s.name for s in pipeline.stages])
    kind, _, name = cut.partition(":")
    set_plan(
        session=session, account=account, pipeline=pipeline, metrics=metrics, month=parse_month(month),
        metric=metric, value=value, manager=name if kind == "manager" else None,
        source=name if kind == "source" else None,
    )  # fmt: skip
    return back("/settings#plans")


@router.post("/settings/plans/{plan_id}/delete", dependencies=[Csrf])
def settings_plan_delete(session: DB, user: Viewer, plan_id: Id) -> Response:
    from voronka.analysis.stats.inputs import delete_plan

    delete_plan(session=session, account=_planner(session, user), plan_id=plan_id)
    return back("/settings#plans")


@router.post("/settings/spend/{spend_id}/delete", dependencies=[Csrf])
def settings_spend_delete(session: DB, user: Viewer, spend_id: Id) -> Response:
    from voronka.analysis.stats.inputs import delete_spend

    delete_spend(session=session, account=_planner(session, user), spend_id=spend_id)
    return back("/settings#spend")


@router.post("/settings/stages/{stage_id}/remove", dependencies=[Csrf])
def settings_remove_stage(
    session: DB,
    user: Viewer,
    stage_id: Id,
    into: Annotated[int, Form(ge=1, le=2**63 - 1)],
    confirm: Annotated[bool, Form()] = False,
) -> Response:
    account = _admin(session, user)
    stage = _stage_of_account(session, account, stage_id)
    if not confirm:  # one click must not delete a stage: the form asks to tick "I understand"
        raise InvalidValue(field="confirm", value=stage.name, hint="tick the confirmation to delete the stage")
    remove_stage(session=session, stage=stage, into=_stage_of_account(session, account, into), by=user)
    return back("/settings#pipelines")


Listed = Literal["sources", "reasons"]
"""The account's own lists a setting renames, merges or archives."""


def _listed(session: Session, account: Account, kind: Listed, item_id: int) -> Source | LossReason:
    if kind == "sources":
        return source_of(session=session, account_id=account.id, source_id=item_id)
    return reason_of(session=session, account_id=account.id, reason_id=item_id)


@router.post("/settings/{kind}/{item_id}/rename", dependencies=[Csrf])
def settings_rename_listed(session: DB, user: Viewer, kind: Listed, item_id: Id, name: Name) -> Response:
    """Rename a source or loss reason; a name another one has merges the two."""
    account = _admin(session, user)
    item = _listed(session, account, kind, item_id)
    if isinstance(item, Source):
        rename_source(session=session, source=item, name=name)
    else:
        rename_reason(session=session, reason=item, name=name)
    return back(f"/settings#{kind}")


@router.post("/settings/{kind}/{item_id}/archive", dependencies=[Csrf])
def settings_archive_listed(
    session: DB, user: Viewer, kind: Listed, item_id: Id, archived: Annotated[bool, Form()]
) -> Response:
    account = _admin(session, user)
    archive(session=session, item=_listed(session, account, kind, item_id), archived=archived)
    return back(f"/settings#{kind}")


@router.post("/settings/spend", dependencies=[Csrf])
def settings_spend(
    session: DB,
    user: Viewer,
    source: Annotated[str, Form()],
    month: Annotated[str, Form()],
    amount: Annotated[str, Form()],
) -> Response:
    from voronka.analysis.stats.inputs import parse_month, set_spend

    account = _planner(session, user)
    spent = parse_amount(amount, account.currency)
    if spent is None:
        raise InvalidValue(field="amount", value=amount, hint="a sum such as 50 000")
    set_spend(
        session=session, account=account, source=source.strip(), start=parse_month(month), kind="month",
        amount=spent,
    )  # fmt: skip
    return back("/settings#spend")


@router.post("/settings/reasons", dependencies=[Csrf])
def settings_add_reason(session: DB, user: Viewer, name: Annotated[str, Form()]) -> Response:
    get_or_create_loss_reason(session=session, account=_admin(session, user), name=name.strip())
    return back("/settings")


@router.post("/settings/sources", dependencies=[Csrf])
def settings_add_source(session: DB, user: Viewer, name: Annotated[str, Form()]) -> Response:
    get_or_create_source(session=session, account=_admin(session, user), name=name.strip())
    return back("/settings")
