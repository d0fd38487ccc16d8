"""``voronka worker`` and ``voronka jobs``: the background work — syncs, alerts, digests, the stored
diagnosis — run alone, listed with where each stands, and scheduled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from voronka.cli.state import State, state_of

if TYPE_CHECKING:
    from voronka.jobs.worker import Worker


def make_worker(state: State, pause: float | None = None) -> Worker:
    from voronka.jobs.worker import PAUSE_SECONDS, Worker
    from voronka.secretstore import SecretStore

    store = SecretStore(state.settings.secrets_file())
    return Worker(state.engine, store, state.settings.public_url, pause or PAUSE_SECONDS)


def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass over the due jobs, then stop.")] = False,
    pause: Annotated[float, typer.Option("--pause", help="Seconds between passes.", min=1)] = 15,
) -> None:
    """Run the background jobs in this process (for deployments that keep the web app apart;
    ``voronka serve`` runs them itself). Stop with Ctrl+C."""
    from voronka.jobs.store import job_name

    state = state_of(ctx)
    runner = make_worker(state, pause)
    if once:
        for run in runner.run_once():
            line = job_name(run.kind, run.target).render(state.t.lang)
            if run.error:
                state.err.print(state.t("jobs.failed", job=line, error=run.error))
            else:
                state.console.print(state.t("jobs.done", job=line, result=run.result))
        return
    state.err.print(state.t("jobs.running", pause=pause))
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        runner.stop()


def jobs_list(ctx: typer.Context) -> None:
    """Every job of the account: how often, when next and last, the last result or error (local time)."""
    from rich.table import Table

    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.formats import Formats
    from voronka.jobs.store import ensure_jobs, job_every, job_label, list_jobs, shown
    from voronka.timeutil import utcnow, zone

    state = state_of(ctx)
    t = state.t
    table = Table(t("jobs.job"), t("jobs.every"), t("jobs.next"), t("jobs.last"), t("jobs.result"))
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        formats = Formats(t.lang, zone(account.timezone))
        ensure_jobs(session=session, account=account, now=utcnow())
        for job in list_jobs(session=session, account=account):
            error, result = shown(job.last_error, t.lang), shown(job.last_result, t.lang)
            outcome = t("jobs.error", error=error) if error else (result or "—")
            table.add_row(
                job_label(job, t) + ("" if job.enabled else f" ({t('jobs.off')})"),
                job_every(job, t, formats),
                formats.when(job.next_run_at),
                formats.when(job.last_finished_at),
                outcome,
            )
    state.console.print(table)


def jobs_every(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="sync, alerts or diagnosis.")],
    minutes: Annotated[int, typer.Argument(help="Run every this many minutes.")],
    target: Annotated[str, typer.Option("--target", help="For a sync: the connection's name.")] = "",
) -> None:
    """How often a job runs (digests keep their calendar: daily and on Mondays at 09:00)."""
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.jobs.store import ensure_jobs, job_name, set_every
    from voronka.timeutil import utcnow

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        ensure_jobs(session=session, account=account, now=utcnow())
        set_every(session=session, account=account, kind=kind, target=target, minutes=minutes, now=utcnow())
    state.console.print(state.t("jobs.scheduled", job=job_name(kind, target), minutes=minutes))


def _switch(ctx: typer.Context, kind: str, target: str, enabled: bool) -> None:
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.jobs.store import ensure_jobs, job_name, set_enabled
    from voronka.timeutil import utcnow

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        ensure_jobs(session=session, account=account, now=utcnow())
        set_enabled(session=session, account=account, kind=kind, target=target, enabled=enabled)
    state.console.print(state.t("jobs.switched_on" if enabled else "jobs.switched_off", job=job_name(kind, target)))


def jobs_on(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="sync, alerts, diagnosis or digest.")],
    target: Annotated[str, typer.Option("--target", help="A sync's connection, or daily/weekly for a digest.")] = "",
) -> None:
    """Switch a job back on."""
    _switch(ctx, kind, target, True)


def jobs_off(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="sync, alerts, diagnosis or digest.")],
    target: Annotated[str, typer.Option("--target", help="A sync's connection, or daily/weekly for a digest.")] = "",
) -> None:
    """Switch a job off (it keeps its state; nothing runs until it is on again)."""
    _switch(ctx, kind, target, False)
