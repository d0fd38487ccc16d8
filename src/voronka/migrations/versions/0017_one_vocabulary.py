"""The glossary's words for who: the user who entered a deal into a stage, wrote a note or did
something to a deal is its ``actor_id``; the user a task is for, its ``manager_id``; the user an
alert goes to, its ``recipient_id``. Columns and their foreign keys renamed, nothing else changes.

PostgreSQL renames both in place. On SQLite each table is rebuilt (batch mode), so that the foreign
key's name in the table's definition changes too, with the foreign keys off for the migration
(``db.ensure_schema``), so that dropping the old table cascades to nothing.

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMED = (
    ("stage_changes", "by_user_id", "actor_id", True),
    ("notes", "user_id", "actor_id", True),
    ("deal_events", "user_id", "actor_id", True),
    ("tasks", "user_id", "manager_id", False),
    ("outbox", "user_id", "recipient_id", True),
)
"""(table, old column, new column, nullable): each a foreign key to ``users.id``."""


def upgrade() -> None:
    for table, old, new, nullable in RENAMED:
        _rename(table, old, new, nullable)


def downgrade() -> None:
    for table, old, new, nullable in RENAMED:
        _rename(table, new, old, nullable)


def _rename(table: str, old: str, new: str, nullable: bool) -> None:
    """Rename the column and its foreign key, named as the metadata's convention names it."""
    old_key, new_key = f"fk_{table}_{old}_users", f"fk_{table}_{new}_users"
    if op.get_bind().dialect.name == "postgresql":
        # In place: a foreign key dropped and added again would check every row of the log.
        op.alter_column(table, old, new_column_name=new, existing_type=sa.Integer(), existing_nullable=nullable)
        op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {old_key} TO {new_key}")
        return
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(old_key, type_="foreignkey")
        batch.alter_column(old, new_column_name=new, existing_type=sa.Integer(), existing_nullable=nullable)
        # A batch keeps calling a renamed column by its old name until the table is rebuilt (a key
        # named by the new one would be left out of the new table without a word).
        batch.create_foreign_key(new_key, "users", [old], ["id"])
