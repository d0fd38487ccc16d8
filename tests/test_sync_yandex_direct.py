"""Ad spend from Yandex Direct through its Reports service (a fake built from the API's docs):
offline reports waited for, micro-units turned into kopecks, each campaign's cost on its source,
unmapped cost kept and named, incremental runs replacing recent days, refusals in one line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import account_for
from tests.fakes.yandex_direct import TOKEN, FakeDirect
from voronka.cli import app
from voronka.db import make_engine, session_factory
from voronka.errors import ConnectorAuthFailed, ConnectorFailed
from voronka.ingest.connectors import SPEND_CONNECTORS
from voronka.ingest.connectors.http import RetryPolicy
from voronka.ingest.connectors.store import add_connection, find_connection
from voronka.ingest.connectors.sync import sync_connection
from voronka.jobs.store import find_job
from voronka.jobs.worker import run_due
from voronka.models import AdSpend, OutboxMessage, Source
from voronka.secretstore import SecretStore

FAST = RetryPolicy(attempts=3, first_wait=0.001, max_wait=0.01)
TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture
def direct(httpserver: HTTPServer) -> FakeDirect:
    fake = FakeDirect()
    for back in range(1, 11):
        day = TODAY - dt.timedelta(days=back)
        fake.spend(day, 101, "Поиск — кухни", 1234.56)
        fake.spend(day, 202, "РСЯ осень", 500.00)
        fake.spend(day, 303, "Тест баннеров", 99.99)
    fake.install(httpserver)
    return fake


def connect(session: Session, httpserver: HTTPServer, store: SecretStore, token: str = TOKEN) -> None:
    add_connection(
        session=session, account=account_for(session), connector=SPEND_CONNECTORS["yandex_direct"], name="direct",
        address=httpserver.url_for("/").rstrip("/"), secret_values={"token": token}, store=store,
        settings={"sources": {"101": "Яндекс Поиск", "РСЯ осень": "Яндекс РСЯ"}},
    )  # fmt: skip
    session.commit()


def spend_by_source(session: Session) -> dict[str | None, int]:
    names = {s.id: s.name for s in session.scalars(select(Source))}
    totals: dict[str | None, int] = {}
    for row in session.scalars(select(AdSpend)):
        key = names.get(row.source_id) if row.source_id else None
        totals[key] = totals.get(key, 0) + row.amount
    return totals


def test_daily_cost_lands_on_the_mapped_sources_and_unmapped_cost_is_kept_and_named(
    session: Session, httpserver: HTTPServer, direct: FakeDirect, tmp_path: Path
) -> None:
    direct.offline_polls = 2  # 201, 202, then the data: asked again after retryIn
    store = SecretStore(tmp_path / "secrets.json")
    connect(session, httpserver, store)
    waits: list[float] = []
    report = sync_connection(
        session=session, account=account_for(session), store=store, retry=FAST, on_wait=waits.append
    )
    assert waits == [1.0] * 2 * ((report.spend_days + 30) // 31)  # each report's two "not ready" answers
    assert spend_by_source(session) == {"Яндекс Поиск": 10 * 123_456, "Яндекс РСЯ": 10 * 50_000, None: 10 * 9_999}
    assert report.spend_unmapped == {"Тест баннеров": 10 * 9_999}
    assert "Тест баннеров" in report.warnings[0].render("en")
    assert report.spend_amount == 10 * (123_456 + 50_000 + 9_999)


def test_a_second_run_asks_for_the_last_days_again_and_replaces_them(
    session: Session, httpserver: HTTPServer, direct: FakeDirect, tmp_path: Path
) -> None:
    store = SecretStore(tmp_path / "secrets.json")
    connect(session, httpserver, store)
    sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    yesterday = TODAY - dt.timedelta(days=1)
    direct.costs = [c for c in direct.costs if not (c[0] == yesterday and c[1] == 101)]
    direct.spend(yesterday, 101, "Поиск — кухни", 1000.00)  # Direct corrected yesterday's cost
    direct.asked.clear()
    sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    assert direct.asked == [((yesterday - dt.timedelta(days=3)).isoformat(), yesterday.isoformat())]
    assert spend_by_source(session)["Яндекс Поиск"] == 9 * 123_456 + 100_000  # replaced, not added


def test_a_refused_token_is_one_clear_error(
    session: Session, httpserver: HTTPServer, direct: FakeDirect, tmp_path: Path
) -> None:
    store = SecretStore(tmp_path / "secrets.json")
    connect(session, httpserver, store, token="y0_wrong")
    with pytest.raises(ConnectorAuthFailed) as refused:
        sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    assert "Authorization error: Invalid OAuth token" in str(refused.value)
    assert direct.asked == []


def test_connect_and_sync_from_the_command_line(
    httpserver: HTTPServer, direct: FakeDirect, db_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"XDG_CONFIG_HOME": str(tmp_path), "DIRECT_TOKEN": TOKEN}
    assert runner.invoke(app, ["--db", db_url, "init", "--stages", "Лид,Оплата"], env=env).exit_code == 0
    connected = runner.invoke(
        app,
        ["--db", db_url, "--lang", "en", "connect", "yandex-direct", "--token-env", "DIRECT_TOKEN",
         "--source", "101=Яндекс Поиск", "--source", "РСЯ осень=Яндекс РСЯ",
         "--url", httpserver.url_for("/").rstrip("/")],
        env=env,
    )  # fmt: skip
    assert connected.exit_code == 0, connected.stderr
    assert "webhook" not in connected.stdout.lower()
    synced = runner.invoke(app, ["--db", db_url, "--lang", "en", "sync", "yandex-direct"], env=env)
    assert synced.exit_code == 0, synced.stderr
    days = (TODAY - (TODAY - dt.timedelta(days=90))).days
    assert f"Spend: {days} days brought" in synced.stdout
    assert "RUB 18,346 in all" in synced.stdout.replace("\u00a0", " ")  # 10 days × 1,834.55, whole roubles
    as_json = runner.invoke(app, ["--db", db_url, "sync", "yandex-direct", "--format", "json"], env=env)
    assert as_json.exit_code == 0, as_json.stderr
    spent = json.loads(as_json.stdout)
    assert spent["spend_currency"] == "RUB"  # a money string with its currency (the re-pulled days' cost)
    assert spent["spend"] == f"{spent['spend_amount'] / 100:.2f}"
    assert "new deals" not in synced.stdout
    direct.offline_polls = 1  # the next report is built offline: the wait is Direct's, not a CRM's method limit
    direct.polls.clear()
    direct.retry_in = "0"  # the command waits for real: no test sleeps
    waited = runner.invoke(app, ["--db", db_url, "--lang", "ru", "sync", "yandex-direct"], env=env)
    assert waited.exit_code == 0, waited.stderr
    assert "Яндекс Директ строит отчёт в режиме офлайн: спросим снова через 0 с" in waited.stderr
    assert "CRM" not in waited.stderr
    wrong = runner.invoke(
        app,
        ["--db", db_url, "--lang", "en", "connect", "yandex-direct", "--token-env", "DIRECT_TOKEN", "--source", "101"],
        env=env,
    )
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("Error: Cannot read --source «101»")


@pytest.mark.usefixtures("direct")
def test_a_direct_only_business_gets_a_pipeline_for_its_statistics(
    httpserver: HTTPServer, db_url: str, tmp_path: Path
) -> None:
    """No CRM and no `init`: connecting the ad cabinet makes the pipeline `init` would, and says so,
    so that `voronka stats` reads the spend without asking for one."""
    runner = CliRunner()
    env = {"XDG_CONFIG_HOME": str(tmp_path), "DIRECT_TOKEN": TOKEN}
    base = ["--db", db_url, "--lang", "en"]
    connected = runner.invoke(
        app,
        [*base, "connect", "yandex-direct", "--token-env", "DIRECT_TOKEN", "--source", "101=Яндекс Поиск",
         "--url", httpserver.url_for("/").rstrip("/")],
        env=env,
    )  # fmt: skip
    assert connected.exit_code == 0, connected.stderr
    assert "was made for the statistics, as voronka init would" in " ".join(connected.stdout.split())
    assert runner.invoke(app, [*base, "sync", "yandex-direct"], env=env).exit_code == 0
    stats = runner.invoke(app, [*base, "stats", "--format", "json"], env=env)
    assert stats.exit_code == 0, stats.stderr
    again = runner.invoke(
        app,
        [*base, "connect", "yandex-direct", "--token-env", "DIRECT_TOKEN", "--name", "second",
         "--url", httpserver.url_for("/").rstrip("/")],
        env=env,
    )  # fmt: skip
    assert "was made for the statistics" not in again.stdout  # only when there is none


def test_in_the_background_a_report_being_built_is_collected_on_a_later_pass(
    engine: Engine, session: Session, httpserver: HTTPServer, direct: FakeDirect, tmp_path: Path
) -> None:
    """The worker waits for nothing: a 201 or 202 ends the pass without an error, the report's days
    are remembered, and a later pass asks for the same report (even on another day) and goes on."""
    direct.offline_polls = 2  # each report: 201, then 202, then the data
    store = SecretStore(tmp_path / "secrets.json")
    connect(session, httpserver, store)
    sessions = session_factory(engine)
    now = dt.datetime.combine(TODAY, dt.time(7, 0), tzinfo=dt.UTC)
    results = []
    for _ in range(12):
        run = next(r for r in run_due(sessions=sessions, store=store, now=now, owner="w") if r.kind == "sync")
        assert run.error is None, run.error.render("en")
        results.append(run.result.render("en") if run.result else "")
        now += dt.timedelta(minutes=15)
        with sessions() as check:
            if "pending" not in (find_connection(session=check, account=account_for(check)).state or {}):
                break
    assert "still building the report" in results[0]
    assert len(results) == 7  # three reports (90 days, a month each), each collected two passes after asked
    assert len(direct.polls) == 3  # no report asked for twice under another name
    assert spend_by_source(session) == {"Яндекс Поиск": 10 * 123_456, "Яндекс РСЯ": 10 * 50_000, None: 10 * 9_999}
    with sessions() as check:
        job = find_job(session=check, account=account_for(check), kind="sync", target="direct")
        assert (job.failures, job.last_error) == (0, None)
        assert check.scalars(select(OutboxMessage).where(OutboxMessage.event == "sync_failed")).all() == []


def test_a_report_being_built_overnight_is_asked_for_with_the_same_days(
    session: Session, httpserver: HTTPServer, direct: FakeDirect, tmp_path: Path
) -> None:
    direct.offline_polls = 1
    store = SecretStore(tmp_path / "secrets.json")
    connect(session, httpserver, store)
    account = account_for(session)
    evening = dt.datetime.combine(TODAY, dt.time(23, 50), tzinfo=dt.UTC)
    first = sync_connection(session=session, account=account, store=store, retry=FAST, max_blocked=0, now=evening)
    assert first.spend_pending == (TODAY - dt.timedelta(days=90), TODAY - dt.timedelta(days=60))
    assert "still building the report" in first.warnings[0].render("en")
    morning = evening + dt.timedelta(minutes=20)  # the next day: a fresh start would be another report
    later = sync_connection(session=session, account=account, store=store, retry=FAST, max_blocked=0, now=morning)
    assert later.spend_pending is not None  # the same report collected; the next month's is being built
    assert later.spend_pending[0] == TODAY - dt.timedelta(days=59)
    assert next(iter(direct.polls)).startswith(f"voronka {TODAY - dt.timedelta(days=90):%Y%m%d}-")
    assert len(direct.polls) == 2


def reconnect(session: Session, httpserver: HTTPServer, store: SecretStore, **settings: object) -> None:
    """``voronka connect yandex-direct`` again under the same name: the connection is replaced."""
    from voronka.ingest.connectors.yandex_direct import add_spend_connection

    add_spend_connection(
        session=session, account=account_for(session), connector=SPEND_CONNECTORS["yandex_direct"], name="direct",
        address=httpserver.url_for("/").rstrip("/"), secret_values={"token": TOKEN}, store=store, settings=settings,
    )  # fmt: skip
    session.commit()


@pytest.mark.usefixtures("direct")
def test_mapping_a_campaign_the_sync_warned_about_or_moving_one_counts_its_cost_once(
    session: Session, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The sync said «Тест баннеров» has no source; mapping it (and moving «РСЯ осень» to another
    source) pulls the days again, and each replaces what the old mapping wrote: no double count."""
    store = SecretStore(tmp_path / "secrets.json")
    connect(session, httpserver, store)
    sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    assert spend_by_source(session)[None] == 10 * 9_999
    reconnect(
        session, httpserver, store, sources={"101": "Яндекс Поиск", "РСЯ осень": "Яндекс Поиск", "303": "Баннеры"}
    )
    report = sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    assert report.spend_unmapped == {}
    assert spend_by_source(session) == {
        "Яндекс Поиск": 10 * (123_456 + 50_000), "Баннеры": 10 * 9_999, "Яндекс РСЯ": 0, None: 0
    }  # fmt: skip
    assert sum(spend_by_source(session).values()) == 10 * (123_456 + 50_000 + 9_999)  # what Direct spent


