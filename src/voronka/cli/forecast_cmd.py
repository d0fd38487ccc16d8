"""``voronka forecast``: revenue expected this month and next, and how well such forecasts held."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from voronka.analysis.forecast import MonthForecast, run_forecast
from voronka.cli.options import PipelineOption, parse_date
from voronka.cli.render import money
from voronka.cli.state import pipeline_scope, state_of
from voronka.money import format_minor


def forecast(
    ctx: typer.Context,
    pipeline: PipelineOption = None,
    today: Annotated[str | None, typer.Option("--today", help="Forecast as of this ISO date.")] = None,
    months: Annotated[int, typer.Option("--calibration", help="Past months to check the method on.", min=1)] = 6,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Revenue expected from open deals this month and next (80 % interval), the run rate beside it,
    and a calibration check: the same forecast made at the start of past months against what came."""
    state = state_of(ctx)
    t = state.t
    with pipeline_scope(state, pipeline) as (session, account, chosen):
        result = run_forecast(
            session=session,
            account=account,
            pipeline=chosen,
            today=parse_date(today, "--today"),
            calibration_months=months,
        )
        currency = account.currency
    if output == "json":

        def month(f: MonthForecast, base: float = 0.0) -> dict[str, Any]:
            return {
                "month": f.month.isoformat(),
                "expected": format_minor(round(base + f.expected), currency),
                "low": format_minor(round(base + f.low), currency),
                "high": format_minor(round(base + f.high), currency),
            }

        typer.echo(
            json.dumps(
                {
                    "this_month": {
                        **month(result.this_month, result.won_so_far),
                        "won_so_far": format_minor(round(result.won_so_far), currency),
                    },
                    "next_month": month(result.next_month),
                    "run_rate": None if result.run_rate is None else format_minor(round(result.run_rate), currency),
                    "open_deals": result.open_deals,
                    "calibration": [
                        {
                            **month(f),
                            "actual": format_minor(round(actual), currency),
                            "inside": f.low <= actual <= f.high,
                        }
                        for _, f, actual in result.calibration
                    ],
                    "calibrated_share": result.calibrated_share,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return

    def cash(value: float) -> str:
        return money(round(value), currency)

    this, following = result.this_month, result.next_month
    state.console.print(
        t(
            "forecast.this",
            month=this.month.strftime("%Y-%m"),
            won=cash(result.won_so_far),
            expected=cash(result.won_so_far + this.expected),
            low=cash(result.won_so_far + this.low),
            high=cash(result.won_so_far + this.high),
            open=result.open_deals,
        )
    )
    state.console.print(
        t(
            "forecast.next",
            month=following.month.strftime("%Y-%m"),
            expected=cash(following.expected),
            low=cash(following.low),
            high=cash(following.high),
        )
    )
    if result.run_rate is not None:
        state.console.print(t("forecast.run_rate", value=cash(result.run_rate)))
    for month_start, made, actual in result.calibration:
        inside = "✓" if made.low <= actual <= made.high else "✗"
        state.console.print(
            f"  {inside} {month_start.strftime('%Y-%m')}: "
            + t(
                "forecast.check",
                expected=cash(made.expected),
                low=cash(made.low),
                high=cash(made.high),
                actual=cash(actual),
            )
        )
    if result.calibrated_share is not None:
        state.console.print(t("forecast.calibrated", share=f"{result.calibrated_share * 100:.0f}"))
    state.console.print(f"[dim]{t('forecast.note')}[/dim]", soft_wrap=True)
