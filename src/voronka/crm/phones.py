"""Phone numbers parsed by libphonenumber's rules (the ``phonenumbers`` port), not by patterns.

A number is kept in the international form (``+7 912 345-67-89``) when it parses as a valid number
of the account's country or carries its own country code; anything else is kept as typed, so
nothing a client left is thrown away. Search compares national numbers, so ``8 912 345 67 89``
finds a deal stored as ``+7 (912) 345-67-89``.
"""

from __future__ import annotations

from functools import cache

import phonenumbers
from babel.core import get_global

from voronka.errors import InvalidValue

MAX_PHONE = 50


@cache
def region_of(timezone: str) -> str | None:
    """The country a time zone belongs to (``Europe/Moscow`` → ``RU``): how local numbers without a
    country code are read. ``None`` for zones of no one country (UTC)."""
    region = get_global("zone_territories").get(timezone)
    return str(region) if region and region != "001" else None


def _parsed(raw: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def normalize_phone(raw: str | None, region: str | None) -> str | None:
    """The number in international form, or the text as typed when it is not a valid number."""
    text = (raw or "").strip()
    if not text:
        return None
    if len(text) > MAX_PHONE:
        raise InvalidValue(field="phone", value=text[:40], hint=f"at most {MAX_PHONE} characters")
    number = _parsed(text, region)
    if number is None:
        return text
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def phone_key(text: str | None) -> str | None:
    """What a phone is found by: its digits, last first. A search for a number's tail (the national
    number, or its last four digits) is then a range of one index, however the number was written.
    Only digits are read here: what the number means is ``normalize_phone``'s business."""
    if not text:
        return None
    digits = "".join(c for c in text if c.isdigit())
    return digits[::-1][:KEY_DIGITS] if len(digits) >= MIN_KEY_DIGITS else None


KEY_DIGITS = 20
MIN_KEY_DIGITS = 4


def national_digits(query: str, region: str | None) -> str | None:
    """What a search for ``query`` looks for at the end of stored numbers' digits: the national
    number of a valid phone, else the digits typed when there are at least four (``4567``)."""
    number = _parsed(query, region)
    if number is not None:
        return str(number.national_number)
    digits = "".join(c for c in query if c.isdigit())
    return digits if len(digits) >= 4 and len(digits) * 2 >= len(query.replace(" ", "")) else None
