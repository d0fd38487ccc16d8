"""``voronka stats``, ``voronka spend`` and ``voronka plan``: the statistics template and its inputs."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voronka.analysis.stats.grain import Grain
from voronka.cli import render
from voronka.cli.options import TABLE_JSON_CSV, PipelineOption, choose, parse_date
from voronka.cli.state import State, pipeline_scope, report_scope, state_of
from voronka.formats import Counted

if TYPE_CHECKING:
    from voronka.analysis.stats.report import StatsReport
    from voronka.i18n import Translator


def stats(
    ctx: typer.Context,
    pipeline: PipelineOption = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First day, ISO.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Day after the last, ISO; exclusive.")] = None,
    period: Annotated[Grain, typer.Option("--period", help="Columns: day, week (ISO) or month.")] = Grain.WEEK,
    by: Annotated[str | None, typer.Option("--by", help="Also per manager or per source.")] = None,
    output: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Also write the workbook with live formulas.")] = None,
) -> None:
    """The statistics template: spend and leads through every stage to money, plan vs fact per period.

    Example: voronka stats --period week --by manager --xlsx stats.xlsx
    """
    from voronka.analysis.stats.output import CSV_COLUMNS, report_to_dict, report_to_rows
    from voronka.analysis.stats.report import StatsQuery, run_stats
    from voronka.tabular.csvout import write_csv

    if ctx.invoked_subcommand is not None:
        return
    state = state_of(ctx)
    output = choose(output, "--format", TABLE_JSON_CSV)
    query = StatsQuery(pipeline, parse_date(date_from, "--from"), parse_date(date_to, "--to"), period, by)
    with report_scope(state) as (connection, account):
        report = run_stats(session=connection, account=account, query=query)
        if xlsx is not None:
            from voronka.analysis.reports.xlsx import write_stats_workbook

            write_stats_workbook(report, xlsx, state.t)
    if output == "json":
        typer.echo(json.dumps(report_to_dict(report, state.t), ensure_ascii=False, indent=2))
    elif output == "csv":
        write_csv(sys.stdout, CSV_COLUMNS, report_to_rows(report))
    else:
        print_stats(state, report)
    if xlsx is not None:
        state.err.print(state.t("stats.workbook", file=xlsx))


def print_stats(state: State, report: StatsReport) -> None:
    """The tables in the terminal: as many of the latest periods as fit its width (a year by week
    squeezed into 160 columns showed empty cells, and took Rich seconds to lay out); the JSON, CSV and
    workbook outputs hold every period."""
    from rich.table import Table as RichTable

    from voronka.analysis.funnel.output import dimension_label
    from voronka.analysis.stats.output import explanation, metric_label

    t = state.t
    texts = [
        [_cell_lines(row.metric, cell, report, t) for cell in row.cells]
        for table in report.tables
        for row in table.rows
    ]
    labels = [metric_label(row.metric, t) for table in report.tables for row in table.rows]
    shown = _periods_that_fit(report, texts, labels, state.console.width, t)
    first = len(report.periods) - shown
    number = 0
    for table in report.tables:
        title = t(
            "stats.title",
            pipeline=report.pipeline,
            grain=t(f"stats.grain_{report.grain.value}"),
            start=report.periods[first].start,
            end=report.periods[-1].end - dt.timedelta(days=1),
        )
        if table.cut is not None:
            title += " · " + t("stats.title_cut", by=dimension_label(report.by or "", t), cut=table.cut)
        grid = RichTable(title=title, title_justify="left")
        grid.add_column(t("stats.metric"))
        for period in report.periods[first:]:
            grid.add_column(period.label, justify="right")
        grid.add_column(t("stats.trend"))
        grid.add_column(t("stats.forecast"), justify="right")
        for row in table.rows:
            cells = ["\n".join(markup for _, markup in lines) for lines in texts[number][first:]]
            trend = t(f"stats.{row.trend.value}") if row.trend else ""
            grid.add_row(labels[number], *cells, trend, _shown(row.metric, row.forecast, report, t))
            number += 1
        state.console.print(grid)
    if first:
        state.console.print(t("stats.columns_cut", shown=shown, total=len(report.periods)), soft_wrap=True)
    state.console.print(f"[dim]{explanation(report, t)}[/dim]", soft_wrap=True)
    for note in report.notes:
        state.console.print(note.render(t.lang), soft_wrap=True)


def _shown(metric: Any, value: Any, report: StatsReport, t: Translator) -> str:
    from voronka.analysis.stats.output import display

    return display(metric, value, report.currency, t)


def _cell_lines(metric: Any, cell: Any, report: StatsReport, t: Translator) -> list[tuple[str, str]]:
    """A cell's lines as (plain text, Rich markup): the fact, and under a plan the plan and its %."""
    from rich.markup import escape

    fact = _shown(metric, cell.fact, report, t)
    lines = [(fact, escape(fact))]
    if cell.plan is not None:
        plan = f"{t('stats.plan')} {_shown(metric, cell.plan, report, t)}"
        lines.append((plan, escape(plan)))
        if cell.of_plan is not None:
            colour = "green" if (cell.of_plan >= 1) == metric.higher_is_better else "red"
            share = render.shown(t).share(cell.of_plan, digits=0)
            lines.append((share, f"[{colour}]{share}[/{colour}]"))
    return lines


