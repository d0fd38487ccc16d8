"""The account (the business) and its named things: pipelines, sources, managers, loss reasons."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from voronka.db import dialect_insert
from voronka.errors import (
    InvalidPipeline,
    InvalidValue,
    NotFound,
    PipelineExists,
    StageNotFound,
    UnknownName,
)
from voronka.i18n import Message
from voronka.models import Account, Base, CauseFamily, LossReason, Pipeline, Role, Source, Stage, User
from voronka.money import check_currency
from voronka.reading import choose_pipeline
from voronka.timeutil import local_zone_name, utcnow, zone

Owned = TypeVar("Owned", bound=Base)
MAX_NAME = 200
"""What the columns of names keep: people, sources, loss reasons, pipelines, stages."""


def check_length(text: str, *, field: str, limit: int = MAX_NAME) -> str:
    """``text`` if it has at most ``limit`` characters, else ``InvalidValue``.

    The columns' lengths, checked before a write: PostgreSQL refuses a longer value and SQLite keeps
    it whole, so without this the same input was refused on one database and stored on the other."""
    if len(text) > limit:
        raise InvalidValue(field=field, value=text[:40] + "…", hint=f"at most {limit} characters")
    return text


def owned_row(*, session: Session, model: type[Owned], row_id: int, account_id: int, what: str) -> Owned:
    """The row of ``model`` with this id if it is the account's; any other — missing, or another
    account's — is "not found" alike, so ids never tell one account about another's data."""
    found = session.get(model, row_id)
    if found is None or getattr(found, "account_id", None) != account_id:
        raise NotFound(what=f"{what} {row_id}")
    return found


def account_by_id(*, session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(what=f"account {account_id}")
    return account


def default_account(
    *, session: Session, timezone: str | None = None, currency: str = "RUB", name: str = "Business"
) -> Account:
    """The first account, created on first use (the embedded default holds one business)."""
    account = session.scalars(select(Account).order_by(Account.id).limit(1)).first()
    if account is None:
        account = Account(name=name, currency=currency, timezone=timezone or local_zone_name(), created_at=utcnow())
        session.add(account)
        session.flush()
    return account


def update_account(
    *, session: Session, account: Account, currency: str | None = None, timezone: str | None = None
) -> Account:
    """Set the account's currency (ISO 4217) and time zone (IANA). Deals keep their own currencies:
    reports in the new currency list the others apart."""
    if currency is not None:
        account.currency = check_currency(currency)
    if timezone is not None:
        account.timezone = zone(timezone).key
    session.flush()
    return account


def create_pipeline(*, session: Session, account: Account, name: str, stages: Sequence[str]) -> Pipeline:
    """A pipeline with ``stages`` in order; the last one is the won stage.

    Creating a pipeline that already exists with the same stages returns it unchanged.
    """
    names = [s.strip() for s in stages if s.strip()]
    if len(names) < 2:
        raise InvalidPipeline(reason="at least two stages are needed (the last one is the won stage)")
    if len({n.casefold() for n in names}) != len(names):
        raise InvalidPipeline(reason="stage names repeat")
    existing = session.scalars(select(Pipeline).where(Pipeline.account_id == account.id, Pipeline.name == name)).first()
    if existing is not None:
        if [s.name for s in existing.stages] == names:
            return existing
        raise PipelineExists(name=name, stages=", ".join(s.name for s in existing.stages))
    pipeline = Pipeline(account_id=account.id, name=name)
    session.add(pipeline)
    session.flush()
    for position, stage_name in enumerate(names, start=1):
        session.add(Stage(account_id=account.id, pipeline_id=pipeline.id, name=stage_name, position=position))
    session.flush()
    session.refresh(pipeline)
    return pipeline


def list_pipelines(*, session: Session, account: Account) -> list[Pipeline]:
    return list(session.scalars(select(Pipeline).where(Pipeline.account_id == account.id).order_by(Pipeline.id)))


def find_pipeline(*, session: Session, account: Account, name: str | None = None) -> Pipeline:
    """The pipeline called ``name``; without a name, the account's only pipeline."""
    return choose_pipeline(list_pipelines(session=session, account=account), name)


def find_stage(pipeline: Pipeline, name: str) -> Stage:
    """The stage of ``pipeline`` called ``name`` (case and surrounding spaces ignored)."""
    wanted = name.strip().casefold()
    for stage in pipeline.stages:
        if stage.name.casefold() == wanted:
            return stage
    raise StageNotFound(name=name, pipeline=pipeline.name, names=", ".join(s.name for s in pipeline.stages))


def id_of_name(*, session: Session, model: Any, account_id: int, name: str, **values: Any) -> int:
    """The id of the account's row of ``model`` (a source, a person, a loss reason) called ``name``,
    created with ``values`` if there is none. Safe when two writers name a new one at once (two
    website leads with a new ``utm_source``): the insert yields to the other's, and both get its id."""
    found = session.scalar(select(model.id).where(model.account_id == account_id, model.name == name))
    if found is not None:
        return int(found)
    statement = dialect_insert(session, model).on_conflict_do_nothing(index_elements=["account_id", "name"])
    inserted = session.scalar(statement.values(account_id=account_id, name=name, **values).returning(model.id))
    if inserted is not None:
        return int(inserted)
    return int(session.scalars(select(model.id).where(model.account_id == account_id, model.name == name)).one())


def _get_or_create(session: Session, model: type[Owned], account: Account, name: str, **values: Any) -> Owned:
    row_id = id_of_name(session=session, model=model, account_id=account.id, name=name, **values)
    found = session.get(model, row_id)
    assert found is not None
    return found


