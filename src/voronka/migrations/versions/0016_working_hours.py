"""An account's working hours, production calendar and lead handover for its alerts: a lead's
clock runs in working minutes, and one left uncalled at the escalation may go to the next manager.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert_settings") as batch:
        batch.add_column(sa.Column("work_hours", sa.String(length=11), nullable=True))
        batch.add_column(sa.Column("work_calendar", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("handover", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("alert_settings") as batch:
        batch.drop_column("handover")
        batch.drop_column("work_calendar")
        batch.drop_column("work_hours")