def test_a_correction_older_than_three_days_is_found_by_changes_check_and_pulled_again(
    session: Session, httpserver: HTTPServer, direct: FakeDirect, tmp_path: Path
) -> None:
    store = SecretStore(tmp_path / "secrets.json")
    connect(session, httpserver, store)
    sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    old_day = TODAY - dt.timedelta(days=8)  # well before the three days asked for again anyway
    direct.correct(old_day, 101, "Поиск — кухни", 1000.00)
    direct.asked.clear()
    report = sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    assert direct.checks[-1]["FieldNames"] == ["CampaignsStat"]
    assert set(direct.checks[-1]["CampaignIds"]) == {101, 202, 303}
    assert direct.asked == [(old_day.isoformat(), (TODAY - dt.timedelta(days=1)).isoformat())]
    assert spend_by_source(session)["Яндекс Поиск"] == 9 * 123_456 + 100_000
    assert any(old_day.isoformat() in w.render("en") for w in report.warnings)
    direct.asked.clear()
    sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    assert direct.asked == [((TODAY - dt.timedelta(days=4)).isoformat(), (TODAY - dt.timedelta(days=1)).isoformat())]


def test_a_report_asked_for_again_the_same_day_is_a_new_one_so_a_correction_shows(
    session: Session, httpserver: HTTPServer, direct: FakeDirect, tmp_path: Path
) -> None:
    """Direct hands back a report stored under a name it knows (5 hours): the same days asked for
    twice the same day must go under two names, or the second run reads the first one's numbers."""
    store = SecretStore(tmp_path / "secrets.json")
    connect(session, httpserver, store)
    for _ in range(2):
        sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    yesterday = TODAY - dt.timedelta(days=1)
    direct.correct(yesterday, 101, "Поиск — кухни", 1000.00)
    sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    assert spend_by_source(session)["Яндекс Поиск"] == 9 * 123_456 + 100_000
    same_days = [n for n in direct.built if n.startswith(f"voronka {TODAY - dt.timedelta(days=4):%Y%m%d}-")]
    assert len(same_days) == len(set(same_days)) == 2