def get_or_create_source(*, session: Session, account: Account, name: str) -> Source:
    check_length(name, field="source")
    return _get_or_create(session, Source, account, name)


def get_or_create_manager(*, session: Session, account: Account, name: str) -> User:
    check_length(name, field="manager")
    return _get_or_create(session, User, account, name, role=Role.MANAGER.value, active=True)


def get_or_create_loss_reason(
    *, session: Session, account: Account, name: str, family: CauseFamily | None = None
) -> LossReason:
    check_length(name, field="loss reason")
    return _get_or_create(session, LossReason, account, name, family=(family or guess_cause_family(name)).value)


_FAMILY_WORDS: tuple[tuple[CauseFamily, tuple[str, ...]], ...] = (
    (CauseFamily.NON_TARGET, ("нецелев", "не целев", "spam", "спам", "non-target", "not target", "junk")),
    (CauseFamily.PRICE, ("дорого", "цена", "бюджет", "price", "expensive", "budget")),
    (CauseFamily.TIMING, ("срок", "timing", "deadline", "time")),
    (CauseFamily.COMPETITOR, ("конкурент", "competitor")),
    (CauseFamily.UNREACHABLE, ("дозвон", "недозвон", "не отвеча", "unreachable", "no answer")),
    (CauseFamily.NEED_GONE, ("потребност", "передумал", "need", "no longer")),
)


def guess_cause_family(reason: str) -> CauseFamily:
    """The cause family a free-text loss reason most likely belongs to (``other`` if unsure)."""
    text = reason.casefold()
    for family, words in _FAMILY_WORDS:
        if any(word in text for word in words):
            return family
    return CauseFamily.OTHER


def list_users(*, session: Session, account: Account, active_only: bool = False) -> list[User]:
    """The account's people by name (managers made by imports included)."""
    query = select(User).where(User.account_id == account.id)
    if active_only:
        query = query.where(User.active.is_(True))
    return list(session.scalars(query.order_by(User.name)))


def list_sources(*, session: Session, account: Account, active_only: bool = False) -> list[Source]:
    """The account's sources by name; ``active_only`` leaves out the archived (for choosing a new one)."""
    query = select(Source).where(Source.account_id == account.id)
    if active_only:
        query = query.where(Source.archived_at.is_(None))
    return list(session.scalars(query.order_by(Source.name)))


def list_loss_reasons(*, session: Session, account: Account, active_only: bool = False) -> list[LossReason]:
    query = select(LossReason).where(LossReason.account_id == account.id)
    if active_only:
        query = query.where(LossReason.archived_at.is_(None))
    return list(session.scalars(query.order_by(LossReason.name)))


class NamePolicy(enum.Enum):
    """What a typed manager or source name that the account does not know means."""

    KNOWN = "known"
    """Only the account's own names: an unknown one is an error naming the closest (a plan, a filter —
    where a typo would otherwise create a person or a channel nobody has)."""
    CREATE = "create"
    """A new name creates the row (a lead's source on a form: that is how people add channels)."""


CLOSEST = 3


def resolve_name(
    *,
    session: Session,
    account: Account,
    kind: Literal["manager", "source"],
    name: str,
    policy: NamePolicy,
) -> User | Source:
    """The account's manager or source called ``name``: case and surrounding spaces ignored, so
    «avito » finds «Avito» under either policy rather than making a second one. Unknown under
    ``KNOWN``: ``UnknownName`` with the closest names (or all, when none is close)."""
    model: type[User] | type[Source] = User if kind == "manager" else Source
    wanted = check_length(name.strip(), field=kind)
    names = list(session.scalars(select(model.name).where(model.account_id == account.id).order_by(model.name)))
    match = next((n for n in names if n == wanted), None) or next(
        (n for n in names if n.casefold() == wanted.casefold()), None
    )
    if match is not None:
        if kind == "manager":
            return session.scalars(select(User).where(User.account_id == account.id, User.name == match)).one()
        return session.scalars(select(Source).where(Source.account_id == account.id, Source.name == match)).one()
    if policy is NamePolicy.CREATE and wanted:
        if kind == "manager":
            return get_or_create_manager(session=session, account=account, name=wanted)
        return get_or_create_source(session=session, account=account, name=wanted)
    raise UnknownName(kind=Message(f"diagnose.kind_{kind}"), name=name[:80], closest=_closest(wanted, names))


def _closest(wanted: str, names: Sequence[str]) -> Message:
    folded = {n.casefold(): n for n in names}
    close = difflib.get_close_matches(wanted.casefold(), list(folded), n=CLOSEST, cutoff=0.5)
    if close:
        return Message("error.names_closest", {"names": ", ".join(folded[c] for c in close)})
    if names:
        return Message("error.names_known", {"names": ", ".join(names[:10]) + (", …" if len(names) > 10 else "")})
    return Message("error.names_none")


def user_named(*, session: Session, account: Account, name: str | None) -> User | None:
    """One of the account's people by name; ``None`` for no name; an unknown name is an error."""
    if not name or not name.strip():
        return None
    found = resolve_name(session=session, account=account, kind="manager", name=name, policy=NamePolicy.KNOWN)
    assert isinstance(found, User)
    return found


def source_named(*, session: Session, account: Account, name: str | None) -> Source | None:
    """A source by name, created if new (sources are how people call their channels); ``None`` for no name."""
    if not name or not name.strip():
        return None
    found = resolve_name(session=session, account=account, kind="source", name=name, policy=NamePolicy.CREATE)
    assert isinstance(found, Source)
    return found
