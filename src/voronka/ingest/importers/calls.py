"""Calls from telephony exports (docs/import.md, "Calls"): read through a call map, matched to deals
by deal id or by the client's number, stored once each, and the deals' first contact redone.

Matching by number: the client's number is normalised by the phone-number library and compared by
its last ten digits (the national number in Russia and most countries) with the deals' numbers. A
call belongs to the deal with that number created most recently before it (or up to a day after it:
the call that made the lead), as long as the deal was still open or closed less than 30 days before
the call. A call that matches no deal yet waits (``waiting_calls``) and is matched, by the same rule,
when its deal arrives with a later import or sync (``match_waiting_calls``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import case, delete, select
from sqlalchemy.orm import Session

from voronka.crm.accounts import get_or_create_manager
from voronka.crm.derived import rederive_contacts
from voronka.crm.phones import MAX_PHONE, normalize_phone, region_of
from voronka.db import bulk_insert, dialect_insert
from voronka.errors import ImportFailed
from voronka.i18n import Message
from voronka.ingest.importers.call_maps import CallMap
from voronka.models import (
    LEGACY_ORIGIN,
    OWN_ORIGIN,
    Account,
    CallAttempt,
    CallDirection,
    CallOutcome,
    Deal,
    WaitingCall,
)
from voronka.tabular.cells import RowError, clean, parse_datetime
from voronka.tabular.files import TableFile, open_table
from voronka.tabular.report import ImportReport, Progress, Rejected
from voronka.timeutil import utcnow, zone

MATCH_DIGITS = 10
BEFORE_DEAL = dt.timedelta(days=1)
AFTER_CLOSE = dt.timedelta(days=30)
CHUNK = 5_000


class CallRow(NamedTuple):
    line: int
    at: dt.datetime
    direction: str
    our_number: str | None
    client_phone: str | None
    client_key: str | None
    outcome: str
    duration: int
    manager: str | None
    deal_ref: str | None
    external_id: str


@lru_cache(maxsize=200_000)
def _normalized(raw: str, region: str | None) -> str:
    return normalize_phone(raw, region) or raw


def normalized_phone(raw: str | None, region: str | None) -> str | None:
    """A number in international form when it is a valid one, else as written (``reg133788``)."""
    return _normalized(raw, region) if raw else None


def match_key(phone: str | None) -> str | None:
    """The last ten digits, last first (as ``Deal.phone_key`` begins)."""
    digits = "".join(c for c in phone or "" if c.isdigit())
    return digits[::-1][:MATCH_DIGITS] if len(digits) >= MATCH_DIGITS else None


_DURATION = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})$")


MAX_DURATION = 86_400
"""A day: a longer call is a typo (and a column of 32-bit integers could not keep 1e18 seconds)."""
MAX_EXTERNAL_ID = 120


def parse_duration(text: str | None) -> int:
    """Seconds from ``95``, ``95.0``, ``1:35`` or ``0:01:35``."""
    value = (text or "").strip()
    if not value:
        return 0
    matched = _DURATION.match(value)
    if matched:
        hours, minutes, seconds = (int(part or 0) for part in matched.groups())
        total = hours * 3600 + minutes * 60 + seconds
    else:
        try:
            seconds_float = float(value.replace(",", "."))
        except ValueError:
            raise RowError(Message("import.bad_duration", {"value": value[:40]})) from None
        # 1e400 reads as infinity, nan as no number: neither is a call's length.
        if not math.isfinite(seconds_float) or seconds_float < 0:
            raise RowError(Message("import.bad_duration", {"value": value[:40]}))
        total = round(min(seconds_float, MAX_DURATION + 1))
    if total > MAX_DURATION:
        raise RowError(Message("import.bad_duration", {"value": value[:40]}))
    return total


@dataclass(frozen=True)
class _Reader:
    """One file's columns resolved against a map."""

    call_map: CallMap
    positions: dict[str, int]
    tz: ZoneInfo
    region: str | None

    @classmethod
    def of(cls, table: TableFile, call_map: CallMap, account: Account) -> _Reader:
        header = [h.strip().casefold() for h in table.header]
        positions = {}
        for name, sources in call_map.columns.items():
            for source in sources:
                if source.casefold() in header:
                    positions[name] = header.index(source.casefold())
                    break
        missing = [c for c in ("started_at",) if c not in positions]
        has_client = "client_number" in positions or {"from_number", "to_number"} <= set(positions)
        if missing or not (has_client or "deal_id" in positions):
            wanted = ", ".join(call_map.source_columns("started_at") + call_map.source_columns("client_number"))
            raise ImportFailed(reason=Message("import.missing_columns", {"file": table.path.name, "columns": wanted}))
        return cls(call_map, positions, zone(account.timezone), region_of(account.timezone))

    def cell(self, cells: list[str], name: str) -> str | None:
        index = self.positions.get(name)
        return clean(cells[index]) if index is not None and index < len(cells) else None

    def row(self, line: int, cells: list[str]) -> CallRow:
        at = parse_datetime(self.cell(cells, "started_at") or "", "started_at", self.tz)
        raw_direction = self.cell(cells, "direction")
        direction = self.call_map.directions.get(raw_direction.casefold()) if raw_direction else None
        if raw_direction and direction is None:
            raise RowError(Message("import.bad_direction", {"value": raw_direction}))
        direction = direction or self.call_map.default_direction
        ours, client = self.cell(cells, "our_number"), self.cell(cells, "client_number")
        if client is None and "from_number" in self.positions:
            caller, callee = self.cell(cells, "from_number"), self.cell(cells, "to_number")
            ours, client = (caller, callee) if direction is CallDirection.OUTGOING else (callee, caller)
        external_line = self.cell(cells, "outgoing_line")
        if external_line and direction is CallDirection.OUTGOING:
            ours = external_line  # the calling end was an extension (997): the line is what the client saw
        for value in (client, ours):  # the row alone is refused: the column would refuse the whole file
            if value is not None and len(value) > MAX_PHONE:
                raise RowError(Message("import.cell_too_long", {"limit": MAX_PHONE}))
        duration = parse_duration(self.cell(cells, "duration"))
        outcome = self._outcome(self.cell(cells, "outcome"), duration)
        phone = _normalized(client, self.region) if client else None
        ours = _normalized(ours, self.region) if ours else None
        call_id = self.cell(cells, "call_id")
        if call_id is not None and len(self.call_map.name) + 1 + len(call_id) > MAX_EXTERNAL_ID:
            raise RowError(Message("import.cell_too_long", {"limit": MAX_EXTERNAL_ID - len(self.call_map.name) - 1}))
        identity = (
            call_id
            or hashlib.sha1(f"{at.isoformat()}|{direction.value}|{ours}|{phone}|{duration}".encode()).hexdigest()[:24]
        )
        return CallRow(
            line, at, direction.value, ours, phone, match_key(phone), outcome.value, duration,
            self.cell(cells, "manager"), self.cell(cells, "deal_id"), f"{self.call_map.name}:{identity}",
        )  # fmt: skip

    def _outcome(self, raw: str | None, duration: int) -> CallOutcome:
        if raw is None:
            return CallOutcome.ANSWERED if duration > 0 else CallOutcome.NO_ANSWER
        found = self.call_map.outcomes.get(raw.casefold())
        if found is None:
            raise RowError(Message("import.bad_outcome", {"value": raw}))
        return found


