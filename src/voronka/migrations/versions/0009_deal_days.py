"""Deals per local day (``deal_days``): the summary cohort reports read instead of every deal,
counted here from the deals already stored.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from voronka.deal_days import rebuild_pipeline

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deal_days",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("furthest_position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("history_known", sa.Boolean(), nullable=False),
        sa.Column("deals", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_deal_days_account_id_accounts")),
        sa.ForeignKeyConstraint(
            ["pipeline_id"], ["pipelines.id"], name=op.f("fk_deal_days_pipeline_id_pipelines"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "account_id",
            "pipeline_id",
            "manager_id",
            "source_id",
            "day",
            "furthest_position",
            "status",
            "currency",
            "history_known",
            name=op.f("pk_deal_days"),
        ),
        sqlite_with_rowid=False,
    )
    connection = op.get_bind()
    for (pipeline_id,) in connection.execute(sa.text("SELECT id FROM pipelines")):
        rebuild_pipeline(connection, pipeline_id)


def downgrade() -> None:
    op.drop_table("deal_days")
