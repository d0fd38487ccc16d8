"""``voronka funnel``: the funnel of docs/funnel.md as a table, JSON or CSV."""

from __future__ import annotations

import enum
import json
import sys
from typing import Annotated

import typer

from voronka.analysis.funnel.query import DEFAULT_IMMATURE_SHARE, FunnelQuery, Rule, View
from voronka.cli.options import TABLE_JSON_CSV, PipelineOption, choose, parse_date
from voronka.cli.state import report_scope, state_of


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def funnel(
    ctx: typer.Context,
    pipeline: PipelineOption = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First day, ISO (2024-03-01).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Day after the last, ISO; exclusive.")] = None,
    view: Annotated[
        View, typer.Option("--view", help="cohort: leads of the period; period: stage entries.")
    ] = View.COHORT,
    rule: Annotated[Rule, typer.Option("--rule", help="cumulative: skipped stages count as passed.")] = Rule.CUMULATIVE,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Split by source, manager, day, week, month, pipeline or field:NAME."),
    ] = None,
    timing: Annotated[bool, typer.Option("--timing", help="Add speed to lead and time to each stage.")] = False,
    immature: Annotated[
        float, typer.Option("--immature", help="Open share above which a cohort is immature.")
    ] = DEFAULT_IMMATURE_SHARE,
    output: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
) -> None:
    """Print the funnel: reached, conversions, lost and open per stage, totals and revenue.

    Example: voronka funnel --from 2024-01-01 --to 2025-01-01 --by month
    """
    from voronka.analysis.funnel.output import CSV_COLUMNS, report_to_dict, report_to_rows
    from voronka.analysis.funnel.report import run_funnel
    from voronka.cli.render import print_funnel
    from voronka.tabular.csvout import write_csv

    state = state_of(ctx)
    chosen_format = Format(choose(output, "--format", TABLE_JSON_CSV))
    query = FunnelQuery(
        pipeline=pipeline,
        date_from=parse_date(date_from, "--from"),
        date_to=parse_date(date_to, "--to"),
        view=view,
        rule=rule,
        by=by,
        immature_share=immature,
        timing=timing,
    )
    with report_scope(state) as (connection, account):
        report = run_funnel(session=connection, account=account, query=query)
    if chosen_format is Format.JSON:
        typer.echo(json.dumps(report_to_dict(report, state.t), ensure_ascii=False, indent=2))
    elif chosen_format is Format.CSV:
        write_csv(sys.stdout, CSV_COLUMNS, report_to_rows(report))
    else:
        print_funnel(state.console, report, state.t)
