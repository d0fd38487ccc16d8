"""What the statistics template is fed besides deals: ad spend per source, and monthly plans."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from voronka.analysis.stats.metrics import Metric, Unit, metric_by_key, metrics_for
from voronka.analysis.stats.plans import PPM, plan_in_metric_units
from voronka.analysis.stats.spend_maps import CANONICAL_SPEND, SpendMap
from voronka.crm.accounts import NamePolicy, owned_row, resolve_name
from voronka.crm.spend import record_spend
from voronka.errors import ImportFailed, InvalidValue
from voronka.i18n import Message
from voronka.models import Account, AdSpend, Pipeline, Plan, Source, User
from voronka.money import micros_to_minor, parse_amount
from voronka.tabular.cells import RowError, clean
from voronka.tabular.files import open_table
from voronka.tabular.report import ImportReport, Rejected
from voronka.timeutil import check_day

MAX_PLAN = 10**15
"""The largest plan kept, in the metric's base unit (the bound money has): within a 64-bit column."""
_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$|^\s*(\d{1,2})\.(\d{4})\s*$")


def parse_month(text: str, field: str = "month") -> dt.date:
    """``2024-03`` or ``03.2024`` (or a full date) → the first day of that month."""
    match = _MONTH.match(text)
    if match:
        year, month = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
        try:
            return check_day(dt.date(int(year), int(month), 1), field)
        except ValueError:
            pass
    day = parse_day(text, field)
    return day.replace(day=1)


def parse_day(text: str, field: str = "date") -> dt.date:
    value = text.strip()
    parsers = (
        dt.date.fromisoformat,
        lambda v: dt.datetime.fromisoformat(v).date(),  # spreadsheets give dates as midnight datetimes
        lambda v: dt.datetime.strptime(v, "%d.%m.%Y").date(),
    )
    for parse in parsers:
        try:
            day = parse(value)
        except ValueError:
            continue
        return check_day(day, field)
    raise InvalidValue(field=field, value=text, hint="a date such as 2024-03-01 or 01.03.2024")


set_spend = record_spend
"""Spend is kept by ``voronka.crm.spend`` (syncs write it too); the name stays for its callers."""


_SUMMARY = re.compile(r"^total rows:\s*\d+$", re.IGNORECASE)
"""A Yandex Direct report's last line, the count of its rows (yandex.ru/dev/direct/doc/ru/report-format)."""
MICROS_STEP = 10_000
"""Direct's micro-unit amounts come rounded to 10,000 (yandex.ru/dev/direct/doc/ru/money)."""


@dataclass(frozen=True)
class _SpendRow:
    line: int
    source: str | None
    start: dt.date
    kind: str
    amount: str


def import_spend(
    *, session: Session, account: Account, path: Path, spend_map: SpendMap = CANONICAL_SPEND
) -> ImportReport:
    """Spend from a CSV/XLSX read through ``spend_map`` (by default ``source``, ``date`` or ``month``,
    ``amount``). Rows of one source and period add up, then replace what was kept for it; a campaign
    mapped to no source is kept as spend without a source and named in the report.

    A micro-unit column (Direct's ``Cost``) is read in micro-units only when every amount is a whole
    multiple of 10,000, as Direct writes them; a report asked with ``returnMoneyInMicros: false``
    has amounts in the currency (up to two decimals) and is read so."""
    table = open_table(path, titled=True)
    columns = _spend_columns(table.header, spend_map, path)
    report = ImportReport(file=path.name)
    unmapped: set[str] = set()
    rows = list(_spend_rows(table.rows(), columns, spend_map, report, unmapped))
    in_micros = "micros" in columns and all(_looks_micros(row.amount) for row in rows)
    totals: dict[tuple[str | None, dt.date, str], int] = defaultdict(int)
    for row in rows:
        try:
            totals[(row.source, row.start, row.kind)] += _spend_amount(row.amount, in_micros, account.currency)
            report.created += 1
        except InvalidValue as error:
            report.rejected.append(Rejected(row.line, Message(error.key, error.params)))
    for (source, start, kind), amount in totals.items():
        record_spend(session=session, account=account, source=source, start=start, kind=kind, amount=amount)
    if unmapped:
        report.notes.append(Message("import.spend_unmapped", {"campaigns": ", ".join(sorted(unmapped))}))
    report.add_rejected(table.rejected)
    return report


