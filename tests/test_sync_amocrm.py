"""Syncing from amoCRM against a local fake of its documented API: a full sync, an incremental one
after changes, bad days (rate limits, an expired token, malformed JSON, a dropped server) and a sync
killed halfway — each must end in exactly the funnel the fake's data imply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.builders import account_for
from tests.fakes import observed
from tests.fakes.amocrm import LOST, STATUSES, TOKEN, WON, FakeAmoCrm, world
from voronka.errors import ConnectorAuthFailed, ConnectorFailed
from voronka.ingest.connectors import CONNECTORS
from voronka.ingest.connectors.http import RetryPolicy
from voronka.ingest.connectors.store import SecretStore, add_connection, find_connection
from voronka.ingest.connectors.sync import SyncReport, sync_connection
from voronka.models import Deal, StageEntry

FAST = RetryPolicy(attempts=4, first_wait=0.001, max_wait=0.01)
POSITION = {status: number for number, (status, _, _) in enumerate(STATUSES, start=1)} | {WON: 5}


@pytest.fixture
def crm(httpserver: HTTPServer) -> Iterator[FakeAmoCrm]:
    fake = world(600)
    fake.install(httpserver)
    yield fake


def connect(session: Session, httpserver: HTTPServer, store: SecretStore, token: str = TOKEN) -> str:
    account = account_for(session)
    _, webhook = add_connection(
        session=session,
        account=account,
        connector=CONNECTORS["amocrm"],
        name="amo",
        address=httpserver.url_for("").rstrip("/"),
        settings={"requests_per_second": 0},
        secret_values={"token": token},
        store=store,
    )
    session.commit()
    return webhook


def run(session: Session, store: SecretStore) -> SyncReport:
    return sync_connection(session=session, account=account_for(session), store=store, retry=FAST)


def expected(crm: FakeAmoCrm) -> tuple[tuple[int, int, int, int], list[int]]:
    """(deals, won, lost, open) and reached per stage, counted from the fake's own records."""
    furthest: list[int] = []
    outcome = {"won": 0, "lost": 0, "open": 0}
    for lead in crm.leads.values():
        entered = [lead_status(e) for e in crm.events if e["entity_id"] == lead.id]
        positions = [POSITION[s] for s in [first_status(crm, lead.id), *entered] if s in POSITION]
        kind = "won" if lead.status_id == WON else "lost" if lead.status_id == LOST else "open"
        outcome[kind] += 1
        furthest.append(5 if kind == "won" else min(max(positions), 4))
    reached = [sum(f >= k for f in furthest) for k in range(1, 6)]
    return (len(crm.leads), outcome["won"], outcome["lost"], outcome["open"]), reached


def lead_status(event: dict[str, object]) -> int:
    return event["value_after"][0]["lead_status"]["id"]  # type: ignore[index]


def first_status(crm: FakeAmoCrm, lead_id: int) -> int:
    events = [e for e in crm.events if e["entity_id"] == lead_id]
    return events[0]["value_before"][0]["lead_status"]["id"] if events else crm.leads[lead_id].status_id  # type: ignore[index]


def test_full_then_incremental_sync_gives_the_fakes_funnel(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore
) -> None:
    connect(session, httpserver, store)
    report = run(session, store)
    assert report.pipelines == ["Воронка"]
    assert report.created == 600
    assert not report.resumed
    assert observed(session) == expected(crm)
    stages = [s.name for s in find_pipeline_stages(session)]
    assert stages == ["Неразобранное", "Первичный контакт", "Переговоры", "Принимают решение", "Успешно реализовано"]

    # Changes in the CRM: moves, a win, a loss; the next run asks only for what changed.
    later = crm.clock
    for number, lead_id in enumerate(list(crm.leads)[:40]):
        status = WON if number % 5 == 0 else LOST if number % 5 == 1 else STATUSES[3][0]
        crm.move(lead_id, status, later + number * 60)
    before = crm.requests
    report = run(session, store)
    assert report.created == 0
    assert report.updated + report.unchanged == 40
    assert report.updated > 30
    assert crm.requests - before < 30  # one page of changed leads and their events, not all 600
    assert observed(session) == expected(crm)

    # Nothing changed: a third run changes nothing and duplicates nothing.
    changes = session.scalar(select(func.count()).select_from(StageEntry))
    report = run(session, store)
    assert report.updated == 0
    assert session.scalar(select(func.count()).select_from(StageEntry)) == changes


def find_pipeline_stages(session: Session) -> list[object]:
    from voronka.crm.accounts import find_pipeline

    return list(find_pipeline(session=session, account=account_for(session)).stages)


