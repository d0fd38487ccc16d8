"""Changing a pipeline's stages after deals went through them: add, rename, reorder.

The won stage stays last (moving it would change what winning means). A stage's position is
copied into the stage log, the deals' furthest position and the stage reaches, so after the
stages are renumbered those are brought up to date from the log — the log itself (which stage,
when) does not change.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from voronka.crm.derived import Rederived, lock_pipeline, rederive_pipeline
from voronka.errors import InvalidPipeline, InvalidValue
from voronka.models import Deal, DealEvent, Pipeline, Stage, StageEntry, User
from voronka.timeutil import utcnow

MAX_STAGE_NAME = 200
"""What the column keeps; a longer name is refused rather than cut, as two names equal in their
first 200 characters would pass the duplicate check and then collide in storage."""
_PARKED = 100_000
"""Positions are unique per pipeline: stages wait above this while they are renumbered."""


def stage_of(*, session: Session, account_id: int, stage_id: int) -> Stage:
    """The account's stage of this id; another account's is refused like an unknown one."""
    stage = session.get(Stage, stage_id)
    pipeline = session.get(Pipeline, stage.pipeline_id) if stage else None
    if stage is None or pipeline is None or pipeline.account_id != account_id:
        raise InvalidValue(field="stage", value=str(stage_id), hint="a stage of your pipelines")
    return stage


def rename_stage(*, session: Session, stage: Stage, name: str) -> Stage:
    name = _stage_name(name)
    siblings = session.scalars(select(Stage.name).where(Stage.pipeline_id == stage.pipeline_id, Stage.id != stage.id))
    if name.casefold() in {s.casefold() for s in siblings}:
        raise InvalidPipeline(reason=f"«{name}» is already a stage of this pipeline")
    stage.name = name
    session.flush()
    return stage


def _stage_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_STAGE_NAME:
        raise InvalidValue(field="name", value=name[:40], hint=f"a stage name of 1 to {MAX_STAGE_NAME} characters")
    return name


def add_stage(*, session: Session, pipeline: Pipeline, name: str, before: Stage | None = None) -> Stage:
    """A new stage before ``before`` (default: just before the won stage)."""
    stages = list(pipeline.stages)
    won = stages[-1]
    index = stages.index(before) if before is not None else len(stages) - 1
    if before is not None and before.pipeline_id != pipeline.id:
        raise InvalidValue(field="before", value=before.name, hint="a stage of this pipeline")
    taken = {s.name.casefold() for s in stages}
    name = _stage_name(name)
    if name.casefold() in taken:
        raise InvalidPipeline(reason=f"«{name}» is already a stage of this pipeline")
    stage = Stage(account_id=pipeline.account_id, pipeline_id=pipeline.id, name=name, position=_PARKED * 2)
    session.add(stage)
    order = [*stages[:index], stage, *stages[index:]]
    assert order[-1] is won
    _renumber(session, pipeline, order)
    return stage


def move_stage(*, session: Session, stage: Stage, by: int) -> None:
    """Move an open stage ``by`` places (−1 earlier, +1 later) among the open stages."""
    pipeline = session.get(Pipeline, stage.pipeline_id)
    assert pipeline is not None
    order = list(pipeline.stages)
    if stage is order[-1]:
        raise InvalidPipeline(reason="the won stage stays last")
    index = order.index(stage)
    target = min(max(index + by, 0), len(order) - 2)
    order.insert(target, order.pop(index))
    _renumber(session, pipeline, order)


def _renumber(session: Session, pipeline: Pipeline, order: list[Stage]) -> None:
    lock_pipeline(session, pipeline.id)  # the deals' log positions and derived state are rewritten
    for stage in order:
        stage.position = _PARKED + (stage.position % _PARKED)
    session.flush()
    for number, stage in enumerate(order, start=1):
        stage.position = number
    session.flush()
    in_pipeline = select(Deal.id).where(Deal.pipeline_id == pipeline.id).scalar_subquery()
    position_of = select(Stage.position).where(Stage.id == StageEntry.to_stage_id).scalar_subquery()
    session.execute(
        update(StageEntry).where(StageEntry.deal_id.in_(in_pipeline)).values(to_position=position_of),
        execution_options={"synchronize_session": False},
    )
    session.expire_all()
    # Positions moved under the deals: their furthest stages, reaches and cells follow by the rules.
    rederive_pipeline(session=session, pipeline_id=pipeline.id)


def remove_stage(*, session: Session, stage: Stage, into: Stage, by: User | None = None) -> None:
    """Delete a stage, its deals and its history going to ``into``: every entry into the removed
    stage becomes an entry into ``into``, so the funnel reads as if the stage had never been
    separate. The won stage stays, and a pipeline keeps at least two stages.

    Each deal whose log named the stage gets a ``stage_removed`` event: who deleted it, when, and
    which of its log entries named it — the card shows the history as it happened from it
    (``voronka.crm.cards``) and records the deletion."""
    pipeline = session.get(Pipeline, stage.pipeline_id)
    assert pipeline is not None
    order = list(pipeline.stages)
    if into.pipeline_id != stage.pipeline_id or into.id == stage.id:
        raise InvalidValue(field="into", value=into.name, hint="another stage of the same pipeline")
    if stage is order[-1]:
        raise InvalidPipeline(reason="the won stage stays last")
    if into is order[-1]:
        raise InvalidPipeline(reason="a stage's deals cannot go into the won stage: that would win them")
    if len(order) <= 2:
        raise InvalidPipeline(reason="a pipeline needs at least two stages")
    _record_removal(session, pipeline, stage, into, by)
    lock_pipeline(session, pipeline.id)  # its deals and their history are rewritten below
    no_sync = {"synchronize_session": False}
    session.execute(
        update(StageEntry).where(StageEntry.to_stage_id == stage.id).values(to_stage_id=into.id),
        execution_options=no_sync,
    )
    session.execute(
        update(StageEntry).where(StageEntry.from_stage_id == stage.id).values(from_stage_id=into.id),
        execution_options=no_sync,
    )
    session.execute(update(Deal).where(Deal.stage_id == stage.id).values(stage_id=into.id), execution_options=no_sync)
    order.remove(stage)
    session.delete(stage)
    session.flush()
    _renumber(session, pipeline, order)


def _record_removal(session: Session, pipeline: Pipeline, stage: Stage, into: Stage, by: User | None) -> None:
    entries: dict[int, list[list[str]]] = defaultdict(list)
    named = or_(StageEntry.to_stage_id == stage.id, StageEntry.from_stage_id == stage.id)
    rows = session.execute(
        select(StageEntry.deal_id, StageEntry.at, StageEntry.to_stage_id, StageEntry.from_stage_id).where(named)
    )
    for deal_id, at, to_id, from_id in rows:
        if to_id == stage.id:
            entries[deal_id].append([at.isoformat(), "to"])
        if from_id == stage.id:
            entries[deal_id].append([at.isoformat(), "from"])
    if not entries:
        return
    now = utcnow()
    session.execute(
        insert(DealEvent),
        [
            {
                "account_id": pipeline.account_id,
                "deal_id": deal_id,
                "at": now,
                "actor_id": by.id if by else None,
                "kind": "stage_removed",
                "data": {"stage": stage.name, "into": into.name, "entries": named_entries},
            }
            for deal_id, named_entries in entries.items()
        ],
    )


def recount(*, session: Session, pipeline: Pipeline) -> Rederived:
    """Re-derive what reports read instead of the deals and their log — each deal's stage, furthest
    stage, first contact and speed to lead, the stage reaches, the deals per day — from the deals,
    the log and the calls themselves, and say what changed. Every write keeps them in step; this
    repairs a database edited by hand or left by a crash (a recount of one in step changes nothing)."""
    return rederive_pipeline(session=session, pipeline_id=pipeline.id)


def is_unused(*, session: Session, pipeline: Pipeline) -> bool:
    """Whether nothing was put in the pipeline yet — no deal, plan, typed-in daily count or website
    form sending leads to it — so that it may still be reshaped (a pipeline ``voronka init`` made
    before a CRM was connected)."""
    from voronka.models import DailyCount, LeadForm, Plan  # only here: most writes never ask

    for model in (Deal, Plan, DailyCount, LeadForm):
        if session.scalar(select(model.id).where(model.pipeline_id == pipeline.id).limit(1)) is not None:
            return False
    return True


def reshape(*, session: Session, pipeline: Pipeline, name: str, stages: list[str]) -> Pipeline:
    """Give an unused pipeline another name and other stages (the CRM's, at its first sync)."""
    if not is_unused(session=session, pipeline=pipeline):
        raise InvalidPipeline(reason=f"«{pipeline.name}» already holds deals")
    if len(stages) < 2 or len({s.casefold() for s in stages}) < len(stages):
        raise InvalidPipeline(reason="a pipeline needs at least two stages with different names")
    for stage in list(pipeline.stages):
        session.delete(stage)
    session.flush()
    pipeline.name = name
    for position, stage_name in enumerate(stages, start=1):
        session.add(
            Stage(account_id=pipeline.account_id, pipeline_id=pipeline.id, name=stage_name[:200], position=position)
        )
    session.flush()
    session.expire(pipeline, ["stages"])
    return pipeline
