"""Money: integer minor units plus an ISO 4217 code, never floats."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from voronka.errors import InvalidValue

# Currencies without minor units; every other one has two (RUB, USD, EUR, KZT, …).
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "PYG", "XAF", "XOF"})
_SPACES = re.compile(r"[\s\u00a0\u202f'’]")
_CURRENCY_MARKS = re.compile(r"(?i)(₽|руб\.?|р\.|rub|\$|usd|€|eur|₸|kzt)")


def check_currency(code: str) -> str:
    """An ISO 4217 code, upper-cased; anything else is an ``InvalidValue``."""
    from babel.numbers import list_currencies

    normalised = code.strip().upper()
    if normalised not in list_currencies():
        raise InvalidValue(field="currency", value=code, hint="an ISO 4217 code such as RUB, USD or EUR")
    return normalised


def report_currency(amounts: Mapping[str, int], account_currency: str) -> str:
    """The currency a report's money is stated in: the one currency all its amounts are in, else the
    account's (the others are then listed apart, never added in)."""
    present = {currency for currency, amount in amounts.items() if amount}
    return present.pop() if len(present) == 1 else account_currency


def exponent(currency: str) -> int:
    return 0 if currency.upper() in _ZERO_DECIMAL else 2


def micros_to_minor(micros: int, currency: str) -> int:
    """Micro-units (millionths of the currency: Yandex Direct's money) as minor units, half up."""
    scale = 100 if exponent(currency) == 2 else 1
    return (micros * scale + 500_000) // 1_000_000


MAX_MINOR = 10**15
"""The largest amount kept, in minor units (ten trillion roubles): far beyond any deal, and safe to
sum in a 64-bit column; ``1e400`` or thirty nines are a typo or an attack, not a price."""


def to_minor(value: Decimal, currency: str) -> int:
    if not value.is_finite() or abs(value.adjusted()) > 30:
        raise InvalidValue(field="amount", value=str(value)[:40], hint="a sum such as 15000 or 15 000,50")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise InvalidValue(field="amount", value=str(value), hint=f"at most {exponent(currency)} decimals")
    if abs(scaled) > MAX_MINOR:
        raise InvalidValue(field="amount", value=str(value)[:40], hint=f"at most {MAX_MINOR // 100:,} in major units")
    return int(scaled)


def format_minor(amount: int, currency: str) -> str:
    """``1250000`` RUB → ``"12500.00"``: the decimal string of major units used in JSON."""
    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f}"


def parse_amount(text: str, currency: str) -> int | None:
    """Read an amount as people write it: ``1 234,50``, ``1234.5``, ``1,234.50``, ``12 000 ₽``.

    Empty text is ``None``; a negative or unreadable amount raises ``InvalidValue``.
    """
    cleaned = _CURRENCY_MARKS.sub("", _SPACES.sub("", text or ""))
    if not cleaned:
        return None
    if "," in cleaned and "." in cleaned:
        # The later separator is the decimal one; the other groups thousands.
        thousands = "," if cleaned.rfind(",") < cleaned.rfind(".") else "."
        cleaned = cleaned.replace(thousands, "")
    cleaned = cleaned.replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidValue(field="amount", value=text, hint="a number such as 15000 or 15 000,50") from None
    if not value.is_finite() or value < 0:
        raise InvalidValue(field="amount", value=text, hint="a sum of zero or more")
    return to_minor(value, currency)
