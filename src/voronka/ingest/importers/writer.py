"""Storing imported deals: new ones in bulk, known ones (same ``id``) updated in place.

New deals go in batches of bulk inserts with ids reserved beforehand, then their stage entries and
reaches; that is what makes a million-row import take seconds, not hours. Their rows come from
``shaping.laid_out``, run here or, for a large file into an empty account, by the process that reads
it. Existing deals are few in a typical re-import and are updated through the ORM, appending only
stage entries the log does not hold yet.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from voronka import deal_days, schema
from voronka.crm.accounts import guess_cause_family, id_of_name
from voronka.crm.derived import rederive_deal
from voronka.crm.reaches import REACH_TIMES, DealFacts, insert_reaches, rows_of_reaches
from voronka.db import begin_write, bulk_insert, refresh_statistics, reserved_ids, stored_time
from voronka.ingest.importers.base import DealRecord, ImportTarget
from voronka.ingest.importers.shaping import (
    CURRENCY,
    DEAL_FACT_COLUMNS,
    NEW_DEAL_COLUMNS,
    NEW_DEAL_TIMES,
    Names,
    NewDeal,
    Placement,
    Shaped,
    laid_out,
    shape,
)
from voronka.models import LEGACY_ORIGIN, OWN_ORIGIN, Deal, LossReason, Source, StageEntry, User
from voronka.tabular.report import ImportReport
from voronka.timeutil import utcnow

BATCH_SIZE = 5_000
ANALYSE_FROM = 20_000
_DEALS = schema.deals
_STAGE_CHANGES = schema.stage_changes
_CHANGE_COLUMNS = ("account_id", "deal_id", "from_stage_id", "to_stage_id", "to_position", "at")
_NAMED = ("source_id", "manager_id", "loss_reason_id")
_ROW_COLUMNS = ("id", "origin", *_NAMED, *NEW_DEAL_COLUMNS)
"""A new deal's row as the writer stores it: the ids the database hands out and where its id comes
from, then what ``shaping.laid_out`` gives."""
_STATUS = NEW_DEAL_COLUMNS.index("status")
_FURTHEST = NEW_DEAL_COLUMNS.index("furthest_position")
_EXTERNAL_ID = NEW_DEAL_COLUMNS.index("external_id")


class _Names:
    """Name → id of an account's sources, managers or loss reasons, created on first sight."""

    def __init__(self, session: Session, account_id: int, model: Any, make: Callable[[str], dict[str, Any]]):
        self.session, self.account_id, self.model, self.make = session, account_id, model, make
        rows = session.execute(select(model.name, model.id).where(model.account_id == account_id))
        self.ids: dict[str, int] = {row[0]: row[1] for row in rows}

    def id_of(self, name: str | None) -> int | None:
        if name is None:
            return None
        found = self.ids.get(name)
        if found is None:
            found = id_of_name(
                session=self.session, model=self.model, account_id=self.account_id, name=name, **self.make(name)
            )
            self.ids[name] = found
        return found