def _spend_rows(
    rows: Iterable[tuple[int, list[str]]],
    columns: dict[str, int],
    spend_map: SpendMap,
    report: ImportReport,
    unmapped: set[str],
) -> Iterator[_SpendRow]:
    for line, cells in rows:
        filled = [c.strip() for c in cells if c.strip()]
        if len(filled) == 1 and _SUMMARY.match(filled[0]):
            continue  # Direct's closing count of rows, not a row

        def cell(name: str, cells: list[str] = cells) -> str | None:
            index = columns.get(name)
            return clean(cells[index]) if index is not None and index < len(cells) else None

        try:
            source, campaign, amount = cell("source"), cell("campaign"), cell("amount")
            if source is None and campaign is not None:
                source = spend_map.sources.get(campaign)
                if source is None:
                    unmapped.add(campaign)
            if amount is None or (source is None and campaign is None):
                raise RowError(Message("import.missing_value", {"column": "amount" if amount is None else "source"}))
            try:
                if cell("date") is not None:
                    start, kind = parse_day(cell("date") or ""), "day"
                else:
                    start, kind = parse_month(cell("month") or ""), "month"
            except InvalidValue as error:
                raise RowError(Message(error.key, error.params)) from None
            yield _SpendRow(line, source, start, kind, amount)
        except RowError as error:
            report.rejected.append(Rejected(line, error.message))


def _looks_micros(text: str) -> bool:
    value = text.strip()
    return value.isdigit() and int(value) % MICROS_STEP == 0


def _spend_columns(header: Sequence[str], spend_map: SpendMap, path: Path) -> dict[str, int]:
    lowered = [h.strip().casefold() for h in header]
    columns: dict[str, int] = {}
    for name, sources in spend_map.columns.items():
        for source in sources:
            if source.casefold() in lowered:
                columns[name] = lowered.index(source.casefold())
                if name == "amount" and source.casefold() in spend_map.micros:
                    columns["micros"] = columns[name]
                break
    missing = [c for c in ("amount",) if c not in columns]
    if not ({"date", "month"} & set(columns)):
        missing.append("date or month")
    if not ({"source", "campaign"} & set(columns)):
        missing.append("source or campaign")
    if missing:
        raise ImportFailed(reason=Message("import.missing_columns", {"file": path.name, "columns": ", ".join(missing)}))
    return columns


def _spend_amount(text: str, micros: bool, currency: str) -> int:
    if micros:
        if not text.strip().isdigit():
            raise InvalidValue(field="amount", value=text, hint="micro-units, a whole number")
        return micros_to_minor(int(text), currency)
    amount = parse_amount(text, currency) or 0
    if amount < 0:
        raise InvalidValue(field="amount", value=text, hint="a sum of zero or more")
    return amount


def parse_plan_value(metric: Metric, text: str, currency: str) -> int:
    """A plan as people write it, in the metric's base unit: counts, money (₽), shares (35 %), minutes."""
    if metric.unit is Unit.MONEY:
        value = parse_amount(text, currency)
        if value is None:
            raise InvalidValue(field="--value", value=text, hint="an amount")
        return value
    cleaned = text.strip().replace(" ", "").replace(",", ".")
    percent = cleaned.endswith("%")
    try:
        number = Decimal(cleaned.rstrip("%"))
    except InvalidOperation:
        raise InvalidValue(field="--value", value=text, hint="a number") from None
    # NaN and infinity are numbers to Decimal, not plans; nor is one beyond what a column keeps
    # (checked before int() too: 1e999999999 would take minutes to write out).
    if not number.is_finite() or number < 0:
        raise InvalidValue(field="--value", value=text[:40], hint="zero or more")
    if number > MAX_PLAN:
        raise InvalidValue(field="--value", value=text[:40], hint=f"at most {MAX_PLAN:,}")
    if metric.unit is Unit.SHARE:
        value = int(number / 100 * PPM) if percent or number > 1 else int(number * PPM)
    elif metric.unit is Unit.SECONDS:
        value = int(number * 60)  # plans for speed to lead are given in minutes
    else:
        value = int(number)
    if value > MAX_PLAN:
        raise InvalidValue(field="--value", value=text[:40], hint=f"at most {MAX_PLAN:,}")
    return value


@dataclass(frozen=True)
class PlanKey:
    month: dt.date
    metric: str
    manager_id: int | None = None
    source_id: int | None = None


def set_plan(
    *,
    session: Session,
    account: Account,
    pipeline: Pipeline,
    metrics: tuple[Metric, ...],
    month: dt.date,
    metric: str,
    value: str,
    manager: str | None = None,
    source: str | None = None,
) -> Plan:
    """Set a monthly plan for the team, or for one manager or source (replacing what was there)."""
    if manager and source:
        raise InvalidValue(field="--manager/--source", value=f"{manager}/{source}", hint="one of the two, not both")
    chosen = metric_by_key(metrics, metric)
    # A plan is for someone who exists: a mistyped name is an error naming the closest, not a new person.
    known = NamePolicy.KNOWN
    manager_id = (
        resolve_name(session=session, account=account, kind="manager", name=manager, policy=known).id
        if manager
        else None
    )
    source_id = (
        resolve_name(session=session, account=account, kind="source", name=source, policy=known).id if source else None
    )
    found = session.scalars(
        select(Plan).where(
            Plan.pipeline_id == pipeline.id,
            Plan.month == month.replace(day=1),
            Plan.metric == metric,
            Plan.manager_id.is_(None) if manager_id is None else Plan.manager_id == manager_id,
            Plan.source_id.is_(None) if source_id is None else Plan.source_id == source_id,
        )
    ).first()
    if found is None:
        found = Plan(
            account_id=account.id,
            pipeline_id=pipeline.id,
            month=month.replace(day=1),
            metric=metric,
            manager_id=manager_id,
            source_id=source_id,
            value=0,
        )
        session.add(found)
    found.value = parse_plan_value(chosen, value, account.currency)
    session.flush()
    return found


