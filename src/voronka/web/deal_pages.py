"""The working day's pages: the deals list and search, the kanban, the deal card and its edits,
new deals (with a duplicate check by phone), tasks and "my tasks", and undo.

Each route reads its form, calls one library service and renders or redirects.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from voronka.crm import auth, tasks
from voronka.crm.accounts import (
    find_pipeline,
    get_or_create_loss_reason,
    source_named,
    user_named,
)
from voronka.crm.auth import Action
from voronka.crm.cards import add_note, deal_card, deal_pipeline_stages, open_deal
from voronka.crm.deals import (
    check_contact_email,
    create_deal,
    log_call,
    lose_deal,
    move_deal,
    reopen_deal,
    update_deal,
    win_deal,
)
from voronka.crm.history import undo_last
from voronka.crm.new_deal import NewDeal
from voronka.crm.search import open_deals_with_phone, phone_in_work_elsewhere
from voronka.errors import InvalidValue
from voronka.models import CallOutcome, Stage, TaskKind
from voronka.money import format_minor, parse_amount
from voronka.timeutil import to_local, to_utc, utcnow, zone
from voronka.web import deal_views
from voronka.web.deps import DB, Id
from voronka.web.queries import DealListParams, KanbanParams
from voronka.web.render import back, local_path, render
from voronka.web.security import Csrf, PipelineChoice, Viewer, translator

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=4000)]


# --- lists ---------------------------------------------------------------------------------------
@router.get("/deals")
def deal_list(
    request: Request,
    session: DB,
    user: Viewer,
    params: Annotated[DealListParams, Query()],
    pipeline: PipelineChoice = None,
) -> HTMLResponse:
    listing = deal_views.deal_list(session=session, user=user, query=params.query(pipeline))
    return render(request, "deals.html", {"user": user, "listing": listing})


@router.get("/search")
def search(request: Request, session: DB, user: Viewer, q: str = "") -> Response:
    """Search from every page: one match opens its card, several are listed; ``#2955`` is a deal's
    number (its card, or "nothing found" if the user may not open it)."""
    query = deal_views.DealListQuery(text=q.strip() or None)
    listing = deal_views.deal_list(session=session, user=user, query=query, everywhere=True)
    if listing.page.total == 1:
        return back(f"/deals/{listing.page.rows[0].id}")
    return render(request, "deals.html", {"user": user, "listing": listing})


@router.get("/kanban")
def kanban(
    request: Request,
    session: DB,
    user: Viewer,
    params: Annotated[KanbanParams, Query()],
    pipeline: PipelineChoice = None,
) -> HTMLResponse:
    board = deal_views.kanban(session=session, user=user, query=params.query(pipeline))
    return render(request, "kanban.html", {"user": user, "board": board})


@router.get("/tasks")
def my_tasks(request: Request, session: DB, user: Viewer) -> HTMLResponse:
    view = deal_views.task_lists(session=session, user=user)
    return render(request, "tasks.html", {"user": user, "view": view, "outcomes": list(CallOutcome)})


@router.get("/leads/new/count")
def new_lead_badge(request: Request, session: DB, user: Viewer) -> HTMLResponse:
    """The menu's count of new, untouched leads: a fragment htmx fetches on every page and again
    every 30 seconds, so a lead shows up without a reload."""
    count = tasks.new_lead_count(session=session, user=user)
    if not count:
        return HTMLResponse("")
    label = translator(request)("web.new_leads_badge", count=count)
    return HTMLResponse(f'<span class="badge" title="{escape(label)}">{count}</span>')


# --- new deals -----------------------------------------------------------------------------------
@router.get("/deals/new")
def new_deal_form(request: Request, session: DB, user: Viewer, pipeline: PipelineChoice = None) -> HTMLResponse:
    form = deal_views.new_deal_form(session=session, user=user, pipeline=pipeline, values={})
    return render(request, "deal_new.html", {"user": user, "form": form})


@router.post("/deals", dependencies=[Csrf])
def create(
    request: Request,
    session: DB,
    user: Viewer,
    title: Annotated[str, Form(max_length=300)] = "",
    contact_name: Annotated[str, Form(max_length=200)] = "",
    phone: Annotated[str, Form(max_length=50)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
    amount: Annotated[str, Form(max_length=40)] = "",
    currency: Annotated[str, Form(max_length=3)] = "",
    manager: Annotated[str, Form(max_length=200)] = "",
    source: Annotated[str, Form(max_length=200)] = "",
    pipeline: Annotated[str, Form(max_length=200)] = "",
    duplicate_ok: Annotated[bool, Form()] = False,
) -> Response:
    auth.require(user, Action.WORK_DEALS)
    account = auth.account_of(session=session, user=user)
    values = {
        "title": title, "contact_name": contact_name, "phone": phone, "email": email, "amount": amount,
        "currency": currency, "manager": manager, "source": source, "pipeline": pipeline,
    }  # fmt: skip
    duplicates = [] if duplicate_ok else open_deals_with_phone(session=session, user=user, account=account, phone=phone)
    elsewhere = (
        [] if duplicate_ok else phone_in_work_elsewhere(session=session, user=user, account=account, phone=phone)
    )
    if duplicates or elsewhere:
        form = deal_views.new_deal_form(
            session=session, user=user, pipeline=pipeline or None, values=values, duplicates=duplicates,
            elsewhere=elsewhere,
        )  # fmt: skip
        return render(request, "deal_new.html", {"user": user, "form": form}, status=409)
    chosen_currency = (currency or account.currency).upper()
    chosen = find_pipeline(session=session, account=account, name=pipeline or None)
    new = NewDeal(
        currency=chosen_currency,
        title=title.strip() or contact_name.strip() or phone.strip() or None,
        contact_name=contact_name.strip() or None,
        phone=phone,
        email=check_contact_email(email),
        amount=parse_amount(amount, chosen_currency),
        manager=auth.deal_manager(session=session, account=account, user=user, requested=manager or None),
        source=source_named(session=session, account=account, name=source),
    )
    deal = create_deal(session=session, pipeline=chosen, new=new, by=user)
    return back(f"/deals/{deal.id}")


# --- the deal card -------------------------------------------------------------------------------
@router.get("/deals/{deal_id}")
def card(request: Request, session: DB, user: Viewer, deal_id: Id) -> HTMLResponse:
    view = deal_card(session=session, user=user, deal_id=deal_id)
    account = auth.account_of(session=session, user=user)
    deal = view.deal
    context = {
        "user": user,
        "card": view,
        "outcomes": list(CallOutcome),
        "kinds": list(TaskKind),
        "can_assign": auth.can(user, Action.SEE_ALL_DEALS),
        "now": utcnow(),
        "today": to_local(utcnow(), zone(account.timezone)).date().isoformat(),
        "amount_text": format_minor(deal.amount, deal.currency) if deal.amount is not None else "",
    }
    return render(request, "deal.html", context)


@router.post("/deals/{deal_id}/edit", dependencies=[Csrf])
async def edit(request: Request, session: DB, user: Viewer, deal_id: Id) -> Response:
    deal = open_deal(session=session, user=user, deal_id=deal_id)
    account = auth.account_of(session=session, user=user)
    form = await request.form()
    given = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    currency = (given.get("currency") or deal.currency).strip().upper()
    changes: dict[str, object] = {
        "title": given.get("title", deal.title),
        "contact_name": given.get("contact_name", deal.contact_name),
        "phone": given.get("phone", deal.phone),
        "email": given.get("email", deal.email),
        "currency": currency,
        "amount": parse_amount(given.get("amount", ""), currency),
        "source": source_named(session=session, account=account, name=given.get("source")),
        "custom": deal_views.custom_fields(given, deal.custom),
    }
    if "manager" in given:  # the form offers it to those who may reassign; the library checks the role
        changes["manager"] = user_named(session=session, account=account, name=given.get("manager"))
    update_deal(session=session, deal=deal, changes=changes, by=user)
    return back(f"/deals/{deal_id}")


def _stage_of(stage_id: int, stages: list[Stage]) -> Stage:
    stage = next((s for s in stages if s.id == stage_id), None)
    if stage is None:
        raise InvalidValue(field="stage", value=str(stage_id), hint="a stage of the deal's pipeline")
    return stage


@router.post("/deals/{deal_id}/move", dependencies=[Csrf])
def move(
    request: Request, session: DB, user: Viewer, deal_id: Id, stage_id: Annotated[int, Form(ge=1, le=2**63 - 1)]
) -> Response:
    deal = open_deal(session=session, user=user, deal_id=deal_id)
    move_deal(session=session, deal=deal, stage=_stage_of(stage_id, deal_pipeline_stages(session, deal)), by=user)
    return _done(request, f"/deals/{deal_id}")


@router.post("/deals/{deal_id}/lose", dependencies=[Csrf])
def lose(
    request: Request, session: DB, user: Viewer, deal_id: Id, reason: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    deal = open_deal(session=session, user=user, deal_id=deal_id)
    account = auth.account_of(session=session, user=user)
    found = get_or_create_loss_reason(session=session, account=account, name=reason.strip()) if reason.strip() else None
    lose_deal(session=session, deal=deal, reason=found, by=user)
    return _done(request, f"/deals/{deal_id}")


@router.post("/deals/{deal_id}/win", dependencies=[Csrf])
def win(
    request: Request, session: DB, user: Viewer, deal_id: Id, amount: Annotated[str, Form(max_length=40)] = ""
) -> Response:
    """Won; a deal without an amount is asked for one (the card's form and the kanban's dialog)."""
    deal = open_deal(session=session, user=user, deal_id=deal_id)
    win_deal(
        session=session, deal=deal, by=user, amount=parse_amount(amount, deal.currency) if amount.strip() else None
    )
    return _done(request, f"/deals/{deal_id}")


@router.post("/deals/{deal_id}/reopen", dependencies=[Csrf])
def reopen(request: Request, session: DB, user: Viewer, deal_id: Id) -> Response:
    reopen_deal(session=session, deal=open_deal(session=session, user=user, deal_id=deal_id), by=user)
    return _done(request, f"/deals/{deal_id}")


@router.post("/deals/{deal_id}/undo", dependencies=[Csrf])
def undo(request: Request, session: DB, user: Viewer, deal_id: Id) -> Response:
    """Take back the user's move, win or loss of the last few seconds."""
    undo_last(session=session, deal=open_deal(session=session, user=user, deal_id=deal_id), by=user)
    return _done(request, f"/deals/{deal_id}")


