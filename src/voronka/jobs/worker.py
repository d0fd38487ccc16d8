"""The worker: every few seconds, for each account, make sure its jobs exist, take the due ones
(each with a lease) and run them. ``voronka serve`` runs it on a thread beside the web app;
``voronka worker`` runs it alone. Time comes in as a parameter, so tests drive the clock."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from voronka.alerts import service
from voronka.alerts.channels import Pacer
from voronka.crm.accounts import account_by_id
from voronka.db import session_factory
from voronka.errors import VoronkaError
from voronka.i18n import Message
from voronka.jobs.registry import JobContext, job_type
from voronka.jobs.store import claim, due_jobs, ensure_jobs, finish, job_name
from voronka.models import Account
from voronka.secretstore import SecretStore
from voronka.timeutil import utcnow

log = logging.getLogger("voronka.jobs")
PAUSE_SECONDS = 15.0


def worker_name() -> str:
    """Who holds a lease: host, process and a random part (two workers in one process differ)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class JobRun:
    account_id: int
    kind: str
    target: str
    result: Message | None
    error: Message | None


def run_due(
    *,
    sessions: sessionmaker[Session],
    store: SecretStore,
    now: dt.datetime,
    owner: str,
    base_url: str | None = None,
    pacer: Pacer | None = None,
) -> list[JobRun]:
    """One pass over every account's due jobs; what ran and how it ended."""
    with sessions() as session, session.begin():
        account_ids = list(session.scalars(select(Account.id).order_by(Account.id)))
        due: list[int] = []
        for account_id in account_ids:
            account = account_by_id(session=session, account_id=account_id)
            ensure_jobs(session=session, account=account, now=now, listed=False)
            due += due_jobs(session=session, account=account, now=now)
    context = JobContext(sessions, store, now, base_url, pacer)
    return [run for job_id in due if (run := _run_one(context, job_id, owner)) is not None]


def _run_one(context: JobContext, job_id: int, owner: str) -> JobRun | None:
    with context.sessions() as session, session.begin():
        job = claim(session=session, job_id=job_id, owner=owner, now=context.now)
        if job is None:
            return None  # another worker has it
        account_id, kind, target = job.account_id, job.kind, job.target
    result: Message | None = None
    error: Message | None = None
    kind_of = job_type(kind)
    try:
        result = kind_of.run(context, account_id, target)
    except VoronkaError as exc:
        error = Message(exc.key, exc.params)
    except Exception as exc:  # a job's failure is recorded and retried, never the worker's end
        log.exception("job %s %s failed", kind, target)
        error = Message("error.unexpected", {"kind": type(exc).__name__, "detail": (str(exc).splitlines() or [""])[0]})
    failed_before = 0
    with context.sessions() as session, session.begin():
        account = account_by_id(session=session, account_id=account_id)
        job = session.get(type(job), job_id)
        if job is None or job.lease_owner != owner:
            return JobRun(account_id, kind, target, result, error)  # removed, or taken over after the lease ran out
        failed_before = job.failures
        finish(session=session, job=job, account=account, now=context.now, result=result, error=error)
    if kind_of.alert_on_failure:
        _tell_leaders(context, account_id, kind, target, error, failed_before)
    return JobRun(account_id, kind, target, result, error)


def _tell_leaders(
    context: JobContext,
    account_id: int,
    kind: str,
    target: str,
    error: Message | None,
    failed_before: int,
) -> None:
    """Once when a job starts failing and once when it works again: a sync that fails every quarter
    of an hour for a day is one message, not a hundred."""
    what = job_name(kind, target)
    if error is not None and failed_before == 0:
        service.notify_failure(
            sessions=context.sessions, account_id=account_id, store=context.store, what=what, error=error,
            started=context.now, now=context.now,
        )  # fmt: skip
    elif error is None and failed_before > 0:
        service.notify_recovery(
            sessions=context.sessions, account_id=account_id, store=context.store, what=what,
            failures=failed_before, now=context.now,
        )  # fmt: skip


class Worker:
    """The loop: a pass, a pause, until stopped (``stop`` from another thread ends the pause)."""

    def __init__(
        self,
        engine: Engine,
        store: SecretStore,
        base_url: str | None = None,
        pause: float = PAUSE_SECONDS,
        clock: Callable[[], dt.datetime] = utcnow,
        pacer: Pacer | None = None,
    ):
        self.sessions = session_factory(engine)
        self.store, self.base_url, self.pause, self.clock = store, base_url, pause, clock
        self.owner = worker_name()
        self.pacer = pacer or Pacer()
        self.stopping = threading.Event()
        self.passed = threading.Event()
        """Set after each pass of the loop (whoever started the thread may wait for one)."""

    def run_once(self, now: dt.datetime | None = None) -> list[JobRun]:
        return run_due(
            sessions=self.sessions, store=self.store, now=now or self.clock(), owner=self.owner,
            base_url=self.base_url, pacer=self.pacer,
        )  # fmt: skip

    def run_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("a pass of the jobs failed")
            self.passed.set()
            self.stopping.wait(self.pause)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="voronka-jobs", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
