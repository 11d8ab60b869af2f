"""verification before closing, spot checks

``ticket.verified_at`` records the on-site check (核查) of a kind whose policy verifies;
``spot_check`` keeps each item a supervisor (督查) drew to call back (抽查) and its result.
The new ticket state ``verifying`` and event kinds are strings: no schema change.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("verified_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "spot_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("worker_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("drawn_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(length=12), nullable=True),
        sa.Column("checked_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["supervisor_id"], ["person.id"], name=op.f("fk_spot_check_supervisor_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visit.id"], name=op.f("fk_spot_check_visit_id_visit")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_spot_check_ticket_id_ticket")
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["person.id"], name=op.f("fk_spot_check_worker_id_person")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grid.id"], name=op.f("fk_spot_check_grid_id_grid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check")),
    )
    with op.batch_alter_table("spot_check", schema=None) as batch_op:
        batch_op.create_index("ix_spot_check_worker", ["worker_id", "checked_at"], unique=False)
        batch_op.create_index(
            "ix_spot_check_supervisor", ["supervisor_id", "drawn_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("spot_check", schema=None) as batch_op:
        batch_op.drop_index("ix_spot_check_supervisor")
        batch_op.drop_index("ix_spot_check_worker")
    op.drop_table("spot_check")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("verified_at")
