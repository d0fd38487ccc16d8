"""``voronka serve``: the web app, the REST API and the webhooks on this machine."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from voronka.cli.state import state_of


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Server processes (PostgreSQL or SQLite).", min=1)] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Addresses of reverse proxies whose X-Forwarded-For/-Proto to trust (comma-separated).",
        ),
    ] = None,
    jobs: Annotated[
        bool,
        typer.Option("--jobs/--no-jobs", help="Run the background jobs here too (off when a voronka worker runs)."),
    ] = True,
) -> None:
    """Serve the web app: pages, the REST API /api/v1 (documented at /api/v1/docs), lead capture and
    the CRM webhooks; and, unless --no-jobs, the background jobs (syncs, alerts, digests)."""
    import uvicorn

    from voronka.cli.jobs_cmd import make_worker

    state = state_of(ctx)
    if jobs:
        make_worker(state).start()  # one loop in this process, whatever the number of web workers
    proxy = {"proxy_headers": bool(forwarded_allow_ips), "forwarded_allow_ips": forwarded_allow_ips or ""}
    if workers == 1:
        from voronka.web import create_app
        from voronka.web.app import tune_for_serving

        app = create_app(state.settings, state.engine)
        tune_for_serving()
        uvicorn.run(app, host=host, port=port, log_level="warning", **proxy)  # type: ignore[arg-type]
        return
    # Each worker process builds its own app from the same settings, passed through the environment.
    os.environ["VORONKA_DATABASE_URL"] = state.settings.database_url
    os.environ["VORONKA_SECRET_KEY"] = state.settings.session_key()
    if state.settings.secrets_path:
        os.environ["VORONKA_SECRETS_PATH"] = str(state.settings.secrets_path)
    uvicorn.run(
        "voronka.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        **proxy,  # type: ignore[arg-type]
    )
