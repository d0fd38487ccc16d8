"""The top-level command, its options, and the one place errors become ``Error: …``."""

from __future__ import annotations

import functools
import gc
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from voronka.cli.lazy import Command, Entry, Group, LazyGroup
from voronka.cli.state import State, make_state
from voronka.errors import VoronkaError
from voronka.i18n import Translator, detect_lang

F = TypeVar("F", bound=Callable[..., Any])


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


# Every command, in one explicit table; each module loads only when its command runs.
COMMANDS: tuple[Entry, ...] = (
    Command("init", "init_cmd:init", "Create the database (if needed) and a pipeline with ordered stages."),
    Command(
        "funnel",
        "funnel_cmd:funnel",
        "Print the funnel: reached, conversions, lost and open per stage, totals and revenue.",
    ),
    Command("demo", "demo_cmd:demo", "Build a demo database (custom furniture, a year of leads) and print its funnel."),
    Command(
        "audit",
        "audit_cmd:audit",
        "Score how well the funnel data is kept (0–100) and list each problem: why it matters, how to fix it.",
    ),
    Command(
        "whatif",
        "whatif_cmd:whatif",
        "Monthly revenue from +5 points at each step and from returning it to its own history; with options, "
        "the revenue, CAC and ROMI of a changed funnel.",
    ),
    Command(
        "diagnose",
        "diagnose_cmd:diagnose",
        "Ranked findings: the step, manager, source or number that loses clients, how sure we are, the likely "
        "causes with the evidence, the money at stake a month, and hypotheses to test.",
    ),
    Command(
        "forecast",
        "forecast_cmd:forecast",
        "Revenue expected this month and next (80 % interval) from open deals and from leads not created yet, "
        "the run rate beside it, and a calibration check: the same forecast made at the start of past months "
        "against what came.",
    ),
    Command(
        "sync",
        "connect_cmd:sync",
        "Pull pipelines, users, deals and their stage history from the CRM: everything the first time, what "
        "changed since then afterwards; an interrupted sync resumes where it stopped.",
    ),
    Command(
        "serve",
        "serve_cmd:serve",
        "Serve the web app: pages, the REST API /api/v1 (documented at /api/v1/docs), lead capture and the CRM "
        "webhooks; and, unless --no-jobs, the background jobs (syncs, alerts, digests).",
    ),
    Command(
        "worker",
        "jobs_cmd:worker",
        "Run the background jobs in this process (for deployments that keep the web app apart; ``voronka serve`` "
        "runs them itself). Stop with Ctrl+C.",
    ),
    Command(
        "backup",
        "backup_cmd:backup_command",
        "Back the database up while the app may be running: SQLite's online backup, or pg_dump's custom format "
        "for PostgreSQL.",
    ),
    Command(
        "restore",
        "backup_cmd:restore_command",
        "Replace the database's contents with a backup (stop voronka serve first).",
    ),
    Command(
        "recount",
        "backup_cmd:recount_command",
        "Re-derive from the deals, their history and calls what reports read (each deal's furthest stage and"
        " first contact, stage reaches, deals per day), and say what changed.",
    ),
    Group("import", "Import data from files.", "import_cmd", (("deals", "deals"), ("calls", "calls"))),
    Group(
        "jobs",
        "Background jobs: syncs, alerts, digests, the diagnosis.",
        "jobs_cmd",
        (("list", "jobs_list"), ("every", "jobs_every"), ("on", "jobs_on"), ("off", "jobs_off")),
    ),
    Group(
        "alerts",
        "Alerts and digests: Telegram, e-mail, webhook.",
        "alerts_cmd",
        (
            ("telegram", "alerts_telegram"),
            ("smtp", "alerts_smtp"),
            ("webhook", "alerts_webhook"),
            ("rules", "alerts_rules"),
            ("leads", "alerts_leads"),
            ("test", "alerts_test"),
            ("digest", "alerts_digest"),
            ("link", "alerts_link"),
            ("pref", "alerts_pref"),
            ("outbox", "alerts_outbox"),
        ),
    ),
    Group(
        "connect",
        "Connect a CRM or an ad cabinet (one command for each in the connector registry); list and forget connections.",
        "connect_cmd",
        (
            ("list", "connect_list"),
            ("remove", "connect_remove"),
        ),
        generated="connector_commands",
    ),
    Group(
        "user",
        "Users of the web app.",
        "user_cmd",
        (("add", "user_add"), ("password", "user_password"), ("deactivate", "user_deactivate")),
    ),
    Group(
        "crm",
        "The CRMs of the lesson: list them, or get a recommendation.",
        "catalog_cmd",
        (("list", "crm_list"), ("recommend", "crm_recommend")),
    ),
    Group(
        "template",
        "Industry pipeline templates.",
        "catalog_cmd",
        (("list", "template_list"), ("show", "template_show")),
    ),
    Group(
        "stats",
        "The statistics template: plan vs fact by period, manager and source.",
        "stats_cmd",
        (("import", "stats_import"), ("template", "stats_template")),
        callback="stats",
    ),
    Group(
        "spend",
        "Ad spend per source, per day or month.",
        "stats_cmd",
        (("set", "spend_set"), ("import", "spend_import")),
    ),
    Group(
        "plan",
        "Monthly plans per metric, for the team, a manager or a source.",
        "stats_cmd",
        (("set", "plan_set"), ("import", "plan_import")),
    ),
    Group(
        "hypothesis",
        "Hypotheses: a change at one step, tested on two arms of deals.",
        "hypothesis_cmd",
        (
            ("add", "hypothesis_add"),
            ("list", "hypothesis_list"),
            ("show", "hypothesis_show"),
            ("close", "hypothesis_close"),
        ),
    ),
)


