"""What a login may be: a real e-mail address, and a password neither short nor common."""

from __future__ import annotations

import functools
from importlib import resources

from voronka.errors import InvalidValue

MIN_PASSWORD = 10


def check_email(email: str) -> str:
    """The address normalised (lower-cased); ``a@``, ``@b`` and the like are refused."""
    from email_validator import EmailNotValidError, validate_email

    try:
        valid = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise InvalidValue(field="email", value=email, hint="an e-mail address such as anna@example.com") from None
    return str(valid.normalized).lower()


def check_password(password: str, *, email: str = "", name: str = "") -> None:
    """At least ten characters, not on the list of common passwords, not the address or the name."""
    lowered = password.lower()
    if len(password) < MIN_PASSWORD:
        raise InvalidValue(field="password", value="…", hint=f"at least {MIN_PASSWORD} characters")
    personal = {email.lower(), email.lower().split("@")[0], name.lower().replace(" ", "")} - {""}
    if lowered in _common() or lowered in personal or len(set(lowered)) < 4:
        raise InvalidValue(field="password", value="…", hint="a password that is not common nor your name or address")


@functools.cache
def _common() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))
