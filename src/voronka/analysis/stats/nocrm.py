"""No-CRM mode: a business without a CRM keeps daily counts per stage (optionally per source and
manager) in the workbook's input sheet or a CSV; voronka reads them back and reports on them.

These are period-view numbers (docs/funnel.md, "Daily counts"): cohort-only figures and anything
that needs individual deals (calls, speed to lead, loss reasons) are not offered.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.orm import Session

from voronka.analysis.stats.inputs import parse_day, set_spend
from voronka.crm.accounts import get_or_create_manager, get_or_create_source
from voronka.errors import ImportFailed
from voronka.i18n import Message
from voronka.models import Account, DailyCount, Pipeline
from voronka.money import parse_amount
from voronka.tabular.cells import clean
from voronka.tabular.files import has_sheet, open_table
from voronka.tabular.report import ImportReport

DATE_COLUMN, SOURCE_COLUMN, MANAGER_COLUMN, REVENUE_COLUMN = "date", "source", "manager", "revenue"
SPEND_COLUMN = "ad spend"
# The input sheet is written in the reader's language; either name of a column is understood.
ALIASES = {
    "дата": DATE_COLUMN,
    "источник": SOURCE_COLUMN,
    "менеджер": MANAGER_COLUMN,
    "выручка": REVENUE_COLUMN,
    "расход на рекламу": SPEND_COLUMN,
}
INPUT_SHEET = "Input"
INPUT_SHEETS = ("Ввод", "Input")
"""The input sheet of the statistics template, in either language (read before the first sheet)."""
MARKER_ROWS = frozenset({"итого", "totals", "пример", "example"})
"""First cells of the template's totals and example rows, which are not days."""
SHOWN_PROBLEMS = 10


@dataclass(frozen=True)
class CountsImport:
    file: str
    days: int
    rows: int


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA: how a spreadsheet names a column."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def import_counts(*, session: Session, account: Account, pipeline: Pipeline, path: Path) -> CountsImport:
    """Read daily counts (a CSV, or the input sheet of the workbook) and replace those days' counts.

    The whole file is checked first; any malformed cell rejects it, naming the cell, and nothing is
    written.
    """
    table = open_table(path, sheet=INPUT_SHEETS)
    header = [h.strip() for h in table.header]
    lowered = [ALIASES.get(h.casefold(), h.casefold()) for h in header]
    stages = [s.name for s in pipeline.stages]
    missing = [name for name in [DATE_COLUMN, *stages] if name.casefold() not in lowered]
    if missing:
        raise ImportFailed(reason=Message("nocrm.missing_columns", {"file": path.name, "columns": ", ".join(missing)}))
    index = {name: lowered.index(name.casefold()) for name in [DATE_COLUMN, *stages]}
    optional = {
        name: lowered.index(name)
        for name in (SOURCE_COLUMN, MANAGER_COLUMN, REVENUE_COLUMN, SPEND_COLUMN)
        if name in lowered
    }
    problems: list[Message] = []
    parsed: list[DayRow] = []
    seen: dict[tuple[dt.date, str | None, str | None], int] = {}
    for line, cells in table.rows():
        if cells and cells[0].strip().casefold() in MARKER_ROWS:
            continue
        row = _parse_row(line, cells, index, optional, stages, account.currency, problems)
        if row is None:
            continue
        key = (row.day, row.source, row.manager)
        if key in seen:
            problems.append(
                Message("nocrm.duplicate", {"cell": f"{column_letter(index[DATE_COLUMN])}{line}", "first": seen[key]})
            )
            continue
        seen[key] = line
        parsed.append(row)
    problems.extend(Message("nocrm.unreadable_line", {"line": r.line, "reason": r.reason}) for r in table.rejected)
    if problems:
        details = {"file": path.name, "count": len(problems), "problems": problems[:SHOWN_PROBLEMS]}
        raise ImportFailed(reason=Message("nocrm.malformed", details))
    _store(session, account, pipeline, parsed)
    return CountsImport(path.name, len({r.day for r in parsed}), len(parsed))


@dataclass(frozen=True)
class WorkbookImport:
    counts: CountsImport
    plans: ImportReport | None