def read_calls(table: TableFile, call_map: CallMap, account: Account, report: ImportReport) -> Iterator[CallRow]:
    reader = _Reader.of(table, call_map, account)
    for line, cells in table.rows():
        try:
            yield reader.row(line, cells)
        except RowError as error:
            report.rejected.append(Rejected(line, error.message))


class DealIndex:
    """The account's deals by number and by id (the ids of ``origin``: a calls file's are the
    business's own, a CRM's call log names that CRM's), loaded once for the whole file."""

    def __init__(self, session: Session, account: Account, origin: str = OWN_ORIGIN) -> None:
        rows = session.execute(
            select(
                Deal.id,
                case((Deal.origin.in_((origin, LEGACY_ORIGIN)), Deal.external_id)),
                Deal.phone_key,
                Deal.created_at,
                Deal.closed_at,
                Deal.manager_id,
            )
            .where(Deal.account_id == account.id)
            .order_by(Deal.origin == origin, Deal.id)  # the origin's own deal over a legacy one of the same id
        ).all()
        self.by_ref: dict[str, tuple[int, int | None]] = {}
        self.created: dict[int, dt.datetime] = {}
        self.closed: dict[int, dt.datetime | None] = {}
        by_key: dict[str, list[tuple[dt.datetime, int, dt.datetime | None, int | None]]] = {}
        for deal_id, external, key, created, closed, manager in rows:
            self.by_ref[f"#{deal_id}"] = (deal_id, manager)
            self.created[deal_id], self.closed[deal_id] = created, closed
            if external:
                self.by_ref[external] = (deal_id, manager)
            if key and len(key) >= MATCH_DIGITS:
                by_key.setdefault(key[:MATCH_DIGITS], []).append((created, deal_id, closed, manager))
        self.by_key = {k: sorted(v) for k, v in by_key.items()}

    def find(self, call: CallRow) -> tuple[int, int | None] | None:
        if call.deal_ref:
            return self.by_ref.get(call.deal_ref) or self.by_ref.get(call.deal_ref.lstrip("#"))
        return self.by_phone(call.client_key, call.at)

    def by_phone(self, key: str | None, at: dt.datetime) -> tuple[int, int | None] | None:
        """The deal with this number that the call at ``at`` belongs to (see the module's rule)."""
        return _pick(self.by_key.get(key or "") or [], at)

    def named(self, ref: str | None) -> tuple[int, int | None] | None:
        """The deal a call names itself (a CRM's note on the lead): its own, whatever the dates."""
        return self.by_ref.get(ref) if ref else None

    def among(self, refs: tuple[str, ...], at: dt.datetime) -> tuple[int, int | None] | None:
        """The deal the call belongs to among these (the CRM's deal ids, a contact's deals, say)."""
        found = sorted(
            (self.created[deal_id], deal_id, self.closed[deal_id], manager)
            for ref in refs
            if (hit := self.by_ref.get(ref)) is not None
            for deal_id, manager in [hit]
        )
        return _pick(found, at)


