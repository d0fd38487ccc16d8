"""``voronka backup``, ``voronka restore`` and ``voronka recount``: a copy of the database while it
runs, back again, and the report summaries recounted from the deals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voronka.cli.options import PipelineOption
from voronka.cli.render import number
from voronka.cli.state import pipeline_scope, state_of


def backup_command(
    ctx: typer.Context, path: Annotated[Path, typer.Argument(help="Where to write the backup.")]
) -> None:
    """Back the database up while the app may be running: SQLite's online backup, or pg_dump's
    custom format for PostgreSQL."""
    from voronka.backup import backup

    state = state_of(ctx)
    written = backup(state.engine, path)
    state.console.print(state.t("backup.written", path=str(written), size=number(written.stat().st_size, state.t)))


def restore_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A backup written by voronka backup.")],
    yes: Annotated[bool, typer.Option("--yes", help="Replace the database without asking.")] = False,
) -> None:
    """Replace the database's contents with a backup (stop voronka serve first)."""
    from voronka.backup import restore

    state = state_of(ctx)
    if not yes:
        typer.confirm(state.t("backup.confirm", db=state.engine.url.render_as_string()), abort=True)
    restore(state.engine, path)
    state.console.print(state.t("backup.restored", path=str(path)))


def recount_command(ctx: typer.Context, pipeline: PipelineOption = None) -> None:
    """Re-derive from the deals, their history and calls what reports read (each deal's furthest stage and
    first contact, stage reaches, deals per day), and say what changed."""
    from voronka.crm.pipelines import recount
    from voronka.formats import Formats
    from voronka.timeutil import zone

    state = state_of(ctx)
    with pipeline_scope(state, pipeline) as (session, account, chosen):
        done = recount(session=session, pipeline=chosen)
        shown = Formats(state.t.lang, zone(account.timezone))
    state.console.print(
        state.t(
            "backup.recounted",
            pipeline=chosen.name,
            deals=shown.number(done.deals),
            reaches=shown.number(done.stage_reaches),
            cells=shown.number(done.day_cells),
            reaches_total=shown.number(done.reaches_total),
            cells_total=shown.number(done.cells_total),
        )
    )
