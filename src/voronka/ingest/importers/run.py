"""Running an import: read, validate, store — one transaction that the caller commits or rolls back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, ForeignKeyConstraint
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, DropConstraint

from voronka import deal_days, schema
from voronka.crm.accounts import create_pipeline, find_pipeline, list_pipelines
from voronka.db import (
    begin_write,
    refresh_statistics,
    report_indexes,
    restore_report_indexes,
    vacuum_loaded_tables,
)
from voronka.errors import ImportFailed
from voronka.i18n import Message
from voronka.ingest.importers.background import (
    can_read_in_background,
    laid_out_in_background,
    rare_collections,
    shaped_in_background,
)
from voronka.ingest.importers.base import DealRecord, EventRecord, ImportTarget
from voronka.ingest.importers.calls import match_waiting_calls
from voronka.ingest.importers.deals import DealsImporter, Layout
from voronka.ingest.importers.events import write_events
from voronka.ingest.importers.mapped import first_pipeline_in, stages_in_file
from voronka.ingest.importers.maps import ColumnMap
from voronka.ingest.importers.shaping import Shaped, shape
from voronka.ingest.importers.writer import DealWriter
from voronka.models import Account, Pipeline
from voronka.tabular.files import TableFile, open_table
from voronka.tabular.report import ImportReport, Progress

PROGRESS_EVERY = 2_000
BULK_ROWS = 100_000
"""From this many rows on, SQLite builds the report indexes once after the load instead of
keeping them up to date row by row (a million-row import runs several seconds faster)."""
T = TypeVar("T")


def import_file(
    *,
    target: ImportTarget,
    path: Path,
    format: str | None = None,
    history: Path | None = None,
    progress: Progress | None = None,
    column_map: ColumnMap | None = None,
) -> ImportReport:
    """Import ``path`` (and its stage history ``history``) into ``target``'s pipeline.

    ``column_map`` reads any other table (``--map``). Bad rows are listed in the report; a file that
    cannot be read raises ``ImportFailed`` before anything is written. The caller commits (or rolls
    back, for a dry run).
    """
    from voronka.ingest.importers import IMPORTERS, MappedImporter

    if format is not None and format not in IMPORTERS:
        raise ImportFailed(reason=Message("import.unknown_format", {"name": format, "names": ", ".join(IMPORTERS)}))
    table = open_table(path)
    format = format or detect_format(table.header)
    importer = MappedImporter(column_map) if column_map is not None else IMPORTERS[format]
    target = replace(target, origin=target.origin or importer.origin)
    importer.check_header(table, target)
    history_table = None
    if history is not None:
        history_table = open_table(history)
        IMPORTERS["events"].check_header(history_table, target)
    report = ImportReport(file=path.name)
    if progress is not None:
        progress.start(table.rows_estimate)
    records = importer.records(table, target, report)
    if format == "events" and column_map is None:
        events = _counted(records, progress)
        write_events(target, [e for e in events if isinstance(e, EventRecord)], report)
        report.add_rejected(table.rejected)
        return report
    large = table.rows_estimate >= BULK_ROWS
    # A large load recounts the pipeline's per-day cells once at the end, from the deals (one
    # grouped scan), instead of adding each batch's new deals to them.
    writer = DealWriter(target, report, count_days=not large)
    first_deals = not writer.had_deals
    if large and isinstance(importer, DealsImporter) and can_read_in_background():
        items, add = _read_in_background(table, importer.layout(table, target), report, writer)
    else:
        items, add = _shaped(records, writer.last_position), writer.add_shaped
    with report_indexes_rebuilt_after(target.session, large=large), closing(items), rare_collections(large):
        for item in _counted(items, progress):
            add(item)
        writer.flush()
        if large:  # inside: PostgreSQL checks the new cells' keys once, when the block adds them back
            deal_days.rebuild_pipeline(target.session.connection(), target.pipeline.id)
    if large:
        refresh_statistics(target.session.connection(), tables=("deal_days",))
    report.add_rejected(table.rejected)
    _settle_currency(target.account, writer.currencies, first_deals, report)
    if history_table is not None:
        history_report = ImportReport(file=history_table.path.name)
        history_events = IMPORTERS["events"].records(history_table, target, history_report)
        write_events(target, [e for e in history_events if isinstance(e, EventRecord)], history_report)
        report.add_rejected([*history_report.rejected, *history_table.rejected])
    matched = match_waiting_calls(session=target.session, account=target.account)
    if matched:
        report.notes.append(Message("import.calls_matched", {"count": matched}))
    return report


def after_import_committed(engine: Engine, report: ImportReport) -> None:
    """What a large import does once its transaction is committed (``vacuum_loaded_tables``)."""
    if not report.dry_run and report.created + report.updated >= BULK_ROWS:
        vacuum_loaded_tables(engine)


@contextmanager
def report_indexes_rebuilt_after(session: Session, *, large: bool) -> Iterator[None]:
    """Drop the wide report indexes for a large load and create them again at the end (a sorted
    build beats keeping them up to date row by row), then refresh the planner's statistics.

    It all happens in the import's transaction — on SQLite by taking its write lock first, on
    PostgreSQL because DDL is transactional there — so a failed, killed or dry-run import leaves the
    indexes as they were. On PostgreSQL readers of the two tables wait for the load to finish.
    """
    connection = session.connection()
    if not large:
        yield
        return
    begin_write(connection)  # SQLite: the drops belong to the import's transaction, and die with it
    if connection.dialect.name == "sqlite":
        restore_report_indexes(connection)
    indexes = report_indexes(connection.dialect.name)
    for index in indexes:
        index.drop(bind=connection)
    foreign_keys = _loaded_foreign_keys() if connection.dialect.name == "postgresql" else []
    for constraint in foreign_keys:
        connection.execute(DropConstraint(constraint))
    yield
    for constraint in foreign_keys:  # checked again, once for all rows, when added back
        connection.execute(AddConstraint(constraint))
    for index in indexes:
        index.create(bind=connection)
    refresh_statistics(connection)


def _loaded_foreign_keys() -> list[ForeignKeyConstraint]:
    """PostgreSQL checks a foreign key per row as COPY loads it, most of a large import's time (and
    2.4 s of recounting a million deals' per-day cells); dropped for the load and added back in the
    same transaction, each is checked in one pass."""
    tables = [schema.deals, schema.stage_changes, schema.stage_reaches, schema.deal_days]
    return [c for table in tables for c in table.constraints if isinstance(c, ForeignKeyConstraint)]


def _settle_currency(account: Account, currencies: Counter[str], first_deals: bool, report: ImportReport) -> None:
    """An account's first deals, all in one currency the file states, make it the account's currency;
    deals in another currency than the account's are counted apart by every money report, so the
    import says so in one line."""
    others = {c: n for c, n in currencies.items() if c != account.currency}
    if not others:
        return
    if first_deals and len(currencies) == 1:
        (currency,) = currencies
        report.notes.append(Message("import.currency_adopted", {"currency": currency, "previous": account.currency}))
        account.currency = currency
        return
    listed = ", ".join(f"{c} ({n})" for c, n in sorted(others.items()))
    report.notes.append(Message("import.currency_other", {"currencies": listed, "account": account.currency}))


def detect_format(header: tuple[str, ...]) -> str:
    """The first registered format that recognises the header (stage history, the CRM exports),
    else the canonical ``deals`` format."""
    from voronka.ingest.importers import IMPORTERS

    lowered = {h.strip().casefold() for h in header}
    for name, importer in IMPORTERS.items():
        if importer.recognises(lowered):
            return name
    return "deals"


def _read_in_background(
    table: TableFile, layout: Layout, report: ImportReport, writer: DealWriter
) -> tuple[Generator[Any, None, None], Callable[[Any], None]]:
    """The reader's stream and the writer's method that takes its items. Into an account without
    deals every row is a new deal, so the reader lays out its rows too (``shaping.laid_out``)."""
    if writer.had_deals:
        return shaped_in_background(table, layout, report), writer.add_shaped
    return laid_out_in_background(table, layout, report, writer.placement), writer.add_new


def _shaped(records: Iterable[object], last_position: int) -> Generator[Shaped, None, None]:
    for record in records:
        if isinstance(record, DealRecord):
            yield shape(record, last_position)


def _counted(records: Iterable[T], progress: Progress | None) -> Iterator[T]:
    """Pass records through, telling ``progress`` every few thousand rows."""
    pending = 0
    for record in records:
        yield record
        pending += 1
        if progress is not None and pending >= PROGRESS_EVERY:
            progress.advance(pending)
            pending = 0
    if progress is not None and pending:
        progress.advance(pending)


def pipeline_for_file(
    *,
    session: Session,
    account: Account,
    path: Path,
    name: str | None = None,
    format: str | None = None,
    column_map: ColumnMap | None = None,
) -> Pipeline:
    """The pipeline to import ``path`` into, created from the file when it does not exist yet.

    Its name is ``name``, else the map's, else the first pipeline the file names, else the file's
    stem; its stages are the map's, else the file's stage values in order of first appearance and
    the won stage last (reorder them afterwards if the file's order was not the funnel's).
    """
    from voronka.ingest.importers import IMPORTERS, MappedImporter

    chosen = column_map
    if chosen is None:
        importer = IMPORTERS.get(format or detect_format(open_table(path).header))
        if not isinstance(importer, MappedImporter):
            return find_pipeline(session=session, account=account, name=name)
        chosen = importer.column_map
    named = name or chosen.pipeline_name or first_pipeline_in(path, chosen) or path.stem
    existing = {p.name.casefold(): p for p in list_pipelines(session=session, account=account)}
    if named.casefold() in existing:
        return existing[named.casefold()]
    return create_pipeline(session=session, account=account, name=named, stages=stages_in_file(path, chosen))
