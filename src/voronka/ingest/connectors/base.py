"""What every connector gives the sync: the CRM's pipelines and pages of deals with their history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, Protocol, runtime_checkable

from voronka.errors import PermissionRefused
from voronka.i18n import Message
from voronka.ingest.connectors.form import ConnectForm
from voronka.ingest.connectors.http import Http, RetryPolicy
from voronka.models import DealStatus


@dataclass(frozen=True)
class RemoteStage:
    id: str
    name: str
    outcome: DealStatus | None = None
    """``won`` or ``lost`` for the CRM's closing stages, ``None`` for the stages of the funnel."""


@dataclass(frozen=True)
class RemotePipeline:
    id: str
    name: str
    stages: tuple[RemoteStage, ...]
    """In the CRM's order."""

    @property
    def funnel(self) -> tuple[RemoteStage, ...]:
        """Our stages: the open ones in order, then the won stage (lost stages are outcomes)."""
        won = [s for s in self.stages if s.outcome is DealStatus.WON][:1]
        return (*(s for s in self.stages if s.outcome is None), *won)


class RemoteDeal(NamedTuple):
    id: str
    pipeline_id: str
    stage_id: str
    created_at: dt.datetime
    """Naive UTC, as every time the connectors hand over."""
    closed_at: dt.datetime | None = None
    amount: int | None = None
    """Minor units."""
    currency: str | None = None
    manager: str | None = None
    source: str | None = None
    title: str | None = None
    loss_reason: str | None = None
    contact: str | None = None
    phone: str | None = None
    changes: tuple[tuple[dt.datetime, str], ...] = ()
    """Stage entries the CRM logged: (when, stage id), the stage it was created in included."""
    history_known: bool = False
    custom: Mapping[str, Any] = {}


@dataclass(frozen=True)
class Page:
    """Deals to store, and the cursor to save once they are stored (a re-run resumes after them)."""

    deals: list[RemoteDeal]
    cursor: dict[str, Any]
    total: int | None = None
    """How many deals the whole run will bring, when the CRM says."""


class RemoteCall(NamedTuple):
    """A call the CRM's telephony logged."""

    id: str
    at: dt.datetime
    """Naive UTC."""
    direction: str
    """``out`` or ``in``."""
    outcome: str
    duration: int
    our_number: str | None = None
    """The line it went through; None when the CRM does not say (the spam check then cannot tell)."""
    client_phone: str | None = None
    manager: str | None = None
    deals: tuple[str, ...] = ()
    """The CRM's ids of the deals it may belong to (a contact's deals, or the deal itself)."""
    deal: str | None = None
    """The CRM's id of the deal the call is recorded on (amoCRM's note on the lead itself): it is that
    deal's call whatever the dates, where a contact's call goes to the deal whose time fits."""


@dataclass(frozen=True)
class CallPage:
    calls: list[RemoteCall]
    cursor: dict[str, Any]


@runtime_checkable
class CallSource(Protocol):
    """A client whose CRM also logs calls (Bitrix24's telephony, amoCRM's call notes)."""

    def calls(self, cursor: Mapping[str, Any]) -> Iterator[CallPage]:
        """Calls after ``cursor`` (empty: all), oldest first, a page at a time."""
        ...


@dataclass(frozen=True)
class ConnectionConfig:
    """What a client needs: where, the non-secret settings and the secrets."""

    name: str
    base_url: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    requests_per_second: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    save_secrets: Callable[[Mapping[str, str]], None] | None = None
    """Keeps secrets the CRM rotated (an OAuth refresh token is good for one use) in the secrets file."""
    renewal_lock: Callable[[], AbstractContextManager[Mapping[str, str]]] | None = None
    """Holds the connection in the database while its secrets are renewed, and gives them as stored
    then: two processes renewing one single-use refresh token would leave one of them with a spent one."""


class Client(Protocol):
    http: Http
    warnings: list[Message]
    """What the sync could do only in part (a token that may not read the CRM's users, say)."""

    def pipelines(self) -> list[RemotePipeline]: ...

    def pages(self, cursor: Mapping[str, Any]) -> Iterator[Page]:
        """Pages from ``cursor`` (empty: everything; else where the last run stopped or ended)."""
        ...

    def next_cursor(self, cursor: Mapping[str, Any], started: dt.datetime) -> dict[str, Any]:
        """Where the next (incremental) run starts, once this one has gone through every page."""
        ...

    def deal(self, remote_id: str) -> RemoteDeal | None:
        """One deal read afresh with its history (for a webhook that names it); None if gone."""
        ...


class Described(Protocol):
    """What storing a connection needs to know of any service (a CRM, an ad cabinet)."""

    name: str
    crm: str
    secret_names: tuple[str, ...]
    """Which secrets ``voronka connect`` asks for (tokens, keys)."""
    setting_names: tuple[str, ...]
    """Which other settings it takes (a company id…)."""
    form: ConnectForm
    """What ``voronka connect`` asks for, and how (the CLI's command is built from it)."""
    requests_per_second: float
    """The service's documented limit; the client paces itself below it."""
    reads_calls: bool
    """Whether its sync brings the calls made in it: only then does voronka see a synced lead's first
    touch, and page about one nobody called (``alerts.events.watched_origins``)."""

    def base_url(self, address: str) -> str:
        """The API's base URL from what the user typed (a subdomain, a portal or webhook URL)."""
        ...


class Connector(Described, Protocol):
    def client(self, config: ConnectionConfig) -> Client: ...


def from_unix(value: Any) -> dt.datetime | None:
    """Unix seconds (amoCRM) as naive UTC."""
    if value in (None, "", 0):
        return None
    return dt.datetime.fromtimestamp(int(value), dt.UTC).replace(tzinfo=None)


def from_iso(value: Any) -> dt.datetime | None:
    """An ISO date-time with or without offset (Bitrix24, YCLIENTS) as naive UTC; without an
    offset it is taken as UTC."""
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def minor_units(value: Any) -> int | None:
    """An amount as the CRMs send it (``"19999.99"``, ``1500``, ``99.5``) in minor units; ``None``
    for nothing, zero or something that is not a number."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return int(amount * 100) if amount.is_finite() and amount else None


def account_url(address: str, domain: str) -> str:
    """A CRM account's API root from what the user typed: ``mycompany``, ``mycompany.DOMAIN`` or a
    full URL (another domain too: Kommo, a self-hosted or local test server)."""
    address = address.strip().rstrip("/")
    if "://" in address:
        return address
    return f"https://{address}" if "." in address else f"https://{address}.{domain}"


@dataclass
class People:
    """Who a CRM's user ids are: their names, or — when the token may not read the users — the ids
    themselves ("Bitrix24 #17"), with a warning saying which permission would give the names. A
    permission-limited token syncs the deals instead of stopping the whole sync."""

    crm: str
    needed: str
    """The permission that gives the names (a scope, a role), as the warning names it."""
    names: dict[Any, str] | None = None
    refused: bool = False

    def load(self, fetch: Callable[[], dict[Any, str]], warnings: list[Message]) -> dict[Any, str]:
        if self.names is None:
            try:
                self.names = fetch()
            except PermissionRefused:
                self.names, self.refused = {}, True
                warnings.append(Message("connector.users_refused", {"crm": self.crm, "needed": self.needed}))
        return self.names

    def name(self, user_id: Any) -> str | None:
        if user_id in (None, "", 0, "0"):
            return None
        found = (self.names or {}).get(user_id)
        return found or (f"{self.crm} #{user_id}" if self.refused else None)
