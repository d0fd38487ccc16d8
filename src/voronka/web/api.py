"""REST API ``/api/v1``: deals, pipelines, stages, call attempts, funnel and statistics as JSON,
authenticated by API tokens (``Authorization: Bearer …``); lead capture by a form's own token."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from voronka.analysis.forecast_report import forecast_report, forecast_to_dict
from voronka.analysis.funnel.output import report_to_dict
from voronka.analysis.funnel.query import FunnelQuery, Rule, View
from voronka.analysis.funnel.report import run_funnel
from voronka.analysis.stats.output import report_to_dict as stats_to_dict
from voronka.analysis.stats.periods import Grain
from voronka.analysis.stats.report import StatsQuery, run_stats
from voronka.crm import auth
from voronka.crm.accounts import (
    find_pipeline,
    get_or_create_loss_reason,
    get_or_create_source,
    list_pipelines,
    list_sources,
    list_users,
    update_account,
)
from voronka.crm.auth import Action
from voronka.crm.cards import deal_calls, deal_sheet, pipeline_of
from voronka.crm.deals import (
    create_deal,
    get_deal,
    log_call,
    lose_deal,
    move_deal,
    reopen_deal,
    update_deal,
    win_deal,
)
from voronka.crm.leads import capture_lead, form_for_token, is_test_ping
from voronka.crm.new_deal import NewDeal
from voronka.crm.search import DealFilter, deals_by_ids, find_deals
from voronka.errors import InvalidValue
from voronka.i18n import Translator
from voronka.models import (
    CallOutcome,
    Deal,
    DealStatus,
    Pipeline,
    Stage,
    User,
)
from voronka.money import format_minor, parse_amount
from voronka.web.deps import DB, Id
from voronka.web.schemas import ForecastOut, FunnelOut, StatsOut
from voronka.web.security import api_user

router = APIRouter(prefix="/api/v1", tags=["api"])
Caller = Annotated[User, Depends(api_user)]


class StageOut(BaseModel):
    id: int
    position: int
    name: str


class PipelineOut(BaseModel):
    id: int
    name: str
    stages: list[StageOut]


class DealOut(BaseModel):
    id: int
    external_id: str | None
    pipeline: str
    stage: str
    stage_position: int
    status: str
    title: str | None
    contact_name: str | None
    phone: str | None
    email: str | None
    source: str | None
    manager: str | None
    amount: str | None = Field(description="Decimal string in the currency, e.g. 1200.50")
    currency: str
    loss_reason: str | None
    created_at: dt.datetime
    closed_at: dt.datetime | None
    custom: dict[str, Any]


class DealPage(BaseModel):
    items: list[DealOut]
    total: int
    page: int
    per_page: int


class DealIn(BaseModel):
    pipeline: str | None = Field(None, description="Pipeline name (default: the only one)")
    title: str | None = Field(None, max_length=300)
    contact_name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=50)
    email: str | None = Field(None, max_length=320)
    source: str | None = Field(None, max_length=200)
    manager: str | None = Field(None, max_length=200)
    amount: str | None = Field(None, max_length=40, description="e.g. 120000 or 120 000,50")
    external_id: str | None = Field(None, max_length=100)
    custom: dict[str, str] = Field(default_factory=dict)


class DealPatch(BaseModel):
    title: str | None = Field(None, max_length=300)
    contact_name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=50)
    email: str | None = Field(None, max_length=320)
    amount: str | None = Field(None, max_length=40)
    source: str | None = Field(None, max_length=200)
    manager: str | None = Field(None, max_length=200)


class MoveIn(BaseModel):
    stage: str = Field(..., min_length=1, max_length=200, description="Stage name or position")


class LoseIn(BaseModel):
    reason: str = Field(..., min_length=1, max_length=200)


class CallIn(BaseModel):
    outcome: CallOutcome
    outgoing_number: str | None = Field(None, max_length=50)
    duration_seconds: int = Field(0, ge=0, le=86_400)


class CallOut(BaseModel):
    id: int
    at: dt.datetime
    outcome: str
    outgoing_number: str | None
    duration_seconds: int


def _deal_out(session: Session, deal: Deal) -> DealOut:
    sheet = deal_sheet(session=session, deal=deal)
    return DealOut(
        id=deal.id,
        external_id=deal.external_id,
        pipeline=sheet.pipeline,
        stage=sheet.stage.name,
        stage_position=sheet.stage.position,
        status=deal.status,
        title=deal.title,
        contact_name=deal.contact_name,
        phone=deal.phone,
        email=deal.email,
        source=sheet.source,
        manager=sheet.manager,
        amount=format_minor(deal.amount, deal.currency) if deal.amount is not None else None,
        currency=deal.currency,
        loss_reason=sheet.loss_reason,
        created_at=deal.created_at,
        closed_at=deal.closed_at,
        custom=dict(deal.custom or {}),
    )


def _visible(session: Session, user: User, deal_id: int) -> Deal:
    deal = get_deal(session=session, deal_id=deal_id)
    auth.require_deal(user, deal)
    return deal


@router.get("/pipelines", response_model=list[PipelineOut], summary="Pipelines and their stages")
def pipelines(session: DB, user: Caller) -> list[PipelineOut]:
    return [
        PipelineOut(
            id=p.id, name=p.name, stages=[StageOut(id=s.id, position=s.position, name=s.name) for s in p.stages]
        )
        for p in list_pipelines(session=session, account=auth.account_of(session=session, user=user))
    ]


@router.get("/pipelines/{pipeline_id}/stages", response_model=list[StageOut], summary="A pipeline's stages")
def stages(session: DB, user: Caller, pipeline_id: Id) -> list[StageOut]:
    pipeline = pipeline_of(session=session, account_id=user.account_id, pipeline_id=pipeline_id)
    return [StageOut(id=s.id, position=s.position, name=s.name) for s in pipeline.stages]


@router.get("/deals", response_model=DealPage, summary="Deals, filtered and paginated")
def deals(
    session: DB,
    user: Caller,
    pipeline: str | None = None,
    status: DealStatus | None = None,
    stage: Annotated[int | None, Query(ge=1, le=1000, description="Stage position")] = None,
    source: str | None = None,
    manager: str | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DealPage:
    auth.require(user, Action.WORK_DEALS)
    account = auth.account_of(session=session, user=user)
    chosen = find_pipeline(session=session, account=account, name=pipeline)
    sources = {s.name: s.id for s in list_sources(session=session, account=account)}
    people = {u.name: u.id for u in list_users(session=session, account=account)}
    query = DealFilter(
        pipeline_id=chosen.id,
        status=status.value if status is not None else None,
        stage_ids=tuple(s.id for s in chosen.stages if s.position == stage) if stage is not None else None,
        source_id=sources.get(source, 0) if source is not None else None,  # an unknown name matches nothing
        manager_id=people.get(manager, 0) if manager is not None else None,
    )
    found = find_deals(
        session=session, user=user, account=account, query=query, page=page, per_page=per_page, by_id=True
    )
    items = deals_by_ids(session=session, ids=[r.id for r in found.rows])
    return DealPage(items=[_deal_out(session, d) for d in items], total=found.total, page=page, per_page=per_page)


class AccountOut(BaseModel):
    name: str
    currency: str = Field(description="ISO 4217; money reports are in it")
    timezone: str = Field(description="IANA zone; reports count days and months in it")


class AccountPatch(BaseModel):
    currency: str | None = Field(default=None, max_length=3)
    timezone: str | None = Field(default=None, max_length=64)


@router.get("/account", response_model=AccountOut, summary="The account's currency and time zone")
def account_settings(session: DB, user: Caller) -> AccountOut:
    account = auth.account_of(session=session, user=user)
    return AccountOut(name=account.name, currency=account.currency, timezone=account.timezone)


@router.patch("/account", response_model=AccountOut, summary="Set the account's currency or time zone (owner)")
def change_account(session: DB, user: Caller, body: AccountPatch) -> AccountOut:
    auth.require(user, Action.MANAGE_SETTINGS)
    account = auth.account_of(session=session, user=user)
    update_account(session=session, account=account, currency=body.currency, timezone=body.timezone)
    return AccountOut(name=account.name, currency=account.currency, timezone=account.timezone)


@router.post("/deals", response_model=DealOut, status_code=201, summary="Create a deal in the first stage")
def create(session: DB, user: Caller, body: DealIn) -> DealOut:
    auth.require(user, Action.WORK_DEALS)
    account = auth.account_of(session=session, user=user)
    pipeline = find_pipeline(session=session, account=account, name=body.pipeline)
    manager = auth.deal_manager(session=session, account=account, user=user, requested=body.manager)
    new = NewDeal(
        currency=account.currency,
        title=body.title,
        contact_name=body.contact_name,
        phone=body.phone,
        email=body.email,
        external_id=body.external_id,
        custom=dict(body.custom),
        manager=manager,
        amount=parse_amount(body.amount, account.currency) if body.amount else None,
        source=get_or_create_source(session=session, account=account, name=body.source) if body.source else None,
    )
    deal = create_deal(session=session, pipeline=pipeline, new=new, by=user)
    return _deal_out(session, deal)


@router.get("/deals/{deal_id}", response_model=DealOut, summary="One deal")
def read(session: DB, user: Caller, deal_id: Id) -> DealOut:
    return _deal_out(session, _visible(session, user, deal_id))


@router.patch("/deals/{deal_id}", response_model=DealOut, summary="Change a deal's details")
def update(session: DB, user: Caller, deal_id: Id, body: DealPatch) -> DealOut:
    deal = _visible(session, user, deal_id)
    account = auth.account_of(session=session, user=user)
    changes: dict[str, object] = {
        name: getattr(body, name)
        for name in ("title", "contact_name", "phone", "email")
        if getattr(body, name) is not None
    }
    if body.amount is not None:
        changes["amount"] = parse_amount(body.amount, deal.currency)
    if body.source is not None:
        changes["source"] = get_or_create_source(session=session, account=account, name=body.source)
    if body.manager is not None:
        manager = auth.deal_manager(session=session, account=account, user=user, requested=body.manager)
        if manager is not None:
            changes["manager"] = manager
    update_deal(session=session, deal=deal, changes=changes, by=user)
    return _deal_out(session, deal)


def _stage(pipeline: Pipeline, text: str) -> Stage:
    for stage in pipeline.stages:
        if text.strip().casefold() in (stage.name.casefold(), str(stage.position)):
            return stage
    raise InvalidValue(field="stage", value=text, hint=", ".join(s.name for s in pipeline.stages))


@router.post("/deals/{deal_id}/move", response_model=DealOut, summary="Move to a stage (the last one wins it)")
def move(session: DB, user: Caller, deal_id: Id, body: MoveIn) -> DealOut:
    deal = _visible(session, user, deal_id)
    pipeline = pipeline_of(session=session, account_id=deal.account_id, pipeline_id=deal.pipeline_id)
    move_deal(session=session, deal=deal, stage=_stage(pipeline, body.stage), by=user)
    return _deal_out(session, deal)


@router.post("/deals/{deal_id}/win", response_model=DealOut, summary="Close as won")
def win(session: DB, user: Caller, deal_id: Id) -> DealOut:
    deal = _visible(session, user, deal_id)
    win_deal(session=session, deal=deal, by=user)
    return _deal_out(session, deal)


@router.post("/deals/{deal_id}/lose", response_model=DealOut, summary="Close as lost, with a reason")
def lose(session: DB, user: Caller, deal_id: Id, body: LoseIn) -> DealOut:
    deal = _visible(session, user, deal_id)
    reason = get_or_create_loss_reason(
        session=session, account=auth.account_of(session=session, user=user), name=body.reason.strip()
    )
    lose_deal(session=session, deal=deal, reason=reason, by=user)
    return _deal_out(session, deal)


@router.post("/deals/{deal_id}/reopen", response_model=DealOut, summary="Open a closed deal again")
def reopen(session: DB, user: Caller, deal_id: Id) -> DealOut:
    deal = _visible(session, user, deal_id)
    reopen_deal(session=session, deal=deal, by=user)
    return _deal_out(session, deal)


@router.get("/deals/{deal_id}/calls", response_model=list[CallOut], summary="A deal's call attempts")
def calls(session: DB, user: Caller, deal_id: Id) -> list[CallOut]:
    deal = _visible(session, user, deal_id)
    found = deal_calls(session=session, deal=deal)
    return [
        CallOut(
            id=c.id, at=c.at, outcome=c.outcome, outgoing_number=c.outgoing_number, duration_seconds=c.duration_seconds
        )
        for c in found
    ]


@router.post("/deals/{deal_id}/calls", response_model=CallOut, status_code=201, summary="Log a call attempt")
def add_call(session: DB, user: Caller, deal_id: Id, body: CallIn) -> CallOut:
    deal = _visible(session, user, deal_id)
    call = log_call(
        session=session,
        deal=deal,
        outcome=body.outcome,
        outgoing_number=body.outgoing_number,
        duration_seconds=body.duration_seconds,
        manager=user,
    )
    return CallOut(
        id=call.id,
        at=call.at,
        outcome=call.outcome,
        outgoing_number=call.outgoing_number,
        duration_seconds=call.duration_seconds,
    )


@router.get(
    "/funnel",
    response_model=FunnelOut,
    response_model_by_alias=True,
    response_model_exclude_unset=True,  # "groups" and "timing" only when asked for, as the command prints
    summary="The funnel, as voronka funnel --format json prints it",
)
def funnel(
    request: Request,
    session: DB,
    user: Caller,
    pipeline: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    view: View = View.COHORT,
    rule: Rule = Rule.CUMULATIVE,
    by: Annotated[str | None, Query(max_length=100)] = None,
) -> FunnelOut:
    auth.require(user, Action.VIEW_REPORTS)
    query = FunnelQuery(
        pipeline=pipeline,
        date_from=date_from,
        date_to=date_to,
        view=view,
        rule=rule,
        by=by,
        manager_id=auth.report_scope(user),
    )
    account = auth.account_of(session=session, user=user)
    return FunnelOut.model_validate(
        report_to_dict(run_funnel(session=session, account=account, query=query), _t(request))
    )


@router.get(
    "/stats",
    response_model=StatsOut,
    response_model_by_alias=True,
    summary="The statistics template, as voronka stats --format json prints it",
)
def stats(
    request: Request,
    session: DB,
    user: Caller,
    pipeline: str | None = None,
    grain: Grain = Grain.WEEK,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    by: Annotated[str | None, Query(pattern="^(manager|source)$")] = None,
) -> StatsOut:
    auth.require(user, Action.VIEW_REPORTS)
    query = StatsQuery(
        pipeline=pipeline,
        date_from=date_from,
        date_to=date_to,
        grain=grain,
        by=by,
        manager_id=auth.report_scope(user),
    )
    account = auth.account_of(session=session, user=user)
    report = run_stats(session=session, account=account, query=query)
    return StatsOut.model_validate(stats_to_dict(report, _t(request)))


@router.get(
    "/forecast", response_model=ForecastOut, summary="The revenue forecast, as voronka forecast --format json prints it"
)
def forecast(request: Request, session: DB, user: Caller, pipeline: str | None = None) -> ForecastOut:
    auth.require(user, Action.VIEW_REPORTS)
    account = auth.account_of(session=session, user=user)
    chosen = find_pipeline(session=session, account=account, name=pipeline)
    report = forecast_report(session=session, account=account, pipeline=chosen, manager_id=auth.report_scope(user))
    return ForecastOut.model_validate(forecast_to_dict(report, _t(request).lang))


def _t(request: Request) -> Translator:
    lang = request.headers.get("Accept-Language", "en")[:2]
    return Translator(lang if lang in ("ru", "en") else "en")


@router.post("/webhooks/leads/{token}", summary="A website form's lead (JSON or form-encoded, Tilda too)")
async def lead_webhook(request: Request, token: str) -> dict[str, Any]:
    if "json" in request.headers.get("content-type", ""):
        try:
            body = await request.json()
        except ValueError:
            raise InvalidValue(field="body", value="…", hint="a JSON object or form fields") from None
        payload = body if isinstance(body, dict) else {}
    else:
        payload = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if is_test_ping(payload):
        return {"ok": True}
    return await run_in_threadpool(_capture, request.app.state.sessions, token, payload)


def _capture(sessions: Any, token: str, payload: dict[str, Any]) -> dict[str, Any]:
    with sessions() as session:
        captured = capture_lead(session=session, form=form_for_token(session=session, token=token), payload=payload)
        session.commit()
        return {"deal_id": captured.deal.id, "created": captured.created, "repeated": captured.repeated}
