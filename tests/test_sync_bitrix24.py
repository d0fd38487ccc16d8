"""Syncing from Bitrix24 against a local fake portal: full, incremental, rate-limited, refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.builders import account_for
from tests.fakes import expected_funnel, observed
from tests.fakes.bitrix24 import CODE, OPEN, START, FakeBitrix24, portal
from voronka.crm.accounts import find_pipeline
from voronka.errors import ConnectorAuthFailed
from voronka.ingest.connectors import CONNECTORS
from voronka.ingest.connectors.http import RetryPolicy
from voronka.ingest.connectors.store import add_connection
from voronka.ingest.connectors.sync import SyncReport, sync_connection
from voronka.models import Connection, Deal, Pipeline
from voronka.secretstore import SecretStore

FAST = RetryPolicy(attempts=5, first_wait=0.001, max_wait=0.01)
POSITION = {stage: number for number, stage in enumerate(OPEN, start=1)} | {"WON": 5}


@pytest.fixture
def crm(httpserver: HTTPServer) -> Iterator[FakeBitrix24]:
    fake = portal(230)
    fake.install(httpserver)
    yield fake


def connect(session: Session, httpserver: HTTPServer, store: SecretStore, code: str = CODE) -> None:
    add_connection(
        session=session,
        account=account_for(session),
        connector=CONNECTORS["bitrix24"],
        name="b24",
        address=httpserver.url_for(f"/rest/1/{code}/"),
        settings={"requests_per_second": 0},
        secret_values={"webhook_url": httpserver.url_for(f"/rest/1/{code}/")},
        store=store,
    )
    session.commit()


def run(session: Session, store: SecretStore) -> SyncReport:
    return sync_connection(session=session, account=account_for(session), store=store, retry=FAST)


def expected(crm: FakeBitrix24) -> tuple[tuple[int, int, int, int], list[int]]:
    deals = []
    for deal_id, deal in crm.deals.items():
        entered = [
            POSITION[h["STAGE_ID"]] for h in crm.history if h["OWNER_ID"] == deal_id and h["STAGE_ID"] in POSITION
        ]
        stage = deal["STAGE_ID"]
        deals.append((entered, "won" if stage == "WON" else "lost" if stage in ("LOSE", "APOLOGY") else "open"))
    return expected_funnel(deals, 5)


def test_full_and_incremental_sync(
    session: Session, httpserver: HTTPServer, crm: FakeBitrix24, store: SecretStore
) -> None:
    connect(session, httpserver, store)
    report = run(session, store)
    assert report.created == 230
    assert report.pipelines == ["Общая"]
    assert observed(session) == expected(crm)
    pipeline = find_pipeline(session=session, account=account_for(session))
    assert [s.name for s in pipeline.stages] == [
        "Новая",
        "Подготовка документов",
        "Счёт на предоплату",
        "В работе",
        "Сделка успешна",
    ]
    deal = session.scalars(select(Deal).where(Deal.external_id == "2")).one()
    assert deal.amount is not None
    assert deal.currency == "RUB"
    assert "b24secretcode" not in session.scalars(select(Connection.base_url)).one()  # the secret stays in the file

    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)  # changed after the first sync began
    for deal_id in (1, 2, 3, 4):
        crm.move(deal_id, "WON", later)
    crm.add(231, later, [(later + dt.timedelta(hours=1), "PREPARATION")], "5000")
    report = run(session, store)
    assert report.created == 1
    assert report.updated + report.unchanged == 4
    assert observed(session) == expected(crm)


def test_query_limit_exceeded_is_waited_out(
    session: Session, httpserver: HTTPServer, crm: FakeBitrix24, store: SecretStore
) -> None:
    crm.rate_limit_every = 3
    connect(session, httpserver, store)
    run(session, store)
    assert observed(session) == expected(crm)


@pytest.mark.usefixtures("crm")
def test_a_wrong_webhook_code_is_refused_clearly(session: Session, httpserver: HTTPServer, store: SecretStore) -> None:
    connect(session, httpserver, store, code="wrong")
    with pytest.raises(ConnectorAuthFailed) as caught:
        run(session, store)
    assert "Wrong authorization data" in caught.value.message("en")
    assert "wrong" not in caught.value.message("en").split("(")[0]


def test_a_webhook_without_a_user_scope_syncs_managers_by_id_and_says_so(
    session: Session, httpserver: HTTPServer, crm: FakeBitrix24, store: SecretStore
) -> None:
    """A webhook made "with the crm scope" alone: user.get answers 401 insufficient_scope (the
    official system-errors table). The deals still arrive, managers by their Bitrix24 ids."""
    crm.scopes = frozenset({"crm"})
    connect(session, httpserver, store)
    report = run(session, store)
    assert observed(session) == expected(crm)  # every deal and its history, as with full scopes
    warning, calls = (w.render("en") for w in report.warnings)
    assert "user_brief" in warning
    assert "read its calls" in calls  # no telephony scope either
    assert report.as_dict()["warnings"] == [warning, calls]
    from voronka.models import User

    names = set(session.scalars(select(User.name)))
    assert names >= {f"Bitrix24 #{user_id}" for user_id in crm.users if any(
        int(d["ASSIGNED_BY_ID"]) == user_id for d in crm.deals.values())}  # fmt: skip


@pytest.mark.usefixtures("crm")
def test_a_webhook_without_the_crm_scope_is_refused_clearly(
    session: Session, httpserver: HTTPServer, crm: FakeBitrix24, store: SecretStore
) -> None:
    from voronka.errors import PermissionRefused

    crm.scopes = frozenset({"user_brief"})
    connect(session, httpserver, store)
    with pytest.raises(PermissionRefused) as caught:
        run(session, store)
    assert "higher privileges" in caught.value.message("en")
    assert session.scalars(select(Deal)).all() == []


def test_a_method_blocked_for_its_run_time_is_waited_out_as_told(
    session: Session, httpserver: HTTPServer, crm: FakeBitrix24, store: SecretStore
) -> None:
    """429 OPERATION_TIME_LIMIT names when the block ends; the sync waits that long (told first),
    instead of giving up after its usual retries."""
    import time

    crm.blocked["crm.deal.list"] = time.time() + 3
    connect(session, httpserver, store)
    waits: list[float] = []
    started = time.monotonic()
    report = sync_connection(
        session=session, account=account_for(session), store=store, retry=FAST, on_wait=waits.append
    )
    assert time.monotonic() - started >= 3
    assert len(waits) == 1
    assert 3 <= waits[0] <= 5
    assert report.created == len(crm.deals)


def test_a_block_longer_than_allowed_stops_saying_until_when(
    session: Session, httpserver: HTTPServer, crm: FakeBitrix24, store: SecretStore
) -> None:
    import time

    from voronka.errors import ConnectorFailed

    crm.blocked["crm.deal.list"] = time.time() + 600
    connect(session, httpserver, store)
    with pytest.raises(ConnectorFailed) as caught:
        sync_connection(session=session, account=account_for(session), store=store, retry=FAST, max_blocked=60)
    message = caught.value.message("en")
    assert "crm.deal.list" in message
    assert "--max-wait" in message


def test_calls_arrive_through_the_deals_contacts_once_and_set_speed_to_lead(
    session: Session, httpserver: HTTPServer, crm: FakeBitrix24, store: SecretStore
) -> None:
    """voximplant.statistic.get names the deal's contact; the contact's deals (crm.deal.list by
    CONTACT_ID) and the call's time pick the deal. 120 calls: three pages of the documented 50."""
    from voronka.models import CallAttempt

    for deal_id in range(1, 61):
        created = dt.datetime.fromisoformat(crm.deals[deal_id]["DATE_CREATE"])
        crm.call(deal_id, created + dt.timedelta(minutes=deal_id % 7 + 1), code="304")  # not answered
        crm.call(deal_id, created + dt.timedelta(minutes=30), code="200", line="+74951110000")
    crm.call(None, START, phone="+79995550000")  # nobody's: counted, not stored
    connect(session, httpserver, store)
    report = run(session, store)
    assert (report.calls, report.calls_unmatched, report.warnings) == (120, 1, [])
    first = session.scalars(select(Deal).where(Deal.external_id == "1")).one()
    assert first.contact_minutes == 2  # the first outgoing call, missed or not, is the attempt that counts
    lines = set(session.scalars(select(CallAttempt.outgoing_number)))
    assert lines == {"+7 495 111-22-33", "+7 495 111-00-00"}

    crm.call(61, dt.datetime.fromisoformat(crm.deals[61]["DATE_CREATE"]) + dt.timedelta(minutes=9))
    again = run(session, store)
    assert (again.calls, again.calls_unmatched) == (1, 0)  # only the new call: the cursor went on
    assert session.scalar(select(func.count()).select_from(CallAttempt)) == 121


