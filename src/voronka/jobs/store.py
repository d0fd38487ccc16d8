"""Job rows: made for each account as its connections and settings need, taken with a lease.

Taking a job is one conditional UPDATE (the lease is empty or ran out), which the database makes
atomic: on PostgreSQL the second of two concurrent updates waits on the row lock and then finds the
lease taken; on SQLite writers queue. A process that dies holding a job leaves a lease that runs out.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from voronka.alerts.model import retry_delay
from voronka.db import dialect_insert
from voronka.errors import InvalidValue, NotFound
from voronka.formats import Formats
from voronka.i18n import Message, Translator
from voronka.jobs.registry import DIGEST_HOUR, JOB_TYPES, JobKind, Schedule, job_type
from voronka.models import Account, Job
from voronka.timeutil import to_local, to_utc, zone


def schedule_of(job: Job) -> Schedule:
    return job_type(job.kind).schedule(job.target)


def next_run(job: Job, account: Account, after: dt.datetime) -> dt.datetime:
    schedule = schedule_of(job)
    if schedule.at_local is None:
        return after + dt.timedelta(seconds=job.every_seconds)
    tz = zone(account.timezone)
    return to_utc(schedule.at_local(to_local(after, tz)), tz)


def ensure_jobs(*, session: Session, account: Account, now: dt.datetime, listed: bool = True) -> list[Job]:
    """The account's jobs: one per kind, one sync per connection (a removed connection's sync goes);
    ``listed=False`` for the worker's every pass, which reads only the due ones.

    Two workers starting together may both find a job missing: the insert skips a row the other has
    just made (the unique key), so neither fails."""
    wanted = [(kind.value, target) for kind, type_ in JOB_TYPES.items() for target in type_.targets(session, account)]
    existing = {
        (kind, target)
        for kind, target in session.execute(select(Job.kind, Job.target).where(Job.account_id == account.id))
    }
    for kind, target in wanted:
        if (kind, target) in existing:
            continue
        schedule = job_type(kind).schedule(target)
        first = (
            to_utc(schedule.at_local(to_local(now, zone(account.timezone))), zone(account.timezone))
            if schedule.at_local
            else now
        )
        every = int(schedule.every.total_seconds())
        values = {
            "account_id": account.id, "kind": kind, "target": target, "every_seconds": every, "enabled": True,
            "failures": 0, "next_run_at": first,
        }  # fmt: skip
        session.execute(
            dialect_insert(session, Job)
            .values(values)
            .on_conflict_do_nothing(index_elements=["account_id", "kind", "target"])
        )
    gone = [pair for pair in existing if pair not in wanted]  # a removed connection's sync, a kind no longer made
    for kind, target in gone:
        session.execute(delete(Job).where(Job.account_id == account.id, Job.kind == kind, Job.target == target))
    session.flush()
    return list_jobs(session=session, account=account) if listed else []


def due_jobs(*, session: Session, account: Account, now: dt.datetime) -> list[int]:
    return list(
        session.scalars(
            select(Job.id)
            .where(Job.account_id == account.id, Job.enabled.is_(True), Job.next_run_at <= now, _free(now))
            .order_by(Job.next_run_at, Job.id)
        )
    )


def _free(now: dt.datetime) -> ColumnElement[bool]:
    return or_(Job.lease_until.is_(None), Job.lease_until < now)


def claim(*, session: Session, job_id: int, owner: str, now: dt.datetime) -> Job | None:
    """Take the job for ``owner`` unless another process holds it; the caller commits at once."""
    job = session.get(Job, job_id)
    if job is None:
        return None
    lease = schedule_of(job).lease
    taken = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.enabled.is_(True), Job.next_run_at <= now, _free(now))
        .values(lease_owner=owner, lease_until=now + lease, last_started_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult
    if not taken:
        return None
    # The loaded row takes the values the UPDATE wrote, rather than being read again.
    for name, value in (("lease_owner", owner), ("lease_until", now + lease), ("last_started_at", now)):
        set_committed_value(job, name, value)
    return job


def finish(
    *, session: Session, job: Job, account: Account, now: dt.datetime, result: Message | None, error: Message | None
) -> None:
    """Record the outcome and the next run: on schedule after success, after a growing wait after a
    failure (never later than the schedule)."""
    job.lease_owner, job.lease_until, job.last_finished_at = None, None, now
    if error is None:
        job.failures, job.last_result, job.last_error = 0, _kept(result), None
        job.next_run_at = next_run(job, account, now)
    else:
        job.failures += 1
        job.last_error = _kept(error)
        wait = min(retry_delay(job.failures), dt.timedelta(seconds=job.every_seconds))
        job.next_run_at = now + wait
    session.flush()


def _kept(message: Message | None) -> str | None:
    """A result or error as stored: the message itself, so each reader sees it in their language."""
    if message is None:
        return None
    text = json.dumps(message.dump(), ensure_ascii=False)
    return text if len(text) <= 500 else json.dumps(Message("jobs.too_long").dump())


def shown(stored: str | None, lang: str) -> str | None:
    """A stored result or error in ``lang``."""
    if not stored:
        return None
    try:
        return Message.load(json.loads(stored)).render(lang)
    except (ValueError, AttributeError, KeyError, IndexError):
        return stored  # written by hand or by an older version (other parameters): shown as it is


def list_jobs(*, session: Session, account: Account) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.account_id == account.id).order_by(Job.kind, Job.target)))


def find_job(*, session: Session, account: Account, kind: str, target: str = "") -> Job:
    job = session.scalars(
        select(Job).where(Job.account_id == account.id, Job.kind == kind, Job.target == target)
    ).first()
    if job is None:
        raise NotFound(what=f"job {kind} {target}".strip())
    return job


def set_every(*, session: Session, account: Account, kind: str, target: str, minutes: int, now: dt.datetime) -> Job:
    """How often a sync, the alerts or the diagnosis run (digests keep their calendar)."""
    job = find_job(session=session, account=account, kind=kind, target=target)
    if schedule_of(job).at_local is not None:
        raise InvalidValue(field="schedule", value=kind, hint="a sync, the alerts or the diagnosis")
    if not 1 <= minutes <= 7 * 24 * 60:
        raise InvalidValue(field="minutes", value=str(minutes), hint="1 to 10080")
    job.every_seconds = minutes * 60
    job.next_run_at = min(job.next_run_at, now + dt.timedelta(minutes=minutes))
    session.flush()
    return job


def set_enabled(*, session: Session, account: Account, kind: str, target: str, enabled: bool) -> Job:
    job = find_job(session=session, account=account, kind=kind, target=target)
    job.enabled = enabled
    session.flush()
    return job


def job_name(kind: str, target: str) -> Message:
    """What a job is, in words: «Синхронизация «amo»», «Ежедневная сводка»."""
    if kind == JobKind.SYNC:
        return Message("jobs.kind_sync", {"name": target})
    return Message(f"jobs.kind_{kind}{'_' + target if target else ''}")


def job_label(job: Job, t: Translator) -> str:
    return job_name(job.kind, job.target).render(t.lang)


def job_every(job: Job, t: Translator, formats: Formats) -> str:
    if schedule_of(job).at_local is not None:
        return t(f"jobs.at_{job.target}", hour=f"{DIGEST_HOUR:02d}:00")
    return formats.wait(job.every_seconds)
