"""``voronka init``: create the database and a pipeline."""

from __future__ import annotations

from typing import Annotated

import typer

from voronka.cli.state import state_of


def init(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Name of the pipeline to create.")] = None,
    template: Annotated[str | None, typer.Option("--template", help="Industry template key (see docs/cli.md).")] = None,
    stages: Annotated[
        str | None,
        typer.Option("--stages", help="Ordered stages, comma-separated; the last is the won stage."),
    ] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="The account's currency (ISO 4217: RUB, USD, EUR …).")
    ] = None,
) -> None:
    """Create the database (if needed) and a pipeline with ordered stages.

    Example: voronka init --pipeline Продажи --stages "Заявка,Квалификация,Расчёт,Оплата"
    """
    from voronka.catalog.templates import DEFAULT_TEMPLATE, resolve_template
    from voronka.crm.accounts import create_pipeline, default_account, list_pipelines, update_account
    from voronka.db import session_scope

    state = state_of(ctx)
    t = state.t
    if stages is not None and template is not None:
        raise typer.BadParameter("use either --template or --stages, not both")
    chosen = resolve_template(template or DEFAULT_TEMPLATE)
    stage_names = [s.strip() for s in stages.split(",")] if stages else list(chosen.stage_names(t.lang))
    name = pipeline or chosen.pipeline_name(t.lang)
    with session_scope(state.engine) as session:
        account = default_account(session=session, timezone=state.settings.timezone, currency=state.settings.currency)
        if currency is not None:
            update_account(session=session, account=account, currency=currency)
            state.console.print(t("init.currency", currency=account.currency))
            if (
                pipeline is None
                and template is None
                and stages is None
                and list_pipelines(session=session, account=account)
            ):
                return  # only the currency was asked for
        created = create_pipeline(session=session, account=account, name=name, stages=stage_names)
        if stages is None:
            chosen.add_defaults(session=session, account=account, lang=t.lang)
        names = " → ".join(s.name for s in created.stages)
    state.console.print(t("init.created", pipeline=name, db=state.engine.url.render_as_string(), stages=names))
