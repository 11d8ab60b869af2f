"""household members (实有人口)

``household_member``: the people of each household — name, relation to the head, gender,
birth date, resident ID number (encrypted, with a keyed hash for look-up), phone, 户籍/常住/流动
status and moving dates; ``forgotten_at`` marks a person whose personal data was erased.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "household_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("gender", sa.String(length=8), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("id_cipher", sa.Text(), nullable=True),
        sa.Column("id_hash", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("moved_in", sa.Date(), nullable=True),
        sa.Column("moved_out", sa.Date(), nullable=True),
        sa.Column("forgotten_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
            name=op.f("fk_household_member_household_id_household"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_member")),
    )
    op.create_index(
        "ix_household_member_household_id", "household_member", ["household_id"], unique=False
    )
    op.create_index("ix_household_member_id_hash", "household_member", ["id_hash"], unique=True)
    op.create_index(
        "ix_household_member_moved_out", "household_member", ["moved_out"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_household_member_moved_out", table_name="household_member")
    op.drop_index("ix_household_member_id_hash", table_name="household_member")
    op.drop_index("ix_household_member_household_id", table_name="household_member")
    op.drop_table("household_member")
