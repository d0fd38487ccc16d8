"""``voronka import deals`` and ``voronka import calls``: load deals (and their stage history) and
call-detail exports from files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from voronka.cli.options import TABLE_JSON, PipelineOption, choose
from voronka.cli.render import number
from voronka.cli.state import State, state_of
from voronka.formats import Counted

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from voronka.cli.progress import RowsBar
    from voronka.ingest.importers import ImportReport
    from voronka.models import Account


SHOWN_REJECTIONS = 20
REPORT_FORMATS = ("json", "table")


def deals(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8 or Windows-1251; , ; or tab) or XLSX file.")],
    pipeline: PipelineOption = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="File format: deals, events, amocrm or bitrix24 (default: detected from the header); "
            "json or table: how to print the report.",
        ),
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option("--history", help="Stage history file (deal_id, stage, entered_at) to import too."),
    ] = None,
    column_map: Annotated[
        Path | None,
        typer.Option("--map", help="A TOML map saying which column feeds which field (docs/import.md)."),
    ] = None,
    create_pipeline: Annotated[
        bool,
        typer.Option("--create-pipeline", help="Create the pipeline from the file's stages if it does not exist."),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing.")] = False,
    report_format: Annotated[str, typer.Option("--report", help="How to print the report: table or json.")] = "table",
) -> None:
    """Import deals; re-importing the same ids updates them. Bad rows are listed, good rows land.

    Examples: voronka import deals leads.csv --pipeline Продажи --dry-run ·
    voronka import deals amocrm_export.csv --create-pipeline · voronka import deals Leads.csv --map x_education.toml
    """
    from voronka.cli.progress import RowsBar
    from voronka.crm.accounts import find_pipeline
    from voronka.ingest.importers import ImportTarget, import_file
    from voronka.ingest.importers.maps import load_map
    from voronka.ingest.importers.run import pipeline_for_file

    state = state_of(ctx)
    if format in REPORT_FORMATS:
        report_format, format = format, None
    report_format = choose(report_format, "--report", TABLE_JSON)
    bar = RowsBar(state.err, state.t("import.progress"), minimum=10_000)
    chosen_map = load_map(column_map) if column_map is not None else None

    def work(session: Session, account: Account) -> ImportReport:
        if create_pipeline:
            found = pipeline_for_file(
                session=session, account=account, path=file, name=pipeline, format=format, column_map=chosen_map
            )
        else:
            found = find_pipeline(session=session, account=account, name=pipeline)
        target = ImportTarget(session, account, found)
        return import_file(
            target=target, path=file, format=format, history=history, progress=bar, column_map=chosen_map
        )

    report = _in_one_transaction(state, bar, dry_run, work)
    _print_report(state, report, report_format)


def _print_report(state: State, report: ImportReport, report_format: str) -> None:
    t = state.t
    if report_format == "json":
        typer.echo(json.dumps(report.as_dict(t.lang), ensure_ascii=False, indent=2))
        return
    state.console.print(
        t(
            "import.summary",
            file=report.file,
            created=number(report.created, t),
            updated=number(report.updated, t),
            unchanged=number(report.unchanged, t),
            rejected=number(len(report.rejected), t),
        )
    )
    print_details(state, report)
    if report.dry_run:
        state.console.print(t("import.dry_run"))


def print_details(state: State, report: ImportReport) -> None:
    """The first rows refused, with their line and reason, and the report's notes."""
    t = state.t
    for rejected in report.rejected[:SHOWN_REJECTIONS]:
        state.console.print("  " + t("import.rejected_line", line=rejected.line, reason=rejected.reason.render(t.lang)))
    for note in report.notes:
        state.console.print(note.render(t.lang))
    if len(report.rejected) > SHOWN_REJECTIONS:
        state.console.print(
            "  "
            + t("import.more_rejected", count=Counted("more_rejected_rows", len(report.rejected) - SHOWN_REJECTIONS))
        )


def calls(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A call-detail export: CSV (UTF-8 or Windows-1251) or XLSX.")],
    column_map: Annotated[
        str | None,
        typer.Option(
            "--map",
            help="sipuni, uis, zadarma-out, zadarma-in, or a TOML call map (default: the canonical calls columns).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing.")] = False,
    report_format: Annotated[str, typer.Option("--report", help="How to print the report: table or json.")] = "table",
) -> None:
    """Import calls and link them to deals (by deal id, or by the client's number around the deal's
    time); re-importing the same file adds nothing. Calls that match no deal are listed.

    Examples: voronka import calls calls.csv · voronka import calls sipuni.csv --map sipuni
    """
    from voronka.cli.progress import RowsBar
    from voronka.ingest.importers.call_maps import BUILTIN, CANONICAL, builtin_call_map, load_call_map
    from voronka.ingest.importers.calls import import_calls

    state = state_of(ctx)
    report_format = choose(report_format, "--report", TABLE_JSON)
    if column_map is None:
        chosen = CANONICAL
    elif column_map in BUILTIN:
        chosen = builtin_call_map(column_map)
    else:
        chosen = load_call_map(Path(column_map))
    bar = RowsBar(state.err, state.t("import.progress"), minimum=10_000)
    report = _in_one_transaction(
        state,
        bar,
        dry_run,
        lambda session, account: import_calls(
            session=session, account=account, path=file, call_map=chosen, progress=bar
        ),
    )
    _print_report(state, report, report_format)


def _in_one_transaction(
    state: State, bar: RowsBar, dry_run: bool, work: Callable[[Session, Account], ImportReport]
) -> ImportReport:
    """Run an import in one transaction: committed, or rolled back for a dry run or a failure."""
    from voronka.crm.accounts import default_account
    from voronka.db import session_factory
    from voronka.ingest.importers.run import after_import_committed

    with session_factory(state.engine)() as session:
        try:
            account = default_account(
                session=session, timezone=state.settings.timezone, currency=state.settings.currency
            )
            report = work(session, account)
            report.dry_run = dry_run
            if dry_run:
                session.rollback()
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            bar.stop()
    after_import_committed(state.engine, report)
    return report
