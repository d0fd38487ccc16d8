"""Stored connections: the settings in the database, the secrets in a file of their own.

The secrets file (JSON, readable by its owner only) sits outside the database, so a copy of
``voronka.db`` or a database dump gives no access to the CRM. Webhook tokens are kept as SHA-256
hashes: the plain token is shown once, when the connection is made.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from voronka.errors import ConnectionNotFound, InvalidValue
from voronka.ingest.connectors.base import ConnectionConfig, Connector
from voronka.models import Account, Connection
from voronka.timeutil import utcnow


@dataclass(frozen=True)
class SecretStore:
    path: Path

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise InvalidValue(field="secrets file", value=str(self.path), hint="a JSON file voronka wrote") from None
        return data if isinstance(data, dict) else {}

    def _save(self, data: Mapping[str, Mapping[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=1)
        os.replace(temporary, self.path)

    def get(self, ref: str) -> dict[str, str]:
        return dict(self._load().get(ref, {}))

    def put(self, ref: str, values: Mapping[str, str]) -> None:
        data = self._load()
        data[ref] = {**data.get(ref, {}), **values}
        self._save(data)

    def remove(self, ref: str) -> None:
        data = self._load()
        if data.pop(ref, None) is not None:
            self._save(data)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_connection(
    *,
    session: Session,
    account: Account,
    connector: Connector,
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


def connection_config(connection: Connection, store: SecretStore, connector: Connector) -> ConnectionConfig:
    ref = connection.secret_ref
    return ConnectionConfig(
        name=connection.name,
        base_url=connection.base_url,
        settings=dict(connection.settings),
        secrets=store.get(ref),
        requests_per_second=connection.settings.get("requests_per_second", connector.requests_per_second),
        save_secrets=lambda values: store.put(ref, {**store.get(ref), **values}),
    )
