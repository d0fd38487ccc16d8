"""``voronka connect`` and ``voronka sync``: pull the funnel out of the CRM a business already has."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Annotated

import typer

from voronka.cli.options import TABLE_JSON, choose
from voronka.cli.state import State, state_of
from voronka.errors import InvalidValue

if TYPE_CHECKING:
    from voronka.secretstore import SecretStore


def secret_store(state: State) -> SecretStore:
    from voronka.secretstore import SecretStore  # connectors (and httpx) load only when used

    return SecretStore(state.settings.secrets_file())


def _connect(
    state: State, kind: str, address: str, name: str | None, secrets: dict[str, str], settings: dict[str, object]
) -> None:
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.ingest.connectors import SERVICES, SPEND_CONNECTORS
    from voronka.ingest.connectors.store import add_connection
    from voronka.ingest.connectors.yandex_direct import add_spend_connection

    connector = SERVICES[kind]
    add = add_spend_connection if kind in SPEND_CONNECTORS else add_connection
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        connection, webhook = add(
            session=session,
            account=account,
            connector=connector,
            name=name or kind,
            address=address,
            settings=settings,
            secret_values=secrets,
            store=secret_store(state),
        )
        state.console.print(state.t("connect.saved", name=connection.name, crm=connector.crm, url=connection.base_url))
        if kind not in SPEND_CONNECTORS:  # an ad cabinet sends no webhooks
            state.console.print(state.t("connect.webhook", path=f"/webhooks/{kind}/{webhook}"))


def read_secret(env: str | None, prompt: str, option: str = "--token-env") -> str:
    """A secret from an environment variable or a hidden prompt: never from the command line, so it
    stays out of the shell history and the process list."""
    if env:
        found = os.environ.get(env)
        if not found:
            raise InvalidValue(field=option, value=env, hint="the name of a set environment variable")
        return found
    return str(typer.prompt(prompt, hide_input=True))


TokenEnv = Annotated[str | None, typer.Option("--token-env", help="Read the token from this environment variable.")]
NameOption = Annotated[str | None, typer.Option("--name", help="The connection's name (default: the CRM's).")]
RateOption = Annotated[
    float | None, typer.Option("--rate", help="Requests a second (default: below the CRM's limit; 0: unpaced).")
]


def _rate(rate: float | None) -> dict[str, object]:
    return {} if rate is None else {"requests_per_second": rate}


def connect_amocrm(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="Subdomain (mycompany), mycompany.amocrm.ru or a Kommo URL.")],
    name: NameOption = None,
    token_env: TokenEnv = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="OAuth 2: the integration's ID (instead of a long-lived token).")
    ] = None,
    client_secret_env: Annotated[
        str | None,
        typer.Option("--client-secret-env", help="OAuth 2: the variable holding the secret key."),
    ] = None,
    code_env: Annotated[
        str | None,
        typer.Option("--code-env", help="OAuth 2: the variable holding the code (20 min)."),
    ] = None,
    redirect_uri: Annotated[
        str | None, typer.Option("--redirect-uri", help="OAuth 2: the integration's redirect URI, as registered.")
    ] = None,
    rate: RateOption = None,
) -> None:
    """Connect amoCRM with a long-lived token (Settings → Integrations → your private integration), or
    with OAuth 2 (--client-id, --client-secret-env, --code-env, --redirect-uri): the code is exchanged
    for tokens now, and each sync renews them, keeping the new pair in the secrets file."""
    state = state_of(ctx)
    if client_id is None:
        token = read_secret(token_env, state.t("connect.ask_token"))
        _connect(state, "amocrm", address, name, {"token": token}, _rate(rate))
        return
    from voronka.ingest.connectors import CONNECTORS
    from voronka.ingest.connectors.amocrm import exchange_code

    oauth = {
        "client_id": client_id,
        "client_secret": read_secret(client_secret_env, state.t("connect.ask_secret"), option="--client-secret-env"),
        "code": read_secret(code_env, state.t("connect.ask_code"), option="--code-env"),
        "redirect_uri": redirect_uri or "",
    }
    secrets = exchange_code(CONNECTORS["amocrm"].base_url(address), oauth)
    _connect(state, "amocrm", address, name, secrets, _rate(rate))


def connect_bitrix24(
    ctx: typer.Context,
    webhook_url_env: Annotated[
        str | None,
        typer.Option(
            "--webhook-url-env",
            help="Read the incoming webhook's URL (https://PORTAL/rest/USER/CODE/) from this variable (else asked).",
        ),
    ] = None,
    name: NameOption = None,
    rate: RateOption = None,
    application_token_env: Annotated[
        str | None,
        typer.Option(
            "--application-token-env",
            help="Read the outgoing webhook's application token (to check its events) from this variable.",
        ),
    ] = None,
) -> None:
    """Connect Bitrix24 through an incoming webhook with the crm scope. Its URL holds the secret, so
    it is read like every secret — from a variable or a hidden prompt, never the command line — and
    stored in the secrets file; only the portal is kept in the database. For live updates, give the
    application token Bitrix24 shows for your outgoing webhook: events without it are refused."""
    state = state_of(ctx)
    webhook_url = read_secret(webhook_url_env, state.t("connect.ask_webhook_url"), option="--webhook-url-env")
    secrets = {"webhook_url": webhook_url}
    if application_token_env is not None:
        secrets["application_token"] = read_secret(application_token_env, "", option="--application-token-env")
    _connect(state, "bitrix24", webhook_url, name, secrets, _rate(rate))


def connect_retailcrm(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="Subdomain (myshop) or https://myshop.retailcrm.ru.")],
    name: NameOption = None,
    token_env: TokenEnv = None,
    rate: RateOption = None,
) -> None:
    """Connect RetailCRM with an API key (Settings → Integration → API access keys)."""
    state = state_of(ctx)
    key = read_secret(token_env, state.t("connect.ask_key"))
    _connect(state, "retailcrm", address, name, {"api_key": key}, _rate(rate))


def connect_yclients(
    ctx: typer.Context,
    company: Annotated[str, typer.Argument(help="The company (branch) id.")],
    name: NameOption = None,
    token_env: TokenEnv = None,
    user_token_env: Annotated[
        str | None, typer.Option("--user-token-env", help="Read the user token from this environment variable.")
    ] = None,
    address: Annotated[str, typer.Option("--url", help="The API's address.")] = "https://api.yclients.com",
    rate: RateOption = None,
) -> None:
    """Connect YCLIENTS with a partner token and a user token."""
    state = state_of(ctx)
    partner = read_secret(token_env, state.t("connect.ask_token"))
    user = read_secret(user_token_env, state.t("connect.ask_user_token"))
    _connect(
        state,
        "yclients",
        address,
        name,
        {"partner_token": partner, "user_token": user},
        {"company_id": company, **_rate(rate)},
    )


def connect_yandex_direct(
    ctx: typer.Context,
    name: NameOption = None,
    token_env: TokenEnv = None,
    client_login: Annotated[
        str | None, typer.Option("--client-login", help="The client's login, for an agency's token.")
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source", help="Which source a campaign's cost belongs to: 'Campaign name or id=Source' (repeat)."
        ),
    ] = None,
    address: Annotated[str, typer.Option("--url", help="The API's address.")] = "https://api.direct.yandex.com",
    exchange_rate: Annotated[
        list[str] | None,
        typer.Option(
            "--exchange-rate",
            help="When Direct keeps the client's money in another currency: 'CUR=RATE', the account's money per unit.",
        ),
    ] = None,
) -> None:
    """Connect Yandex Direct: voronka sync then brings each day's cost per campaign, as the spend of
    the source each campaign is mapped to (the OAuth token needs access to the Direct API)."""
    from voronka.crm.spend import campaign_sources
    from voronka.ingest.connectors.yandex_direct import parse_exchange_rate

    state = state_of(ctx)
    settings: dict[str, object] = {"sources": campaign_sources(source or [])}
    if exchange_rate:
        settings["exchange_rate"] = {k: v for pair in exchange_rate for k, v in parse_exchange_rate(pair).items()}
    token = read_secret(token_env, state.t("connect.ask_token"))
    if client_login:
        settings["client_login"] = client_login
    _connect(state, "yandex_direct", address, name or "yandex-direct", {"token": token}, settings)
    from voronka.catalog.templates import ensure_a_pipeline
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope

    with session_scope(state.engine) as session:
        made = ensure_a_pipeline(session=session, account=default_account(session=session), lang=state.t.lang)
        if made is not None:  # spend alone is read through a pipeline's statistics
            names = " → ".join(s.name for s in made.stages)
            state.console.print(state.t("connect.pipeline_made", pipeline=made.name, stages=names))


def connect_list(ctx: typer.Context) -> None:
    """The stored connections: where, when last synced (secrets are never shown)."""
    from rich.table import Table

    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.ingest.connectors import SERVICES
    from voronka.ingest.connectors.store import list_connections

    state = state_of(ctx)
    t = state.t
    table = Table(t("connect.name"), t("connect.crm"), t("connect.url"), t("connect.last_synced"), t("connect.state"))
    with session_scope(state.engine) as session:
        for connection in list_connections(session=session, account=default_account(session=session)):
            running = (connection.state or {}).get("running")
            table.add_row(
                connection.name,
                SERVICES[connection.kind].crm,
                connection.base_url,
                connection.last_synced_at.isoformat(sep=" ", timespec="minutes") if connection.last_synced_at else "—",
                t("connect.interrupted") if running else t("connect.ready"),
            )
    state.console.print(table)


def connect_remove(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The connection to forget.")]) -> None:
    """Forget a connection and its secrets (the synced deals stay)."""
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.ingest.connectors.store import remove_connection

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        remove_connection(
            session=session, account=default_account(session=session), name=name, store=secret_store(state)
        )
    state.console.print(state.t("connect.removed", name=name))


def sync(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The connection (default: the only one).")] = None,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    max_wait: Annotated[
        int,
        typer.Option(
            "--max-wait",
            help="Seconds to wait for a method the CRM paused (Bitrix24: ≤ 600) or a report Yandex Direct builds.",
            min=0,
        ),
    ] = 900,
) -> None:
    """Pull pipelines, users, deals and their stage history from the CRM: everything the first time,
    what changed since then afterwards; an interrupted sync resumes where it stopped."""
    from voronka.cli.progress import RowsBar
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.ingest.connectors import wait_message
    from voronka.ingest.connectors.sync import sync_connection

    state = state_of(ctx)
    output = choose(output, "--format", TABLE_JSON)
    bar = RowsBar(state.err, state.t("connect.syncing"))
    try:
        with session_scope(state.engine) as session:
            account = default_account(session=session)
            waiting = wait_message(session=session, account=account, name=name)
            report = sync_connection(
                session=session,
                account=account,
                store=secret_store(state),
                name=name,
                progress=bar,
                max_blocked=max_wait,
                on_wait=lambda seconds: state.err.print(state.t(waiting, seconds=round(seconds))),
            )
    finally:
        bar.stop()
    if output == "json":
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    if report.pipelines:  # a CRM (an ad cabinet brings spend only)
        state.console.print(
            state.t(
                "connect.synced",
                name=report.connection,
                pipelines=", ".join(report.pipelines),
                created=report.created,
                updated=report.updated,
                unchanged=report.unchanged,
                requests=report.requests,
            )
        )
    if report.spend_days:
        from voronka.formats import Shown

        amount = Shown("money", report.spend_amount, report.spend_currency)
        state.console.print(state.t("connect.spend", days=report.spend_days, amount=amount))
    if report.calls or report.calls_unmatched:
        state.console.print(state.t("connect.calls", calls=report.calls, unmatched=report.calls_unmatched))
    if report.resumed:
        state.console.print(state.t("connect.resumed"))
    for warning in report.warnings:
        state.console.print(f"[yellow]{warning.render(state.t.lang)}[/yellow]", soft_wrap=True)
