"""``voronka whatif``: what each step is worth, and what a change would bring."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from voronka.cli.options import TABLE_JSON, PipelineOption, choose, parse_stage_rates
from voronka.cli.state import state_of
from voronka.formats import Counted

if TYPE_CHECKING:
    from voronka.analysis.whatif import Baseline


def _conversions(settings: list[str] | None, baseline: Baseline) -> dict[int, float]:
    """``--set 4=35%`` or ``--set "Точный расчёт=0.35"``: a step by position or stage name."""
    return parse_stage_rates(settings, [(s.position, s.name) for s in baseline.steps], "--set")


def whatif(
    ctx: typer.Context,
    pipeline: PipelineOption = None,
    months: Annotated[int, typer.Option("--months", help="How many full months make the baseline.", min=1)] = 3,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="A step's conversion: STAGE=VALUE (position or name), repeatable.")
    ] = None,
    check: Annotated[str | None, typer.Option("--check", help="Another average check.")] = None,
    leads: Annotated[float | None, typer.Option("--leads", help="Another number of leads a month.")] = None,
    spend: Annotated[str | None, typer.Option("--spend", help="Another monthly ad spend.")] = None,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Monthly revenue from +5 points at each step and from returning it to its own history;
    with options, the revenue, CAC and ROMI of a changed funnel."""
    from rich.table import Table

    from voronka.analysis.whatif import load_baseline, scenario
    from voronka.analysis.whatif_report import whatif_report, whatif_to_dict
    from voronka.cli.render import money, percent
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.money import parse_amount
    from voronka.timeutil import to_local, utcnow, zone

    state = state_of(ctx)
    output = choose(output, "--format", TABLE_JSON)
    t = state.t
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        today = to_local(utcnow(), zone(account.timezone)).date()
        base = load_baseline(session=session, account=account, pipeline=pipeline, today=today, months=months)
        currency = account.currency
    changed = scenario(
        base,
        conversions=_conversions(set_, base),
        average_check=parse_amount(check, currency) if check else None,
        leads=leads,
        spend=parse_amount(spend, currency) if spend else None,
    )
    report = whatif_report(base, changed, currency)
    if output == "json":
        typer.echo(json.dumps(whatif_to_dict(report, t.lang), ensure_ascii=False, indent=2))
        return
    table = Table(title=t("whatif.title", months=months), title_justify="left")
    for column in ("step", "conversion", "reference", "plus", "back"):
        table.add_column(t(f"whatif.{column}"), justify="left" if column == "step" else "right")
    for lever in report.levers:
        back = money(round(lever.to_reference), currency, t) if lever.to_reference is not None else "—"
        table.add_row(
            f"{lever.step.position}. {lever.step.name}",
            percent(lever.step.conversion, t),
            percent(lever.step.reference, t),
            money(round(lever.plus_points), currency, t),
            back,
        )
    state.console.print(table)
    now, then = report.now, report.then
    state.console.print(
        t(
            "whatif.now",
            revenue=money(round(now.revenue), currency, t),
            sales=Counted("sales", now.sales, digits=1),
            leads=Counted("leads", base.leads),
            check=money(round(base.average_check), currency, t),
        )
    )
    if report.changed:
        state.console.print(
            t(
                "whatif.then",
                revenue=money(round(then.revenue), currency, t),
                sales=Counted("sales", then.sales, digits=1),
                cac=money(round(then.cac), currency, t) if then.cac else "—",
                romi=percent(then.romi, t),
            )
        )
    for note in base.notes:
        state.console.print(note.render(t.lang), soft_wrap=True)
    state.console.print(f"[dim]{t('whatif.note')}[/dim]", soft_wrap=True)