PLAN_SHEETS = ("План", "Plan")


def import_plans(
    *, session: Session, account: Account, pipeline: Pipeline, metrics: tuple[Metric, ...], path: Path
) -> ImportReport:
    """Team plans from the workbook's plan sheet (or a CSV of the same shape): a ``key`` column
    naming the row, and one column per month (``2024-03``); empty cells are skipped."""
    table = open_table(path, sheet=PLAN_SHEETS)
    header = [h.strip() for h in table.header]
    if "key" not in header:
        raise ImportFailed(reason=Message("import.missing_columns", {"file": path.name, "columns": "key"}))
    months: dict[int, dt.date] = {}
    for index, name in enumerate(header):
        try:
            months[index] = parse_month(name)
        except InvalidValue:
            continue
    key_column = header.index("key")
    report = ImportReport(file=path.name)
    for line, cells in table.rows():
        key = clean(cells[key_column]) if key_column < len(cells) else None
        for index, month in months.items():
            value = clean(cells[index]) if index < len(cells) else None
            if key is None or value is None:
                continue
            try:
                set_plan(
                    session=session,
                    account=account,
                    pipeline=pipeline,
                    metrics=metrics,
                    month=month,
                    metric=key,
                    value=value,
                )
                report.created += 1
            except InvalidValue as error:
                report.rejected.append(Rejected(line, Message(error.key, error.params)))
    report.add_rejected(table.rejected)
    return report


@dataclass(frozen=True)
class PlanRow:
    """A plan as the settings page lists it: ``value`` in the metric's own numbers (a share as a
    fraction, money in minor units); ``cut`` names the manager or source, ``None`` for the team."""

    id: int
    pipeline: str
    month: dt.date
    metric: Metric
    cut: str | None
    value: float


def list_plans(*, session: Session, account: Account, limit: int = 500) -> list[PlanRow]:
    """The account's plans, latest month first."""
    pipelines = {p.id: p for p in session.scalars(select(Pipeline).where(Pipeline.account_id == account.id))}
    names = {u.id: u.name for u in session.scalars(select(User).where(User.account_id == account.id))}
    sources = {s.id: s.name for s in session.scalars(select(Source).where(Source.account_id == account.id))}
    metrics = {pid: metrics_for([s.name for s in p.stages]) for pid, p in pipelines.items()}
    rows = []
    query = select(Plan).where(Plan.account_id == account.id).order_by(Plan.month.desc(), Plan.id).limit(limit)
    for plan in session.scalars(query):
        known = {m.key: m for m in metrics.get(plan.pipeline_id, ())}
        metric = known.get(plan.metric)
        if metric is None:
            continue  # a stage's metric whose stage is gone
        cut = names.get(plan.manager_id or 0) or sources.get(plan.source_id or 0)
        pipeline = pipelines[plan.pipeline_id].name
        rows.append(PlanRow(plan.id, pipeline, plan.month, metric, cut, plan_in_metric_units(metric, plan.value)))
    return rows


def delete_plan(*, session: Session, account: Account, plan_id: int) -> None:
    session.delete(owned_row(session=session, model=Plan, row_id=plan_id, account_id=account.id, what="plan"))
    session.flush()


@dataclass(frozen=True)
class SpendRow:
    id: int
    source: str | None
    start: dt.date
    kind: str
    amount: int
    currency: str


def list_spend(*, session: Session, account: Account, limit: int = 500) -> list[SpendRow]:
    """The account's ad spend, latest first."""
    sources = {s.id: s.name for s in session.scalars(select(Source).where(Source.account_id == account.id))}
    query = (
        select(AdSpend)
        .where(AdSpend.account_id == account.id)
        .order_by(AdSpend.period_start.desc(), AdSpend.id)
        .limit(limit)
    )
    return [
        SpendRow(s.id, sources.get(s.source_id or 0), s.period_start, s.period_kind, s.amount, s.currency)
        for s in session.scalars(query)
    ]


def delete_spend(*, session: Session, account: Account, spend_id: int) -> None:
    session.delete(owned_row(session=session, model=AdSpend, row_id=spend_id, account_id=account.id, what="spend"))
    session.flush()