class DealWriter:
    def __init__(
        self, target: ImportTarget, report: ImportReport, now: dt.datetime | None = None, *, count_days: bool = True
    ) -> None:
        self.target, self.report = target, report
        self.count_days = count_days  # new deals into the per-day cells per batch (a large load recounts at the end)
        self.session = target.session
        self.account_id = target.account.id
        self.pipeline_id = target.pipeline.id
        self.origin = target.origin or OWN_ORIGIN
        """Whose ids the records carry: a deal is the same only if its id came from the same place."""
        self.stage_ids = {s.position: s.id for s in target.pipeline.stages}
        self.last_position = len(self.stage_ids)
        self.now = now or utcnow()
        self.sources = _Names(self.session, self.account_id, Source, lambda _n: {})
        self.managers = _Names(self.session, self.account_id, User, lambda _n: {"role": "manager", "active": True})
        self.reasons = _Names(
            self.session, self.account_id, LossReason, lambda n: {"family": guess_cause_family(n).value}
        )
        self.batch: list[Shaped] = []
        self.inserted = 0
        self.analyse_at = ANALYSE_FROM
        self.had_deals = self._account_has_deals()
        """Whether the account held any deal when the writer began (an import's first deals set the
        account's currency; an empty account's batches need no lookup, see ``_existing``)."""
        self.written: set[str] = set()
        """External ids this writer stored, kept while the account had no deals before it began."""
        # Times converted before the insert only where the cells are recounted at the end: counting
        # them per batch needs them as times.
        time = None if count_days else stored_time(self.session.get_bind().dialect)
        self.placement = Placement(
            self.account_id, self.pipeline_id, self.stage_ids, self.now if time is None else time(self.now), time
        )
        """Where new deals go, their times as the database stores them (``laid_out``)."""
        self.as_they_are = self.placement._replace(now=self.now, time=None)
        self.new: list[NewDeal] = []
        self.name_ids: dict[Names, tuple[int | None, ...]] = {}
        self.currencies: Counter[str] = Counter()
        """Deals written per currency."""

    def add(self, record: DealRecord) -> None:
        self.add_shaped(shape(record, self.last_position))

    def add_shaped(self, item: Shaped) -> None:
        """Add a record already shaped (by the process that read the file, for a large import)."""
        self.currencies[item.record.currency] += 1
        self.batch.append(item)
        if len(self.batch) >= BATCH_SIZE:
            self.flush()

    def add_new(self, deal: NewDeal) -> None:
        """Add a deal laid out by the process that read the file (``shaping.laid_out`` with this
        writer's ``placement``), which the account cannot hold yet: it had no deals when the
        writer began, and the file names each deal once."""
        self.currencies[deal[1][CURRENCY]] += 1
        self.new.append(deal)
        if len(self.new) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        new, self.new = self.new, []
        self._insert(new, converted=self.placement.time is not None)
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        existing = self._existing([item.record for item in batch])
        fresh = [laid_out(item, self.as_they_are) for item in batch if item.record.external_id not in existing]
        self._insert(fresh, converted=False)
        for item in batch:
            if item.record.external_id in existing:
                self._update(existing[item.record.external_id], item)

    def _account_has_deals(self) -> bool:
        found = self.session.scalar(select(Deal.id).where(Deal.account_id == self.account_id).limit(1))
        return found is not None

    def _existing(self, batch: list[DealRecord]) -> dict[str, Deal]:
        """The batch's deals that are stored already, by external id.

        An account that had no deals when the writer began holds none but those this writer stored,
        so only those are looked up: a first import of a million deals skips a million probes of the
        unique index (8.5 s on PostgreSQL), and a CRM page that repeats a deal still updates it.
        """
        wanted = [r.external_id for r in batch if self.had_deals or r.external_id in self.written]
        if not wanted:
            return {}
        origins = (self.origin, LEGACY_ORIGIN)  # a deal stored before origins were kept is claimed
        # Locked, like any deal a write reads to change it (``crm.derived.lock_deal``): a person
        # moving one of these deals meanwhile waits, and then sees what the import wrote.
        begin_write(self.session.connection())
        found = self.session.scalars(
            select(Deal)
            .where(Deal.account_id == self.account_id, Deal.origin.in_(origins), Deal.external_id.in_(wanted))
            .order_by(Deal.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        existing: dict[str, Deal] = {}
        for deal in found:  # the same origin's deal before a legacy one of the same id
            if deal.external_id is not None and (deal.external_id not in existing or deal.origin == self.origin):
                existing[deal.external_id] = deal
        return existing

    def _name_ids(self, names: Names) -> tuple[int | None, ...]:
        """The ids of a deal's source, manager and loss reason (a file holds few combinations of
        them, so each is looked up once)."""
        found = self.name_ids.get(names)
        if found is None:
            source, manager, reason = names
            found = self.sources.id_of(source), self.managers.id_of(manager), self.reasons.id_of(reason)
            self.name_ids[names] = found
        return found

    def _fields(self, item: Shaped) -> dict[str, Any]:
        """The values a re-imported deal is compared on and updated to."""
        names, values, _, _ = laid_out(item, self.as_they_are)
        fields = dict(zip(_NAMED, self._name_ids(names), strict=True))
        fields.update(zip(DEAL_FACT_COLUMNS, values[: len(DEAL_FACT_COLUMNS)], strict=True))
        return fields

    def _insert(self, deals: list[NewDeal], *, converted: bool) -> None:
        """Store new deals with ids reserved up front (none read back), then their log and reaches.
        Rows are tuples joined from what ``laid_out`` gave, because a large import builds millions;
        ``converted``: it gave their times as the database stores them."""
        if not deals:
            return
        connection = self.session.connection()
        ids = reserved_ids(connection, _DEALS, len(deals))
        account_id, pipeline_id = self.account_id, self.pipeline_id
        rows, changes, reaches = [], [], []
        for deal_id, (names, values, log, reached) in zip(ids, deals, strict=True):
            named = self._name_ids(names)
            rows.append((deal_id, self.origin, *named, *values))
            head = (account_id, deal_id)
            changes.extend([head + change for change in log])
            if reached:
                source_id, manager_id, _ = named
                facts = DealFacts(
                    deal_id, account_id, pipeline_id, values[_STATUS], values[_FURTHEST], manager_id, source_id
                )
                reaches.extend(rows_of_reaches(facts, reached))
        bulk_insert(connection, _DEALS, _ROW_COLUMNS, rows, stored=NEW_DEAL_TIMES if converted else ())
        if not self.had_deals:
            self.written.update(values[_EXTERNAL_ID] for _, values, _, _ in deals)
        bulk_insert(connection, _STAGE_CHANGES, _CHANGE_COLUMNS, changes, stored=("at",) if converted else ())
        insert_reaches(self.session, reaches, stored=REACH_TIMES if converted else ())
        if self.count_days:
            deal_days.add_deals(
                connection,
                [dict(zip(_ROW_COLUMNS, row, strict=True)) for row in rows],
                self.target.account.timezone,
            )
        self.report.created += len(deals)
        self._keep_statistics(connection, len(deals))

    def _keep_statistics(self, connection: Any, added: int) -> None:
        """PostgreSQL plans the batches' lookups by external id from statistics taken when the table
        was small, and keeps a prepared statement's generic plan — a scan of the whole table that
        made each lookup slower than the last (300,000 deals never finished). Each time the load
        doubles the table the statistics are refreshed, which also invalidates those plans."""
        self.inserted += added
        if not self.had_deals:
            return  # no batch is looked up in the table (see _existing)
        if connection.dialect.name == "postgresql" and self.inserted >= self.analyse_at:
            refresh_statistics(connection)
            self.analyse_at *= 2

    def _update(self, deal: Deal, item: Shaped) -> None:
        """Update a known deal to what the record says, appending the stage entries its log lacks;
        what follows from the log is re-derived by the rules (``crm.derived.rederive_deal``). A deal
        the record puts in this writer's pipeline moves here from the one it was in."""
        record, entries = item.record, item.entries
        fields = self._fields(item)
        if fields["stated_contact_at"] is None:
            del fields["stated_contact_at"]  # a file that states no first contact keeps the one stated before
        moved = deal.pipeline_id != self.pipeline_id
        ours = set(self.stage_ids.values())
        logged_positions = {
            position
            for stage_id, position in self.session.execute(
                select(StageEntry.to_stage_id, StageEntry.to_position).where(StageEntry.deal_id == deal.id)
            )
            if stage_id in ours
        }
        # The arrival (the first entry) is logged once, when the deal first came: a deal moving
        # here from another pipeline did not arrive again.
        arrival = [] if moved else entries[:1]
        new_entries = [(p, t) for p, t in [*arrival, *entries[1:]] if p not in logged_positions]
        if deal.stage_id != fields["stage_id"] and all(p != record.stage_position for p, _ in new_entries):
            new_entries.append((record.stage_position, record.closed_at or self.now))
        changed = {name: value for name, value in fields.items() if getattr(deal, name) != value}
        deal.origin = self.origin  # claimed, if it was stored before origins were kept
        if not changed and not new_entries and not moved:
            self.report.unchanged += 1
            return
        previous = deal.stage_id
        for position, at in sorted(new_entries, key=lambda e: e[1]):
            stage_id = self.stage_ids[position]
            self.session.add(
                StageEntry(
                    account_id=self.account_id,
                    deal_id=deal.id,
                    from_stage_id=previous,
                    to_stage_id=stage_id,
                    to_position=position,
                    at=at,
                )
            )
            previous = stage_id
        for name, value in changed.items():
            setattr(deal, name, value)
        deal.pipeline_id = self.pipeline_id
        deal.history_known = deal.history_known or record.history_known
        deal.updated_at = self.now
        rederive_deal(session=self.session, deal=deal)
        self.report.updated += 1
