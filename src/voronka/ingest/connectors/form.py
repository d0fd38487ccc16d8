"""What ``voronka connect KIND`` asks of a service, declared beside its connector.

A connector lists its secrets — read from an environment variable or a hidden prompt, never from the
command line, where shell history and the process list would keep them — and its settings (options
and arguments). The CLI builds one command per registry entry from this declaration, so adding a
connector touches no command module. Help texts are catalogue keys (``voronka.i18n``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Finish = Callable[[str, dict[str, str], dict[str, Any]], tuple[dict[str, str], dict[str, Any]]]
"""What a connector does with the filled form before it is stored, given the API's base URL: amoCRM
exchanges an OAuth 2 code for tokens."""


@dataclass(frozen=True)
class Secret:
    key: str
    """Its name in the secrets file (one of the connector's ``secret_names``, or an optional one)."""
    flag: str
    """The option naming the environment variable it is read from (``--token-env``)."""
    help: str
    """Catalogue key of the option's help."""
    prompt: str | None = None
    """Catalogue key of the hidden prompt used without the variable; None: optional, read only when named."""
    unless: str | None = None
    """A setting whose presence makes this secret unneeded (a long-lived token beside OAuth 2)."""
    only_with: str | None = None
    """A setting without which this secret is not asked for (OAuth 2's secret key needs a client id)."""

    def needed(self, settings: Mapping[str, Any]) -> bool:
        if self.unless is not None and self.unless in settings:
            return False
        return self.only_with is None or self.only_with in settings


@dataclass(frozen=True)
class Setting:
    key: str
    """Its name in the connection's settings; ``address`` is the connection's address."""
    flag: str
    """``--client-login``; an upper-case name (``ADDRESS``) makes it a positional argument."""
    help: str
    """Catalogue key of the option's help."""
    kind: Literal["text", "number", "list"] = "text"
    """A list is a repeatable option."""
    default: str | None = None
    parse: Callable[[Any], Any] | None = None
    """Turns the given value (None when not given) into the stored one; None is not stored."""

    @property
    def argument(self) -> bool:
        return not self.flag.startswith("--")


@dataclass(frozen=True)
class ConnectForm:
    help: str
    """Catalogue key of the command's help (its first sentence is the summary)."""
    secrets: tuple[Secret, ...]
    settings: tuple[Setting, ...] = ()
    address_secret: str | None = None
    """The secret that is also the address (Bitrix24's webhook URL); else the ``address`` setting is."""
    finish: Finish | None = None


NAME = "connect.form.name"
RATE = Setting("requests_per_second", "--rate", "connect.form.rate", kind="number")
"""Requests a second, below the service's documented limit by default."""
TOKEN = Secret("token", "--token-env", "connect.form.token", prompt="connect.ask_token")


def command_name(kind: str) -> str:
    """``voronka connect yandex-direct`` for the kind ``yandex_direct``; also the default connection name."""
    return kind.replace("_", "-")


def parameter_name(flag: str) -> str:
    """The Python name of an option or argument (``--client-id`` → ``client_id``)."""
    return flag.lstrip("-").replace("-", "_").lower()


@dataclass(frozen=True)
class Filled:
    address: str
    secrets: dict[str, str]
    settings: dict[str, Any]


def fill(
    form: ConnectForm,
    base_url: Callable[[str], str],
    options: Mapping[str, Any],
    read: Callable[[Secret, str | None], str],
) -> Filled:
    """The connection's address, secrets and settings from the options given (by setting key, and
    by secret key the variable named for it); ``read`` reads a secret from its variable, or asks."""
    settings: dict[str, Any] = {}
    for setting in form.settings:
        value = options.get(setting.key)
        value = setting.parse(value) if setting.parse is not None else value
        if value is not None:
            settings[setting.key] = value
    address = settings.pop("address", "")
    secrets: dict[str, str] = {}
    for secret in form.secrets:
        variable = options.get(secret.key)
        if secret.needed(settings) and (variable is not None or secret.prompt is not None):
            secrets[secret.key] = read(secret, variable)
    if form.address_secret is not None:
        address = secrets[form.address_secret]
    if form.finish is not None:
        secrets, settings = form.finish(base_url(address), secrets, settings)
    return Filled(address=str(address), secrets=secrets, settings=settings)
