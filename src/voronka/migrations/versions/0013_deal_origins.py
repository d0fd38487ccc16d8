"""A deal's external id is unique where it came from: an ``origin`` column (the business's own ids,
or the CRM a sync or an export came from), and the uniqueness moves from (account, id) to
(account, origin, id). Existing deals get the empty origin: the first import or sync that names
one of their ids claims it (see ``ingest.importers.writer``).

On SQLite the deals table is rebuilt (its unique constraint cannot be dropped otherwise), with the
foreign keys off for the migration (``db.ensure_schema``), so that dropping the old table cascades
to nothing.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=100), nullable=False, server_default=""))
        batch.drop_constraint("uq_deals_account_id", type_="unique")
        batch.create_unique_constraint("uq_deals_account_id_origin", ["account_id", "origin", "external_id"])


def downgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint("uq_deals_account_id_origin", type_="unique")
        batch.create_unique_constraint("uq_deals_account_id", ["account_id", "external_id"])
        batch.drop_column("origin")
