"""Ad spend may have no source: a business keeping the statistics template by hand types a day's
advertising without saying where it went.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ad_spend", schema=None) as batch_op:
        batch_op.alter_column("source_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM ad_spend WHERE source_id IS NULL")
    with op.batch_alter_table("ad_spend", schema=None) as batch_op:
        batch_op.alter_column("source_id", existing_type=sa.Integer(), nullable=False)