def test_a_client_in_another_currency_is_refused_or_converted_at_the_stated_rate(
    session: Session, httpserver: HTTPServer, direct: FakeDirect, tmp_path: Path
) -> None:
    direct.currency = "KZT"
    store = SecretStore(tmp_path / "secrets.json")
    connect(session, httpserver, store)
    with pytest.raises(ConnectorFailed) as refused:
        sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    line = str(refused.value)
    assert "Yandex Direct keeps this client's money in KZT, the account in RUB" in line
    assert "--exchange-rate KZT=RATE" in line
    assert "\n" not in line
    assert spend_by_source(session) == {}
    assert direct.asked == []
    reconnect(session, httpserver, store, sources={"101": "Яндекс Поиск"}, exchange_rate={"KZT": "0.2"})
    report = sync_connection(session=session, account=account_for(session), store=store, retry=FAST)
    assert spend_by_source(session)["Яндекс Поиск"] == 10 * 24_691  # 1,234.56 KZT × 0.2 = 246.91 RUB a day
    assert any("0.2 RUB to 1 KZT" in w.render("en") for w in report.warnings)


@pytest.mark.usefixtures("direct")
def test_mapping_from_the_command_line_as_the_sync_says_leaves_no_spend_without_source(
    httpserver: HTTPServer, db_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"XDG_CONFIG_HOME": str(tmp_path), "DIRECT_TOKEN": TOKEN}
    url = httpserver.url_for("/").rstrip("/")
    assert runner.invoke(app, ["--db", db_url, "init", "--stages", "Лид,Оплата"], env=env).exit_code == 0
    base = ["--db", db_url, "--lang", "en", "connect", "yandex-direct", "--token-env", "DIRECT_TOKEN", "--url", url]
    assert runner.invoke(app, [*base, "--source", "101=Поиск"], env=env).exit_code == 0
    first = runner.invoke(app, ["--db", db_url, "--lang", "en", "sync", "yandex-direct"], env=env)
    assert "Map them with voronka connect yandex-direct --source" in first.stdout.replace("\n", " ")
    again = [*base, "--source", "101=Поиск", "--source", "РСЯ осень=РСЯ", "--source", "303=Баннеры"]
    assert runner.invoke(app, again, env=env).exit_code == 0
    second = runner.invoke(app, ["--db", db_url, "--lang", "en", "sync", "yandex-direct"], env=env)
    assert second.exit_code == 0, second.stderr
    assert "mapped to no source" not in second.stdout
    engine = make_engine(db_url)
    try:
        with Session(engine) as check:
            assert spend_by_source(check) == {
                "Поиск": 10 * 123_456, "РСЯ": 10 * 50_000, "Баннеры": 10 * 9_999, None: 0
            }  # fmt: skip
    finally:
        engine.dispose()
