"""``voronka audit``: how well the funnel data is kept."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from voronka.cli.options import TABLE_JSON, PipelineOption, choose
from voronka.cli.state import pipeline_scope, state_of


def audit(
    ctx: typer.Context,
    pipeline: PipelineOption = None,
    duplicate_days: Annotated[
        int,
        typer.Option(
            "--duplicate-days", help="Same phone or e-mail within this many days is a likely duplicate.", min=1
        ),
    ] = 30,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Score how well the funnel data is kept (0–100) and list each problem: why it matters, how to fix it."""
    from rich.table import Table

    from voronka.analysis.audit import audit_to_dict, run_audit
    from voronka.cli.render import number, percent
    from voronka.formats import Counted

    state = state_of(ctx)
    output = choose(output, "--format", TABLE_JSON)
    t = state.t
    with pipeline_scope(state, pipeline) as (session, _, chosen):
        report = run_audit(session=session, pipeline=chosen, duplicate_days=duplicate_days)
    if output == "json":
        typer.echo(json.dumps(audit_to_dict(report, t.lang), ensure_ascii=False, indent=2))
        return
    deals = Counted("deals", report.deals)
    state.console.print(f"[bold]{t('audit.title', pipeline=report.pipeline, score=report.score, deals=deals)}[/bold]")
    problems = [f for f in report.findings if f.count]
    if not problems:
        state.console.print(t("audit.clean"))
        return
    table = Table(show_lines=True)
    for column in ("problem", "count", "share", "examples"):
        table.add_column(t(f"audit.{column}"), justify="right" if column in ("count", "share") else "left")
    for finding in sorted(problems, key=lambda f: -f.weight * f.share):
        description = (
            f"[bold]{t(f'audit.{finding.code}.name')}[/bold]\n{t(f'audit.{finding.code}.why')}\n"
            f"[green]→ {t(f'audit.{finding.code}.fix')}[/green]"
        )
        table.add_row(description, number(finding.count, t), percent(finding.share, t), ", ".join(finding.examples))
    state.console.print(table)
