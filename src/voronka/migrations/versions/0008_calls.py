"""Calls from telephony exports and CRMs: their direction (a missed incoming call is no contact),
the client's number, and where each came from, so an import or a sync stores it once.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("direction", sa.String(length=3), server_default="out", nullable=False))
        batch_op.add_column(sa.Column("client_phone", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("external_id", sa.String(length=120), nullable=True))
        batch_op.create_index("ix_call_attempts_source", ["account_id", "external_id"], unique=True)
        batch_op.create_check_constraint(op.f("ck_call_attempts_direction"), "direction IN ('out', 'in')")


def downgrade() -> None:
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_call_attempts_direction"), type_="check")
        batch_op.drop_index("ix_call_attempts_source")
        batch_op.drop_column("external_id")
        batch_op.drop_column("client_phone")
        batch_op.drop_column("direction")