def test_a_user_without_call_statistics_syncs_deals_and_says_so(
    session: Session, httpserver: HTTPServer, crm: FakeBitrix24, store: SecretStore
) -> None:
    crm.call(1, START)
    crm.call_statistics_allowed = False  # 403 ACCESS_DENIED, as the method's reference says
    connect(session, httpserver, store)
    report = run(session, store)
    assert observed(session) == expected(crm)
    assert report.calls == 0
    said = report.warnings[0].render("en")
    assert said.startswith("Bitrix24 did not let this token read its calls (the token may not use voximplant.statistic")
    assert "Access denied!" in said


@pytest.mark.usefixtures("crm")
def test_the_webhook_url_is_a_secret_read_from_a_variable_or_a_hidden_prompt(
    db_url: str, httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The incoming webhook's URL holds its secret code: never a command-line argument (shell history,
    `ps`), but an environment variable or a prompt that does not echo it."""
    from typer.testing import CliRunner

    from voronka.cli import app

    secrets = tmp_path / "secrets.json"
    monkeypatch.setenv("VORONKA_SECRETS_PATH", str(secrets))
    url = httpserver.url_for(f"/rest/1/{CODE}/")
    monkeypatch.setenv("B24_WEBHOOK", url)
    runner = CliRunner()
    base = ["--db", db_url, "--lang", "en", "connect", "bitrix24", "--rate", "0"]
    made = runner.invoke(app, [*base, "--webhook-url-env", "B24_WEBHOOK"])
    assert made.exit_code == 0, made.stderr
    assert CODE not in made.stdout
    assert CODE in secrets.read_text()
    asked = runner.invoke(app, [*base, "--name", "second"], input=url + "\n")
    assert asked.exit_code == 0, asked.stderr
    assert "The incoming webhook's URL" in asked.stdout
    assert CODE not in asked.stdout  # the prompt does not echo it
    positional = runner.invoke(app, [*base, url])
    assert positional.exit_code != 0  # no longer taken from the command line


@pytest.mark.parametrize("first", ["nothing", "init", "init --pipeline Общая"])
def test_the_first_connect_works_on_a_fresh_or_an_initialised_database_alike(
    db_url: str, httpserver: HTTPServer, crm: FakeBitrix24, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    """`init` made a pipeline of its own (or one named like the CRM's, with other stages) and nothing
    was put in it: the CRM's first pipeline takes it over, so one pipeline remains and commands need
    no --pipeline."""
    from typer.testing import CliRunner

    from voronka.cli import app

    monkeypatch.setenv("VORONKA_SECRETS_PATH", str(tmp_path / "secrets.json"))
    monkeypatch.setenv("B24_WEBHOOK", httpserver.url_for(f"/rest/1/{CODE}/"))
    runner = CliRunner()
    base = ["--db", db_url, "--lang", "en"]
    if first != "nothing":
        assert runner.invoke(app, [*base, *first.split()]).exit_code == 0
    made = runner.invoke(app, [*base, "connect", "bitrix24", "--webhook-url-env", "B24_WEBHOOK", "--rate", "0"])
    assert made.exit_code == 0, made.stderr
    synced = runner.invoke(app, [*base, "sync"])
    assert synced.exit_code == 0, synced.stderr
    shown = runner.invoke(app, [*base, "funnel", "--format", "json"])
    assert shown.exit_code == 0, shown.stderr  # no "choose one with --pipeline"
    assert '"pipeline": "Общая"' in shown.stdout
    assert f'"deals": {len(crm.deals)}' in shown.stdout


@pytest.mark.usefixtures("crm")
def test_a_pipeline_of_the_crms_name_that_holds_other_deals_is_left_alone(
    session: Session, httpserver: HTTPServer, store: SecretStore, tmp_path: Path
) -> None:
    from tests.test_import import write
    from voronka.crm.accounts import create_pipeline
    from voronka.ingest.importers import ImportTarget, import_file

    account = account_for(session)
    own = create_pipeline(session=session, account=account, name="Общая", stages=["Лид", "Оплата"])
    import_file(
        target=ImportTarget(session, account, own), path=write(tmp_path, "id,created_at,stage\na,2025-01-01,Лид\n")
    )
    session.commit()
    connect(session, httpserver, store)
    assert run(session, store).created == 230
    names = sorted(p.name for p in session.scalars(select(Pipeline)))
    assert names == ["Общая", "Общая (CRM)"]
    assert [s.name for s in own.stages] == ["Лид", "Оплата"]


@pytest.mark.usefixtures("crm")
def test_a_pipeline_a_website_form_sends_leads_to_is_not_taken_over(
    session: Session, httpserver: HTTPServer, store: SecretStore
) -> None:
    """No deal yet, but a form's leads go there: it is in use, and the CRM brings its own pipeline."""
    from voronka.crm.accounts import create_pipeline
    from voronka.crm.leads import add_lead_form

    account = account_for(session)
    site = create_pipeline(session=session, account=account, name="Сайт", stages=["Заявка", "Оплата"])
    add_lead_form(session=session, account=account, pipeline=site, name="Форма")
    session.commit()
    connect(session, httpserver, store)
    run(session, store)
    assert sorted(p.name for p in session.scalars(select(Pipeline))) == ["Общая", "Сайт"]
