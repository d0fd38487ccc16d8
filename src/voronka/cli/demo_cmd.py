"""``voronka demo``: build the lesson's furniture business and show its funnel."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from voronka.analysis.funnel.query import FunnelQuery
from voronka.cli.options import parse_date
from voronka.cli.state import state_of


def demo(
    ctx: typer.Context,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same data.")] = 42,
    leads: Annotated[int, typer.Option("--leads", help="About how many leads over the year.", min=10)] = 3000,
    today: Annotated[str | None, typer.Option("--today", help="Pretend today is this ISO date.")] = None,
    template: Annotated[
        str, typer.Option("--template", help="Industry template to play (voronka template list).")
    ] = "manufacturing",
    workbook: Annotated[Path, typer.Option("--xlsx", help="Where to write the statistics workbook.")] = Path(
        "voronka-stats.xlsx"
    ),
) -> None:
    """Build a demo database (custom furniture, a year of leads) and print its funnel.

    Running it again rebuilds the demo; it refuses to touch a database that holds other deals.
    """
    from voronka.analysis.diagnose import run_diagnosis
    from voronka.analysis.diagnose.output import summary as finding_summary
    from voronka.analysis.funnel.report import run_funnel
    from voronka.analysis.reports.xlsx import write_stats_workbook  # XlsxWriter loads only when a workbook is written
    from voronka.analysis.stats.report import StatsQuery, run_stats
    from voronka.cli.render import money, print_funnel
    from voronka.config import DEFAULT_SQLITE_FILE, normalise_database_url
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.demo import DemoOptions, build_demo, reset_demo
    from voronka.formats import Counted

    state = state_of(ctx)
    t = state.t
    options = DemoOptions(seed=seed, leads=leads, today=parse_date(today, "--today"), template=template)
    state.console.print(t("demo.building", leads=Counted("leads", leads)))
    with session_scope(state.engine) as session:
        account = default_account(session=session, currency="RUB")
        reset_demo(session=session, account=account)
        summary = build_demo(session=session, account=account, options=options)
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        print_funnel(state.console, run_funnel(session=session, account=account, query=FunnelQuery(timing=True)), t)
        state.console.print()
        print_funnel(state.console, run_funnel(session=session, account=account, query=FunnelQuery(by="source")), t)
        diagnosis = run_diagnosis(session=session, account=account, today=options.today)
        state.console.print()
        for rank, finding in enumerate(diagnosis.findings[:3], start=1):
            cash = money(round(finding.money_at_stake_per_month), account.currency, t)
            line = f"[bold]{rank}. {finding_summary(finding, t)}[/bold] — {t('diagnose.money', money=cash)}"
            state.console.print(line)
        stats = run_stats(session=session, account=account, query=StatsQuery(by="manager"), today=options.today)
        write_stats_workbook(stats, workbook, t)
    state.console.print(t("stats.workbook", file=workbook))
    url = state.settings.database_url
    # A file by its path; a server by its URL (never its password), which is what --db takes.
    engine_url = state.engine.url
    database = (engine_url.database if engine_url.get_backend_name() == "sqlite" else None) or (
        engine_url.render_as_string(hide_password=True)
    )
    db_option = "" if url == normalise_database_url(DEFAULT_SQLITE_FILE) else f"--db {shlex.quote(database)} "
    state.console.print()
    state.console.print(t("demo.done", db=database, deals=Counted("deals", summary.deals)))
    state.console.print(t("demo.next", db=db_option))
