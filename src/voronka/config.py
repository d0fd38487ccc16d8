"""Settings, built explicitly by whoever needs them (CLI, web app, tests); never at import time."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from voronka.errors import InvalidValue

DEFAULT_SQLITE_FILE = "voronka.db"
ENV_PREFIX = "VORONKA_"


def _from_env(name: str) -> str | None:
    """The ``VORONKA_<NAME>`` variable, an empty one counting as unset."""
    value = os.environ.get(ENV_PREFIX + name.upper())
    return value if value else None


@dataclass(frozen=True)
class Settings:
    """Every setting can come from the environment with the prefix ``VORONKA_``; a value given to
    the constructor wins over the environment. A plain dataclass, not pydantic-settings: the command
    line builds one at every start, and pydantic-settings alone cost it 0.07 s."""

    database_url: str = field(default_factory=lambda: _from_env("database_url") or DEFAULT_SQLITE_FILE)
    """SQLite path or URL, or a PostgreSQL URL (``postgresql://…``)."""

    lang: str | None = field(default_factory=lambda: _from_env("lang"))
    """Language of messages (``ru`` or ``en``); default: from the locale."""

    timezone: str | None = field(default_factory=lambda: _from_env("timezone"))
    """Time zone for a new account's reports; default: the machine's local zone."""

    currency: str = field(default_factory=lambda: _from_env("currency") or "RUB")
    """Currency of a new account (ISO 4217)."""

    secrets_path: Path | None = field(default_factory=lambda: _path(_from_env("secrets_path")))
    """Where CRM tokens and keys are kept (default: ``~/.config/voronka/secrets.json``)."""

    max_body_bytes: int = field(default_factory=lambda: _whole_number("max_body_bytes", 1_048_576))
    """The largest request body the web app reads (forms, API, webhooks); larger ones get 413."""

    public_url: str | None = field(default_factory=lambda: _from_env("public_url"))
    """The web app's address as the team opens it (``https://crm.example.ru``): links in alerts."""

    secret_key: str | None = field(default_factory=lambda: _from_env("secret_key"))
    """Signs the web app's session cookies (default: a random key kept next to the secrets file)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "database_url", normalise_database_url(self.database_url))
        if self.secrets_path is not None and not isinstance(self.secrets_path, Path):
            object.__setattr__(self, "secrets_path", Path(self.secrets_path))

    @classmethod
    def names(cls) -> list[str]:
        """The settings' names (each read from ``VORONKA_<NAME>``)."""
        return [f.name for f in fields(cls)]

    def session_key(self) -> str:
        """The key that signs session cookies: the setting, else one made once and kept (0600)."""
        if self.secret_key:
            return self.secret_key
        import secrets

        path = self.secrets_file().with_name("session.key")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def secrets_file(self) -> Path:
        return self.secrets_path.expanduser() if self.secrets_path else default_secrets_path()


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _whole_number(name: str, default: int) -> int:
    text = _from_env(name)
    if text is None:
        return default
    try:
        number = int(text)
    except ValueError:
        raise InvalidValue(field=ENV_PREFIX + name.upper(), value=text, hint="a whole number") from None
    if number <= 0:
        raise InvalidValue(field=ENV_PREFIX + name.upper(), value=text, hint="a whole number above 0")
    return number


def default_secrets_path() -> Path:
    """``$XDG_CONFIG_HOME/voronka/secrets.json``, else under ``~/.config``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "voronka" / "secrets.json"


def normalise_database_url(value: str) -> str:
    """Turn a bare path or a driver-less PostgreSQL URL into an SQLAlchemy URL."""
    value = value.strip()
    if value.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser()}"
