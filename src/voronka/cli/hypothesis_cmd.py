"""``voronka hypothesis add|list|show|close``: test a change at one step of the funnel."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from voronka.cli.options import TABLE_JSON, PipelineOption, choose, parse_date
from voronka.cli.render import shown
from voronka.cli.state import pipeline_scope, state_of


def hypothesis_add(
    ctx: typer.Context,
    step: Annotated[int, typer.Option("--step", help="The step into this stage position (2 = into the second stage).")],
    change: Annotated[str, typer.Option("--change", help="What is changed, in words.")],
    start: Annotated[str, typer.Option("--start", help="First day of the test, ISO.")],
    assign: Annotated[
        str, typer.Option("--assign", help="alternating, random, before-after or field:NAME=A/B.")
    ] = "alternating",
    end: Annotated[str | None, typer.Option("--end", help="Day after the last, ISO (default: open).")] = None,
    uplift: Annotated[float, typer.Option("--uplift", help="Smallest gain worth finding, in points (5 = +5 %).")] = 5.0,
    pipeline: PipelineOption = None,
) -> None:
    """Start a hypothesis at a step; prints its id and how many deals each arm needs."""
    from voronka.analysis.hypotheses import add_hypothesis, evaluate, parse_assignment

    state = state_of(ctx)
    with pipeline_scope(state, pipeline) as (session, account, chosen):
        hypothesis = add_hypothesis(
            session=session,
            account=account,
            pipeline=chosen,
            position=step,
            change=change,
            starts_on=_required_date(start),
            ends_on=parse_date(end, "--end"),
            assignment=parse_assignment(assign),
            uplift=uplift / 100,
        )
        result = evaluate(session=session, account=account, hypothesis=hypothesis)
        number = hypothesis.id
    state.console.print(
        state.t(
            "hypothesis.added",
            id=number,
            needed=shown(state.t).number(result.needed_per_arm) if result.needed_per_arm else "—",
            weeks=shown(state.t).number(result.weeks_needed, digits=1) if result.weeks_needed else "—",
        )
    )


def _required_date(text: str) -> Any:
    day = parse_date(text, "--start")
    assert day is not None  # --start is a required option
    return day


def hypothesis_list(ctx: typer.Context) -> None:
    """List the hypotheses: id, step, change, dates, status."""
    from voronka.analysis.hypotheses import list_hypotheses
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        for h in list_hypotheses(session=session, account=default_account(session=session)):
            status = state.t("hypothesis.closed") if h.closed_at else state.t("hypothesis.open")
            dates = f"{h.starts_on} – {h.ends_on or '…'}"
            step = f"{h.position - 1}→{h.position}"
            state.console.print(f"#{h.id} · {step} · {h.change} · {dates} · {h.assignment} · {status}")


def hypothesis_show(
    ctx: typer.Context,
    number: Annotated[int, typer.Argument(help="The hypothesis id.")],
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Each arm's conversion with a Wilson interval, the test, P(B better), expected loss, revenue
    effect a month, the deals each arm needs and whether the stopping rule allows a decision yet."""
    from voronka.analysis.hypothesis_report import hypothesis_report, hypothesis_to_dict
    from voronka.cli.render import money, percent
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope

    state = state_of(ctx)
    output = choose(output, "--format", TABLE_JSON)
    t = state.t
    with session_scope(state.engine) as session:
        report = hypothesis_report(session=session, account=default_account(session=session), hypothesis_id=number)
    if output == "json":
        typer.echo(json.dumps(hypothesis_to_dict(report), ensure_ascii=False, indent=2))
        return
    result, change, currency = report.evaluation, report.change, report.currency
    state.console.print(
        f"[bold]#{number} {change}[/bold]"
        + (f" [dim]({t('hypothesis.observational')})[/dim]" if result.observational else "")
    )
    for name, arm, interval in (("A", result.a, result.interval_a), ("B", result.b, result.interval_b)):
        low, high = interval or (None, None)
        state.console.print(
            t(
                "hypothesis.arm",
                arm=name,
                successes=shown(t).number(arm.successes),
                trials=shown(t).number(arm.trials),
                rate=percent(arm.rate, t),
                low=percent(low, t),
                high=percent(high, t),
            )
        )
    p = shown(t).number(result.test.p_value, digits=3)
    state.console.print(t("hypothesis.test", test=result.test.name, p=p))
    if result.probability_b_better is not None:
        state.console.print(
            t(
                "hypothesis.bayes",
                p=shown(t).number(result.probability_b_better, digits=2),
                loss=percent(result.expected_loss_b, t),
            )
        )
    if result.revenue_effect_per_month is not None:
        state.console.print(t("hypothesis.effect", money=money(round(result.revenue_effect_per_month), currency, t)))
    weeks = shown(t).number(result.weeks_needed, digits=1) if result.weeks_needed else "—"
    state.console.print(
        t(
            "hypothesis.needed",
            needed=shown(t).number(result.needed_per_arm) if result.needed_per_arm else "—",
            weeks=weeks,
        )
    )
    state.console.print(t("hypothesis.decide_yes") if result.decision_allowed else t("hypothesis.decide_no"))


def hypothesis_close(
    ctx: typer.Context,
    number: Annotated[int, typer.Argument(help="The hypothesis id.")],
    verdict: Annotated[str | None, typer.Option("--verdict", help="What was decided.")] = None,
) -> None:
    """Close a hypothesis with a verdict."""
    from voronka.analysis.hypotheses import close_hypothesis, get_hypothesis
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        close_hypothesis(
            session=session,
            hypothesis=get_hypothesis(session=session, account=account, hypothesis_id=number),
            verdict=verdict,
        )
    state.console.print(state.t("hypothesis.closed_now", id=number))
