"""``voronka forecast``: revenue expected this month and next, and how well such forecasts held."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from voronka.cli.options import TABLE_JSON, PipelineOption, choose, parse_date
from voronka.cli.render import shown
from voronka.cli.state import pipeline_scope, state_of
from voronka.i18n import Translator

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from voronka.analysis.forecast_report import ForecastReport


def forecast(
    ctx: typer.Context,
    pipeline: PipelineOption = None,
    today: Annotated[str | None, typer.Option("--today", help="Forecast as of this ISO date.")] = None,
    months: Annotated[int, typer.Option("--calibration", help="Past months to check the method on.", min=1)] = 6,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Revenue expected this month and next (80 % interval) from open deals and from leads not created
    yet, the run rate beside it, and a calibration check: the same forecast made at the start of past
    months against what came."""
    from voronka.analysis.forecast_report import forecast_report, forecast_to_dict

    state = state_of(ctx)
    output = choose(output, "--format", TABLE_JSON)
    t = state.t
    with pipeline_scope(state, pipeline) as (session, account, chosen):
        report = forecast_report(
            session=session,
            account=account,
            pipeline=chosen,
            today=parse_date(today, "--today"),
            calibration_months=months,
        )
    if output == "json":
        typer.echo(json.dumps(forecast_to_dict(report, t.lang), ensure_ascii=False, indent=2))
        return
    state.console.print(forecast_table(report, t))
    _print_checks(state.console, report, t)


def forecast_table(report: ForecastReport, t: Translator) -> Table:
    from rich.table import Table

    from voronka.cli.render import money

    table = Table(title=t("forecast.title", pipeline=report.pipeline, currency=report.currency))
    for header in ("month", "part", "expected", "interval"):
        table.add_column(t(f"forecast.col_{header}"), justify="left" if header in ("month", "part") else "right")
    for line in report.lines():
        interval = "—" if line.low is None or line.high is None else (
            f"{money(line.low, report.currency, t)} – {money(line.high, report.currency, t)}"
        )  # fmt: skip
        table.add_row(
            line.month.strftime("%Y-%m"),
            t(f"forecast.part_{line.part}"),
            money(line.expected, report.currency, t),
            interval,
            style="bold" if line.part == "total" else None,
        )
    return table


def _print_checks(console: Console, report: ForecastReport, t: Translator) -> None:
    from voronka.cli.render import money

    f, currency = report.forecast, report.currency

    def cash(value: float) -> str:
        return money(round(value), currency, t)

    console.print(
        t("forecast.open_now", open=shown(t).number(f.open_deals), leads=shown(t).number(f.leads_per_day, digits=1))
    )
    if f.run_rate is not None:
        console.print(t("forecast.run_rate", value=cash(f.run_rate)))
    for month_start, made, actual in f.calibration:
        inside = "✓" if made.holds(actual) else "✗"
        console.print(
            f"  {inside} {month_start.strftime('%Y-%m')}: "
            + t("forecast.check", expected=cash(made.expected), low=cash(made.low), high=cash(made.high),
                actual=cash(actual))
        )  # fmt: skip
    if f.calibrated_share is not None:
        console.print(t("forecast.calibrated", share=shown(t).share(f.calibrated_share, digits=0)))
    for note in report.notes:
        console.print(note.render(t.lang), soft_wrap=True)
    console.print(f"[dim]{t('forecast.note')}[/dim]", soft_wrap=True)
