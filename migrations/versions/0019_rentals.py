"""rental houses and tenants (出租房屋, 谁出租谁负责)

``rental``: a household's address let to tenants, its landlord and the hashes of the
landlord's and the tenants' links; ``tenancy``: each tenant's stay, the day their residence
registration (居住登记) is due, the worker's confirmation, reminders, the move-out day.
``household_member`` gains ``origin`` (来自何处) and ``stay_until`` (拟居住期限).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("household_member") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("stay_until", sa.Date(), nullable=True))
    op.create_table(
        "rental",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("landlord_name", sa.String(length=50), nullable=False),
        sa.Column("landlord_phone", sa.String(length=32), nullable=True),
        sa.Column("landlord_id", sa.Integer(), nullable=True),
        sa.Column("link_hash", sa.String(length=64), nullable=True),
        sa.Column("link_expires_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_link_hash", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_rental_household_id_household")
        ),
        sa.ForeignKeyConstraint(
            ["landlord_id"], ["person.id"], name=op.f("fk_rental_landlord_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["person.id"], name=op.f("fk_rental_created_by_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rental")),
        sa.UniqueConstraint("link_hash", name=op.f("uq_rental_link_hash")),
        sa.UniqueConstraint("tenant_link_hash", name=op.f("uq_rental_tenant_link_hash")),
    )
    op.create_index("ix_rental_household_id", "rental", ["household_id"], unique=False)
    op.create_index("ix_rental_landlord_id", "rental", ["landlord_id"], unique=False)
    op.create_table(
        "tenancy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rental_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("registered_by", sa.Integer(), nullable=True),
        sa.Column("self_registered", sa.Boolean(), nullable=False),
        sa.Column("registered_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("confirmed_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("confirmed_by", sa.Integer(), nullable=True),
        sa.Column("reminded_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lapse_told_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rental_id"], ["rental.id"], name=op.f("fk_tenancy_rental_id_rental")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["household_member.id"],
            name=op.f("fk_tenancy_member_id_household_member"),
        ),
        sa.ForeignKeyConstraint(
            ["registered_by"], ["person.id"], name=op.f("fk_tenancy_registered_by_person")
        ),
        sa.ForeignKeyConstraint(
            ["confirmed_by"], ["person.id"], name=op.f("fk_tenancy_confirmed_by_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenancy")),
        sa.UniqueConstraint("member_id", name=op.f("uq_tenancy_member_id")),
    )
    op.create_index("ix_tenancy_rental_id", "tenancy", ["rental_id"], unique=False)
    op.create_index(
        "ix_tenancy_due", "tenancy", ["due_on", "confirmed_at", "ended_on"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_tenancy_due", table_name="tenancy")
    op.drop_index("ix_tenancy_rental_id", table_name="tenancy")
    op.drop_table("tenancy")
    op.drop_index("ix_rental_landlord_id", table_name="rental")
    op.drop_index("ix_rental_household_id", table_name="rental")
    op.drop_table("rental")
    with op.batch_alter_table("household_member") as batch:
        batch.drop_column("stay_until")
        batch.drop_column("origin")
