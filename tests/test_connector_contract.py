"""What every connector owes, checked for each one against its fake (tests/fakes/KIND.py): adding a
connector is its module, its registry line and its fake — this test then holds it to the contract."""

from __future__ import annotations

import datetime as dt
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.fakes import Contract
from voronka.catalog.crms import catalogue
from voronka.errors import ConnectorFailed
from voronka.i18n import LANGUAGES
from voronka.i18n import catalogue as messages
from voronka.ingest.connectors import CONNECTORS, SERVICES
from voronka.ingest.connectors.base import Client, ConnectionConfig, Page
from voronka.ingest.connectors.form import command_name
from voronka.ingest.connectors.http import RetryPolicy

DOCS = Path(__file__).parent.parent / "docs"
FAST = RetryPolicy(attempts=2, first_wait=0.001, max_wait=0.01)
LATER = dt.datetime(2030, 1, 1)
"""When the next run begins: after everything the fakes hold changed."""


def _client(kind: str, world: Contract) -> Client:
    connector = CONNECTORS[kind]
    config = ConnectionConfig(
        name=kind,
        base_url=connector.base_url(world.address),
        settings=world.settings,
        secrets=world.secrets,
        requests_per_second=0,
        retry=FAST,
    )
    return connector.client(config)


@pytest.fixture(params=sorted(CONNECTORS))
def crm(request: pytest.FixtureRequest, httpserver: HTTPServer) -> Iterator[tuple[str, Contract]]:
    kind = str(request.param)
    fake = importlib.import_module(f"tests.fakes.{kind}")
    yield kind, fake.contract(httpserver)


def _ids(pages: list[Page]) -> list[str]:
    return [deal.id for page in pages for deal in page.deals]


def test_pipelines_are_listed(crm: tuple[str, Contract]) -> None:
    kind, world = crm
    pipelines = _client(kind, world).pipelines()
    assert [p.name for p in pipelines] == world.pipelines
    assert all(p.funnel for p in pipelines), "a pipeline without stages to count"


def test_paging_is_followed_to_the_end_and_a_run_resumes_from_a_pages_cursor(crm: tuple[str, Contract]) -> None:
    kind, world = crm
    client = _client(kind, world)
    client.pipelines()
    pages = list(client.pages({}))
    assert len(pages) >= 2, "the fake holds more than a page: paging is not exercised"
    assert set(_ids(pages)) == world.deals
    resumed = list(_client(kind, world).pages(pages[0].cursor))
    assert set(_ids(pages[:1])) | set(_ids(resumed)) == world.deals
    assert len(_ids(resumed)) < len(_ids(pages)), "resuming after the first page started over"
    after = client.next_cursor(pages[-1].cursor, LATER)
    assert _ids(list(_client(kind, world).pages(after))) == [], "nothing changed, yet the next run brings deals"


def test_a_refused_token_is_a_named_error_saying_which_crm(crm: tuple[str, Contract]) -> None:
    kind, world = crm
    world.refuse()
    client = _client(kind, world)
    with pytest.raises(ConnectorFailed) as refused:
        client.pipelines()
        list(client.pages({}))
    for lang in LANGUAGES:
        assert CONNECTORS[kind].crm in refused.value.message(lang)


@pytest.mark.parametrize("kind", sorted(CONNECTORS))
def test_a_crm_is_in_the_catalogue_and_the_docs(kind: str) -> None:
    entries = [entry for entry in catalogue() if entry.connector == kind]
    assert entries, f"catalog/crms.toml names no CRM with connector = {kind!r}"
    connect = (DOCS / "connect.md").read_text(encoding="utf-8")
    permissions = connect.split("## Permissions the token needs", 1)[1].split("\n## ", 1)[0]
    crm = re.escape(CONNECTORS[kind].crm)
    assert re.search(rf"^\| {crm}\b", connect, re.M), f"docs/connect.md's table of what is read has no {kind}"
    assert re.search(rf"^\| {crm}\b", permissions, re.M), f"docs/connect.md says no permissions for {kind}"


@pytest.mark.parametrize("kind", sorted(SERVICES))
def test_a_service_declares_its_connect_command(kind: str) -> None:
    """Its command is documented, every secret it requires is asked for, help is in both catalogues."""
    form = SERVICES[kind].form
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert f"## voronka connect {command_name(kind)}\n" in cli
    assert set(SERVICES[kind].secret_names) <= {s.key for s in form.secrets if s.prompt is not None}
    keys = [form.help, *(f.help for f in (*form.secrets, *form.settings))]
    for lang in LANGUAGES:
        assert all(key in messages(lang) for key in keys), lang
    connect = (DOCS / "connect.md").read_text(encoding="utf-8")
    assert re.search(rf"^(\| |#+ .*){re.escape(SERVICES[kind].crm)}", connect, re.M), kind


def test_connect_and_sync_from_the_command_line(
    crm: tuple[str, Contract], db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``voronka connect KIND``, built from the connector's form, stores what its sync needs: secrets
    from variables (never the command line), settings from options and arguments."""
    from typer.testing import CliRunner

    from voronka.cli import app

    kind, world = crm
    form = CONNECTORS[kind].form
    monkeypatch.setenv("VORONKA_SECRETS_PATH", str(tmp_path / "secrets.json"))
    given = {**world.settings, "address": world.address, "requests_per_second": "0"}
    args = ["--db", db_url, "--lang", "en", "connect", command_name(kind)]
    for setting in form.settings:
        if setting.key in given:
            value = str(given[setting.key])
            args += [value] if setting.argument else [setting.flag, value]
    for secret in form.secrets:
        if secret.key in world.secrets:
            monkeypatch.setenv(f"CONTRACT_{secret.key.upper()}", world.secrets[secret.key])
            args += [secret.flag, f"CONTRACT_{secret.key.upper()}"]
    runner = CliRunner()
    made = runner.invoke(app, args)
    assert made.exit_code == 0, made.stderr
    assert all(value not in made.stdout for value in world.secrets.values())
    synced = runner.invoke(app, ["--db", db_url, "sync", command_name(kind), "--format", "json"])
    assert synced.exit_code == 0, synced.stderr
    assert f'"created": {len(world.deals)},' in synced.stdout
