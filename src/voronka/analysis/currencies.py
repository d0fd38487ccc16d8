"""Money in other currencies than the account's: counted apart, never added in, and said so."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voronka.i18n import Message
from voronka.models import Account, Deal, DealStatus


def won_in_other_currencies(*, session: Session, account: Account, pipeline_id: int | None = None) -> dict[str, int]:
    """Won deals per currency other than the account's (what money reports leave out)."""
    query = (
        select(Deal.currency, func.count())
        .where(
            Deal.account_id == account.id,
            Deal.status == DealStatus.WON.value,
            Deal.currency != account.currency,
        )
        .group_by(Deal.currency)
    )
    if pipeline_id is not None:
        query = query.where(Deal.pipeline_id == pipeline_id)
    return {currency: int(count) for currency, count in session.execute(query)}


def other_currencies_note(others: dict[str, int], currency: str) -> Message | None:
    """One line for the reader when some won deals are in other currencies, else ``None``."""
    if not others:
        return None
    listed = ", ".join(f"{c} ({n})" for c, n in sorted(others.items()))
    return Message("report.other_currencies", {"currencies": listed, "currency": currency})


def no_money_note(currency: str) -> Message:
    return Message("report.no_money", {"currency": currency})
