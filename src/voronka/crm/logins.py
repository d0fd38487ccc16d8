"""Logging in: revocable sessions kept in the database, and a throttle on failed attempts that
holds across processes.

The browser's cookie carries a random token; the database keeps its SHA-256 hash. Logging out
revokes that session; a new password or a deactivated user revokes all of theirs.

The throttle keys failed attempts by e-mail address and by client address. Each attempt is reserved
by one atomic UPDATE before the password is checked, so parallel guesses cannot slip past the count,
and taken back when the password was right: only failures count. After the free attempts each next
one must wait twice as long as the last (up to 15 minutes). A right password is not refused
forever: only until the wait is over, which the refusal states.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy.orm import Session

from voronka.db import begin_write, dialect_insert
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
    """The counters an attempt is held to, always in this order (so two requests never lock the same
    two rows in opposite orders): the e-mail's, then the client address's."""
    keys = [(f"email:{email.strip().lower()[:300]}", FREE_PER_EMAIL)]
    if address:
        keys.append((f"address:{address[:80]}", FREE_PER_ADDRESS))
    return keys


@dataclass(frozen=True)
class Attempt:
    """One login attempt's place in the throttle: allowed (its counts reserved), or to wait ``wait``
    seconds."""

    allowed: bool
    wait: int
    now: dt.datetime
    reserved: tuple[tuple[str, int], ...] = ()
    """The counters this attempt was counted in, each with its count just after."""


def reserve_attempt(*, session: Session, email: str, address: str | None, now: dt.datetime | None = None) -> Attempt:
    """Count one login attempt against the e-mail and the address before the password is checked,
    or say how long it must wait.

    The database decides, one UPDATE per counter: it counts the attempt only if it is among the free
    ones, the wait is over, or the last failure is forgotten. No decision rests on a time read
    before another request's write (a free attempt is free whatever the clocks say), so parallel
    requests get exactly the free attempts, and parallel guesses cannot slip past the count. An
    attempt refused by one counter is taken back from the others: only what is checked counts.
    The caller commits right away, so every process sees it, then calls ``settle_attempt``.
    """
    now = now or utcnow()
    reserved: list[tuple[str, int]] = []
    for key, free in throttle_keys(email, address):
        _ensure_row(session, key, now)
        stale = LoginThrottle.last_at < now - FORGET_AFTER
        attempts: ColumnElement[int] = case((stale, 1), else_=LoginThrottle.attempts + 1)
        count = session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key, (LoginThrottle.attempts < free) | (LoginThrottle.next_at <= now) | stale)
            .values(
                attempts=attempts,
                next_at=_next_at(attempts, free, now),
                last_at=case((stale, now), else_=LoginThrottle.last_at),
            )
            .returning(LoginThrottle.attempts)
        ).scalar_one_or_none()
        if count is None:
            _take_back(session, reserved, now)
            until = session.scalar(select(LoginThrottle.next_at).where(LoginThrottle.key == key)) or now
            return Attempt(allowed=False, wait=max(1, math.ceil((until - now).total_seconds())), now=now)
        reserved.append((key, count))
    return Attempt(allowed=True, wait=0, now=now, reserved=tuple(reserved))


def settle_attempt(*, session: Session, attempt: Attempt, succeeded: bool) -> None:
    """After the password was checked: a failure stays counted (its time starts the 15 minutes
    after which it is forgotten); a success is taken back, as if it never came, and clears the
    e-mail's failures (not the address's: others share it).

    Call it with no transaction open (commit after checking the password): on SQLite it opens the
    write transaction before anything is read, as one that read first could not take the write lock
    while another login was writing (the office logging in at nine got "database is busy")."""
    if not attempt.allowed:
        return
    begin_write(session.connection())
    keys = [key for key, _ in attempt.reserved]
    for key in keys:  # locked in the order reserve_attempt takes them: an update that matches
        # nothing locks nothing, and two logins taking the same two rows in turn deadlocked
        session.execute(select(LoginThrottle.key).where(LoginThrottle.key == key).with_for_update())
    if not succeeded:
        session.execute(update(LoginThrottle).where(LoginThrottle.key.in_(keys)).values(last_at=attempt.now))
        return
    _take_back(session, attempt.reserved, attempt.now)
    email_key = keys[0]
    session.execute(update(LoginThrottle).where(LoginThrottle.key == email_key).values(attempts=0, next_at=attempt.now))


def _take_back(session: Session, reserved: Sequence[tuple[str, int]], now: dt.datetime) -> None:
    """Uncount reserved attempts. When nobody counted after this one, the wait it started goes too
    (the wait before it was over, or it would not have been counted); otherwise only the count
    drops, and the later attempts' wait stands."""
    for key, count in reserved:
        undone = session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key, LoginThrottle.attempts == count)
            .values(attempts=count - 1, next_at=now)
        )
        if undone.rowcount == 0:  # type: ignore[attr-defined]
            session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == key, LoginThrottle.attempts > 0)
                .values(attempts=LoginThrottle.attempts - 1)
            )


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