class VoronkaGroup(LazyGroup):
    entries = COMMANDS

    @staticmethod
    def wrap(function: Any) -> Any:
        return friendly_errors(function)


app = typer.Typer(
    name="voronka",
    cls=VoronkaGroup,
    help="Sales funnel you can read: stages, conversions, where and why clients are lost.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Rich's help renderer alone took 0.15 s to import
)


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database: an SQLite file path or a postgresql:// URL (default: voronka.db)."),
    ] = None,
    # Eager, as --help is: typed before --help, it chooses the language of the help.
    lang: Annotated[
        str | None, typer.Option("--lang", help="Language of output: ru or en (default: locale).", is_eager=True)
    ] = None,
) -> None:
    """voronka: a sales funnel you can read."""
    state = make_state(db, lang)
    if isinstance(ctx.obj, Invocation):
        ctx.obj.state = state
    ctx.obj = state
    ctx.call_on_close(state.close)


@dataclass
class Invocation:
    """What ``main`` learns about the command it ran: the state it used, once it has ended."""

    state: State | None = None


def main() -> None:
    # A command builds hundreds of thousands of long-lived objects while its modules load
    # (SQLAlchemy, the mapped tables, pydantic): with the default thresholds the collector ran
    # over them again and again, and once more over all of them at exit (a quarter of a second
    # of `voronka funnel`). Rarer collections still free cycles on long runs; what is left at
    # the end needs no collection, since the process is ending.
    gc.set_threshold(50_000, 20, 20)
    # pydantic looks for plugins among every installed package's entry points when it builds the
    # settings' schema (20 ms of each command); voronka uses none. Setting the variable yourself wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")
    invocation = Invocation()
    try:
        app(prog_name="voronka", obj=invocation)
    except SystemExit as ended:
        if not ended.code and invocation.state is not None and invocation.state.only_read:
            _end_without_teardown()
        raise
    finally:
        gc.freeze()


def _end_without_teardown() -> None:
    """End a command that only read, now that its output is written and its database closed.

    The interpreter's own ending frees every module and object one by one: 0.01 s of a report
    command, a twentieth of its run, for a process that is going away. Nothing is left to do for
    a command that only read (its connections are closed, it opened no file it did not close);
    the output is flushed first, and if that fails the command ends the usual way.
    """
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None when the descriptor was closed before Python started
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(0)
