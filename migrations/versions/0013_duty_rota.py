"""duty rota

The street centre's duty rota (值班): ``duty_shift`` (who is on duty when), ``duty_swap``
(a shift handed to a colleague who agreed), ``duty_page`` (urgent tickets and flags that went
to the operator on duty first) and ``duty_gap_warning`` (gaps warned a day ahead, once).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 19:05:42.720427
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "duty_gap_warning",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("warned_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grid.id"], name=op.f("fk_duty_gap_warning_grid_id_grid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_gap_warning")),
        sa.UniqueConstraint("grid_id", "starts_at", name="uq_duty_gap_warning"),
    )
    op.create_table(
        "duty_shift",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["person.id"], name=op.f("fk_duty_shift_created_by_person")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grid.id"], name=op.f("fk_duty_shift_grid_id_grid")),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_duty_shift_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_shift")),
    )
    with op.batch_alter_table("duty_shift", schema=None) as batch_op:
        batch_op.create_index("ix_duty_shift_grid_starts", ["grid_id", "starts_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_duty_shift_person_id"), ["person_id"], unique=False)

    op.create_table(
        "duty_swap",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shift_id", sa.Integer(), nullable=False),
        sa.Column("from_person_id", sa.Integer(), nullable=False),
        sa.Column("to_person_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("asked_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["from_person_id"], ["person.id"], name=op.f("fk_duty_swap_from_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"], ["duty_shift.id"], name=op.f("fk_duty_swap_shift_id_duty_shift")
        ),
        sa.ForeignKeyConstraint(
            ["to_person_id"], ["person.id"], name=op.f("fk_duty_swap_to_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_swap")),
    )
    with op.batch_alter_table("duty_swap", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duty_swap_shift_id"), ["shift_id"], unique=False)

    op.create_table(
        "duty_page",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("notice", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("paged_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("widen_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("widened", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["grid_id"], ["grid.id"], name=op.f("fk_duty_page_grid_id_grid")),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_duty_page_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_duty_page_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_page")),
    )
    with op.batch_alter_table("duty_page", schema=None) as batch_op:
        batch_op.create_index("ix_duty_page_due", ["done_at", "widen_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_duty_page_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("duty_page", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duty_page_ticket_id"))
        batch_op.drop_index("ix_duty_page_due")

    op.drop_table("duty_page")
    with op.batch_alter_table("duty_swap", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duty_swap_shift_id"))

    op.drop_table("duty_swap")
    with op.batch_alter_table("duty_shift", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duty_shift_person_id"))
        batch_op.drop_index("ix_duty_shift_grid_starts")

    op.drop_table("duty_shift")
    op.drop_table("duty_gap_warning")