def test_rate_limits_and_malformed_answers_are_retried(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore
) -> None:
    crm.rate_limit_every = 4
    crm.malformed_every = 0
    connect(session, httpserver, store)
    run(session, store)
    assert observed(session) == expected(crm)


def test_connections_dropped_mid_sync_are_retried(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore
) -> None:
    crm.drop_every = 7
    connect(session, httpserver, store)
    run(session, store)
    assert observed(session) == expected(crm)


def test_malformed_json_stops_with_a_clear_error_and_keeps_what_was_synced(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore
) -> None:
    connect(session, httpserver, store)
    crm.malformed_every = 40
    with pytest.raises(ConnectorFailed) as caught:
        run(session, store)
    assert "malformed JSON" in caught.value.message("en")
    assert "voronka sync again" in caught.value.message("en")
    session.rollback()
    kept = session.scalar(select(func.count()).select_from(Deal))
    assert 0 < kept < 600  # the pages before the bad answer are kept
    crm.malformed_every = 0
    report = run(session, store)
    assert report.resumed
    assert observed(session) == expected(crm)


@pytest.mark.usefixtures("crm")
def test_an_expired_token_says_to_connect_again(session: Session, httpserver: HTTPServer, store: SecretStore) -> None:
    connect(session, httpserver, store, token="expired")
    with pytest.raises(ConnectorAuthFailed) as caught:
        run(session, store)
    assert caught.value.message("en") == (
        "amoCRM refused the credentials of connection «amo» (Token has expired). "
        "Run voronka connect amocrm again with a fresh token."
    )
    assert "expired" not in caught.value.message("en").split("(")[0]  # the token itself is never in a message


def test_a_sync_killed_halfway_resumes_without_losing_or_duplicating(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore
) -> None:
    connect(session, httpserver, store)

    class Killed(Exception):
        pass

    class KillAfterTwoPages:
        pages = 0

        def start(self, total: int) -> None:
            pass

        def advance(self, rows: int) -> None:
            self.pages += 1
            if self.pages == 2:
                raise Killed

    with pytest.raises(Killed):
        sync_connection(
            session=session, account=account_for(session), store=store, retry=FAST, progress=KillAfterTwoPages()
        )
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Deal)) == 500  # two pages of 250 were committed
    assert find_connection(session=session, account=account_for(session), name="amo").state["running"]
    report = run(session, store)
    assert report.resumed
    assert report.created == 100
    assert observed(session) == expected(crm)
    assert session.scalar(select(func.count(func.distinct(Deal.external_id)))) == 600


def test_a_server_that_stops_answering_fails_cleanly(session: Session, store: SecretStore) -> None:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    world(10).install(server)
    connect(session, server, store)
    server.stop()  # the connection drops: nothing answers any more
    with pytest.raises(ConnectorFailed) as caught:
        run(session, store)
    assert "no answer" in caught.value.message("en")


