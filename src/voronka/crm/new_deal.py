"""A deal to create, as every way in gives it — the deal form, the API, lead capture, tests'
builders — and the bounds its fields must keep (the columns' sizes, on SQLite as on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from voronka.crm.accounts import check_length
from voronka.errors import InvalidValue
from voronka.models import Source, User
from voronka.money import MAX_MINOR, check_currency

MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_NAME = 100
MAX_CUSTOM_VALUE = 2_000


def check_custom(custom: Mapping[str, Any]) -> None:
    """Custom fields within bounds: a public form must not store a 20 MB value or 100,000 keys."""
    if len(custom) > MAX_CUSTOM_FIELDS:
        raise InvalidValue(field="custom fields", value=len(custom), hint=f"at most {MAX_CUSTOM_FIELDS} fields")
    for name, value in custom.items():
        if len(str(name)) > MAX_CUSTOM_NAME:
            raise InvalidValue(
                field="custom field", value=str(name)[:40], hint=f"a name of at most {MAX_CUSTOM_NAME} characters"
            )
        if len(str(value)) > MAX_CUSTOM_VALUE:
            raise InvalidValue(
                field=str(name)[:40], value=str(value)[:40], hint=f"at most {MAX_CUSTOM_VALUE} characters"
            )


@dataclass(frozen=True)
class NewDeal:
    """What ``crm.deals.create_deal`` stores; the pipeline it goes into and who creates it are the
    call's, not the deal's."""

    currency: str
    title: str | None = None
    contact_name: str | None = None
    phone: str | None = None
    """As typed: kept in international form when it is a valid number."""
    email: str | None = None
    amount: int | None = None
    """Minor units of ``currency``."""
    source: Source | None = None
    manager: User | None = None
    external_id: str | None = None
    """The deal's id in the owner's own files (origin ``own``): a second deal with it is refused."""
    custom: Mapping[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    """Naive UTC; now when not given."""

    def checked(self) -> NewDeal:
        """The same deal with its currency normalized, once every field is within bounds."""
        if self.amount is not None and not 0 <= self.amount <= MAX_MINOR:
            raise InvalidValue(field="amount", value=self.amount, hint="a sum of zero or more")
        check_custom(self.custom)
        texts = (("title", self.title, 300), ("contact_name", self.contact_name, 200), ("email", self.email, 320))
        for name, text, limit in texts:
            if text is not None:
                check_length(text, field=name, limit=limit)
        return replace(self, currency=check_currency(self.currency))
