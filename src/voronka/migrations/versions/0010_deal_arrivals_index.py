"""An index of the deals by pipeline and creation time, for the statistics' arrivals per period:
PostgreSQL has no skip-scan, and read the whole table once per period without it.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deals_arrivals",
        "deals",
        ["pipeline_id", "created_at", "manager_id", "source_id", "contact_minutes", "furthest_position"],
    )


def downgrade() -> None:
    op.drop_index("ix_deals_arrivals", table_name="deals")