@pytest.mark.usefixtures("crm")
def test_the_commands(db_url: str, httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from voronka.cli import app

    secrets = tmp_path / "secrets" / "voronka.json"
    monkeypatch.setenv("VORONKA_SECRETS_PATH", str(secrets))
    monkeypatch.setenv("AMO_TOKEN", TOKEN)
    runner = CliRunner()
    base = ["--db", db_url, "--lang", "en"]
    address = httpserver.url_for("").rstrip("/")
    made = runner.invoke(
        app, [*base, "connect", "amocrm", address, "--name", "shop", "--token-env", "AMO_TOKEN", "--rate", "0"]
    )
    assert made.exit_code == 0, made.stderr
    assert TOKEN not in made.stdout
    assert "/webhooks/amocrm/" in made.stdout
    assert oct(secrets.stat().st_mode & 0o777) == "0o600"
    assert TOKEN in secrets.read_text()
    synced = runner.invoke(app, [*base, "sync", "shop", "--format", "json"])
    assert synced.exit_code == 0, synced.stderr
    assert '"created": 600' in synced.stdout
    listed = runner.invoke(app, [*base, "connect", "list"])
    assert "shop" in listed.stdout
    assert "ready" in listed.stdout
    assert TOKEN not in listed.stdout
    missing = runner.invoke(app, [*base, "sync", "nope"])
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: No CRM connection called «nope»")
    assert runner.invoke(app, [*base, "connect", "remove", "shop"]).exit_code == 0
    assert TOKEN not in secrets.read_text()
    no_env = runner.invoke(app, [*base, "connect", "amocrm", "x", "--token-env", "NOT_SET_ANYWHERE"])
    assert no_env.exit_code == 1
    assert "--token-env" in no_env.stderr


def test_a_token_of_a_user_who_is_not_an_administrator_syncs_managers_by_id(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore
) -> None:
    """/api/v4/users answers 403 to a non-administrator's token: the deals still arrive."""
    from voronka.models import User

    crm.admin = False
    connect(session, httpserver, store)
    report = run(session, store)
    assert report.created == 600
    assert observed(session) == expected(crm)
    assert "administrator" in report.warnings[0].render("en")
    names = set(session.scalars(select(User.name)))
    assert {f"amoCRM #{user_id}" for user_id in crm.users} & names
    assert not set(crm.users.values()) & names  # no name was guessed


def test_leads_edited_during_the_first_sync_are_neither_skipped_nor_lost(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore
) -> None:
    """Right after page 1 is read, the CRM's users move 30 of its leads: in an updated_at listing
    they jump to the end and the rest shift back by 30, so 30 unchanged leads slide onto page 1,
    already read — never read at all (the incremental cursor, past their updated_at, never brings
    them back)."""
    ahead = sorted(crm.leads, key=lambda i: (crm.leads[i].updated_at, i))[:30]

    def edit(page: int) -> None:
        if page == 1 and crm.on_leads_page is not None:
            crm.on_leads_page = None
            for number, lead_id in enumerate(ahead):
                crm.move(lead_id, STATUSES[2][0], crm.clock + number)

    crm.on_leads_page = edit
    connect(session, httpserver, store)
    report = run(session, store)
    assert report.created == 600  # every lead, the edited ones included
    run(session, store)
    assert observed(session) == expected(crm)


def test_oauth_tokens_are_renewed_mid_sync_and_the_new_pair_is_kept(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore
) -> None:
    """OAuth 2: the authorization code is exchanged at connect; when the access token expires
    mid-sync the refresh token (one use) gets a new pair, stored at once, and the sync goes on."""
    from voronka.ingest.connectors.amocrm import exchange_code
    from voronka.ingest.connectors.store import find_connection

    client_id, secret, redirect = crm.client
    secrets = exchange_code(
        httpserver.url_for("").rstrip("/"),
        {"client_id": client_id, "client_secret": secret, "code": "auth-code", "redirect_uri": redirect},
    )
    assert "code" not in secrets
    account = account_for(session)
    add_connection(
        session=session, account=account, connector=CONNECTORS["amocrm"], name="amo",
        address=httpserver.url_for(""), settings={"requests_per_second": 0}, secret_values=secrets, store=store,
    )  # fmt: skip
    session.commit()
    served = 0

    def expire_once(_page: int) -> None:
        nonlocal served
        served += 1
        if served == 1:
            crm.expire()  # the day is over while the first pass runs

    crm.on_leads_page = expire_once
    report = run(session, store)
    assert report.created == 600
    assert observed(session) == expected(crm)
    kept = store.get(find_connection(session=session, account=account, name="amo").secret_ref)
    assert (kept["token"], kept["refresh_token"]) == ("access-2", "refresh-2")  # the second pair, saved
    crm.expire()
    run(session, store)  # the next sync renews with the stored refresh token (the first one is spent)
    assert crm.renewals == 3


def test_a_spent_refresh_token_asks_to_connect_again(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore
) -> None:
    client_id, secret, redirect = crm.client
    account = account_for(session)
    add_connection(
        session=session, account=account, connector=CONNECTORS["amocrm"], name="amo", address=httpserver.url_for(""),
        settings={"requests_per_second": 0}, store=store,
        secret_values={"token": "old", "refresh_token": "spent", "client_id": client_id, "client_secret": secret,
                       "redirect_uri": redirect},
    )  # fmt: skip
    session.commit()
    with pytest.raises(ConnectorAuthFailed):
        run(session, store)


def test_call_notes_of_leads_and_contacts_arrive_once_without_a_line(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore
) -> None:
    """call_in/call_out notes: on a lead they name it; on a contact they belong to its leads, the
    one whose time fits. amoCRM does not say which line a call went out on."""
    from sqlalchemy import func

    from voronka.models import CallAttempt, Deal

    first, second = (crm.leads[i] for i in sorted(crm.leads)[:2])
    crm.call_note("leads", first.id, first.created_at + 240, status=6, duration=0)  # not reached, 4 minutes in
    crm.call_note("leads", first.id, first.created_at + 600, status=4, duration=95)
    crm.contact_leads[77] = [second.id]
    crm.call_note("contacts", 77, second.created_at + 120, outgoing=False, status=4, duration=30)
    crm.call_note("contacts", 78, second.created_at + 120)  # a contact with no leads: nobody's
    connect(session, httpserver, store)
    report = run(session, store)
    assert (report.calls, report.calls_unmatched) == (3, 1)
    deal = session.scalars(select(Deal).where(Deal.external_id == str(first.id))).one()
    assert deal.contact_minutes == 4  # the first outgoing attempt, reached or not
    other = session.scalars(select(Deal).where(Deal.external_id == str(second.id))).one()
    assert other.contact_minutes == 2  # an answered incoming call is a contact
    assert set(session.scalars(select(CallAttempt.outgoing_number))) == {None}

    crm.call_note("leads", first.id, crm.clock, status=7)
    again = run(session, store)
    assert again.calls == 1
    assert session.scalar(select(func.count()).select_from(CallAttempt)) == 4


def test_a_call_note_on_a_lead_is_that_leads_whenever_it_was_made(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore
) -> None:
    """A note on the lead names it (``entity_id``): a call 40 days after the lead was lost — a
    client called back — still belongs to it, where the time window of a contact's calls would drop it."""
    from voronka.models import CallAttempt, Deal

    lost = next(lead for lead in crm.leads.values() if lead.closed_at is not None)
    crm.call_note("leads", lost.id, lost.closed_at + 40 * 86_400, outgoing=False, status=4, duration=30)
    connect(session, httpserver, store)
    report = run(session, store)
    assert (report.calls, report.calls_unmatched) == (1, 0)
    deal = session.scalars(select(Deal).where(Deal.external_id == str(lost.id))).one()
    assert session.scalars(select(CallAttempt.deal_id)).one() == deal.id


def _oauth_connection(session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore) -> Any:
    from voronka.ingest.connectors.amocrm import exchange_code

    client_id, secret, redirect = crm.client
    secrets = exchange_code(
        httpserver.url_for("").rstrip("/"),
        {"client_id": client_id, "client_secret": secret, "code": "auth-code", "redirect_uri": redirect},
    )
    connection, _ = add_connection(
        session=session, account=account_for(session), connector=CONNECTORS["amocrm"], name="amo",
        address=httpserver.url_for(""), settings={"requests_per_second": 0}, secret_values=secrets, store=store,
    )  # fmt: skip
    session.commit()
    return connection


def test_a_token_about_to_expire_is_renewed_before_it_is_refused(
    session: Session, httpserver: HTTPServer, crm: FakeAmoCrm, store: SecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The access token lives a day (``expires_in``): ten minutes before its end the sync renews it
    first, instead of waiting for a refused request."""
    from voronka.ingest.connectors import amocrm

    connection = _oauth_connection(session, httpserver, crm, store)
    expires = int(store.get(connection.secret_ref)["expires_at"])
    monkeypatch.setattr(amocrm, "_now", lambda: float(expires - 300))  # five minutes left
    refused: list[int] = []
    crm.on_leads_page = lambda _page: refused.append(crm.renewals)
    report = run(session, store)
    assert report.created == 600
    assert crm.renewals == 2  # the code's pair, then one renewal
    assert refused[0] == 2  # renewed before the first page was asked for
    kept = store.get(connection.secret_ref)
    assert (kept["token"], kept["refresh_token"]) == ("access-2", "refresh-2")
    assert int(kept["expires_at"]) == expires - 300 + 86_400


def test_two_processes_renewing_at_once_spend_the_refresh_token_once(
    engine: Any, httpserver: HTTPServer, crm: FakeAmoCrm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """amoCRM spends a refresh token on its first use: two workers that both find the token expiring
    take turns under a lock in the database, and the second uses the pair the first obtained."""
    import threading

    from voronka.db import session_factory
    from voronka.ingest.connectors import amocrm
    from voronka.ingest.connectors.store import connection_config, find_connection

    store = SecretStore(tmp_path / "secrets.json")
    factory = session_factory(engine)
    with factory() as session:
        connection = _oauth_connection(session, httpserver, crm, store)
        expires = int(store.get(connection.secret_ref)["expires_at"])
    monkeypatch.setattr(amocrm, "_now", lambda: float(expires - 60))
    start = threading.Barrier(2, timeout=60)
    tokens: list[str] = []

    def worker() -> None:
        with factory() as session:
            found = find_connection(session=session, account=account_for(session), name="amo")
            config = connection_config(found, store, CONNECTORS["amocrm"])
            start.wait()
            client = amocrm.AmoCrmClient(config)  # renews, being about to expire
            tokens.append(str(client.http.client.headers["Authorization"]))
            client.http.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert crm.renewals == 2  # the code's pair, then one renewal for both
    assert tokens == ["Bearer access-2", "Bearer access-2"]
    assert store.get(connection.secret_ref)["refresh_token"] == "refresh-2"
