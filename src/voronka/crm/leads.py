"""Lead capture: a website form posts a lead, a deal appears in the pipeline's first stage.

Field names are matched loosely (case-folded), so a plain HTML form, a JSON client and Tilda's form
webhook (``Name``, ``Phone``, ``Email``, ``formname``, ``tranid``, UTM fields; a ``test`` ping when
the webhook is set up) all work. The same request delivered twice — Tilda retries, a double click —
creates one deal: requests are remembered by Tilda's ``tranid`` or, without it, by their content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from voronka.crm.accounts import check_length, get_or_create_source, owned_row
from voronka.crm.auth import can_log_in, can_log_in_clause
from voronka.crm.deals import create_deal
from voronka.crm.history import record
from voronka.crm.new_deal import MAX_CUSTOM_VALUE, NewDeal
from voronka.crm.phones import MAX_PHONE
from voronka.crm.search import open_deal_of_client
from voronka.db import begin_write
from voronka.errors import InvalidValue, NotFound
from voronka.models import Account, AssignRule, Deal, LeadForm, LeadRequest, Pipeline, Role, User
from voronka.money import parse_amount
from voronka.timeutil import utcnow

NAME_FIELDS = ("name", "имя", "fio", "фио", "full_name", "contact")
PHONE_FIELDS = ("phone", "телефон", "tel", "phone_number")
EMAIL_FIELDS = ("email", "e-mail", "почта", "mail")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
IGNORED = frozenset({"tranid", "formid", "formname", "cookies", "token"})
MAX_FORM_NAME = 100
MAX_CONTACT_NAME = 200
MAX_EMAIL = 320
MAX_TITLE = 300
"""The deal's columns, checked here so both databases refuse (or keep) the same lead."""


@dataclass(frozen=True)
class Captured:
    deal: Deal
    created: bool
    """False when the same request had already made this deal, or the client's open deal took it."""
    repeated: bool = False
    """The client (same phone or e-mail) already had an open deal: the lead joined it."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_lead_form(
    *, session: Session, account: Account, pipeline: Pipeline, name: str, source: str | None = None
) -> tuple[LeadForm, str]:
    """A form with its webhook token (shown once; only its hash is kept)."""
    name = check_length(name.strip(), field="name", limit=MAX_FORM_NAME)
    source = check_length(source.strip(), field="source") if source else None
    token = secrets.token_urlsafe(24)
    form = LeadForm(
        account_id=account.id,
        pipeline_id=pipeline.id,
        name=name or "Form",
        source=source,
        token_hash=_token_hash(token),
        created_at=utcnow(),
    )
    session.add(form)
    session.flush()
    return form, token


def list_lead_forms(*, session: Session, account: Account) -> list[LeadForm]:
    return list(session.scalars(select(LeadForm).where(LeadForm.account_id == account.id).order_by(LeadForm.id)))


def lead_form_of(*, session: Session, account: Account, form_id: int) -> LeadForm:
    return owned_row(session=session, model=LeadForm, row_id=form_id, account_id=account.id, what="lead form")


def set_form_assignment(*, session: Session, form: LeadForm, rule: AssignRule, manager: User | None = None) -> None:
    """Who gets the form's leads from now on: nobody (the unassigned queue), ``manager``, or the
    active managers in turn."""
    if rule is AssignRule.MANAGER and (
        manager is None or manager.account_id != form.account_id or not can_log_in(manager)
    ):
        raise InvalidValue(field="manager", value=manager.name if manager else "", hint="an active user who can log in")
    form.assign_rule = AssignRule(rule).value
    form.assign_user_id = manager.id if rule is AssignRule.MANAGER and manager is not None else None
    session.flush()


def assignee(*, session: Session, form: LeadForm) -> User | None:
    """Who gets the form's next lead by its rule. Round robin goes through the account's managers
    who can log in (active, with an e-mail and a password) by id, after the one who got the previous
    lead: a name from imported history could never open the lead, nor be alerted of it. With none
    the lead waits unassigned."""
    rule = AssignRule(form.assign_rule)
    if rule is AssignRule.MANAGER:
        chosen = session.get(User, form.assign_user_id) if form.assign_user_id else None
        return chosen if chosen is not None and can_log_in(chosen) else None
    if rule is AssignRule.NONE:
        return None
    # The form's row is locked and read again (PostgreSQL; SQLite already holds the write lock), so
    # two leads at the same moment do not both go to the same manager.
    session.refresh(form, with_for_update=True)
    chosen = next_in_turn(session=session, account_id=form.account_id, after=form.last_assigned_user_id)
    if chosen is not None:
        form.last_assigned_user_id = chosen.id
    return chosen


def next_in_turn(*, session: Session, account_id: int, after: int | None) -> User | None:
    """The manager after ``after`` in the round robin's order (by id, wrapping round), among the
    account's managers who can log in; None when there is none."""
    managers = list(
        session.scalars(
            select(User)
            .where(User.account_id == account_id, can_log_in_clause(), User.role == Role.MANAGER.value)
            .order_by(User.id)
        )
    )
    if not managers:
        return None
    return next((m for m in managers if m.id > (after or 0)), managers[0])