def _pick(
    candidates: list[tuple[dt.datetime, int, dt.datetime | None, int | None]], at: dt.datetime
) -> tuple[int, int | None] | None:
    """The latest deal created before ``at`` (or a day after it), if open or recently closed then."""
    index = bisect.bisect_right(candidates, (at + BEFORE_DEAL, 2**63, None, None)) - 1
    if index < 0:
        return None
    _, deal_id, closed, manager = candidates[index]
    if closed is not None and at > closed + AFTER_CLOSE:
        return None
    return deal_id, manager


StoredCall = tuple[int, int, dt.datetime, str | None, str, int, int | None, str, str | None, str]
"""A row of ``COLUMNS``."""

COLUMNS = (
    "account_id", "deal_id", "at", "outgoing_number", "outcome", "duration_seconds", "manager_id", "direction",
    "client_phone", "external_id",
)  # fmt: skip


def import_calls(
    *, session: Session, account: Account, path: Path, call_map: CallMap, progress: Progress | None = None
) -> ImportReport:
    """Import a call-detail file; the caller commits (or rolls back, for a dry run)."""
    table = open_table(path)
    _Reader.of(table, call_map, account)  # a file that is not of this format fails before anything is read
    report = ImportReport(file=path.name)
    if progress is not None:
        progress.start(table.rows_estimate)
    deals, managers = DealIndex(session, account), Managers(session, account)
    touched = set[int]()
    batch: list[StoredCall] = []
    waiting: list[dict[str, Any]] = []
    for count, call in enumerate(read_calls(table, call_map, account, report), 1):
        found = deals.find(call)
        if found is None:
            waiting.append(
                waiting_row(
                    account, call.external_id, OWN_ORIGIN, call.at, call.direction, call.outcome, call.duration,
                    call.our_number, call.client_phone, call.manager, deal_ref=call.deal_ref,
                )
            )  # fmt: skip
            continue
        deal_id, deal_manager = found
        manager_id = managers.id_of(call.manager) or deal_manager
        batch.append((account.id, deal_id, call.at, call.our_number, call.outcome, call.duration, manager_id,
                      call.direction, call.client_phone, call.external_id))  # fmt: skip
        if len(batch) >= CHUNK:
            touched |= store_calls(session, account, batch, report)
            batch = []
        if progress is not None and count % 2_000 == 0:
            progress.advance(2_000)
    touched |= store_calls(session, account, batch, report)
    report.add_rejected(table.rejected)
    refresh_first_contact(session=session, deal_ids=touched)
    kept = keep_waiting(session, waiting)
    if kept:
        report.notes.append(Message("import.calls_waiting", {"count": kept}))
    return report


