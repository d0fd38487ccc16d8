"""Finding deals: the deals list with its filters and pages, search by name, phone, e-mail or id,
and the open deals that share a new client's phone (a likely duplicate).

Every query carries ``auth.visible_deals``: a manager finds only their own deals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session

from voronka.crm import auth
from voronka.crm.phones import KEY_DIGITS, national_digits, region_of
from voronka.errors import InvalidValue
from voronka.models import Account, Deal, DealStatus, StageReach, User
from voronka.timeutil import local_midnight_utc, zone

PER_PAGE = 50
MAX_PER_PAGE = 200
MAX_PAGE = 100_000
"""Pages beyond this are the last one asked for: the offset stays within the database's integers."""
MAX_QUERY = 200


@dataclass(frozen=True)
class DealRow:
    id: int
    title: str
    status: str
    stage_id: int
    amount: int | None
    currency: str
    manager_id: int | None
    source_id: int | None
    phone: str | None
    email: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class DealPage:
    rows: list[DealRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class DealFilter:
    """Which deals a list shows; every part is optional. ``created_from``/``created_to`` are UTC
    (``created_to`` exclusive); ``reached`` keeps deals that got at least to that stage position."""

    pipeline_id: int | None = None
    status: str | None = None
    reached: int | None = None
    stage_ids: tuple[int, ...] | None = None
    """Deals now in one of these stages."""
    manager_id: int | None = None
    unassigned: bool = False
    source_id: int | None = None
    text: str | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    furthest: int | None = None
    """Deals whose furthest stage is exactly this position (where a lost deal was lost)."""
    closed_from: dt.datetime | None = None
    closed_to: dt.datetime | None = None
    reached_from: dt.datetime | None = None
    """With ``reached``: deals that reached that stage in [``reached_from``, ``reached_to``)."""
    reached_to: dt.datetime | None = None


FIGURES = ("reached", "lost")
VIEWS = ("cohort", "period")


@dataclass(frozen=True)
class Figure:
    """A figure of a funnel report that links to its deals: ``kind`` ``reached`` (deals that got to
    stage ``position``) or ``lost`` (deals lost there), in ``view`` ``cohort`` (deals created in the
    dates) or ``period`` (what happened in the dates), ``date_to`` exclusive, local dates."""

    kind: str
    position: int
    view: str = "cohort"
    date_from: dt.date | None = None
    date_to: dt.date | None = None


def deals_behind(*, figure: Figure, timezone: str, base: DealFilter | None = None) -> DealFilter:
    """The deals a figure counts, as a deals-list filter — the one definition every link from a
    figure (the dashboard's bars, funnel table, money lost per stage) goes through, so a figure of
    89 lists 89 deals. Counted as ``voronka.analysis.funnel`` counts (its cumulative rule): reached
    in a cohort is created in the dates and got at least that far; reached in a period is reached
    that stage in the dates; lost is closed lost with that stage its furthest, created (cohort) or
    closed (period) in the dates."""
    if figure.kind not in FIGURES:
        raise InvalidValue(field="figure", value=figure.kind, hint=", ".join(FIGURES))
    if figure.view not in VIEWS:
        raise InvalidValue(field="view", value=figure.view, hint=", ".join(VIEWS))
    tz = zone(timezone)
    start = local_midnight_utc(figure.date_from, tz) if figure.date_from else None
    end = local_midnight_utc(figure.date_to, tz) if figure.date_to else None
    chosen = base or DealFilter()
    if figure.kind == "reached":
        if figure.view == "cohort" or figure.position <= 1:  # stage 1 of a period is its arrivals
            return replace(chosen, reached=figure.position, created_from=start, created_to=end)
        return replace(chosen, reached=figure.position, reached_from=start, reached_to=end)
    lost = replace(chosen, status=DealStatus.LOST.value, furthest=figure.position)
    if figure.view == "cohort":
        return replace(lost, created_from=start, created_to=end)
    return replace(lost, closed_from=start, closed_to=end)


SEARCH_TEXT_LENGTH = 600


def search_text(title: str | None, contact_name: str | None, email: str | None) -> str | None:
    """What a deal is found by name with: its title, contact and e-mail in one case (``casefold``,
    right for every alphabet), kept beside the deal so a search is one plain ``LIKE``."""
    if not (title or contact_name or email):
        return None
    joined = " ".join(part for part in (title, contact_name, email) if part)
    return fold(joined)[:SEARCH_TEXT_LENGTH] or None


def fold(text: str) -> str:
    """Text as a search compares it: one case, and «ё» as «е» (Russian writes «Пётр» and «Петр»
    for the same name, and nobody types the dots in a search box)."""
    return text.casefold().replace("ё", "е")


def _folded_search_text() -> ColumnElement[str]:
    # Deals written before the folding kept their «ё»: fold the column too (a LIKE '%…%' reads
    # every row anyway, so the replace adds no index it could have used).
    return func.replace(Deal.search_text, "ё", "е")


def deal_number(text: str) -> int | None:
    """The deal id ``#2955`` (or ``# 2955``) names; ``None`` for anything else."""
    text = text.strip()
    if not text.startswith("#"):
        return None
    bare = text[1:].strip()
    return int(bare) if bare.isdigit() and len(bare) <= 18 else None


def _phone_tail(digits: str) -> ColumnElement[bool]:
    """Deals whose phone ends in ``digits``: a range of the phone-key index (keys run last digit first)."""
    key = digits[::-1][:KEY_DIGITS]
    return and_(Deal.phone_key >= key, Deal.phone_key < key + ":")  # ":" sorts right after "9"


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text_condition(text: str, region: str | None) -> ColumnElement[bool]:
    """Deals whose id, external id, name, contact, e-mail or phone match ``text``."""
    text = text.strip()[:MAX_QUERY]
    if not text:
        return false()
    number = deal_number(text)
    if number is not None:  # "#2955" is a deal's number, never a phone's tail
        return Deal.id == number
    digits = national_digits(text, region)
    bare = text.lstrip("#")
    if digits and not any(c.isalpha() for c in text):
        # A number: a phone's tail or a deal's id — both read an index, no name is scanned.
        by_number = [_phone_tail(digits), Deal.external_id == text]
        if bare.isdigit() and len(bare) <= 18:
            by_number.append(Deal.id == int(bare))
        return or_(*by_number)
    pattern = f"%{_like_escaped(fold(text))}%"
    found = [_folded_search_text().like(pattern, escape="\\"), Deal.external_id == text]
    if bare.isdigit() and len(bare) <= 18:
        found.append(Deal.id == int(bare))
    return or_(*found)


def _conditions(user: User, query: DealFilter, region: str | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [auth.visible_deals(user)]
    if query.pipeline_id is not None:
        conditions.append(Deal.pipeline_id == query.pipeline_id)
    if query.status:
        conditions.append(Deal.status == DealStatus(query.status).value)
    if query.reached is not None and (query.reached_from is not None or query.reached_to is not None):
        within = [StageReach.deal_id == Deal.id, StageReach.position == query.reached]
        if query.reached_from is not None:
            within.append(StageReach.reached_at >= query.reached_from)
        if query.reached_to is not None:
            within.append(StageReach.reached_at < query.reached_to)
        conditions.append(exists().where(*within))
    elif query.reached is not None:
        conditions.append(Deal.furthest_position >= query.reached)
    if query.furthest is not None:
        conditions.append(Deal.furthest_position == query.furthest)
    if query.closed_from is not None:
        conditions.append(Deal.closed_at >= query.closed_from)
    if query.closed_to is not None:
        conditions.append(Deal.closed_at < query.closed_to)
    if query.stage_ids is not None:
        conditions.append(Deal.stage_id.in_(query.stage_ids))
    if query.manager_id is not None:
        conditions.append(Deal.manager_id == query.manager_id)
    if query.unassigned:
        conditions.append(Deal.manager_id.is_(None))
    if query.source_id is not None:
        conditions.append(Deal.source_id == query.source_id)
    if query.created_from is not None:
        conditions.append(Deal.created_at >= query.created_from)
    if query.created_to is not None:
        conditions.append(Deal.created_at < query.created_to)
    if query.text:
        conditions.append(text_condition(query.text, region))
    return conditions


_COLUMNS = (
    Deal.id,
    func.coalesce(Deal.title, Deal.contact_name, Deal.external_id, ""),
    Deal.status,
    Deal.stage_id,
    Deal.amount,
    Deal.currency,
    Deal.manager_id,
    Deal.source_id,
    Deal.phone,
    Deal.email,
    Deal.created_at,
)


def find_deals(
    *,
    session: Session,
    user: User,
    account: Account,
    query: DealFilter,
    page: int = 1,
    per_page: int = PER_PAGE,
    by_id: bool = False,
) -> DealPage:
    """One page of the deals the user may see that match ``query``, newest first (or by id, the
    API's stable order), and their total."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, min(page, MAX_PAGE))
    where = and_(*_conditions(user, query, region_of(account.timezone)))
    total = int(session.scalar(select(func.count()).select_from(Deal).where(where)) or 0)
    order = (Deal.id,) if by_id else (Deal.created_at.desc(), Deal.id.desc())
    rows = session.execute(
        select(*_COLUMNS).where(where).order_by(*order).offset((page - 1) * per_page).limit(per_page)
    )
    return DealPage([DealRow(*row) for row in rows], total, page, per_page)


def deals_by_ids(*, session: Session, ids: list[int]) -> list[Deal]:
    """The deals of these ids, in the order given."""
    found = {d.id: d for d in session.scalars(select(Deal).where(Deal.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def open_deals_with_phone(
    *, session: Session, user: User, account: Account, phone: str | None, except_id: int | None = None
) -> list[DealRow]:
    """Open deals whose phone is the same number as ``phone``: the likely duplicates of a new deal."""
    digits = national_digits(phone or "", region_of(account.timezone))
    if not digits or len(digits) < 6:
        return []
    where = [
        Deal.account_id == account.id,
        auth.visible_deals(user),
        Deal.status == DealStatus.OPEN.value,
        _phone_tail(digits),
    ]
    if except_id is not None:
        where.append(Deal.id != except_id)
    rows = session.execute(select(*_COLUMNS).where(*where).order_by(Deal.created_at.desc()).limit(5))
    return [DealRow(*row) for row in rows]


def _client_condition(account: Account, phone: str | None, email: str | None) -> ColumnElement[bool] | None:
    """Open deals of the same client: the same phone number (however written) or the same e-mail
    (any case). What counts as "the same client" is said in docs/web.md."""
    same: list[ColumnElement[bool]] = []
    digits = national_digits(phone or "", region_of(account.timezone))
    if digits and len(digits) >= 6:
        same.append(_phone_tail(digits))
    if email and email.strip():
        same.append(func.lower(Deal.email) == email.strip().lower())
    if not same:
        return None
    return and_(Deal.account_id == account.id, Deal.status == DealStatus.OPEN.value, or_(*same))


def open_deal_of_client(*, session: Session, account: Account, phone: str | None, email: str | None) -> Deal | None:
    """The latest open deal of the client with this phone or e-mail, whoever works it: a repeat
    form submission joins it instead of starting a second deal for another manager."""
    condition = _client_condition(account, phone, email)
    if condition is None:
        return None
    return session.scalars(
        select(Deal).where(condition).order_by(Deal.created_at.desc(), Deal.id.desc()).limit(1)
    ).first()


@dataclass(frozen=True)
class InWorkElsewhere:
    """An open deal with this phone the user may not open: only who works it is told, never the deal."""

    manager: str | None
    """Its manager's name; ``None`` while it waits unassigned."""


def phone_in_work_elsewhere(
    *, session: Session, user: User, account: Account, phone: str | None
) -> list[InWorkElsewhere]:
    """Who works the open deals with this phone that ``user`` cannot see (a manager creating a
    deal learns "this number is in work with Igor Petrov" and nothing else about the deal)."""
    digits = national_digits(phone or "", region_of(account.timezone))
    if not digits or len(digits) < 6:
        return []
    rows = session.execute(
        select(User.name)
        .select_from(Deal)
        .outerjoin(User, User.id == Deal.manager_id)
        .where(
            Deal.account_id == account.id,
            Deal.status == DealStatus.OPEN.value,
            _phone_tail(digits),
            ~auth.visible_deals(user),
        )
        .distinct()
        .limit(5)
    )
    return [InWorkElsewhere(name) for (name,) in rows]
