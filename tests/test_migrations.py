"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from voronka.db import ensure_schema, head_revision
from voronka.models import Base


def test_migrated_schema_equals_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_schema_is_migrated_once_and_then_left_alone(engine: Engine) -> None:
    ensure_schema(engine)
    ensure_schema(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head_revision()


def test_the_head_constant_is_the_migrations_head() -> None:
    from voronka.db import HEAD_REVISION, head_revision

    assert head_revision() == HEAD_REVISION


def test_who_did_what_keeps_its_user_through_the_vocabulary_rename(engine: Engine) -> None:
    """Upgrading from 0016: the columns that said ``user_id`` (``by_user_id`` on the entries) are the
    actor, the task's manager and the alert's recipient, each with the user it had."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from tests.builders import account_for
    from tests.test_origins import _downgrade
    from voronka.crm.accounts import create_pipeline
    from voronka.crm.auth import add_user
    from voronka.crm.deals import create_deal
    from voronka.crm.new_deal import NewDeal
    from voronka.models import DealEvent, Note, OutboxMessage, StageEntry, Task

    with Session(engine) as session:
        account = account_for(session)
        pipeline = create_pipeline(session=session, account=account, name="Продажи", stages=["Заявка", "Оплата"])
        user = add_user(
            session=session, account=account, name="Анна", email="anna@example.com", password="Лось-7-шагает"
        )
        deal = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB"), by=user)
        session.commit()
        ids = {"a": account.id, "d": deal.id, "u": user.id, "t": "2026-03-02 10:00:00"}
    _downgrade(engine, "0016")
    with engine.begin() as connection:
        assert connection.execute(text("SELECT by_user_id FROM stage_changes")).scalar_one() == ids["u"]
        connection.execute(
            text("INSERT INTO notes (account_id, deal_id, user_id, text, created_at) VALUES (:a, :d, :u, 'n', :t)"),
            ids,
        )
        connection.execute(
            text(
                "INSERT INTO tasks (account_id, deal_id, kind, due_at, user_id, text, created_at)"
                " VALUES (:a, :d, 'call', :t, :u, '', :t)"
            ),
            ids,
        )
        connection.execute(
            text(
                "INSERT INTO deal_events (account_id, deal_id, at, user_id, kind, data)"
                " VALUES (:a, :d, :t, :u, 'lost', '{}')"
            ),
            ids,
        )
        connection.execute(
            text(
                "INSERT INTO outbox (account_id, key, event, channel, user_id, address, subject, body, data,"
                " status, attempts, created_at, next_attempt_at)"
                " VALUES (:a, 'k', 'task_overdue', 'email', :u, 'anna@example.com', 's', 'b', '{}', 'sent', 1, :t, :t)"
            ),
            ids,
        )
    ensure_schema(engine)
    with Session(engine) as session:
        assert set(session.scalars(select(StageEntry.actor_id))) == {ids["u"]}
        assert session.scalars(select(Note.actor_id)).one() == ids["u"]
        assert session.scalars(select(Task.manager_id)).one() == ids["u"]
        assert session.scalars(select(DealEvent.actor_id)).one() == ids["u"]
        assert session.scalars(select(OutboxMessage.recipient_id)).one() == ids["u"]
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
