"""``voronka connect`` and ``voronka sync``: pull the funnel out of the CRM a business already has."""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voronka.cli.options import TABLE_JSON, choose
from voronka.cli.render import number
from voronka.cli.state import State, state_of
from voronka.errors import InvalidValue
from voronka.i18n import detect_lang, translate

if TYPE_CHECKING:
    from voronka.ingest.connectors.form import Filled, Secret, Setting
    from voronka.secretstore import SecretStore


def secret_store(state: State) -> SecretStore:
    from voronka.secretstore import SecretStore  # connectors (and httpx) load only when used

    return SecretStore(state.settings.secrets_file())


def _connect(state: State, kind: str, name: str, filled: Filled) -> None:
    from voronka.catalog.templates import ensure_a_pipeline
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
            name=name,
            address=filled.address,
            settings=filled.settings,
            secret_values=filled.secrets,
            store=secret_store(state),
        )
        state.console.print(state.t("connect.saved", name=connection.name, crm=connector.crm, url=connection.base_url))
        if kind not in SPEND_CONNECTORS:  # an ad cabinet sends no webhooks
            state.console.print(state.t("connect.webhook", path=f"/webhooks/{kind}/{webhook}"))
    if kind not in SPEND_CONNECTORS:
        return
    with session_scope(state.engine) as session:
        made = ensure_a_pipeline(session=session, account=default_account(session=session), lang=state.t.lang)
        if made is not None:  # spend alone is read through a pipeline's statistics
            names = " → ".join(s.name for s in made.stages)
            state.console.print(state.t("connect.pipeline_made", pipeline=made.name, stages=names))


def read_secret(env: str | None, prompt: str, option: str = "--token-env") -> str:
    """A secret from an environment variable or a hidden prompt: never from the command line, so it
    stays out of the shell history and the process list."""
    if env:
        found = os.environ.get(env)
        if not found:
            raise InvalidValue(field=option, value=env, hint="the name of a set environment variable")
        return found
    return str(typer.prompt(prompt, hide_input=True))


KEYWORD = inspect.Parameter.KEYWORD_ONLY
_TYPES: dict[str, Any] = {"text": str, "number": float, "list": list[str]}


def connector_commands() -> list[tuple[str, Callable[..., None]]]:
    """``voronka connect KIND`` for every service in the connector registry, built from what each
    declares (``ConnectForm``): adding a connector adds its command."""
    from voronka.ingest.connectors import SERVICES
    from voronka.ingest.connectors.form import command_name

    return [(command_name(kind), connect_command(kind)) for kind in SERVICES]


def connect_command(kind: str) -> Callable[..., None]:
    """A command function with the signature Typer reads options from: the form's arguments, then
    ``--name``, its secrets' variables and its settings; help in the language of the environment
    (the command is built before ``--lang`` is read)."""
    from voronka.ingest.connectors import SERVICES
    from voronka.ingest.connectors.form import NAME, command_name, parameter_name

    form, lang = SERVICES[kind].form, detect_lang()
    arguments: list[Secret | Setting] = [s for s in form.settings if s.argument]
    options: list[Secret | Setting] = [*form.secrets, *(s for s in form.settings if not s.argument)]
    fields = {parameter_name(field.flag): field for field in (*arguments, *options)}
    name_option = Annotated[str | None, typer.Option("--name", help=translate(NAME, lang))]
    parameters = [
        inspect.Parameter("ctx", KEYWORD, annotation=typer.Context),
        *(_parameter(field, lang) for field in arguments),
        inspect.Parameter("name", KEYWORD, annotation=name_option, default=None),
        *(_parameter(field, lang) for field in options),
    ]

    def command(ctx: typer.Context, **given: Any) -> None:
        state = state_of(ctx)
        name = given.pop("name") or command_name(kind)
        by_key = {fields[parameter].key: value for parameter, value in given.items()}
        _connect(state, kind, name, fill_form(state, kind, by_key))

    command.__doc__ = translate(form.help, lang)
    command.__name__ = f"connect_{kind}"
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]  # what Typer reads
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command


def _parameter(field: Secret | Setting, lang: str) -> inspect.Parameter:
    from voronka.ingest.connectors.form import Secret, parameter_name

    help_text = translate(field.help, lang)
    if isinstance(field, Secret):
        annotation: Any = Annotated[str | None, typer.Option(field.flag, help=help_text)]
        return inspect.Parameter(parameter_name(field.flag), KEYWORD, annotation=annotation, default=None)
    kind = _TYPES[field.kind]
    if field.argument:
        annotation = Annotated[kind, typer.Argument(help=help_text)]
        return inspect.Parameter(parameter_name(field.flag), KEYWORD, annotation=annotation)
    if field.default is not None:
        annotation = Annotated[kind, typer.Option(field.flag, help=help_text)]
        return inspect.Parameter(parameter_name(field.flag), KEYWORD, annotation=annotation, default=field.default)
    annotation = Annotated[kind | None, typer.Option(field.flag, help=help_text)]
    return inspect.Parameter(parameter_name(field.flag), KEYWORD, annotation=annotation, default=None)


def fill_form(state: State, kind: str, given: dict[str, Any]) -> Filled:
    """The connection from the options: each secret from its variable, or asked with the input hidden."""
    from voronka.ingest.connectors import SERVICES
    from voronka.ingest.connectors.form import fill

    connector = SERVICES[kind]

    def read(secret: Secret, variable: str | None) -> str:
        return read_secret(variable, state.t(secret.prompt) if secret.prompt else "", option=secret.flag)

    return fill(connector.form, connector.base_url, given, read)


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
                created=number(report.created, state.t),
                updated=number(report.updated, state.t),
                unchanged=number(report.unchanged, state.t),
                requests=number(report.requests, state.t),
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
