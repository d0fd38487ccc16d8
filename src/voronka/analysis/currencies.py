"""Money in other currencies than the account's: counted apart, never added in, and said so."""

from __future__ import annotations

from sqlalchemy import func, select

from voronka import schema
from voronka.i18n import Message
from voronka.reading import AccountLike, Reader
from voronka.schema import DealStatus


def won_in_other_currencies(*, session: Reader, account: AccountLike, pipeline_id: int | None = None) -> dict[str, int]:
    """Won deals per currency other than the account's (what money reports leave out)."""
    query = (
        select(schema.deals.c.currency, func.count())
        .where(
            schema.deals.c.account_id == account.id,
            schema.deals.c.status == DealStatus.WON.value,
            schema.deals.c.currency != account.currency,
        )
        .group_by(schema.deals.c.currency)
    )
    if pipeline_id is not None:
        query = query.where(schema.deals.c.pipeline_id == pipeline_id)
    return {currency: int(count) for currency, count in session.execute(query)}


def money_notes(
    *, session: Reader, account: AccountLike, pipeline_id: int | None = None, has_money: bool = True
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