def import_workbook(*, session: Session, account: Account, pipeline: Pipeline, path: Path) -> WorkbookImport:
    """The statistics template read back: its daily counts (and spend), and its plans when the file
    has a plan sheet — so voronka stats shows what the workbook computes."""
    from voronka.analysis.stats.inputs import PLAN_SHEETS, import_plans
    from voronka.analysis.stats.metrics import metrics_for

    counts = import_counts(session=session, account=account, pipeline=pipeline, path=path)
    plans = None
    if has_sheet(path, PLAN_SHEETS):
        metrics = metrics_for(tuple(s.name for s in pipeline.stages))
        plans = import_plans(session=session, account=account, pipeline=pipeline, metrics=metrics, path=path)
    return WorkbookImport(counts, plans)


@dataclass(frozen=True)
class DayRow:
    """One row of daily counts: a day (for a source and manager, when given)."""

    day: dt.date
    source: str | None
    manager: str | None
    counts: list[int]
    revenue: int | None
    spend: int | None = None


def _parse_row(
    line: int,
    cells: list[str],
    index: dict[str, int],
    optional: dict[str, int],
    stages: list[str],
    currency: str,
    problems: list[Message],
) -> DayRow | None:
    def text(column: int) -> str | None:
        return clean(cells[column]) if column < len(cells) else None

    def address(column: int) -> str:
        return f"{column_letter(column)}{line}"

    date_text = text(index[DATE_COLUMN])
    try:
        day = parse_day(date_text or "")
    except Exception:
        problems.append(Message("nocrm.bad_date", {"cell": address(index[DATE_COLUMN]), "value": date_text or ""}))
        return None
    values = []
    for stage in stages:
        column = index[stage]
        raw = text(column)
        if raw is None:
            values.append(0)
            continue
        try:
            number = float(raw.replace(" ", "").replace(",", "."))
        except ValueError:
            number = -1.0
        if number < 0 or not number.is_integer():
            problems.append(Message("nocrm.bad_count", {"cell": address(column), "value": raw}))
            return None
        values.append(int(number))
    money: dict[str, int | None] = {}
    for name in (REVENUE_COLUMN, SPEND_COLUMN):
        money[name] = None
        if name in optional and (raw := text(optional[name])) is not None:
            try:
                money[name] = parse_amount(raw, currency)
            except Exception:
                problems.append(Message("nocrm.bad_amount", {"cell": address(optional[name]), "value": raw}))
                return None
    source = text(optional[SOURCE_COLUMN]) if SOURCE_COLUMN in optional else None
    manager = text(optional[MANAGER_COLUMN]) if MANAGER_COLUMN in optional else None
    return DayRow(day, source, manager, values, money[REVENUE_COLUMN], money[SPEND_COLUMN])


def _store(session: Session, account: Account, pipeline: Pipeline, rows: Iterable[DayRow]) -> None:
    spend: dict[tuple[dt.date, str | None], int] = defaultdict(int)
    for row in rows:
        _store_counts(session, account, pipeline, row)
        if row.spend is not None:
            spend[(row.day, row.source)] += row.spend  # spend belongs to sources, whatever the manager
    for (day, source), amount in spend.items():
        set_spend(session=session, account=account, source=source, start=day, kind="day", amount=amount)
    session.flush()


def _store_counts(session: Session, account: Account, pipeline: Pipeline, row: DayRow) -> None:
    source_id = get_or_create_source(session=session, account=account, name=row.source).id if row.source else None
    manager_id = get_or_create_manager(session=session, account=account, name=row.manager).id if row.manager else None
    session.execute(
        delete(DailyCount).where(
            DailyCount.pipeline_id == pipeline.id,
            DailyCount.day == row.day,
            DailyCount.source_id.is_(None) if source_id is None else DailyCount.source_id == source_id,
            DailyCount.manager_id.is_(None) if manager_id is None else DailyCount.manager_id == manager_id,
        )
    )
    for position, count in enumerate(row.counts, start=1):
        session.add(
            DailyCount(
                account_id=account.id,
                pipeline_id=pipeline.id,
                day=row.day,
                stage_position=position,
                source_id=source_id,
                manager_id=manager_id,
                count=count,
                revenue=row.revenue if position == len(row.counts) else None,
            )
        )
