"""What a report reads through, and the account and pipelines it reads for, without the ORM.

A report only reads, so it takes either an ORM ``Session`` (the web app, the services that also
write) or a Core ``Connection`` (the report commands, which then never import the ORM: a third of
their start-up). It asks for the account and its pipelines as small frozen rows, or as the ORM's
objects where a caller already holds them: both have the attributes the protocols below name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias, TypeVar

from sqlalchemy import select

from voronka import schema
from voronka.errors import NoPipeline, PipelineNotFound, PipelineRequired
from voronka.timeutil import local_zone_name

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

Reader: TypeAlias = "Session | Connection"
"""Where a report's statements run: both execute Core statements alike."""


class AccountLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def timezone(self) -> str: ...


class StageLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def position(self) -> int: ...


class PipelineLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def account_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def stages(self) -> Sequence[StageLike]: ...


P = TypeVar("P", bound=PipelineLike)


@dataclass(frozen=True)
class AccountRow:
    id: int
    name: str
    currency: str
    timezone: str


@dataclass(frozen=True)
class StageRow:
    id: int
    name: str
    position: int


@dataclass(frozen=True)
class PipelineRow:
    id: int
    account_id: int
    name: str
    stages: tuple[StageRow, ...]
    """In order of position: the last is the won stage."""


def first_account(reader: Reader) -> AccountRow | None:
    """The first account (the embedded default holds one business); None in a new database."""
    a = schema.accounts.c
    row = reader.execute(select(a.id, a.name, a.currency, a.timezone).order_by(a.id).limit(1)).first()
    return None if row is None else AccountRow(row.id, row.name, row.currency, row.timezone)


def pipelines_of(reader: Reader, account_id: int) -> list[PipelineRow]:
    """The account's pipelines in the order they were made, each with its stages."""
    p, s = schema.pipelines.c, schema.stages.c
    rows = reader.execute(
        select(p.id, p.name, s.id.label("stage_id"), s.name.label("stage_name"), s.position)
        .join(schema.stages, s.pipeline_id == p.id, isouter=True)
        .where(p.account_id == account_id)
        .order_by(p.id, s.position)
    ).all()
    stages: dict[int, list[StageRow]] = {}
    names: dict[int, str] = {}
    for row in rows:
        names[row.id] = row.name
        found = stages.setdefault(row.id, [])
        if row.stage_id is not None:
            found.append(StageRow(row.stage_id, row.stage_name, row.position))
    return [PipelineRow(pid, account_id, names[pid], tuple(stages[pid])) for pid in names]


def choose_pipeline(pipelines: Sequence[P], name: str | None) -> P:
    """The pipeline called ``name`` (case and surrounding spaces ignored); without a name, the
    only one there is."""
    if not pipelines:
        raise NoPipeline()
    if name is None:
        if len(pipelines) > 1:
            raise PipelineRequired(names=", ".join(p.name for p in pipelines))
        return pipelines[0]
    for pipeline in pipelines:
        if pipeline.name.casefold() == name.strip().casefold():
            return pipeline
    raise PipelineNotFound(name=name, names=", ".join(p.name for p in pipelines))


def report_account(reader: Reader) -> AccountRow:
    """The account a report command reads (the first). A new database has none yet: it reads as an
    account without pipelines (id 0, as ``crm.accounts.default_account`` would make it), so a
    report checks its question first and then says there is no pipeline yet."""
    return first_account(reader) or AccountRow(0, "Business", "RUB", local_zone_name())
