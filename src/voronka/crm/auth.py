"""Users, passwords, roles and API tokens.

Passwords are hashed with Argon2 (pwdlib); API tokens are random and only their SHA-256 hashes are
stored. Roles (see ``Role``): the owner does everything; the head of sales sees all deals and
reports; a manager sees and works only the deals assigned to them, and figures over them; a viewer
sees reports only.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session

from voronka.crm.accounts import check_length, owned_row
from voronka.crm.credentials import check_email, check_password
from voronka.crm.logins import end_all_sessions
from voronka.errors import InvalidValue, NotFound, VoronkaError
from voronka.models import Account, ApiToken, Deal, Role, User
from voronka.timeutil import utcnow

if TYPE_CHECKING:
    from pwdlib import PasswordHash


class Action(enum.StrEnum):
    VIEW_REPORTS = "view_reports"
    WORK_DEALS = "work_deals"
    SEE_ALL_DEALS = "see_all_deals"
    MANAGE_SETTINGS = "manage_settings"
    SET_PLANS = "set_plans"
    """Plans and ad spend: the head of sales keeps them too."""


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.HEAD: frozenset({Action.VIEW_REPORTS, Action.WORK_DEALS, Action.SEE_ALL_DEALS, Action.SET_PLANS}),
    Role.MANAGER: frozenset({Action.VIEW_REPORTS, Action.WORK_DEALS}),
    Role.VIEWER: frozenset({Action.VIEW_REPORTS, Action.SEE_ALL_DEALS}),
}
"""What each role may do. A viewer sees all figures but no deal (``WORK_DEALS`` opens deals)."""


class Forbidden(VoronkaError):
    """The user's role does not allow this."""

    key = "error.forbidden"


class UserNotFound(VoronkaError):
    """No user has this e-mail."""

    key = "error.user_not_found"


class UserNameNotFound(UserNotFound):
    """No user has this e-mail or name."""

    key = "error.user_name_not_found"


class UserExists(VoronkaError):
    key = "error.user_exists"


_HASHING: dict[str, int] = {}
"""Argon2's costs when set by ``set_password_costs``; empty: the library's recommended ones."""


@functools.cache
def _hasher() -> PasswordHash:
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    if not _HASHING:
        return PasswordHash.recommended()
    costs = _HASHING
    hasher = Argon2Hasher(
        time_cost=costs["time_cost"], memory_cost=costs["memory_cost"], parallelism=costs["parallelism"]
    )
    return PasswordHash((hasher,))


