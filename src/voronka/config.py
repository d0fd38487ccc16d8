"""Settings, built explicitly by whoever needs them (CLI, web app, tests); never at import time."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_FILE = "voronka.db"


class Settings(BaseSettings):
    """Every setting can come from the environment with the prefix ``VORONKA_``."""

    model_config = SettingsConfigDict(env_prefix="VORONKA_", env_ignore_empty=True, extra="ignore")

    database_url: str = DEFAULT_SQLITE_FILE
    """SQLite path or URL, or a PostgreSQL URL (``postgresql://…``)."""

    lang: str | None = None
    """Language of messages (``ru`` or ``en``); default: from the locale."""

    timezone: str | None = None
    """Time zone for a new account's reports; default: the machine's local zone."""

    currency: str = "RUB"
    """Currency of a new account (ISO 4217)."""

    secrets_path: Path | None = None
    """Where CRM tokens and keys are kept (default: ``~/.config/voronka/secrets.json``)."""

    max_body_bytes: int = 1_048_576
    """The largest request body the web app reads (forms, API, webhooks); larger ones get 413."""

    public_url: str | None = None
    """The web app's address as the team opens it (``https://crm.example.ru``): links in alerts."""

    secret_key: str | None = None
    """Signs the web app's session cookies (default: a random key kept next to the secrets file)."""

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

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        return normalise_database_url(value)


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