def _periods_that_fit(
    report: StatsReport, texts: list[list[list[tuple[str, str]]]], labels: list[str], width: int, t: Translator
) -> int:
    """How many of the latest periods fit beside the metric, trend and forecast columns (at least one)."""
    from rich.cells import cell_len

    def widest(values: list[str]) -> int:
        return max((cell_len(v) for v in values), default=0) + 3  # padding on both sides and a border

    trends = [t(f"stats.{trend}") for trend in ("rising", "flat", "falling")]
    forecasts = [_shown(r.metric, r.forecast, report, t) for table in report.tables for r in table.rows]
    room = width - 1 - widest([t("stats.metric"), *labels]) - widest([t("stats.trend"), *trends])
    room -= widest([t("stats.forecast"), *forecasts])
    shown = 0
    for index in range(len(report.periods) - 1, -1, -1):
        column = [report.periods[index].label, *(plain for row in texts for plain, _ in row[index])]
        room -= widest(column)
        if room < 0:
            break
        shown += 1
    return max(shown, 1)


def stats_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or the workbook's input sheet: date, one column per stage.")],
    pipeline: PipelineOption = None,
) -> None:
    """No-CRM mode: read daily counts per stage (optionally per source and manager, with revenue and
    ad spend) back in — and, from the statistics template, its monthly plans too."""
    from voronka.analysis.stats.nocrm import import_workbook

    state = state_of(ctx)
    with pipeline_scope(state, pipeline) as (session, account, chosen):
        result = import_workbook(session=session, account=account, pipeline=chosen, path=file)
    counts = result.counts
    state.console.print(
        state.t(
            "nocrm.imported",
            file=counts.file,
            days=Counted("days", counts.days),
            rows=Counted("daily_rows", counts.rows),
        )
    )
    if result.plans is not None:
        plans = result.plans
        state.console.print(
            state.t(
                "stats.plans_imported",
                file=plans.file,
                created=Counted("plans", plans.created),
                rejected=len(plans.rejected),
            )
        )


def stats_template(
    ctx: typer.Context,
    xlsx: Annotated[Path, typer.Option("--xlsx", help="Where to write the blank workbook.")],
    pipeline: PipelineOption = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First day of the reports' periods (default: this month's first).")
    ] = None,
) -> None:
    """Write the statistics template for a pipeline: a workbook to keep daily counts in without a
    CRM, with reports by week and month as live formulas, plans, charts."""
    from voronka.analysis.reports.template import write_template_workbook

    state = state_of(ctx)
    first = parse_date(start, "--from") or dt.date.today().replace(day=1)
    with pipeline_scope(state, pipeline) as (_, account, chosen):
        write_template_workbook(
            pipeline=chosen.name,
            stage_names=tuple(s.name for s in chosen.stages),
            currency=account.currency,
            start=first,
            path=xlsx,
            t=state.t,
        )
    sheet = state.t("book.sheet_input")
    state.console.print(state.t("stats.template_written", pipeline=chosen.name, file=xlsx, sheet=sheet))


