"""Stored connections: the settings in the database, the secrets in a file of their own
(``voronka.secretstore``), so a copy of ``voronka.db`` or a database dump gives no access to the CRM.
Webhook tokens are kept as SHA-256 hashes: the plain token is shown once, when the connection is made.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, object_session

from voronka.db import begin_write
from voronka.errors import ConnectionNotFound, InvalidValue
from voronka.ingest.connectors.base import ConnectionConfig, Described
from voronka.models import Account, Connection
from voronka.secretstore import SecretStore, hash_token
from voronka.timeutil import utcnow


def add_connection(
    *,
    session: Session,
    account: Account,
    connector: Described,
    name: str,
    address: str,
    settings: Mapping[str, Any],
    secret_values: Mapping[str, str],
    store: SecretStore,
) -> tuple[Connection, str]:
    """Store a connection (replacing one of the same name); returns it and its webhook token."""
    missing = [s for s in connector.secret_names if not secret_values.get(s)]
    if missing:
        raise InvalidValue(field=", ".join(missing), value="", hint=f"the {connector.crm} credentials")
    existing = session.scalars(
        select(Connection).where(Connection.account_id == account.id, Connection.name == name)
    ).first()
    if existing is not None:
        store.remove(existing.secret_ref)
        session.delete(existing)
        session.flush()
    webhook_token = secrets.token_urlsafe(24)
    connection = Connection(
        account_id=account.id,
        name=name,
        kind=connector.name,
        base_url=connector.base_url(address),
        settings={**({"timezone": account.timezone} if "timezone" in connector.setting_names else {}), **settings},
        state={},
        secret_ref=uuid.uuid4().hex,
        webhook_token_hash=hash_token(webhook_token),
        created_at=utcnow(),
    )
    store.put(connection.secret_ref, secret_values)
    session.add(connection)
    session.flush()
    return connection, webhook_token


def list_connections(*, session: Session, account: Account) -> list[Connection]:
    return list(
        session.scalars(select(Connection).where(Connection.account_id == account.id).order_by(Connection.name))
    )


def find_connection(*, session: Session, account: Account, name: str | None = None) -> Connection:
    """The connection called ``name``; without a name, the only one."""
    connections = list_connections(session=session, account=account)
    names = ", ".join(c.name for c in connections) or "—"
    found = [c for c in connections if name is None or c.name.casefold() == name.casefold()]
    if len(found) != 1:
        raise ConnectionNotFound(name=name or "", names=names)
    return found[0]


def connection_by_webhook_token(*, session: Session, token: str) -> Connection | None:
    return session.scalars(select(Connection).where(Connection.webhook_token_hash == hash_token(token))).first()


def remove_connection(*, session: Session, account: Account, name: str, store: SecretStore) -> None:
    connection = find_connection(session=session, account=account, name=name)
    store.remove(connection.secret_ref)
    session.delete(connection)
    session.flush()


def connection_config(connection: Connection, store: SecretStore, connector: Described) -> ConnectionConfig:
    ref = connection.secret_ref
    session = object_session(connection)
    engine = session.get_bind() if session is not None else None
    return ConnectionConfig(
        name=connection.name,
        base_url=connection.base_url,
        settings=dict(connection.settings),
        secrets=store.get(ref),
        requests_per_second=connection.settings.get("requests_per_second", connector.requests_per_second),
        save_secrets=lambda values: store.put(ref, {**store.get(ref), **values}),
        renewal_lock=(lambda: _renewal_lock(engine, connection.id, store, ref)) if isinstance(engine, Engine) else None,
    )


@contextmanager
def _renewal_lock(engine: Engine, connection_id: int, store: SecretStore, ref: str) -> Iterator[Mapping[str, str]]:
    """The connection's row locked in a transaction of its own (PostgreSQL: FOR UPDATE; SQLite: its
    write lock) for as long as a renewal takes, with the secrets as stored once it is held: another
    process that renewed meanwhile has left its new pair there."""
    with engine.connect() as connection:
        begin_write(connection)
        connection.execute(select(Connection.id).where(Connection.id == connection_id).with_for_update())
        yield store.get(ref)
        connection.commit()


def set_lead_alerts(*, session: Session, account: Account, name: str, on: bool) -> Connection:
    """Whether the leads this connection brings may be paged about when nobody seems to call them
    (``alerts.events.watched_origins``): on by default where its sync brings the calls."""
    connection = find_connection(session=session, account=account, name=name)
    connection.settings = {**(connection.settings or {}), "lead_alerts": on}
    session.flush()
    return connection
