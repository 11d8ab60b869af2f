"""party members and their contact households (党员联系户)

``household_member.party`` (正式/预备/流动) and ``party_branch_id``; ``party_branch`` (党支部),
``party_contact`` (which party member keeps in touch with which household) and
``party_contact_log`` (the contacts made).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "party_branch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grid.id"], name=op.f("fk_party_branch_grid_id_grid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_branch")),
    )
    with op.batch_alter_table("party_branch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_party_branch_grid_id"), ["grid_id"], unique=False)
    with op.batch_alter_table("household_member", schema=None) as batch_op:
        batch_op.add_column(sa.Column("party", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("party_branch_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_household_member_party_branch_id_party_branch"),
            "party_branch",
            ["party_branch_id"],
            ["id"],
        )
        batch_op.create_index("ix_household_member_phone", ["phone"], unique=False)
    op.create_table(
        "party_contact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("assigned_by", sa.Integer(), nullable=True),
        sa.Column("assigned_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
            name=op.f("fk_party_contact_household_id_household"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["household_member.id"],
            name=op.f("fk_party_contact_member_id_household_member"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_by"], ["person.id"], name=op.f("fk_party_contact_assigned_by_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_contact")),
    )
    with op.batch_alter_table("party_contact", schema=None) as batch_op:
        batch_op.create_index("ix_party_contact_household", ["household_id"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_party_contact_member_id"), ["member_id"], unique=False
        )
    op.create_table(
        "party_contact_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("contacted_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["household_member.id"],
            name=op.f("fk_party_contact_log_member_id_household_member"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
            name=op.f("fk_party_contact_log_household_id_household"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["person.id"], name=op.f("fk_party_contact_log_recorded_by_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_contact_log")),
    )
    with op.batch_alter_table("party_contact_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_party_contact_log_member_at", ["member_id", "contacted_at"], unique=False
        )
        batch_op.create_index(
            "ix_party_contact_log_household_at", ["household_id", "contacted_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("party_contact_log", schema=None) as batch_op:
        batch_op.drop_index("ix_party_contact_log_household_at")
        batch_op.drop_index("ix_party_contact_log_member_at")
    op.drop_table("party_contact_log")
    with op.batch_alter_table("party_contact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_party_contact_member_id"))
        batch_op.drop_index("ix_party_contact_household")
    op.drop_table("party_contact")
    with op.batch_alter_table("household_member", schema=None) as batch_op:
        batch_op.drop_index("ix_household_member_phone")
        batch_op.drop_constraint(
            batch_op.f("fk_household_member_party_branch_id_party_branch"), type_="foreignkey"
        )
        batch_op.drop_column("party_branch_id")
        batch_op.drop_column("party")
    with op.batch_alter_table("party_branch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_party_branch_grid_id"))
    op.drop_table("party_branch")
