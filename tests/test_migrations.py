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
