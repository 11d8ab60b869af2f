"""grid boundaries: where each grid lies on the map

One GeoJSON polygon (or multipolygon) per grid, loaded by an admin from a file; a report's
location chooses the grid it goes to (``bot.services.boundaries``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "grid_boundary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("geometry", sa.Text(), nullable=False),
        sa.Column("loaded_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grid.id"], name=op.f("fk_grid_boundary_grid_id_grid")
        ),
        sa.ForeignKeyConstraint(
            ["loaded_by"], ["person.id"], name=op.f("fk_grid_boundary_loaded_by_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_boundary")),
        sa.UniqueConstraint("grid_id", name=op.f("uq_grid_boundary_grid_id")),
    )


def downgrade() -> None:
    op.drop_table("grid_boundary")
