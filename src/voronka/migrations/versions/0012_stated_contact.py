"""A first contact a file or CRM stated, kept apart from the one derived from calls and moves, so
that recounting a deal from its log keeps it (docs/funnel.md: the earliest of the first call and a
stated contact; the first move only without either).

Existing deals: a first contact that no call and no stage move of the deal explains was stated by
an import, and is kept as such.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deals", sa.Column("stated_contact_at", sa.DateTime(), nullable=True))
    op.execute(
        """
        UPDATE deals SET stated_contact_at = first_contact_at
        WHERE first_contact_at IS NOT NULL
          AND NOT EXISTS (
            SELECT 1 FROM call_attempts c WHERE c.deal_id = deals.id AND c.at = deals.first_contact_at
          )
          AND NOT EXISTS (
            SELECT 1 FROM stage_changes s
            WHERE s.deal_id = deals.id AND s.at = deals.first_contact_at
              AND (s.from_stage_id IS NOT NULL OR s.to_position <> 1)
          )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("stated_contact_at")
