"""``voronka crm …`` and ``voronka template …``: the lesson's CRM review and the industry templates."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from voronka.catalog.common import Industry
from voronka.cli.state import state_of


def crm_list(
    ctx: typer.Context,
    industry: Annotated[
        str | None, typer.Option("--industry", help="Only this group: " + ", ".join(Industry) + ".")
    ] = None,
) -> None:
    """List the CRMs of the lesson by group, with what voronka can do with each."""
    from rich.table import Table

    from voronka.catalog.crms import crms_for, parse_industry

    state = state_of(ctx)
    t = state.t
    chosen = parse_industry(industry) if industry else None
    for group in Industry:
        if chosen is not None and group is not chosen:
            continue
        table = Table(title=t(f"crm.group_{group.value}"), title_justify="left")
        for column in ("name", "site", "purpose", "voronka"):
            table.add_column(t(f"crm.column_{column}"))
        for entry in crms_for(group):
            support = ", ".join(t(f"crm.support_{s.value}") for s in sorted(entry.support())) or t("crm.support_none")
            table.add_row(entry.name, entry.site, entry.purpose.in_lang(t.lang), support)
        state.console.print(table)


def crm_recommend(
    ctx: typer.Context,
    industry: Annotated[str | None, typer.Option("--industry", help="Your industry group.")] = None,
    team: Annotated[int | None, typer.Option("--team", help="How many people will work in it.", min=1)] = None,
    need: Annotated[
        list[str] | None, typer.Option("--need", help="A must-have: booking, warehouse, telephony or api (repeatable).")
    ] = None,
) -> None:
    """Suggest CRMs for your business and say why each fits (asks when run in a terminal without options)."""
    from voronka.catalog.crms import Need, parse_features, parse_industry, recommend

    state = state_of(ctx)
    t = state.t
    if industry is None and team is None and need is None and sys.stdin.isatty():
        industry = typer.prompt(t("crm.ask_industry", groups=", ".join(Industry)), default=Industry.UNIVERSAL.value)
        team = typer.prompt(t("crm.ask_team"), default=3, type=int)
        need = typer.prompt(t("crm.ask_need"), default="", show_default=False).replace(",", " ").split()
    wanted = Need(
        industry=parse_industry(industry) if industry else None,
        team_size=team,
        features=parse_features(need or []),
    )
    suggestions = recommend(wanted)
    if not suggestions:
        state.console.print(t("crm.no_match"))
        return
    for number, suggestion in enumerate(suggestions, start=1):
        crm = suggestion.crm
        state.console.print(f"[bold]{number}. {crm.name}[/bold] ({crm.site}) — {crm.purpose.in_lang(t.lang)}")
        for reason in suggestion.reasons:
            state.console.print(f"   · {reason.render(t.lang)}")
    state.console.print(f"[dim]{t('crm.advice')}[/dim]", soft_wrap=True)


def template_list(ctx: typer.Context) -> None:
    """List the industry templates: key, title, stages."""
    from rich.table import Table

    from voronka.catalog.templates import TEMPLATES_LIST

    state = state_of(ctx)
    t = state.t
    table = Table()
    for column in ("key", "title", "stages"):
        table.add_column(t(f"template.column_{column}"))
    for template in TEMPLATES_LIST:
        table.add_row(template.key, template.title.in_lang(t.lang), " → ".join(template.stage_names(t.lang)))
    state.console.print(table)


def template_show(
    ctx: typer.Context, key: Annotated[str, typer.Argument(help="Template key (voronka template list).")]
) -> None:
    """Show a template: its stages, loss reasons with their cause family, and sources."""
    from voronka.catalog.templates import resolve_template

    state = state_of(ctx)
    t = state.t
    template = resolve_template(key)
    state.console.print(f"[bold]{template.title.in_lang(t.lang)}[/bold] ({template.key})")
    state.console.print(t("template.pipeline", name=template.pipeline_name(t.lang)))
    for position, stage in enumerate(template.stages, start=1):
        state.console.print(f"  {position}. {stage.in_lang(t.lang)}")
    state.console.print(t("template.reasons"))
    for reason, family in template.loss_reasons:
        state.console.print(f"  · {reason.in_lang(t.lang)} — {t(f'cause.{family.value}')}")
    state.console.print(t("template.sources", sources=", ".join(template.sources)))
    state.console.print(t("template.use", key=template.key))
