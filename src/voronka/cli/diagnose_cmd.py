"""``voronka diagnose``: where the funnel leaks, why, and what fixing it is worth."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from voronka.cli.options import TABLE_JSON, PipelineOption, choose, parse_date, parse_stage_rates
from voronka.cli.state import report_scope, state_of


def diagnose(
    ctx: typer.Context,
    pipeline: PipelineOption = None,
    today: Annotated[str | None, typer.Option("--today", help="Diagnose as of this ISO date.")] = None,
    benchmark: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmark", help="A conversion to compare a step with: STAGE=CONVERSION (position or name), repeatable."
        ),
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Ranked findings: the step, manager, source or number that loses clients, how sure we are,
    the likely causes with the evidence, the money at stake a month, and hypotheses to test."""
    from voronka.analysis.diagnose import run_diagnosis
    from voronka.analysis.diagnose.output import diagnosis_to_dict, summary
    from voronka.cli.render import money, shown
    from voronka.reading import choose_pipeline, pipelines_of

    state = state_of(ctx)
    output = choose(output, "--format", TABLE_JSON)
    t = state.t
    with report_scope(state) as (connection, account):
        stages = choose_pipeline(pipelines_of(connection, account.id), pipeline).stages
        benchmarks = parse_stage_rates(benchmark, [(s.position, s.name) for s in stages[1:]], "--benchmark")
        diagnosis = run_diagnosis(
            session=connection,
            account=account,
            pipeline=pipeline,
            today=parse_date(today, "--today"),
            benchmarks=benchmarks,
        )
    if output == "json":
        typer.echo(json.dumps(diagnosis_to_dict(diagnosis, t), ensure_ascii=False, indent=2))
        return
    console = state.console
    start, end = diagnosis.recent
    console.print(f"[bold]{t('diagnose.title', pipeline=diagnosis.pipeline, start=start, end=end)}[/bold]")
    if not any(f.confident for f in diagnosis.findings):
        console.print(t("diagnose.none"))
    for number, finding in enumerate(diagnosis.findings, start=1):
        watch = "" if finding.confident else f" {t('diagnose.watch')}"
        cash = money(round(finding.money_at_stake_per_month), diagnosis.currency, t)
        console.print(f"\n[bold]{number}. {summary(finding, t)}[/bold]{watch}")
        sure = shown(t).number(finding.probability_worse, digits=2)
        console.print(
            f"   {t('diagnose.money', money=cash)} · {t('diagnose.confidence', p=sure)}"
            f" · {t('diagnose.sample', n=shown(t).number(finding.sample_size))}"
        )
        console.print(f"   {t('diagnose.causes')}")
        for cause in finding.causes:
            mark = "[green]✓[/green]" if cause.supported else "[dim]✗[/dim]"
            verdict = t("diagnose.for") if cause.supported else t("diagnose.against")
            console.print(
                f"   {mark} {cause.text.render(t.lang)} — {verdict}: {cause.evidence.render(t.lang)}", soft_wrap=True
            )
        if finding.hypotheses:
            console.print(f"   {t('diagnose.hypotheses')}")
            for hypothesis in finding.hypotheses:
                console.print(f"   → {hypothesis.render(t.lang)}", soft_wrap=True)
    for note in diagnosis.notes:
        console.print(f"[dim]{note.render(t.lang)}[/dim]")