def waiting_row(
    account: Account,
    external_id: str,
    origin: str,
    at: dt.datetime,
    direction: str,
    outcome: str,
    duration: int,
    our_number: str | None,
    client_phone: str | None,
    manager: str | None,
    *,
    deal_ref: str | None = None,
    refs: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A call that matched no deal, as ``waiting_calls`` keeps it."""
    return {
        "account_id": account.id, "external_id": external_id, "origin": origin, "at": at, "direction": direction,
        "outcome": outcome, "duration_seconds": duration, "outgoing_number": our_number,
        "client_phone": client_phone, "manager": manager, "deal_ref": deal_ref, "refs": list(refs),
        "received_at": utcnow(),
    }  # fmt: skip


def keep_waiting(session: Session, rows: list[dict[str, Any]]) -> int:
    """Keep calls that matched no deal (each once, however often it comes); how many came."""
    if not rows:
        return 0
    for start in range(0, len(rows), 1_000):
        statement = dialect_insert(session, WaitingCall).on_conflict_do_nothing(
            index_elements=["account_id", "external_id"]
        )
        session.execute(statement, rows[start : start + 1_000])
    return len({row["external_id"] for row in rows})


def match_waiting_calls(*, session: Session, account: Account) -> int:
    """Store the waiting calls whose deal has arrived since (by the rule calls are matched by), and
    redo those deals' first contact; returns how many were matched. Cheap when none wait."""
    waiting = list(session.scalars(select(WaitingCall).where(WaitingCall.account_id == account.id)))
    if not waiting:
        return 0
    managers = Managers(session, account)
    indexes: dict[str, DealIndex] = {}
    rows: list[StoredCall] = []
    matched: list[int] = []
    for call in waiting:
        deals = indexes.get(call.origin) or indexes.setdefault(call.origin, DealIndex(session, account, call.origin))
        if call.origin == OWN_ORIGIN and call.deal_ref:  # a file's deal_id names the deal, as on import
            found = deals.named(call.deal_ref) or deals.named(call.deal_ref.lstrip("#"))
        else:
            found = (
                deals.named(call.deal_ref)
                or deals.among(tuple(call.refs), call.at)
                or deals.by_phone(match_key(call.client_phone), call.at)
            )
        if found is None:
            continue
        deal_id, deal_manager = found
        rows.append((account.id, deal_id, call.at, call.outgoing_number, call.outcome, call.duration_seconds,
                     managers.id_of(call.manager) or deal_manager, call.direction, call.client_phone,
                     call.external_id))  # fmt: skip
        matched.append(call.id)
    report = ImportReport(file="waiting calls")
    refresh_first_contact(session=session, deal_ids=store_calls(session, account, rows, report))
    for start in range(0, len(matched), 1_000):
        session.execute(delete(WaitingCall).where(WaitingCall.id.in_(matched[start : start + 1_000])))
    return len(matched)


class Managers:
    def __init__(self, session: Session, account: Account) -> None:
        self.session, self.account, self.ids = session, account, dict[str, int]()

    def id_of(self, name: str | None) -> int | None:
        if not name:
            return None
        if name not in self.ids:
            self.ids[name] = get_or_create_manager(session=self.session, account=self.account, name=name).id
        return self.ids[name]


def store_calls(session: Session, account: Account, batch: list[StoredCall], report: ImportReport) -> set[int]:
    """Insert the calls not stored yet (by their external id); the deals they touched."""
    if not batch:
        return set()
    ids = [row[-1] for row in batch]
    known = set(
        session.scalars(
            select(CallAttempt.external_id).where(
                CallAttempt.account_id == account.id, CallAttempt.external_id.in_(ids)
            )
        )
    )
    fresh, seen = [], set(known)
    for row in batch:
        if row[-1] in seen:
            continue
        seen.add(row[-1])
        fresh.append(row)
    report.unchanged += len(batch) - len(fresh)
    report.created += len(fresh)
    session.flush()
    bulk_insert(session.connection(), CallAttempt.__table__, COLUMNS, fresh)
    return {row[1] for row in fresh}


def refresh_first_contact(*, session: Session, deal_ids: set[int]) -> None:
    """First contact and speed to lead of the deals that got calls, by the rules of
    ``crm.deal_state`` (the earliest counting call or stated contact, else the first move)."""
    rederive_contacts(session=session, deal_ids=deal_ids)
