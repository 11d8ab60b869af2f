"""a broadcast counts as a micro-lecture where a quota rule says so

``broadcast_reach`` records each household a non-emergency broadcast reached, once;
``visit_tally.broadcasts`` counts them per period. A rule whose ``counts`` is ``lecture_bc``
(微宣讲，含群发宣传) adds them to its lectures: a string, no schema change there.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # visit_tally is WITHOUT ROWID on SQLite: a plain ADD COLUMN keeps it so (no batch rebuild)
    op.add_column(
        "visit_tally",
        sa.Column("broadcasts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "broadcast_reach",
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("reached_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcast.id"]),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"]),
        sa.PrimaryKeyConstraint("broadcast_id", "household_id"),
    )


def downgrade() -> None:
    op.drop_table("broadcast_reach")
    with op.batch_alter_table("visit_tally", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_column("broadcasts")
