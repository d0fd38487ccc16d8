"""The top-level command, its options, and the one place errors become ``Error: …``."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from voronka.cli import (
    alerts_cmd,
    audit_cmd,
    backup_cmd,
    catalog_cmd,
    connect_cmd,
    demo_cmd,
    diagnose_cmd,
    forecast_cmd,
    funnel_cmd,
    hypothesis_cmd,
    import_cmd,
    init_cmd,
    jobs_cmd,
    serve_cmd,
    stats_cmd,
    user_cmd,
    whatif_cmd,
)
from voronka.cli.state import State, make_state
from voronka.errors import VoronkaError
from voronka.i18n import Translator, detect_lang

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="voronka",
    help="Sales funnel you can read: stages, conversions, where and why clients are lost.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Rich's help renderer alone took 0.15 s to import
)


def friendly_errors(command: F) -> F:
    """Turn library errors into one line ``Error: …`` and exit code 1 (never a traceback).

    Anything else is a bug: also one line, unless ``VORONKA_DEBUG=1`` asks for the traceback.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx") or next((a for a in args if isinstance(a, typer.Context)), None)
        t = ctx.obj.t if ctx is not None and isinstance(ctx.obj, State) else Translator(detect_lang())
        try:
            return command(*args, **kwargs)
        except VoronkaError as error:
            typer.echo(f"Error: {error.message(t.lang)}", err=True)
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, typer.BadParameter, KeyboardInterrupt):
            raise
        except Exception as error:
            if os.environ.get("VORONKA_DEBUG"):
                raise
            typer.echo(f"Error: {t('error.unexpected', kind=type(error).__name__, detail=error)}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database: an SQLite file path or a postgresql:// URL (default: voronka.db)."),
    ] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="Language of output: ru or en (default: locale).")] = None,
) -> None:
    """voronka: a sales funnel you can read."""
    state = make_state(db, lang)
    ctx.obj = state
    ctx.call_on_close(state.close)


# Every command, in one explicit table: (group or None for the top level, name, function).
COMMANDS: tuple[tuple[typer.Typer | None, str, Callable[..., Any]], ...] = (
    (None, "init", init_cmd.init),
    (None, "funnel", funnel_cmd.funnel),
    (None, "demo", demo_cmd.demo),
    (None, "audit", audit_cmd.audit),
    (None, "whatif", whatif_cmd.whatif),
    (None, "diagnose", diagnose_cmd.diagnose),
    (None, "forecast", forecast_cmd.forecast),
    (None, "sync", connect_cmd.sync),
    (None, "serve", serve_cmd.serve),
    (None, "worker", jobs_cmd.worker),
    (jobs_cmd.jobs_app, "list", jobs_cmd.jobs_list),
    (jobs_cmd.jobs_app, "every", jobs_cmd.jobs_every),
    (jobs_cmd.jobs_app, "on", jobs_cmd.jobs_on),
    (jobs_cmd.jobs_app, "off", jobs_cmd.jobs_off),
    (alerts_cmd.alerts_app, "telegram", alerts_cmd.alerts_telegram),
    (alerts_cmd.alerts_app, "smtp", alerts_cmd.alerts_smtp),
    (alerts_cmd.alerts_app, "webhook", alerts_cmd.alerts_webhook),
    (alerts_cmd.alerts_app, "rules", alerts_cmd.alerts_rules),
    (alerts_cmd.alerts_app, "link", alerts_cmd.alerts_link),
    (alerts_cmd.alerts_app, "pref", alerts_cmd.alerts_pref),
    (alerts_cmd.alerts_app, "outbox", alerts_cmd.alerts_outbox),
    (None, "backup", backup_cmd.backup_command),
    (None, "restore", backup_cmd.restore_command),
    (None, "recount", backup_cmd.recount_command),
    (user_cmd.user_app, "add", user_cmd.user_add),
    (user_cmd.user_app, "password", user_cmd.user_password),
    (user_cmd.user_app, "deactivate", user_cmd.user_deactivate),
    (connect_cmd.connect_app, "amocrm", connect_cmd.connect_amocrm),
    (connect_cmd.connect_app, "bitrix24", connect_cmd.connect_bitrix24),
    (connect_cmd.connect_app, "retailcrm", connect_cmd.connect_retailcrm),
    (connect_cmd.connect_app, "yclients", connect_cmd.connect_yclients),
    (connect_cmd.connect_app, "yandex-direct", connect_cmd.connect_yandex_direct),
    (connect_cmd.connect_app, "list", connect_cmd.connect_list),
    (connect_cmd.connect_app, "remove", connect_cmd.connect_remove),
    (import_cmd.import_app, "deals", import_cmd.deals),
    (import_cmd.import_app, "calls", import_cmd.calls),
    (catalog_cmd.crm_app, "list", catalog_cmd.crm_list),
    (catalog_cmd.crm_app, "recommend", catalog_cmd.crm_recommend),
    (catalog_cmd.template_app, "list", catalog_cmd.template_list),
    (catalog_cmd.template_app, "show", catalog_cmd.template_show),
    (stats_cmd.stats_app, "import", stats_cmd.stats_import),
    (stats_cmd.stats_app, "template", stats_cmd.stats_template),
    (stats_cmd.spend_app, "set", stats_cmd.spend_set),
    (stats_cmd.spend_app, "import", stats_cmd.spend_import),
    (stats_cmd.plan_app, "set", stats_cmd.plan_set),
    (stats_cmd.plan_app, "import", stats_cmd.plan_import),
    (hypothesis_cmd.hypothesis_app, "add", hypothesis_cmd.hypothesis_add),
    (hypothesis_cmd.hypothesis_app, "list", hypothesis_cmd.hypothesis_list),
    (hypothesis_cmd.hypothesis_app, "show", hypothesis_cmd.hypothesis_show),
    (hypothesis_cmd.hypothesis_app, "close", hypothesis_cmd.hypothesis_close),
)
GROUPS: tuple[tuple[typer.Typer, str], ...] = (
    (import_cmd.import_app, "import"),
    (jobs_cmd.jobs_app, "jobs"),
    (alerts_cmd.alerts_app, "alerts"),
    (connect_cmd.connect_app, "connect"),
    (user_cmd.user_app, "user"),
    (catalog_cmd.crm_app, "crm"),
    (catalog_cmd.template_app, "template"),
    (stats_cmd.stats_app, "stats"),
    (stats_cmd.spend_app, "spend"),
    (stats_cmd.plan_app, "plan"),
    (hypothesis_cmd.hypothesis_app, "hypothesis"),
)
stats_cmd.stats_app.callback(invoke_without_command=True)(friendly_errors(stats_cmd.stats))
for group, name, command in COMMANDS:
    (group or app).command(name)(friendly_errors(command))
for group, name in GROUPS:
    app.add_typer(group, name=name)


def main() -> None:
    app(prog_name="voronka")
