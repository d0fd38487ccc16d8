"""``voronka alerts``: the account's bot, SMTP server and webhook, thresholds and quiet hours, who
gets which event, a user's chat link code, and the latest messages with their state."""

from __future__ import annotations

from typing import Annotated

import typer

from voronka.alerts.model import DEFAULT_LEAD_MINUTES, DEFAULT_STALL_FACTOR
from voronka.cli.connect_cmd import read_secret, secret_store
from voronka.cli.state import state_of
from voronka.errors import InvalidValue
from voronka.roles import Role


def alerts_telegram(
    ctx: typer.Context,
    token_env: Annotated[str, typer.Option("--token-env", help="Variable holding the bot token from @BotFather.")],
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="A local Bot API server instead of api.telegram.org.")
    ] = None,
) -> None:
    """Send alerts through the account's Telegram bot (the token goes to the secrets file)."""
    from voronka.alerts.config import set_telegram
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        set_telegram(
            session=session,
            account=account,
            store=secret_store(state),
            token=read_secret(token_env, state.t("connect.ask_token")),
            api_url=api_url,
        )
    state.console.print(state.t("alerts.cli_telegram"))


def alerts_smtp(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="SMTP server.")],
    sender: Annotated[str, typer.Option("--from", help="The From address.")],
    port: Annotated[int, typer.Option("--port", help="587 for STARTTLS, 465 for SSL.")] = 587,
    security: Annotated[str, typer.Option("--security", help="starttls, ssl or none.")] = "starttls",
    user: Annotated[str | None, typer.Option("--user", help="Login, when the server wants one.")] = None,
    password_env: Annotated[str | None, typer.Option("--password-env", help="Variable holding the password.")] = None,
) -> None:
    """Send alerts and digests by e-mail (the password goes to the secrets file)."""
    from voronka.alerts.config import set_smtp
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope

    state = state_of(ctx)
    password = read_secret(password_env, "", "--password-env") if password_env else None
    with session_scope(state.engine) as session:
        set_smtp(
            session=session, account=default_account(session=session), store=secret_store(state), host=host, port=port,
            security=security, sender=sender, user=user, password=password,
        )  # fmt: skip
    state.console.print(state.t("alerts.cli_smtp", host=host, port=port))


def alerts_webhook(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Where every alert is POSTed as JSON.")],
    key_env: Annotated[
        str | None, typer.Option("--key-env", help="Variable holding the signing key (default: a new one, shown once).")
    ] = None,
) -> None:
    """Also POST every alert, signed with HMAC-SHA256, to another program."""
    from voronka.alerts.config import set_webhook
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope

    state = state_of(ctx)
    given = read_secret(key_env, "", "--key-env") if key_env else None
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        key = set_webhook(session=session, account=account, store=secret_store(state), url=url, signing_key=given)
    state.console.print(state.t("alerts.cli_webhook", url=url))
    if given is None:
        state.console.print(state.t("alerts.cli_webhook_key", key=key))


def alerts_rules(
    ctx: typer.Context,
    lead_minutes: Annotated[
        int | None,
        typer.Option("--lead-minutes", help=f"A new lead uncalled this long alerts (default {DEFAULT_LEAD_MINUTES})."),
    ] = None,
    stall_factor: Annotated[
        int | None,
        typer.Option(
            "--stall-factor", help=f"Stalled: untouched this many times the usual time ({DEFAULT_STALL_FACTOR})."
        ),
    ] = None,
    quiet: Annotated[
        str | None, typer.Option("--quiet", help='Quiet hours, local time: "21:00-09:00"; "" for none.')
    ] = None,
    hours: Annotated[
        str | None,
        typer.Option("--hours", help='Working hours, local time: "09:00-18:00"; "" for around the clock.'),
    ] = None,
    calendar: Annotated[
        str | None, typer.Option("--calendar", help='Working days by a production calendar: "RU"; "" for Mon-Fri.')
    ] = None,
    handover: Annotated[
        bool | None, typer.Option("--handover/--no-handover", help="Hand a lead uncalled at the escalation over.")
    ] = None,
) -> None:
    """Thresholds, quiet hours, working hours and days, and the handover of uncalled leads."""
    from voronka.alerts.config import set_rules, set_working
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        found = set_rules(
            session=session, account=account, lead_minutes=lead_minutes, stall_factor=stall_factor, quiet=quiet
        )
        set_working(session=session, account=account, hours=hours, calendar=calendar, handover=handover)
        quiet_text = f"{found.quiet_from}–{found.quiet_to}" if found.quiet_from else "—"
        state.console.print(
            state.t("alerts.cli_rules", minutes=found.lead_minutes, factor=found.stall_factor, quiet=quiet_text)
        )
        days = state.t(f"web.alerts_calendar_{(found.work_calendar or 'none').lower()}")
        state.console.print(
            state.t(
                "alerts.cli_working",
                hours=found.work_hours or "—",
                calendar=days,
                handover="✓" if found.handover else "—",
            )
        )