def spend_set(
    ctx: typer.Context,
    source: Annotated[str, typer.Option("--source", help="The source (channel) the money went to.")],
    amount: Annotated[str, typer.Option("--amount", help="How much, e.g. 120000 or 120 000,50.")],
    month: Annotated[str | None, typer.Option("--month", help="A month: 2024-03.")] = None,
    day: Annotated[str | None, typer.Option("--day", help="A day: 2024-03-15.")] = None,
) -> None:
    """Record ad spend on a source for a month or a day."""
    from voronka.analysis.stats.inputs import parse_day, parse_month, set_spend
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.money import format_minor, parse_amount

    state = state_of(ctx)
    if (month is None) == (day is None):
        raise typer.BadParameter("give either --month or --day")
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        minor = parse_amount(amount, account.currency) or 0
        start, kind = (parse_month(month, "--month"), "month") if month else (parse_day(day or "", "--day"), "day")
        set_spend(session=session, account=account, source=source, start=start, kind=kind, amount=minor)
        shown = f"{format_minor(minor, account.currency)} {account.currency}"
    state.console.print(state.t("stats.spend_saved", source=source, period=month or day, amount=shown))


def spend_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV/XLSX: source, date or month, amount (or an ad cabinet's export).")],
    spend_map: Annotated[
        str | None,
        typer.Option("--map", help="yandex-direct, vk-ads, or a TOML spend map (default: canonical columns)."),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", help="Which source a campaign's cost belongs to: 'Campaign=Source' (repeat)."),
    ] = None,
) -> None:
    """Import ad spend: one row per source (or campaign) and day (``date``) or month (``month``)."""
    from voronka.analysis.stats.inputs import import_spend
    from voronka.analysis.stats.spend_maps import (
        BUILTIN_SPEND_MAPS,
        CANONICAL_SPEND,
        builtin_spend_map,
        load_spend_map,
    )
    from voronka.cli.import_cmd import print_details
    from voronka.crm.accounts import default_account
    from voronka.crm.spend import campaign_sources
    from voronka.db import session_scope

    state = state_of(ctx)
    if spend_map is None:
        chosen = CANONICAL_SPEND
    elif spend_map in BUILTIN_SPEND_MAPS:
        chosen = builtin_spend_map(spend_map)
    else:
        chosen = load_spend_map(Path(spend_map))
    chosen = chosen.with_sources(campaign_sources(source or []))
    with session_scope(state.engine) as session:
        report = import_spend(session=session, account=default_account(session=session), path=file, spend_map=chosen)
    state.console.print(
        state.t(
            "stats.spend_imported",
            file=report.file,
            created=Counted("spend_rows", report.created),
            rejected=len(report.rejected),
        )
    )
    print_details(state, report)


def plan_set(
    ctx: typer.Context,
    month: Annotated[str, typer.Option("--month", help="The month: 2024-03.")],
    metric: Annotated[
        str, typer.Option("--metric", help="A row key of voronka stats --format json (leads, sales, revenue…).")
    ],
    value: Annotated[str, typer.Option("--value", help="The target: a count, an amount, a share (35 %) or minutes.")],
    pipeline: PipelineOption = None,
    manager: Annotated[str | None, typer.Option("--manager", help="The plan of one manager.")] = None,
    source: Annotated[str | None, typer.Option("--source", help="The plan of one source.")] = None,
) -> None:
    """Set a monthly plan for a metric (for the team, or one manager or source)."""
    from voronka.analysis.stats.inputs import parse_month, set_plan
    from voronka.analysis.stats.metrics import metrics_for

    state = state_of(ctx)
    with pipeline_scope(state, pipeline) as (session, account, chosen):
        set_plan(
            session=session,
            account=account,
            pipeline=chosen,
            metrics=metrics_for(tuple(s.name for s in chosen.stages)),
            month=parse_month(month, "--month"),
            metric=metric,
            value=value,
            manager=manager,
            source=source,
        )
    state.console.print(state.t("stats.plan_saved", metric=metric, month=month, value=value))


def plan_import(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="The workbook (its Plan sheet) or a CSV: key, then one column per month.")
    ],
    pipeline: PipelineOption = None,
) -> None:
    """Read the team's monthly plans back from the workbook's plan sheet."""
    from voronka.analysis.stats.inputs import import_plans
    from voronka.analysis.stats.metrics import metrics_for
    from voronka.cli.import_cmd import print_details

    state = state_of(ctx)
    with pipeline_scope(state, pipeline) as (session, account, chosen):
        report = import_plans(
            session=session,
            account=account,
            pipeline=chosen,
            metrics=metrics_for(tuple(s.name for s in chosen.stages)),
            path=file,
        )
    state.console.print(
        state.t(
            "stats.plans_imported",
            file=report.file,
            created=Counted("plans", report.created),
            rejected=len(report.rejected),
        )
    )
    print_details(state, report)
