"""Ad spend kept per source (or none) and per day or month: typed on a page, imported from a file,
or synced from an ad cabinet (Yandex Direct) — one place that writes it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from voronka.crm.accounts import get_or_create_source
from voronka.errors import InvalidValue
from voronka.models import Account, AdSpend


def record_spend(
    *,
    session: Session,
    account: Account,
    source: str | None,
    start: dt.date,
    kind: str,
    amount: int,
    currency: str | None = None,
) -> AdSpend:
    """Record spend on a source (or on none) for a day or a month (replacing what was there)."""
    if kind not in ("day", "month"):
        raise InvalidValue(field="period", value=kind, hint="day or month")
    if amount < 0:
        raise InvalidValue(field="amount", value=amount, hint="a sum of zero or more")
    start = start.replace(day=1) if kind == "month" else start
    source_id = get_or_create_source(session=session, account=account, name=source).id if source else None
    found = session.scalars(
        select(AdSpend).where(
            AdSpend.account_id == account.id,
            AdSpend.source_id.is_(None) if source_id is None else AdSpend.source_id == source_id,
            AdSpend.period_start == start,
            AdSpend.period_kind == kind,
        )
    ).first()
    if found is None:
        found = AdSpend(account_id=account.id, source_id=source_id, period_start=start, period_kind=kind)
        session.add(found)
    found.amount, found.currency = amount, currency or account.currency
    session.flush()
    return found


def campaign_sources(pairs: list[str]) -> dict[str, str]:
    """``Campaign=Source`` pairs (a campaign's name or id → the source its cost belongs to), as the
    spend import and the Yandex Direct connection take them."""
    found = {}
    for pair in pairs:
        campaign, _, source = pair.partition("=")
        if not campaign.strip() or not source.strip():
            raise InvalidValue(
                field="--source", value=pair, hint="a campaign's name or id = a source, e.g. 123456=Яндекс"
            )
        found[campaign.strip()] = source.strip()
    return found