def _done(request: Request, url: str) -> Response:
    """A script asks for JSON (the kanban's drag and drop); a form gets the page back."""
    if "json" in request.headers.get("accept", ""):
        return Response('{"ok": true}', media_type="application/json")
    return back(url)  # never the Referer header: only our own path


@router.post("/deals/{deal_id}/calls", dependencies=[Csrf])
def add_call(
    session: DB,
    user: Viewer,
    deal_id: Id,
    outcome: Annotated[str, Form()],
    outgoing_number: Annotated[str, Form(max_length=50)] = "",
) -> Response:
    deal = open_deal(session=session, user=user, deal_id=deal_id)
    chosen = deal_views.call_outcome(outcome)
    assert chosen is not None
    log_call(session=session, deal=deal, outcome=chosen, outgoing_number=outgoing_number.strip() or None, manager=user)
    return back(f"/deals/{deal_id}")


@router.post("/deals/{deal_id}/notes", dependencies=[Csrf])
def note(session: DB, user: Viewer, deal_id: Id, text: Text) -> Response:
    add_note(session=session, deal=open_deal(session=session, user=user, deal_id=deal_id), user=user, text=text)
    return back(f"/deals/{deal_id}")


# --- tasks ---------------------------------------------------------------------------------------
@router.post("/deals/{deal_id}/tasks", dependencies=[Csrf])
def add_task(
    request: Request,
    session: DB,
    user: Viewer,
    deal_id: Id,
    kind: Annotated[str, Form()],
    due_date: Annotated[str, Form(max_length=10)],
    due_time: Annotated[str, Form(max_length=5)] = "12:00",
    responsible: Annotated[str, Form(max_length=200)] = "",
    text: Text = "",
) -> Response:
    deal = open_deal(session=session, user=user, deal_id=deal_id)
    account = auth.account_of(session=session, user=user)
    try:
        chosen_kind = TaskKind(kind)
        local = dt.datetime.combine(dt.date.fromisoformat(due_date), dt.time.fromisoformat(due_time or "12:00"))
    except ValueError:
        raise InvalidValue(
            field="task", value=f"{kind} {due_date} {due_time}", hint="a kind, a date and a time"
        ) from None
    owner = user_named(session=session, account=account, name=responsible) if responsible else user
    tasks.add_task(
        session=session,
        deal=deal,
        kind=chosen_kind,
        due_at=to_utc(local, zone(account.timezone)),
        responsible=owner or user,
        text=text,
        by=user,
    )
    return _done(request, f"/deals/{deal_id}")


@router.post("/tasks/{task_id}/done", dependencies=[Csrf])
def task_done(
    request: Request,
    session: DB,
    user: Viewer,
    task_id: Id,
    outcome: Annotated[str, Form()] = "",
    outgoing_number: Annotated[str, Form(max_length=50)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    task, deal = tasks.get_task(session=session, user=user, task_id=task_id)
    tasks.complete_task(
        session=session,
        task=task,
        deal=deal,
        by=user,
        call_outcome=deal_views.call_outcome(outcome) if outcome else None,
        outgoing_number=outgoing_number.strip() or None,
    )
    return _done(request, local_path(next) if next else f"/deals/{deal.id}")


@router.post("/tasks/{task_id}/reopen", dependencies=[Csrf])
def task_reopen(
    request: Request, session: DB, user: Viewer, task_id: Id, next: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    task, deal = tasks.get_task(session=session, user=user, task_id=task_id)
    tasks.reopen_task(session=session, task=task, deal=deal, by=user)
    return _done(request, local_path(next) if next else f"/deals/{deal.id}")