def _join(
    session: Session, form: LeadForm, fingerprint: str, deal: Deal, at: dt.datetime, **contact: str | None
) -> Captured:
    """A repeat submission of a client whose deal is open: remembered on that deal's history (its
    manager is alerted from it, see ``alerts.events``) instead of a second deal for the next manager."""
    try:
        with session.begin_nested():
            session.add(LeadRequest(form_id=form.id, fingerprint=fingerprint, deal_id=deal.id, created_at=at))
    except IntegrityError:  # the same request at the same moment from another worker: already joined
        return Captured(deal, False, repeated=True)
    record(session, deal, "lead_repeated", None, when=at, form=form.name, **{k: v for k, v in contact.items() if v})
    session.flush()
    return Captured(deal, False, repeated=True)


def form_for_token(*, session: Session, token: str) -> LeadForm:
    form = session.scalars(select(LeadForm).where(LeadForm.token_hash == _token_hash(token))).first()
    if form is None:
        raise NotFound(what="lead form")
    return form


def is_test_ping(payload: Mapping[str, Any]) -> bool:
    """Tilda checks a new webhook by posting ``test=test``."""
    return {k.casefold() for k in payload} == {"test"}


def _first(fields: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = fields.get(name)
        if value:
            return value
    return None


def capture_lead(
    *, session: Session, form: LeadForm, payload: Mapping[str, Any], now: dt.datetime | None = None
) -> Captured:
    """The deal for a form request (made once per request), created ``now`` (the wall clock unless a
    caller holds its own, as a simulated week does).

    It reads (has this request been seen?) then writes: on SQLite the write transaction is taken
    first (BEGIN IMMEDIATE), so two processes capturing at once wait for each other instead of one
    failing to upgrade its read."""
    begin_write(session.connection())
    fields = {str(k).strip().casefold(): str(v).strip() for k, v in payload.items() if v is not None and str(v).strip()}
    if any("\x00" in key or "\x00" in value for key, value in fields.items()):
        raise InvalidValue(field="lead", value="…", hint="text without NUL characters")
    name, phone, email = _first(fields, NAME_FIELDS), _first(fields, PHONE_FIELDS), _first(fields, EMAIL_FIELDS)
    if not (name or phone or email):
        raise InvalidValue(field="lead", value="", hint="at least a name, phone or email field")
    check_length(name or "", field="name", limit=MAX_CONTACT_NAME)
    check_length(email or "", field="email", limit=MAX_EMAIL)
    if fields.get("utm_source"):
        check_length(fields["utm_source"], field="utm_source")
    fingerprint = hashlib.sha256(
        (fields.get("tranid") or json.dumps(sorted(fields.items()), ensure_ascii=False)).encode()
    ).hexdigest()
    earlier = session.scalars(
        select(LeadRequest).where(LeadRequest.form_id == form.id, LeadRequest.fingerprint == fingerprint)
    ).first()
    if earlier is not None:
        deal = session.get(Deal, earlier.deal_id)
        if deal is not None:
            return Captured(deal, False)
    pipeline = session.get(Pipeline, form.pipeline_id)
    account = session.get(Account, form.account_id)
    assert pipeline is not None
    assert account is not None
    source_name = fields.get("utm_source") or form.source
    known = {*NAME_FIELDS, *PHONE_FIELDS, *EMAIL_FIELDS, *IGNORED, "amount"}
    custom = {k: v for k, v in fields.items() if k not in known}
    if fields.get("formname"):
        custom["form"] = fields["formname"]
    amount = parse_amount(fields["amount"], account.currency) if fields.get("amount") else None
    if phone and len(phone) > MAX_PHONE:  # not a number we can dial, but the client's words: kept
        custom["phone"], phone = phone[:MAX_CUSTOM_VALUE], None
    now = now or utcnow()
    # Two posts of one client at once: the account's row is locked before looking for the client's
    # open deal (PostgreSQL; SQLite already holds the write lock), so the second finds the first's
    # deal and joins it instead of starting another for the next manager.
    session.execute(select(Account.id).where(Account.id == account.id).with_for_update())
    repeat = open_deal_of_client(session=session, account=account, phone=phone, email=email)
    if repeat is not None:
        return _join(session, form, fingerprint, repeat, now, name=name, phone=phone, email=email, source=source_name)
    lead = NewDeal(
        currency=account.currency,
        created_at=now,
        title=(name or phone or email or "")[:MAX_TITLE],  # an e-mail may be longer than a title
        contact_name=name,
        phone=phone,
        email=email,
        amount=amount,
        source=get_or_create_source(session=session, account=account, name=source_name) if source_name else None,
        manager=assignee(session=session, form=form),
        custom=custom,
    )
    deal = create_deal(session=session, pipeline=pipeline, new=lead)
    try:
        with session.begin_nested():
            session.add(LeadRequest(form_id=form.id, fingerprint=fingerprint, deal_id=deal.id, created_at=now))
    except IntegrityError:  # the same request, at the same moment, from another worker: keep theirs
        session.delete(deal)
        session.flush()
        earlier = session.scalars(
            select(LeadRequest).where(LeadRequest.form_id == form.id, LeadRequest.fingerprint == fingerprint)
        ).one()
        existing = session.get(Deal, earlier.deal_id)
        assert existing is not None
        return Captured(existing, False)
    return Captured(deal, True)
