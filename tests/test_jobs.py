"""Background jobs with their state in the database: two workers at once send each alert once, a
killed worker's job is taken again when its lease runs out, a failing sync is retried with backoff
and reported, and the commands show it all in the reader's language."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner
from werkzeug import Response

from tests.builders import Journey, add_journey, at, pipeline_for
from tests.fakes.retailcrm import KEY, shop
from tests.fakes.telegram import TOKEN, FakeTelegram, still_pacer
from voronka.alerts import service
from voronka.alerts.config import alert_settings, set_telegram
from voronka.cli import app
from voronka.crm.accounts import default_account
from voronka.crm.auth import add_user
from voronka.db import session_factory
from voronka.ingest.connectors import CONNECTORS
from voronka.ingest.connectors.store import add_connection
from voronka.jobs.registry import JOB_TYPES, JobKind
from voronka.jobs.store import ensure_jobs, find_job, shown
from voronka.jobs.worker import run_due
from voronka.models import Job, OutboxMessage, Role
from voronka.secretstore import SecretStore

CHATS = {Role.MANAGER: 601, Role.HEAD: 602, Role.OWNER: 603}
LEADS = 12


@pytest.fixture
def office(session: Session, tmp_path: Path, httpserver: HTTPServer) -> tuple[FakeTelegram, SecretStore]:
    """An account whose team reads Telegram, and a dozen leads nobody has called since 07:00."""
    telegram = FakeTelegram(chats=set(CHATS.values()))
    telegram.install(httpserver)
    store = SecretStore(tmp_path / "secrets.json")
    account = default_account(session=session)
    for role, chat in CHATS.items():
        person = add_user(
            session=session, account=account, name=role.value.title(), email=f"{role.value}@example.com",
            password="пароль-для-теста-1", role=role,
        )  # fmt: skip
        person.telegram_chat_id = str(chat)
    set_telegram(
        session=session, account=account, store=store, token=TOKEN, api_url=httpserver.url_for("/").rstrip("/")
    )
    alert_settings(session=session, account=account).started_at = at("2026-03-02 00:00")
    pipeline = pipeline_for(session)
    for _ in range(LEADS):
        add_journey(session, pipeline, Journey("2026-03-02 07:00", manager="Manager"))
    session.commit()
    return telegram, store


WORKER = textwrap.dedent(
    """
    import sys, datetime as dt
    from pathlib import Path
    from voronka.db import open_database, session_factory
    from voronka.jobs.worker import run_due, worker_name
    from voronka.alerts import service
    from voronka.alerts.channels import Pacer
    from voronka.secretstore import SecretStore
    engine = open_database(sys.argv[1])
    store, now = SecretStore(Path(sys.argv[2])), dt.datetime.fromisoformat(sys.argv[3])
    pacer = Pacer(sleep=lambda seconds: None)  # a separate process: Telegram's pace is tested elsewhere
    run_due(sessions=session_factory(engine), store=store, now=now, owner=worker_name(), pacer=pacer)
    service.deliver(sessions=session_factory(engine), account_id=1, store=store, now=now, pacer=pacer)
    """
)


def test_two_workers_at_once_send_each_alert_once(
    db_url: str, engine: Engine, office: tuple[FakeTelegram, SecretStore]
) -> None:
    telegram, store = office
    command = [sys.executable, "-c", WORKER, db_url, str(store.path), "2026-03-02 07:11"]
    workers = [subprocess.Popen(command, stderr=subprocess.PIPE) for _ in range(2)]
    ended = [(worker.communicate(timeout=120)[1], worker.returncode) for worker in workers]  # both, then judge
    for errors, code in ended:
        assert code == 0, errors.decode()[-2000:]
    assert len(telegram.texts_to(CHATS[Role.MANAGER])) == LEADS
    assert len(telegram.texts_to(CHATS[Role.HEAD])) == LEADS
    assert len(telegram.texts_to(CHATS[Role.OWNER])) == LEADS
    assert len({(m["chat"]["id"], m["text"]) for m in telegram.sent}) == len(telegram.sent)  # none twice
    with session_factory(engine)() as session:
        sendable = select(OutboxMessage.status).where(OutboxMessage.status != "baseline")  # known, never sent
        assert session.scalars(sendable.distinct()).all() == ["sent"]


KILLED = textwrap.dedent(
    """
    import os, signal, sys, datetime as dt
    from voronka.db import open_database, session_factory
    from voronka.jobs.store import claim, ensure_jobs, find_job
    from voronka.crm.accounts import default_account
    engine = open_database(sys.argv[1])
    now = dt.datetime.fromisoformat(sys.argv[2])
    with session_factory(engine)() as session, session.begin():
        account = default_account(session=session)
        ensure_jobs(session=session, account=account, now=now)
        job = find_job(session=session, account=account, kind="alerts")
        claim(session=session, job_id=job.id, owner="doomed", now=now)
    os.kill(os.getpid(), signal.SIGKILL)  # dies holding the job
    """
)


def test_a_killed_workers_job_is_taken_again_when_its_lease_runs_out(
    db_url: str, engine: Engine, office: tuple[FakeTelegram, SecretStore]
) -> None:
    telegram, store = office
    killed = subprocess.run([sys.executable, "-c", KILLED, db_url, "2026-03-02 07:05"], check=False, timeout=120)
    assert killed.returncode == -9
    sessions = session_factory(engine)
    ran = run_due(sessions=sessions, store=store, now=at("2026-03-02 07:06"), owner="survivor", pacer=still_pacer())
    assert "alerts" not in {r.kind for r in ran}  # still leased to the dead worker
    assert telegram.sent == []
    ran = run_due(sessions=sessions, store=store, now=at("2026-03-02 07:15:01"), owner="survivor", pacer=still_pacer())
    assert "alerts" in {r.kind for r in ran}
    assert len(telegram.texts_to(CHATS[Role.MANAGER])) == LEADS
    with sessions() as session:
        job = find_job(session=session, account=default_account(session=session), kind="alerts")
        assert (job.lease_owner, job.next_run_at) == (None, at("2026-03-02 07:16:01"))


def test_a_failing_sync_is_retried_with_backoff_and_the_leaders_hear_once_a_streak(
    session: Session, engine: Engine, office: tuple[FakeTelegram, SecretStore], httpserver: HTTPServer
) -> None:
    telegram, store = office
    refused = {"success": False, "errorMsg": 'Wrong "apiKey" value.'}  # RetailCRM's answer to a bad key
    httpserver.expect_request(re.compile(r"^/api/v5/")).respond_with_response(
        Response(json.dumps(refused), status=401, content_type="application/json")
    )
    add_connection(
        session=session, account=default_account(session=session), connector=CONNECTORS["retailcrm"], name="shop",
        address=httpserver.url_for("/"), settings={"requests_per_second": 0}, secret_values={"api_key": KEY},
        store=store,
    )  # fmt: skip
    session.commit()
    sessions = session_factory(engine)
    runs = run_due(sessions=sessions, store=store, now=at("2026-03-02 07:01"), owner="w", pacer=still_pacer())
    sync = next(r for r in runs if r.kind == "sync")
    assert sync.error is not None
    with sessions() as check:
        job = find_job(session=check, account=default_account(session=check), kind="sync", target="shop")
        assert (job.failures, job.next_run_at) == (1, at("2026-03-02 07:02"))
        assert "RetailCRM" in (shown(job.last_error, "en") or "")
    for minute, failures, next_run in (("07:02", 2, "07:04"), ("07:04", 3, "07:08")):
        run_due(sessions=sessions, store=store, now=at(f"2026-03-02 {minute}"), owner="w", pacer=still_pacer())
        with sessions() as check:
            job = find_job(session=check, account=default_account(session=check), kind="sync", target="shop")
            assert (job.failures, job.next_run_at) == (failures, at(f"2026-03-02 {next_run}"))  # 1, 2, 4 … minutes
    service.deliver(sessions=sessions, account_id=1, store=store, now=at("2026-03-02 07:04"), pacer=still_pacer())
    failures = [t for t in telegram.texts_to(CHATS[Role.OWNER]) if "⚠️" in t]
    assert len(failures) == 1  # three failed runs, one streak: one message
    assert "«shop»" in failures[0]
    assert KEY not in " ".join(failures)  # no secret in a message
    assert [t for t in telegram.texts_to(CHATS[Role.MANAGER]) if "⚠️" in t] == []  # a leaders' matter

    httpserver.clear()  # the shop answers again
    shop(3).install(httpserver)
    telegram.install(httpserver)
    runs = run_due(sessions=sessions, store=store, now=at("2026-03-02 07:08"), owner="w", pacer=still_pacer())
    assert next(r for r in runs if r.kind == "sync").error is None
    service.deliver(sessions=sessions, account_id=1, store=store, now=at("2026-03-02 07:08"), pacer=still_pacer())
    recovered = [t for t in telegram.texts_to(CHATS[Role.OWNER]) if "✅" in t]
    assert recovered == ["✅ Синхронизация «shop» снова работает (неудачных запусков подряд: 3)."]
    with sessions() as check:
        job = find_job(session=check, account=default_account(session=check), kind="sync", target="shop")
        assert (job.failures, job.last_error) == (0, None)

    httpserver.clear()  # and fails again later: a new streak, heard again
    httpserver.expect_request(re.compile(r"^/api/v5/")).respond_with_response(
        Response(json.dumps(refused), status=401, content_type="application/json")
    )
    telegram.install(httpserver)
    run_due(sessions=sessions, store=store, now=at("2026-03-02 07:23"), owner="w", pacer=still_pacer())
    service.deliver(sessions=sessions, account_id=1, store=store, now=at("2026-03-02 07:23"), pacer=still_pacer())
    assert len([t for t in telegram.texts_to(CHATS[Role.OWNER]) if "⚠️" in t]) == 2


def test_every_kind_of_job_has_a_runner_a_schedule_and_its_rows(session: Session, store: SecretStore) -> None:
    """A kind declared in the one table is made for each account, scheduled and run: nothing else
    keeps its own list of kinds."""
    account = default_account(session=session)
    add_connection(
        session=session, account=account, connector=CONNECTORS["retailcrm"], name="shop",
        address="https://shop.example", settings={}, secret_values={"api_key": "k"}, store=store,
    )  # fmt: skip
    assert set(JOB_TYPES) == set(JobKind)
    made = {job.kind for job in ensure_jobs(session=session, account=account, now=at("2026-03-02 07:00"))}
    assert made == {kind.value for kind in JobKind}
    for kind, declared in JOB_TYPES.items():
        assert declared.kind is kind
        assert callable(declared.run)
        for target in declared.targets(session, account):
            schedule = declared.schedule(target)
            assert schedule.every > dt.timedelta(0)
            assert schedule.lease > dt.timedelta(0)
            job = find_job(session=session, account=account, kind=kind, target=target)
            assert job.every_seconds == schedule.every.total_seconds()
    assert {kind for kind, declared in JOB_TYPES.items() if declared.alert_on_failure} == {
        JobKind.SYNC,
        JobKind.DIGEST,
    }


def test_the_commands_list_and_schedule_the_jobs_in_the_readers_language(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert runner.invoke(app, ["--db", db_url, "init", "--stages", "Лид,Встреча,Оплата"], env=env).exit_code == 0
    listed = runner.invoke(app, ["--db", db_url, "--lang", "ru", "jobs", "list"], env=env)
    assert listed.exit_code == 0
    assert "Ежедневная сводка" in listed.stdout
    assert "по понедельникам в 09:00" in listed.stdout
    once = runner.invoke(app, ["--db", db_url, "--lang", "ru", "worker", "--once"], env=env)
    assert once.exit_code == 0, once.stderr
    assert "Уведомления: новых 0" in once.stdout
    every = runner.invoke(app, ["--db", db_url, "--lang", "en", "jobs", "every", "alerts", "3"], env=env)
    assert every.stdout.strip() == "Alerts: every 3 min."
    wrong = runner.invoke(app, ["--db", db_url, "--lang", "en", "alerts", "rules", "--quiet", "25:00-09:00"], env=env)
    assert (wrong.exit_code, wrong.stderr.strip()) == (
        1,
        "Error: Cannot read quiet hours «25:00-09:00»: expected two local times, e.g. 21:00-09:00.",
    )
    switched = runner.invoke(
        app, ["--db", db_url, "--lang", "en", "alerts", "pref", "lead_escalated", "--off", "--role", "owner"], env=env
    )
    assert switched.stdout.strip() == "lead_escalated for owner: off"
    unknown = runner.invoke(
        app, ["--db", db_url, "--lang", "en", "alerts", "pref", "lead", "--on", "--role", "head"], env=env
    )
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("Error: Cannot read event «lead»: expected lead_waiting, lead_escalated,")
    with session_factory(__import__("voronka.db", fromlist=["open_database"]).open_database(db_url))() as session:
        every_job = session.scalars(select(Job).where(Job.kind == "alerts")).one()
        assert every_job.every_seconds == 180
    assert os.environ.get("XDG_CONFIG_HOME") != str(tmp_path)


def test_two_workers_making_the_jobs_at_once_both_go_on(engine: Engine, session: Session) -> None:
    """The first pass of two new workers: both find the jobs missing; the second's insert waits for
    the first's transaction and then adds nothing instead of failing on the unique key."""
    import threading

    from voronka.jobs.store import ensure_jobs, list_jobs

    default_account(session=session)
    session.commit()
    sessions = session_factory(engine)
    first = sessions()
    ensure_jobs(session=first, account=default_account(session=first), now=at("2026-03-02 07:00"))  # not committed
    outcome: list[object] = []

    def second_worker() -> None:
        with sessions() as other:
            try:
                ensure_jobs(session=other, account=default_account(session=other), now=at("2026-03-02 07:00"))
                other.commit()
                outcome.append("ok")
            except Exception as error:  # what the bug raised: a unique violation
                outcome.append(error)

    thread = threading.Thread(target=second_worker)
    thread.start()
    thread.join(timeout=0.5)  # it waits on the first transaction's rows (or the SQLite write lock)
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert outcome == ["ok"]
    with sessions() as check:
        assert len(list_jobs(session=check, account=default_account(session=check))) == 5  # no sync: no connection
