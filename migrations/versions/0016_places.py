"""places, inspections and hazards

``place_policy_version`` keeps each version of the place types (cadences, checklists, fix-by
days) an admin sent with ``/places``; ``place`` is the register of places (场所); ``inspection``
the inspections (巡查) and ``hazard`` the hazards they found (隐患).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "place",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("type_key", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("responsible_name", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
        sa.Column("responsible_phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_inspected_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["grid_id"], ["grid.id"], name=op.f("fk_place_grid_id_grid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_place")),
        sa.UniqueConstraint("code", name=op.f("uq_place_code")),
    )
    with op.batch_alter_table("place", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_place_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index(
            "ix_place_type_last", ["type_key", "last_inspected_at"], unique=False
        )

    op.create_table(
        "place_policy_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["person.id"], name=op.f("fk_place_policy_version_created_by_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_place_policy_version")),
    )
    op.create_table(
        "inspection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("place_id", sa.Integer(), nullable=False),
        sa.Column("inspector_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("inspected_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("withdrawn_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inspector_id"], ["person.id"], name=op.f("fk_inspection_inspector_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["place_id"], ["place.id"], name=op.f("fk_inspection_place_id_place")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_inspection_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection")),
    )
    with op.batch_alter_table("inspection", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inspection_inspector_at", ["inspector_id", "inspected_at"], unique=False
        )
        batch_op.create_index("ix_inspection_place_at", ["place_id", "inspected_at"], unique=False)

    op.create_table(
        "hazard",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("place_id", sa.Integer(), nullable=False),
        sa.Column("inspection_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("item_text", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("found_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fix_by", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("photo_file_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("reported_fixed_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "reported_photo_file_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True
        ),
        sa.Column("closed_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recheck_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["inspection.id"], name=op.f("fk_hazard_inspection_id_inspection")
        ),
        sa.ForeignKeyConstraint(["place_id"], ["place.id"], name=op.f("fk_hazard_place_id_place")),
        sa.ForeignKeyConstraint(
            ["recheck_id"], ["inspection.id"], name=op.f("fk_hazard_recheck_id_inspection")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_hazard_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard")),
    )
    with op.batch_alter_table("hazard", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hazard_inspection_id"), ["inspection_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_hazard_place_id"), ["place_id"], unique=False)
        batch_op.create_index("ix_hazard_state_fix_by", ["state", "fix_by"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hazard", schema=None) as batch_op:
        batch_op.drop_index("ix_hazard_state_fix_by")
        batch_op.drop_index(batch_op.f("ix_hazard_place_id"))
        batch_op.drop_index(batch_op.f("ix_hazard_inspection_id"))

    op.drop_table("hazard")
    with op.batch_alter_table("inspection", schema=None) as batch_op:
        batch_op.drop_index("ix_inspection_place_at")
        batch_op.drop_index("ix_inspection_inspector_at")

    op.drop_table("inspection")
    op.drop_table("place_policy_version")
    with op.batch_alter_table("place", schema=None) as batch_op:
        batch_op.drop_index("ix_place_type_last")
        batch_op.drop_index(batch_op.f("ix_place_grid_id"))

    op.drop_table("place")
