"""Logging in: revocable sessions kept in the database, and a throttle on failed attempts that
holds across processes.

The browser's cookie carries a random token; the database keeps its SHA-256 hash. Logging out
revokes that session; a new password or a deactivated user revokes all of theirs.

The throttle keys attempts by e-mail address and by client address. Each attempt is reserved by
one atomic UPDATE before the password is checked, so parallel guesses cannot slip past the count;
after the free attempts each next one must wait twice as long as the last (up to 15 minutes). A
right password is not refused forever: only until the wait is over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy.orm import Session

from voronka.db import dialect_insert
from voronka.models import LoginSession, LoginThrottle, User
from voronka.timeutil import utcnow

SESSION_DAYS = 14
FREE_PER_EMAIL = 5
FREE_PER_ADDRESS = 20
"""More free attempts from one address: a whole office may sit behind one proxy."""
FORGET_AFTER = dt.timedelta(minutes=15)
MAX_WAIT = 900


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(*, session: Session, user: User) -> str:
    """A new session for ``user``; returns the token for the cookie (shown nowhere else)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        LoginSession(
            account_id=user.account_id,
            user_id=user.id,
            token_hash=_hash(token),
            created_at=now,
            expires_at=now + dt.timedelta(days=SESSION_DAYS),
        )
    )
    session.flush()
    return token


def user_for_session(*, session: Session, token: str) -> User | None:
    """The active user of a live session, else None (revoked, expired, unknown, deactivated)."""
    found = session.execute(
        select(User)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(
            LoginSession.token_hash == _hash(token),
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > utcnow(),
            User.active.is_(True),
        )
    ).scalar_one_or_none()
    return found


def end_session(*, session: Session, token: str) -> None:
    session.execute(
        update(LoginSession)
        .where(LoginSession.token_hash == _hash(token), LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def end_all_sessions(*, session: Session, user: User) -> None:
    session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def throttle_keys(email: str, address: str | None) -> list[tuple[str, int]]:
    keys = [(f"email:{email.strip().lower()[:300]}", FREE_PER_EMAIL)]
    if address:
        keys.append((f"address:{address[:80]}", FREE_PER_ADDRESS))
    return keys


def reserve_attempt(*, session: Session, email: str, address: str | None) -> bool:
    """Count one login attempt against the address and the e-mail; False when either must wait.

    The caller commits right away, before checking the password, so every process sees it."""
    now = utcnow()
    allowed = True
    for key, free in throttle_keys(email, address):
        _ensure_row(session, key, now)
        stale = LoginThrottle.last_at < now - FORGET_AFTER
        attempts: ColumnElement[int] = case((stale, 1), else_=LoginThrottle.attempts + 1)
        result = session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key, (LoginThrottle.next_at <= now) | stale)
            .values(attempts=attempts, last_at=now, next_at=_next_at(attempts, free, now))
        )
        allowed = allowed and result.rowcount == 1  # type: ignore[attr-defined]
    return allowed


def forget_attempts(*, session: Session, email: str, address: str | None) -> None:
    """A successful login clears the e-mail's count (not the address's: others share it)."""
    key, _ = throttle_keys(email, address)[0]
    session.execute(update(LoginThrottle).where(LoginThrottle.key == key).values(attempts=0, next_at=utcnow()))


def _ensure_row(session: Session, key: str, now: dt.datetime) -> None:
    values = {"key": key, "attempts": 0, "last_at": now, "next_at": now}
    session.execute(dialect_insert(session, LoginThrottle).values(values).on_conflict_do_nothing())


def _next_at(attempts: ColumnElement[int], free: int, now: dt.datetime) -> ColumnElement[dt.datetime]:
    """When the next attempt may come: at once for the free ones, then after 1, 2, 4 … seconds."""
    waits: list[tuple[ColumnElement[bool], dt.datetime]] = [(attempts < free, now)]
    seconds = 1
    for count in range(free, free + 11):
        waits.append((attempts == count, now + dt.timedelta(seconds=min(seconds, MAX_WAIT))))
        seconds *= 2
    return case(*waits, else_=now + dt.timedelta(seconds=MAX_WAIT))
