"""Tasks on deals, a history of what users did to a deal, who gets a website form's leads, an index
for the kanban's columns, what search reads (the phone key and the case-folded names), and archived
sources and loss reasons.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_key", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("search_text", sa.String(length=600), nullable=True))
        batch_op.create_index("ix_deals_board", ["pipeline_id", "status", "stage_id", "created_at"], unique=False)
        batch_op.create_index("ix_deals_phone", ["account_id", "phone_key"], unique=False)
    _fill_search_keys()
    for listed in ("sources", "loss_reasons"):
        with op.batch_alter_table(listed, schema=None) as batch_op:
            batch_op.add_column(sa.Column("archived_at", sa.DateTime(), nullable=True))
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("done_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('call', 'meeting', 'estimate', 'other')", name=op.f("ck_tasks_kind")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_tasks_account_id_accounts")),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_tasks_deal_id_deals"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_tasks_user_id_users")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_tasks_created_by_id_users")),
        sa.ForeignKeyConstraint(["done_by_id"], ["users.id"], name=op.f("fk_tasks_done_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_open", ["account_id", "done_at", "due_at"], unique=False)
        batch_op.create_index("ix_tasks_deal", ["deal_id", "done_at"], unique=False)
    op.create_table(
        "deal_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_deal_events_account_id_accounts")),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_deal_events_deal_id_deals"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_deal_events_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal_events")),
    )
    with op.batch_alter_table("deal_events", schema=None) as batch_op:
        batch_op.create_index("ix_deal_events_deal", ["deal_id", "at"], unique=False)
    with op.batch_alter_table("lead_forms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assign_rule", sa.String(length=12), server_default="none", nullable=False))
        batch_op.add_column(sa.Column("assign_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_assigned_user_id", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_lead_forms_assign_rule"), "assign_rule IN ('none', 'manager', 'round_robin')"
        )
        batch_op.create_foreign_key(op.f("fk_lead_forms_assign_user_id_users"), "users", ["assign_user_id"], ["id"])
        batch_op.create_foreign_key(
            op.f("fk_lead_forms_last_assigned_user_id_users"), "users", ["last_assigned_user_id"], ["id"]
        )


def _fill_search_keys() -> None:
    """The search keys of the deals already stored, as voronka.crm computes them for new ones: the
    phone's digits last first, and title, contact and e-mail case-folded."""
    names = ("id", "phone", "title", "contact_name", "email", "phone_key", "search_text")
    deals = sa.table("deals", *(sa.column(name) for name in names))
    connection = op.get_bind()
    rows = connection.execute(sa.select(deals.c.id, deals.c.phone, deals.c.title, deals.c.contact_name, deals.c.email))
    keys = []
    for deal_id, phone, title, contact, email in rows:
        digits = "".join(c for c in phone or "" if c.isdigit())
        text = " ".join(part for part in (title, contact, email) if part).casefold()[:600]
        keys.append({"deal": deal_id, "key": digits[::-1][:20] if len(digits) >= 4 else None, "text": text or None})
    update = deals.update().where(deals.c.id == sa.bindparam("deal"))
    for start in range(0, len(keys), 5_000):
        chunk = keys[start : start + 5_000]
        connection.execute(update.values(phone_key=sa.bindparam("key"), search_text=sa.bindparam("text")), chunk)


def downgrade() -> None:
    for listed in ("sources", "loss_reasons"):
        with op.batch_alter_table(listed, schema=None) as batch_op:
            batch_op.drop_column("archived_at")
    with op.batch_alter_table("lead_forms", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_lead_forms_last_assigned_user_id_users"), type_="foreignkey")
        batch_op.drop_constraint(op.f("fk_lead_forms_assign_user_id_users"), type_="foreignkey")
        batch_op.drop_constraint(op.f("ck_lead_forms_assign_rule"), type_="check")
        batch_op.drop_column("last_assigned_user_id")
        batch_op.drop_column("assign_user_id")
        batch_op.drop_column("assign_rule")
    op.drop_table("deal_events")
    op.drop_table("tasks")
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index("ix_deals_phone")
        batch_op.drop_index("ix_deals_board")
        batch_op.drop_column("search_text")
        batch_op.drop_column("phone_key")
