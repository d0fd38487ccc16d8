"""What a funnel report is asked for, and the rules that check the request."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from voronka.errors import DateRangeReversed, InvalidQuery
from voronka.timeutil import check_day

DEFAULT_IMMATURE_SHARE = 0.2


class View(enum.StrEnum):
    """Which deals are counted (docs/funnel.md, "Views")."""

    COHORT = "cohort"
    PERIOD = "period"


class Rule(enum.StrEnum):
    """How a deal reaches a stage (docs/funnel.md, "Counting rules")."""

    CUMULATIVE = "cumulative"
    PASSAGE = "passage"


@dataclass(frozen=True)
class FunnelQuery:
    pipeline: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None  # exclusive
    view: View = View.COHORT
    rule: Rule = Rule.CUMULATIVE
    by: str | None = None
    immature_share: float = DEFAULT_IMMATURE_SHARE
    timing: bool = False
    manager_id: int | None = None
    """Count only this manager's deals (a manager's own reports; see ``voronka.crm.auth.report_scope``)."""

    def validate(self) -> None:
        for rule in VALIDATION_RULES:
            rule.check(self)


class DateRangeIsOrdered:
    code = "date_range_ordered"

    @staticmethod
    def check(query: FunnelQuery) -> None:
        if query.date_from and query.date_to and query.date_from >= query.date_to:
            raise DateRangeReversed(code=DateRangeIsOrdered.code, start=query.date_from, end=query.date_to)


class ImmatureShareIsAFraction:
    code = "immature_share_fraction"

    @staticmethod
    def check(query: FunnelQuery) -> None:
        if not 0 <= query.immature_share <= 1:
            raise InvalidQuery(
                code=ImmatureShareIsAFraction.code,
                reason=f"the immature share must be between 0 and 1, not {query.immature_share}",
            )


class DatesAreOnTheCalendar:
    code = "dates_on_calendar"

    @staticmethod
    def check(query: FunnelQuery) -> None:
        for name, day in (("--from", query.date_from), ("--to", query.date_to)):
            if day is not None:
                check_day(day, name)


VALIDATION_RULES = (DatesAreOnTheCalendar, DateRangeIsOrdered, ImmatureShareIsAFraction)