def alerts_leads(
    ctx: typer.Context,
    connection: Annotated[str, typer.Argument(help="The CRM connection (voronka connect list).")],
    on: Annotated[bool, typer.Option("--on/--off", help="Page about its leads nobody seems to call, or not.")],
) -> None:
    """Whether a CRM's leads are paged about when nobody seems to call them: on by default where its
    sync brings the calls (amoCRM, Bitrix24), off where voronka cannot see them (RetailCRM, YCLIENTS)."""
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.ingest.connectors.store import set_lead_alerts

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        found = set_lead_alerts(session=session, account=default_account(session=session), name=connection, on=on)
        state.console.print(state.t("alerts.cli_leads_on" if on else "alerts.cli_leads_off", name=found.name))


def alerts_test(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option("--user", help="The user's login (default: the owners and heads of sales).")
    ] = None,
) -> None:
    """Send a test message now to a user (by default the owners and heads) through every channel they
    have, and say how each went."""
    from voronka.alerts.service import send_test
    from voronka.crm.accounts import default_account
    from voronka.db import session_factory, session_scope
    from voronka.timeutil import utcnow

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        account_id = default_account(session=session).id
    results = send_test(
        sessions=session_factory(state.engine), account_id=account_id, store=secret_store(state), now=utcnow(),
        user_email=user,
    )  # fmt: skip
    if not results:
        state.console.print(state.t("alerts.cli_test_none"))
    for result in results:
        key = "alerts.cli_test_sent" if result.status == "sent" else "alerts.cli_test_failed"
        state.console.print(
            state.t(key, name=result.name, channel=result.channel, status=result.status, error=result.error or "")
        )


def alerts_digest(
    ctx: typer.Context,
    weekly: Annotated[bool, typer.Option("--weekly", help="Last week's digest instead of yesterday's.")] = False,
) -> None:
    """Send the daily (or weekly) digest now to everyone who takes it, as the worker does at 09:00."""
    from voronka.alerts.service import deliver, send_digest
    from voronka.crm.accounts import default_account
    from voronka.db import session_factory, session_scope
    from voronka.timeutil import utcnow

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        account_id = default_account(session=session).id
    sessions, store, now = session_factory(state.engine), secret_store(state), utcnow()
    queued = send_digest(
        sessions=sessions, account_id=account_id, store=store, kind="weekly" if weekly else "daily", now=now
    )
    state.console.print(queued.render(state.t.lang))
    delivered = deliver(sessions=sessions, account_id=account_id, store=store, now=now)
    state.console.print(delivered.message().render(state.t.lang))


def alerts_link(ctx: typer.Context, email: Annotated[str, typer.Argument(help="The user's login.")]) -> None:
    """A one-time code (valid 30 minutes) the user sends the bot to get alerts in their chat."""
    from voronka.alerts.config import new_link_code
    from voronka.crm.auth import user_by_email
    from voronka.db import session_scope

    state = state_of(ctx)
    with session_scope(state.engine) as session:
        code = new_link_code(session=session, user=user_by_email(session=session, email=email))
    state.console.print(state.t("alerts.cli_code", code=code))


def alerts_pref(
    ctx: typer.Context,
    event: Annotated[
        str,
        typer.Argument(
            help="The event: lead_waiting, lead_escalated, task_overdue, deal_stalled, finding, sync_failed, "
            "digest_daily or digest_weekly."
        ),
    ],
    on: Annotated[bool, typer.Option("--on/--off", help="Switch it on or off.")],
    role: Annotated[Role | None, typer.Option("--role", help="For everyone with this role.")] = None,
    email: Annotated[str | None, typer.Option("--user", help="For this user (their login).")] = None,
) -> None:
    """Who gets an event: for a role or one user (a user's choice wins over the role's)."""
    from voronka.alerts.config import set_pref
    from voronka.alerts.model import event_named, role_subject, user_subject
    from voronka.crm.accounts import default_account
    from voronka.crm.auth import user_by_email
    from voronka.db import session_scope

    state = state_of(ctx)
    if (role is None) == (email is None):
        raise InvalidValue(field="--role/--user", value="", hint="one of them")
    chosen = event_named(event)
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        subject = (
            role_subject(role.value) if role else user_subject(user_by_email(session=session, email=email or "").id)
        )
        set_pref(session=session, account=account, subject=subject, event=chosen, enabled=on)
    state.console.print(
        state.t(
            "alerts.cli_pref",
            event=event,
            who=role.value if role else email,
            on=state.t(f"alerts.is_{on}".lower()),
        )
    )


def alerts_outbox(
    ctx: typer.Context, limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 30
) -> None:
    """The latest alerts and digests: to whom, how, their state and last error."""
    from rich.table import Table

    from voronka.alerts.outbox import recent_messages
    from voronka.crm.accounts import default_account
    from voronka.db import session_scope
    from voronka.formats import Formats
    from voronka.timeutil import zone

    state = state_of(ctx)
    t = state.t
    table = Table(t("alerts.when"), t("alerts.channel"), t("alerts.to"), t("alerts.what"), t("alerts.state"))
    with session_scope(state.engine) as session:
        account = default_account(session=session)
        formats = Formats(t.lang, zone(account.timezone))
        for row in recent_messages(session=session, account=account, limit=limit):
            status = t(f"alerts.status_{row.status}") + (f": {row.last_error}" if row.last_error else "")
            table.add_row(formats.when(row.created_at), row.channel, row.address, row.subject[:60], status)
    state.console.print(table)
