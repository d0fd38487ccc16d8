"""``voronka serve``: the web app (for now the CRM webhooks) on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from voronka.cli.state import state_of


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
) -> None:
    """Serve the web app: the CRM webhooks (``/webhooks/KIND/TOKEN``) and the API documentation."""
    import uvicorn

    from voronka.web import create_app

    state = state_of(ctx)
    uvicorn.run(create_app(state.settings, state.engine), host=host, port=port, log_level="warning")