def set_password_costs(*, time_cost: int, memory_cost: int, parallelism: int = 1) -> None:
    """Hash new passwords with these Argon2 costs (a test suite's cheap ones: the recommended 64 MiB
    took a third of a second per password). Stored hashes carry their own costs, so passwords
    hashed either way verify either way."""
    _HASHING.update(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
    _hasher.cache_clear()


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


def verify_password(password: str, hashed: str | None) -> bool:
    if not hashed:
        return False
    try:
        return bool(_hasher().verify(password, hashed))
    except Exception:  # a malformed stored hash is a failed login, not a crash
        return False


def role_of(user: User) -> Role:
    return Role(user.role)


def can_log_in(user: User) -> bool:
    """Active, with an e-mail and a password: a person who works in the app, not a name from
    imported history (departed staff exist only as the manager of old deals)."""
    return bool(user.active and user.email and user.password_hash)


def can_log_in_clause() -> ColumnElement[bool]:
    """``can_log_in`` as SQL, for choosing among many users."""
    return User.active.is_(True) & User.email.is_not(None) & User.password_hash.is_not(None)


def can(user: User, action: Action) -> bool:
    return user.active and action in ALLOWED[role_of(user)]


def require(user: User, action: Action) -> None:
    if not can(user, action):
        raise Forbidden(action=action.value)


def visible_deals(user: User) -> ColumnElement[bool]:
    """The deals a user may see: all of the account's, or only their own for a manager."""
    if role_of(user) is Role.MANAGER:
        return (Deal.account_id == user.account_id) & (Deal.manager_id == user.id)
    return (Deal.account_id == user.account_id) if can(user, Action.SEE_ALL_DEALS) else ~true()


def account_of(*, session: Session, user: User) -> Account:
    account = session.get(Account, user.account_id)
    assert account is not None
    return account


def report_scope(user: User) -> int | None:
    """Whose deals this user's reports count: a manager's own (their id), everyone else's all (None).

    Every report function takes it (``manager_id``) and puts it on its queries, so a manager's
    funnel, statistics, forecast, what-if and diagnosis are computed on their deals alone — in the
    command line, the pages and the API alike."""
    return user.id if role_of(user) is Role.MANAGER else None


def deal_manager(*, session: Session, account: Account, user: User, requested: str | None) -> User | None:
    """Who a new or changed deal belongs to: a manager's deals are their own; others name one of
    the account's people (naming someone new creates nobody: 'unknown manager')."""
    if role_of(user) is Role.MANAGER:
        return user
    if not requested:
        return None
    found = session.scalars(select(User).where(User.account_id == account.id, User.name == requested.strip())).first()
    if found is None:
        raise InvalidValue(field="manager", value=requested[:80], hint="the name of one of the account's users")
    return found


def may_see_deal(user: User, deal: Deal) -> bool:
    """Whether ``user`` may open ``deal``: what ``require_deal`` allows, as a yes or no."""
    return (
        can(user, Action.WORK_DEALS)
        and deal.account_id == user.account_id
        and (role_of(user) is not Role.MANAGER or deal.manager_id == user.id)
    )


def require_deal(user: User, deal: Deal) -> None:
    """A deal the user may not see is reported as not found (its existence is not revealed)."""
    require(user, Action.WORK_DEALS)
    if deal.account_id != user.account_id or (role_of(user) is Role.MANAGER and deal.manager_id != user.id):
        raise NotFound(what=f"deal {deal.id}")


def add_user(
    *, session: Session, account: Account, name: str, email: str, password: str, role: Role = Role.MANAGER
) -> User:
    """A user who can log in. An existing manager row of the same name (made by an import) gets the
    login, so their deals stay theirs."""
    check_length(name.strip(), field="name")
    email = check_email(email)
    check_password(password, email=email, name=name)
    if session.scalar(select(func.count()).select_from(User).where(func.lower(User.email) == email)):
        raise UserExists(email=email)
    user = session.scalars(select(User).where(User.account_id == account.id, User.name == name.strip())).first()
    if user is None:
        user = User(account_id=account.id, name=name.strip())
        session.add(user)
    user.email, user.role, user.active = email, role.value, True
    user.password_hash = hash_password(password)
    session.flush()
    return user


def set_password(*, session: Session, user: User, password: str) -> None:
    """A new password; every session of the user ends (a stolen cookie stops working)."""
    check_password(password, email=user.email or "", name=user.name)
    user.password_hash = hash_password(password)
    end_all_sessions(session=session, user=user)
    session.flush()


def deactivate_user(*, session: Session, user: User) -> None:
    """The user can no longer log in; their sessions end and their API tokens stop working."""
    user.active = False
    end_all_sessions(session=session, user=user)
    session.flush()


def user_by_email(*, session: Session, email: str) -> User:
    found = session.scalars(select(User).where(func.lower(User.email) == email.strip().lower())).first()
    if found is None:
        raise UserNotFound(email=email)
    return found


def user_by_email_or_name(*, session: Session, account: Account, who: str) -> User:
    """A user by e-mail (any case) or, failing that, by their exact name within ``account``: a
    name-only manager from imported history has no e-mail to be found by."""
    if "@" in who:
        try:
            return user_by_email(session=session, email=who)
        except UserNotFound:
            pass
    found = session.scalars(select(User).where(User.account_id == account.id, User.name == who.strip())).first()
    if found is None:
        raise UserNameNotFound(who=who.strip()[:200])
    return found


def user_of_account(*, session: Session, account: Account, user_id: int) -> User:
    return owned_row(session=session, model=User, row_id=user_id, account_id=account.id, what="user")


def set_role(*, session: Session, user: User, role: Role) -> None:
    """A new role; the account keeps at least one active owner (nobody could manage it otherwise)."""
    if role is not Role.OWNER and role_of(user) is Role.OWNER and user.active:
        owners = session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.account_id == user.account_id, User.role == Role.OWNER.value, User.active.is_(True))
        )
        if (owners or 0) <= 1:
            raise InvalidValue(field="role", value=role.value, hint="another active owner first: the account needs one")
    user.role = role.value
    end_all_sessions(session=session, user=user)  # what they may open changes now, not at their next login
    session.flush()


def remember_language(*, user: User, lang: str) -> None:
    """The language the user chose (``/lang/…`` on the web) is the one their alerts and digests are
    written in; a page visit in a browser set to another language does not change it."""
    if lang in ("ru", "en") and user.lang != lang:
        user.lang = lang


def authenticate(*, session: Session, email: str, password: str) -> User | None:
    user = session.scalars(select(User).where(func.lower(User.email) == email.strip().lower())).first()
    if user is None:
        hash_password(password)  # the same work as a real check: no timing hint that the address is unknown
        return None
    return user if user.active and verify_password(password, user.password_hash) else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    plain: str
    """Shown once; only its hash is stored."""


MAX_TOKEN_NAME = 100


def create_api_token(*, session: Session, user: User, name: str) -> NewToken:
    name = check_length(name.strip(), field="name", limit=MAX_TOKEN_NAME)
    plain = "vk_" + secrets.token_urlsafe(32)
    token = ApiToken(
        account_id=user.account_id,
        user_id=user.id,
        name=name or "API",
        token_hash=_token_hash(plain),
        created_at=utcnow(),
    )
    session.add(token)
    session.flush()
    return NewToken(token, plain)


def user_for_token(*, session: Session, plain: str) -> User | None:
    token = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(plain), ApiToken.revoked_at.is_(None))
    ).first()
    if token is None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    token.last_used_at = utcnow()
    return user


def revoke_api_token(*, session: Session, user: User, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if (
        token is None
        or token.account_id != user.account_id
        or (token.user_id != user.id and not can(user, Action.MANAGE_SETTINGS))
    ):
        raise NotFound(what=f"token {token_id}")
    token.revoked_at = utcnow()
    session.flush()


def tokens_of(*, session: Session, user: User) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.account_id == user.account_id, ApiToken.revoked_at.is_(None))
    if not can(user, Action.MANAGE_SETTINGS):
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query.order_by(ApiToken.id)))
