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


def money_notes(
    *, session: Session, account: Account, pipeline_id: int | None = None, has_money: bool = True
) -> tuple[Message, ...]:
    """What a money report (stats, forecast, diagnosis, what-if) must say beside its figures: the
    won deals in other currencies it leaves out, and — when ``has_money`` is false — that there was
    no money in the account's currency to compute anything from."""
    notes = []
    others = _other_currencies_note(
        won_in_other_currencies(session=session, account=account, pipeline_id=pipeline_id), account.currency
    )
    if others is not None:
        notes.append(others)
    if not has_money:
        notes.append(Message("report.no_money", {"currency": account.currency}))
    return tuple(notes)


def _other_currencies_note(others: dict[str, int], currency: str) -> Message | None:
    """One line for the reader when some won deals are in other currencies, else ``None``."""
    if not others:
        return None
    listed = ", ".join(f"{c} ({n})" for c, n in sorted(others.items()))
    return Message("report.other_currencies", {"currencies": listed, "currency": currency})
