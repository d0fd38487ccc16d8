"""Calls that matched no deal yet are kept (``waiting_calls``) and matched when their deal arrives,
instead of being dropped for good once a sync's cursor had passed them.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "waiting_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=120), nullable=False),
        sa.Column("origin", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("outgoing_number", sa.String(length=50), nullable=True),
        sa.Column("client_phone", sa.String(length=50), nullable=True),
        sa.Column("manager", sa.String(length=200), nullable=True),
        sa.Column("deal_ref", sa.String(length=100), nullable=True),
        sa.Column("refs", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_waiting_calls_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waiting_calls")),
    )
    op.create_index("ix_waiting_calls_source", "waiting_calls", ["account_id", "external_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_waiting_calls_source", table_name="waiting_calls")
    op.drop_table("waiting_calls")
