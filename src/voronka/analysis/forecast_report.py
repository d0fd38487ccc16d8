"""The forecast as people and programs read it: one typed report that the command line, its JSON,
the API and the web page all show, so none of them can show another figure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from voronka.analysis.currencies import money_notes
from voronka.analysis.forecast import Forecast, MonthForecast, run_forecast
from voronka.i18n import Message
from voronka.models import Account, Pipeline
from voronka.money import format_minor


@dataclass(frozen=True)
class ForecastLine:
    """One line of the forecast table: what it counts (a catalogue key), and its figures."""

    part: str
    """``won_so_far``, ``open_deals``, ``new_leads`` or ``total``."""
    month: dt.date
    expected: int
    low: int | None
    high: int | None


@dataclass(frozen=True)
class ForecastReport:
    pipeline: str
    currency: str
    today: dt.date
    forecast: Forecast
    notes: tuple[Message, ...]

    def lines(self) -> list[ForecastLine]:
        """This month: won so far, still to come from open deals and from new leads, the total;
        next month: from open deals, from new leads, the total."""
        f = self.forecast
        return [
            ForecastLine("won_so_far", f.this_month.month, round(f.won_so_far), None, None),
            _line("open_deals", f.this_month),
            _line("new_leads", f.new_this_month),
            _line("total", f.this_month_total),
            _line("open_deals", f.next_month),
            _line("new_leads", f.new_next_month),
            _line("total", f.next_month_total),
        ]


def _line(part: str, month: MonthForecast) -> ForecastLine:
    return ForecastLine(part, month.month, round(month.expected), round(month.low), round(month.high))


def forecast_report(
    *,
    session: Session,
    account: Account,
    pipeline: Pipeline,
    today: dt.date | None = None,
    calibration_months: int = 6,
    manager_id: int | None = None,
) -> ForecastReport:
    result = run_forecast(
        session=session,
        account=account,
        pipeline=pipeline,
        today=today,
        calibration_months=calibration_months,
        manager_id=manager_id,
    )
    notes = money_notes(session=session, account=account, pipeline_id=pipeline.id, has_money=result.money_known)
    return ForecastReport(pipeline.name, account.currency, result.this_month.month, result, notes)


def forecast_to_dict(report: ForecastReport, lang: str) -> dict[str, Any]:
    """The JSON of ``voronka forecast --format json`` and of ``GET /api/v1/forecast``."""
    f, currency = report.forecast, report.currency

    def cash(value: float | None) -> str | None:
        return None if value is None else format_minor(round(value), currency)

    def month(m: MonthForecast) -> dict[str, Any]:
        return {"month": m.month.isoformat(), "expected": cash(m.expected), "low": cash(m.low), "high": cash(m.high)}

    return {
        "pipeline": report.pipeline,
        "currency": currency,
        "this_month": {
            **month(f.this_month_total),
            "won_so_far": cash(f.won_so_far),
            "open_deals": month(f.this_month),
            "new_leads": month(f.new_this_month),
        },
        "next_month": {
            **month(f.next_month_total),
            "open_deals": month(f.next_month),
            "new_leads": month(f.new_next_month),
        },
        "run_rate": cash(f.run_rate),
        "open_deals": f.open_deals,
        "leads_per_day": round(f.leads_per_day, 2),
        "money_known": f.money_known,
        "calibration": [
            {**month(made), "actual": cash(actual), "inside": made.holds(actual)} for _, made, actual in f.calibration
        ],
        "calibrated_share": f.calibrated_share,
        "notes": [note.render(lang) for note in report.notes],
    }
