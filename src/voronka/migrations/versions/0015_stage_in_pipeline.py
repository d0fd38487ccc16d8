"""A deal stands in a stage of its own pipeline, held by the schema: its (stage, pipeline) refers to a
stage's (id, pipeline) instead of its stage alone.

A deal a re-import or a CRM sync moved to another pipeline used to keep its old pipeline while
standing in a stage of the new one. Such deals are given the pipeline of their stage first, and the
pipelines they left or joined are re-derived (reaches, furthest stages, the per-day summary).

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    stray = connection.execute(
        sa.text(
            "SELECT d.id, d.pipeline_id, s.pipeline_id FROM deals d JOIN stages s ON s.id = d.stage_id"
            " WHERE s.pipeline_id <> d.pipeline_id"
        )
    ).all()
    for deal_id, _, pipeline_id in stray:
        connection.execute(sa.text("UPDATE deals SET pipeline_id = :p WHERE id = :d"), {"p": pipeline_id, "d": deal_id})
    with op.batch_alter_table("stages") as batch:
        batch.create_unique_constraint("uq_stages_id_pipeline_id", ["id", "pipeline_id"])
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint("fk_deals_stage_id_stages", type_="foreignkey")
        batch.create_foreign_key(
            "fk_deals_stage_in_pipeline", "stages", ["stage_id", "pipeline_id"], ["id", "pipeline_id"]
        )
    if stray:
        # The library's own re-derivation, once, for the pipelines these deals left or joined.
        from sqlalchemy.orm import Session

        from voronka.crm.derived import rederive_pipeline

        session = Session(bind=connection)
        for pipeline_id in sorted({p for _, old, new in stray for p in (old, new)}):
            rederive_pipeline(session=session, pipeline_id=pipeline_id)
        session.flush()


def downgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.drop_constraint("fk_deals_stage_in_pipeline", type_="foreignkey")
        batch.create_foreign_key("fk_deals_stage_id_stages", "stages", ["stage_id"], ["id"])
    with op.batch_alter_table("stages") as batch:
        batch.drop_constraint("uq_stages_id_pipeline_id", type_="unique")
