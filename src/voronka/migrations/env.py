"""Alembic environment: runs on the connection voronka hands it (see voronka.db.ensure_schema)."""

from alembic import context

from voronka.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the library runs migrations
    raise RuntimeError("voronka migrations run through voronka.db.ensure_schema(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
