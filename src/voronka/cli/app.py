"""The top-level command, its options, and the one place errors become ``Error: …``."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from voronka.cli import (
    audit_cmd,
    catalog_cmd,
    demo_cmd,
    diagnose_cmd,
    forecast_cmd,
    funnel_cmd,
    hypothesis_cmd,
    import_cmd,
    init_cmd,
    stats_cmd,
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


app.command("init")(friendly_errors(init_cmd.init))
app.command("funnel")(friendly_errors(funnel_cmd.funnel))
app.command("demo")(friendly_errors(demo_cmd.demo))
app.command("audit")(friendly_errors(audit_cmd.audit))
app.command("whatif")(friendly_errors(whatif_cmd.whatif))
app.command("diagnose")(friendly_errors(diagnose_cmd.diagnose))
app.command("forecast")(friendly_errors(forecast_cmd.forecast))
for _name, _command in (
    ("add", hypothesis_cmd.hypothesis_add),
    ("list", hypothesis_cmd.hypothesis_list),
    ("show", hypothesis_cmd.hypothesis_show),
    ("close", hypothesis_cmd.hypothesis_close),
):
    hypothesis_cmd.hypothesis_app.command(_name)(friendly_errors(_command))
app.add_typer(hypothesis_cmd.hypothesis_app, name="hypothesis")
import_cmd.import_app.command("deals")(friendly_errors(import_cmd.deals))
app.add_typer(import_cmd.import_app, name="import")
catalog_cmd.crm_app.command("list")(friendly_errors(catalog_cmd.crm_list))
catalog_cmd.crm_app.command("recommend")(friendly_errors(catalog_cmd.crm_recommend))
app.add_typer(catalog_cmd.crm_app, name="crm")
catalog_cmd.template_app.command("list")(friendly_errors(catalog_cmd.template_list))
catalog_cmd.template_app.command("show")(friendly_errors(catalog_cmd.template_show))
app.add_typer(catalog_cmd.template_app, name="template")
stats_cmd.stats_app.callback(invoke_without_command=True)(friendly_errors(stats_cmd.stats))
stats_cmd.stats_app.command("import")(friendly_errors(stats_cmd.stats_import))
stats_cmd.stats_app.command("template")(friendly_errors(stats_cmd.stats_template))
app.add_typer(stats_cmd.stats_app, name="stats")
stats_cmd.spend_app.command("set")(friendly_errors(stats_cmd.spend_set))
stats_cmd.spend_app.command("import")(friendly_errors(stats_cmd.spend_import))
app.add_typer(stats_cmd.spend_app, name="spend")
stats_cmd.plan_app.command("set")(friendly_errors(stats_cmd.plan_set))
stats_cmd.plan_app.command("import")(friendly_errors(stats_cmd.plan_import))
app.add_typer(stats_cmd.plan_app, name="plan")


def main() -> None:
    app(prog_name="voronka")
